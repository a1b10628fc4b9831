"""Verifier audit: re-check a random sample of accepted and rejected math traces with a second opinion.

A build (`verify: {math: {audit: {sample: N}}}`) or the file command (`tracekit verify math --audit N`)
draws, per source, up to N traces the verifier accepted and N it rejected, and asks an independent
second opinion: the LLM judge when one is configured, else Math-Verify (when installed; it runs in a
child process, where its signal-based timeouts work). Where the opinion disagrees, the verifier's
verdict is counted as a false accept (accepted, opinion says wrong) or a false reject. The estimated
rates per source come with 95% Wilson score intervals; every disagreement is listed with both
answers so a person can read it.

The table goes to `AUDIT_FILE` in the build folder (the engine's layout points there);
`audit_tables(out)` is what `tracekit stats`, the report and the card show.

Example:
    >>> wilson(0, 50)
    (0.0, 0.0714)
    >>> wilson(3, 10)
    (0.1078, 0.6032)
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tracekit.verify.math.config import MathVerifyConfig

AUDIT_FILE = Path("audit") / "math.parquet"  # relative to a build's output folder
_TEXT_LIMIT = 4000  # characters of an answer text kept in the audit table

Opinion = Callable[[str, str, str | None], bool | None]  # (gold, answer text, extracted answer) -> same?


@dataclass
class AuditRecord:
    trace_id: str
    source: str
    verdict: str  # the verifier's: correct | incorrect
    gold: str
    answer: str  # the extracted answer (or the end of the answer text when none was found)
    math_verify: bool | None = None
    judge: bool | None = None
    opinion: str = "none"  # which opinion decides: judge | math_verify | none
    second: bool | None = None  # the deciding opinion: same answer?

    @property
    def disagrees(self) -> bool:
        return self.second is not None and self.second != (self.verdict == "correct")


@dataclass
class AuditCase:
    trace_id: str
    source: str
    verdict: str
    gold: str
    answer_text: str
    extracted: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval of a proportion k/n (rounded to 4 places); (0, 1) when n is 0."""
    if n == 0:
        return (0.0, 1.0)
    p = k / n
    denom = 1 + z * z / n
    center = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (round(max(0.0, center - half), 4), round(min(1.0, center + half), 4))


def sample_cases(cases: Sequence[AuditCase], *, per_source: int, seed: int) -> list[AuditCase]:
    """Up to `per_source` accepted and `per_source` rejected cases of each source, drawn at random
    (reproducible: the same seed and ledger give the same sample)."""
    groups: dict[tuple[str, str], list[AuditCase]] = {}
    for c in cases:
        if c.verdict in ("correct", "incorrect"):
            groups.setdefault((c.source, c.verdict), []).append(c)
    out: list[AuditCase] = []
    for (source, verdict), items in sorted(groups.items()):
        items = sorted(items, key=lambda c: c.trace_id)
        rng = random.Random(f"{seed}:{source}:{verdict}")
        out.extend(rng.sample(items, min(per_source, len(items))))
    return out


# ------------------------------------------------------------------------------------ second opinions


def _mv_verdict(gold: str, answer_text: str) -> bool | None:
    """Math-Verify's verdict, run in the child process (its main thread: its SIGALRM timeouts work)."""
    import logging

    logging.getLogger("math_verify").setLevel(logging.CRITICAL)
    from math_verify import parse, verify

    try:
        g = parse("\\boxed{" + gold + "}")
        if not g:
            return None
        return bool(verify(g, parse(answer_text)))
    except Exception:
        return None


class MathVerifyOpinion:
    """Math-Verify in one child process, killed and restarted when a pair runs past `timeout_s`."""

    name = "math_verify"

    def __init__(self, *, timeout_s: float = 30.0) -> None:
        self.timeout_s = timeout_s
        self._pool: Any = None

    @staticmethod
    def available() -> bool:
        try:
            import math_verify  # noqa: F401
        except ImportError:
            return False
        return True

    def _start(self) -> Any:
        import multiprocessing

        self._pool = multiprocessing.get_context("spawn").Pool(1)
        return self._pool

    def __call__(self, gold: str, answer_text: str, extracted: str | None) -> bool | None:
        import multiprocessing

        pool = self._pool or self._start()
        try:
            result: bool | None = pool.apply_async(_mv_verdict, (gold, answer_text)).get(self.timeout_s)
            return result
        except multiprocessing.TimeoutError:
            self.close()
            return None

    def close(self) -> None:
        if self._pool is not None:
            self._pool.terminate()
            self._pool.join()
            self._pool = None


class JudgeOpinion:
    """The configured LLM judge, asked about the extracted answer (or the answer text's end)."""

    name = "judge"

    def __init__(self, judge: Callable[..., bool | None]) -> None:
        self.judge = judge

    def __call__(self, gold: str, answer_text: str, extracted: str | None) -> bool | None:
        try:
            return self.judge(gold=gold, answer=extracted or answer_text[-2000:])
        except Exception:  # a judge that fails gives no opinion
            return None

    def close(self) -> None:
        pass


def default_opinions(config: MathVerifyConfig) -> list[Any]:
    """The second opinions this configuration allows and this machine has: the judge, Math-Verify."""
    from tracekit.verify.math.judge import MathAnswerJudge

    out: list[Any] = []
    jc = config.judge
    if config.audit.judge and jc.enabled:
        out.append(
            JudgeOpinion(
                MathAnswerJudge(
                    base_url=jc.base_url,
                    model=jc.model,
                    api_key_env=jc.api_key_env,
                    timeout_s=jc.timeout_s,
                    max_tokens=jc.max_tokens,
                )
            )
        )
    if config.audit.math_verify and MathVerifyOpinion.available():
        out.append(MathVerifyOpinion(timeout_s=max(10.0, 2 * config.timeout_s)))
    return out


def audit_cases(cases: Sequence[AuditCase], opinions: Sequence[Any]) -> list[AuditRecord]:
    """Ask every opinion about every case; the judge decides when it answers, else Math-Verify."""
    records = []
    for c in cases:
        rec = AuditRecord(
            trace_id=c.trace_id,
            source=c.source,
            verdict=c.verdict,
            gold=c.gold,
            answer=(c.extracted or c.answer_text[-300:]).strip(),
        )
        for op in opinions:
            value = op(c.gold, c.answer_text, c.extracted)
            setattr(rec, op.name, value)
        for name in ("judge", "math_verify"):
            if getattr(rec, name) is not None:
                rec.opinion, rec.second = name, getattr(rec, name)
                break
        records.append(rec)
    return records


# --------------------------------------------------------------------------------------- summaries

SUMMARY_COLUMNS = [
    "source", "opinion", "accepted_checked", "false_accepts", "false_accept_rate", "fa_ci95_low",
    "fa_ci95_high", "rejected_checked", "false_rejects", "false_reject_rate", "fr_ci95_low", "fr_ci95_high",
]  # fmt: skip
DISAGREEMENT_COLUMNS = ["source", "trace_id", "verifier", "second_opinion", "by", "gold", "answer"]


def summarize(records: Sequence[AuditRecord]) -> list[tuple[Any, ...]]:
    """Per source (and ALL): checked, disagreements, rate and 95% Wilson interval, both directions."""
    by: dict[str, list[AuditRecord]] = {}
    for r in records:
        by.setdefault(r.source, []).append(r)
    if len(by) > 1:
        by["ALL"] = list(records)
    rows = []
    for source, recs in by.items():
        opinions = sorted({r.opinion for r in recs if r.second is not None}) or ["none"]
        acc = [r for r in recs if r.verdict == "correct" and r.second is not None]
        rej = [r for r in recs if r.verdict == "incorrect" and r.second is not None]
        fa = sum(1 for r in acc if r.second is False)
        fr = sum(1 for r in rej if r.second is True)
        fa_ci, fr_ci = wilson(fa, len(acc)), wilson(fr, len(rej))
        rows.append(
            (
                source,
                "+".join(opinions),
                len(acc),
                fa,
                round(fa / len(acc), 4) if acc else None,
                *fa_ci,
                len(rej),
                fr,
                round(fr / len(rej), 4) if rej else None,
                *fr_ci,
            )  # fmt: skip
        )
    return rows


def disagreements(records: Sequence[AuditRecord], *, limit: int | None = None) -> list[tuple[Any, ...]]:
    rows = [
        (r.source, r.trace_id, r.verdict, "correct" if r.second else "incorrect", r.opinion, r.gold, r.answer)
        for r in records
        if r.disagrees
    ]
    return rows[:limit] if limit is not None else rows


def write_audit(path: Path, records: Sequence[AuditRecord]) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    cols = [f.name for f in AuditRecord.__dataclass_fields__.values()]
    table = pa.table(
        {
            **{c: [getattr(r, c) for r in records] for c in cols},
            "disagrees": [r.disagrees for r in records],
        },
        schema=pa.schema(
            [(c, pa.bool_() if c in ("math_verify", "judge", "second") else pa.string()) for c in cols]
            + [("disagrees", pa.bool_())]
        ),
    )
    tmp = path.with_name(path.name + ".tmp")
    pq.write_table(table, tmp)
    tmp.replace(path)
    return path


def read_audit(path: Path) -> list[AuditRecord]:
    import pyarrow.parquet as pq

    rows = pq.read_table(path).to_pylist()
    names = set(AuditRecord.__dataclass_fields__)
    return [AuditRecord(**{k: v for k, v in r.items() if k in names}) for r in rows]


def audit_tables(out: Path, *, limit: int = 20) -> list[tuple[str, list[str], list[tuple[Any, ...]]]]:
    """(title, columns, rows) of a build's audit for stats, report and card; [] when it has none."""
    path = Path(out) / AUDIT_FILE
    if not path.exists():
        return []
    records = read_audit(path)
    tables = [("math verifier audit", SUMMARY_COLUMNS, summarize(records))]
    dis = disagreements(records, limit=limit)
    if dis:
        total = len(disagreements(records))
        tables.append(
            (f"math verifier audit: disagreements ({len(dis)} of {total})", DISAGREEMENT_COLUMNS, dis)
        )
    return tables


# ------------------------------------------------------------------------------------------ running


def cases_from_ledger(ledger: Path, *, domains: Sequence[str]) -> list[AuditCase]:
    """The math traces of a ledger that have a verdict to audit (correct or incorrect, against a gold)."""
    import duckdb

    from tracekit.ledger.shards import list_shards

    files = [str(p) for p in list_shards(Path(ledger))]
    if not files:
        return []
    con = duckdb.connect()
    cols = set(con.sql(f"SELECT * FROM read_parquet({files!r}, union_by_name=true) LIMIT 0").columns)
    gold = "gold_answer" if "gold_answer" in cols else "NULL"
    rows = con.sql(
        f"""SELECT trace_id, source, verdict, {gold} AS gold, coalesce(answer_text, '') AS answer_text,
                   extracted_answer
            FROM read_parquet({files!r}, union_by_name=true)
            WHERE verdict IN ('correct', 'incorrect') AND domain IN ({", ".join(repr(d) for d in domains) or "NULL"})
              AND {gold} IS NOT NULL"""
    ).fetchall()
    return [
        AuditCase(trace_id=r[0], source=r[1], verdict=r[2], gold=r[3], answer_text=r[4], extracted=r[5])
        for r in rows
    ]


def run_audit(
    cases: Sequence[AuditCase], config: MathVerifyConfig, *, opinions: Sequence[Any] | None = None
) -> list[AuditRecord]:
    """Sample (config.audit.sample per source and verdict) and ask the second opinions."""
    picked = sample_cases(cases, per_source=config.audit.sample, seed=config.audit.seed)
    ops = list(opinions) if opinions is not None else default_opinions(config)
    try:
        return audit_cases(picked, ops)
    finally:
        for op in ops:
            close = getattr(op, "close", None)
            if close is not None:
                close()


def audit_build(*, ledger: Path, out_file: Path, config: MathVerifyConfig) -> Path | None:
    """The engine's hook: audit a finished build's math traces into `out_file`; None when off."""
    if config.audit.sample <= 0:
        return None
    records = run_audit(cases_from_ledger(ledger, domains=config.domains), config)
    return write_audit(out_file, records)


def record_dicts(records: Sequence[AuditRecord]) -> list[dict[str, Any]]:
    return [{**asdict(r), "disagrees": r.disagrees} for r in records]
