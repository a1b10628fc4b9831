"""`tracekit verify code --input FILE.jsonl --output FILE.jsonl`: the same verifier as the recipe step."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any, cast

from tracekit.record import jsonl_line
from tracekit.sandbox.base import Language
from tracekit.sources.formats import RowsFileError, read_numbered_jsonl
from tracekit.verify.code.config import CodeVerifyConfig
from tracekit.verify.code.item import CodeItem
from tracekit.verify.code.verifier import CodeVerifier

ITEM_KEYS = ("time_limit_s", "memory_mb", "compare", "fn_name", "entry_point")


def _item(row: dict[str, Any], where: str) -> CodeItem:
    if "code" not in row or "tests" not in row:
        missing = " and ".join(f"`{k}`" for k in ("code", "tests") if k not in row)
        raise RowsFileError(f"{where}: each line needs `code` and `tests` (missing {missing})")
    raw_lang = str(row.get("language") or "python").lower()
    # Unknown languages pass through; the verifier answers `error` (unsupported) for them.
    language = cast(Language, {"c++": "cpp", "py": "python", "python3": "python"}.get(raw_lang, raw_lang))
    extra = {k: row[k] for k in ITEM_KEYS if row.get(k) is not None}
    return CodeItem(code=str(row["code"] or ""), tests=row["tests"], language=language, **extra)


def verify_code_file(
    *, input: Path, output: Path, workers: int | None = None, config: CodeVerifyConfig | None = None
) -> dict[str, Any]:
    """Verify every line of `input` (code, language?, tests, time_limit_s?, memory_mb?, compare?) and
    write it to `output` with `verdict`, `tests_passed`, `tests_total`, `detail` added, in input order.
    Returns a summary: counts per verdict, the method (code_sandbox | code_process) and seconds.

    Example:
        >>> verify_code_file(input=Path("in.jsonl"), output=Path("out.jsonl"))  # doctest: +SKIP
        {'items': 2, 'pass': 1, 'fail': 1, 'error': 0, 'method': 'code_sandbox', 'seconds': 0.4}
    """
    cfg = config or CodeVerifyConfig()
    if workers is not None:
        cfg = cfg.model_copy(update={"workers": workers})
    numbered = read_numbered_jsonl(input)  # RowsFileError names the file and line
    rows = [r for _, r in numbered]
    items = [_item(r, f"{input}:{n}") for n, r in numbered]
    verifier = CodeVerifier(cfg)
    t0 = time.perf_counter()
    verdicts = verifier.verify_many(items)
    seconds = time.perf_counter() - t0
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(output.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as f:
        for row, v in zip(rows, verdicts, strict=True):
            out = {**row, "verdict": v.verdict, "tests_passed": v.tests_passed, "tests_total": v.tests_total}
            out["detail"] = v.detail
            f.write(jsonl_line(out))
    tmp.replace(output)
    counts = Counter(v.verdict for v in verdicts)
    return {
        "items": len(items),
        "pass": counts["pass"],
        "fail": counts["fail"],
        "error": counts["error"],
        "method": verifier.method,
        "seconds": round(seconds, 3),
    }
