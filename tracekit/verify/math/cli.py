"""`tracekit verify math --input FILE.jsonl --output FILE.jsonl`: verify a file of (gold, prediction) rows.

Example:
    >>> verify_math_file(input=Path("in.jsonl"), output=Path("out.jsonl"))  # doctest: +SKIP
    {'rows': 3, 'correct': 2, 'incorrect': 1, 'error': 0}
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from tracekit.parse.split import split_reasoning
from tracekit.record import jsonl_line
from tracekit.sources.formats import RowsFileError, read_numbered_jsonl
from tracekit.verify.math.audit import SUMMARY_COLUMNS, AuditCase, record_dicts, run_audit, summarize
from tracekit.verify.math.config import MathVerifyConfig
from tracekit.verify.math.verifier import MathVerifier


def verify_math_file(
    *,
    input: Path,
    output: Path,
    gold_field: str = "gold",
    pred_field: str = "prediction",
    workers: int | None = None,
    config: MathVerifyConfig | None = None,
    audit: int = 0,
    source_field: str = "source",
) -> dict[str, Any]:
    """Write each input line plus `verdict`, `method`, `detail` (and `extracted_answer`), in input order.

    Uses the same `MathVerifier.verify` as the build step, over all cores by default. The prediction is
    the model output: text after a reasoning block is taken as the answer text. With `audit=N`, up to N
    accepted and N rejected rows per source (`source_field`, else one group) get a second opinion
    (audit.py): the summary gains `audit` (rates with 95% intervals) and every re-checked row goes to
    `OUTPUT.audit.jsonl`, disagreements marked.
    """
    rows = [row for _, row in read_numbered_jsonl(input)]  # RowsFileError names the file and line
    pairs = [
        (
            split_reasoning(str(r.get(pred_field) or "")).answer_text,
            "" if r.get(gold_field) is None else str(r[gold_field]),
        )
        for r in rows
    ]
    verifier = MathVerifier(config or MathVerifyConfig())
    try:
        results = verifier.verify_many(pairs, workers=workers)
    finally:
        verifier.close()
    counts = {"rows": len(rows), "correct": 0, "incorrect": 0, "error": 0}
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    with output.open("w", encoding="utf-8") as f:
        for r, res in zip(rows, results, strict=True):
            r = dict(
                r,
                verdict=res.verdict,
                method=res.method,
                detail=res.detail,
                extracted_answer=res.extracted_answer,
            )
            counts[res.verdict] = counts.get(res.verdict, 0) + 1
            f.write(jsonl_line(r))
    summary: dict[str, Any] = dict(counts)
    if audit > 0:
        cfg = (config or MathVerifyConfig()).model_copy(deep=True)
        cfg.audit.sample = audit
        cases = [
            AuditCase(
                trace_id=str(k),
                source=str(r.get(source_field) or "input"),
                verdict=res.verdict,
                gold=gold,
                answer_text=answer_text,
                extracted=res.extracted_answer,
            )
            for k, (r, res, (answer_text, gold)) in enumerate(zip(rows, results, pairs, strict=True))
        ]
        records = run_audit(cases, cfg)
        audit_path = output.with_name(output.stem + ".audit.jsonl")
        with audit_path.open("w", encoding="utf-8") as f:
            for rec in record_dicts(records):
                f.write(jsonl_line(rec))
        summary["audit"] = [dict(zip(SUMMARY_COLUMNS, row, strict=True)) for row in summarize(records)]
        summary["audit_disagreements"] = sum(1 for rec in records if rec.disagrees)
        summary["audit_file"] = str(audit_path)
    return summary


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="tracekit verify math", description=__doc__.splitlines()[0])
    ap.add_argument("--input", type=Path, required=True)
    ap.add_argument("--output", type=Path, required=True)
    ap.add_argument("--gold-field", default="gold")
    ap.add_argument("--pred-field", default="prediction")
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--allow-bare-number", action="store_true")
    ap.add_argument("--timeout-s", type=float, default=5.0)
    ap.add_argument("--audit", type=int, default=0, help="re-check N accepted and N rejected rows per source")
    args = ap.parse_args(argv)
    cfg = MathVerifyConfig(allow_bare_number=args.allow_bare_number, timeout_s=args.timeout_s)
    try:
        counts = verify_math_file(
            input=args.input,
            output=args.output,
            gold_field=args.gold_field,
            pred_field=args.pred_field,
            workers=args.workers,
            config=cfg,
            audit=args.audit,
        )
    except RowsFileError as e:
        print(f"tracekit: {e}", file=sys.stderr)
        return 2
    print(json.dumps(counts))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
