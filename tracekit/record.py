"""The trace record: one row of the ledger, and its Arrow schema.

Every sampled trace becomes one ledger row, kept or not. Inside the datatrove pipeline a trace is a
`datatrove.data.Document` whose `id` is the `trace_id`, whose `text` is the raw completion and whose
`metadata` holds every other ledger column under the names below. Steps read and write those keys.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal, get_args

import pyarrow as pa

Verdict = Literal["correct", "incorrect", "error", "unverified"]
VERDICTS: tuple[str, ...] = get_args(Verdict)

# One benchmark match. method: ngram | whole_item | rephrase | judge (how it was decided); score:
# share of the item's n-grams found (ngram), 1 (whole_item), similarity (rephrase, judge); ngram:
# the matched n-gram or whole item (normalised); item_text: the benchmark item's text (cut to
# CONTAMINATION_TEXT_CHARS); judge: the judge's answer, when one was asked.
CONTAMINATION_TYPE = pa.struct(
    [
        ("benchmark", pa.string()),
        ("item", pa.string()),
        ("ngram", pa.string()),
        ("method", pa.string()),
        ("score", pa.float32()),
        ("item_text", pa.string()),
        ("judge", pa.string()),
    ]
)
CONTAMINATION_METHODS: tuple[str, ...] = ("ngram", "whole_item", "rephrase", "judge")
CONTAMINATION_TEXT_CHARS = 2000
MESSAGE_TYPE = pa.struct([("role", pa.string()), ("content", pa.string())])
# One select student's pass rate (null: none of its answers was decided).
STUDENT_RATE_TYPE = pa.struct([("model", pa.string()), ("pass_rate", pa.float64())])

# (name, arrow type, description). The order is the column order of ledger shards.
LEDGER_FIELDS: list[tuple[str, pa.DataType, str]] = [
    ("trace_id", pa.string(), "hash(prompt_id, row, sample index, teacher config hash)"),
    ("prompt_id", pa.string(), "hash(source name, prompt text)"),
    ("source", pa.string(), "source name from the recipe"),
    ("domain", pa.string(), "math | code | science | general | ... (from the source)"),
    ("difficulty", pa.string(), "difficulty label if the source has one"),
    ("pass_rate", pa.float64(), "share of the student's decided samples that were correct (select; with several students the highest of theirs), or the source's"),
    ("student_pass_rates", pa.list_(STUDENT_RATE_TYPE), "each student's pass rate (select), in the recipe's order: model, pass_rate"),
    ("difficulty_rating", pa.int32(), "difficulty 1-10 rated by the labelling judge (select)"),
    ("domain_label", pa.string(), "domain named by the labelling judge, from the recipe's list (select)"),
    ("selection", pa.string(), "JSON: the student's samples and passes, the judge's questions and raw answers"),
    ("source_file", pa.string(), "file the prompt row came from"),
    ("row_index", pa.int64(), "row number of the prompt in its source (0-based)"),
    ("sample_index", pa.int32(), "index of this sample among the prompt's samples"),
    ("prompt", pa.string(), "the prompt text as given by the source"),
    ("prompt_messages", pa.list_(MESSAGE_TYPE), "the rendered request messages (system?, user)"),
    ("reasoning_enabled", pa.bool_(), "false for general samples sampled without thinking"),
    ("gold_answer", pa.string(), "reference answer, if any"),
    ("gold_source", pa.string(), "given | majority | repaired: which reference decided the verdict"),
    ("majority_answer", pa.string(), "answer of the largest group of agreeing samples, when one was taken"),
    ("majority_share", pa.float64(), "share of the prompt's samples in its largest agreeing group"),
    ("tests", pa.string(), "reference tests as JSON text, if any"),
    ("teacher_model", pa.string(), "teacher model id (or the replayed dataset)"),
    ("teacher_revision", pa.string(), "teacher model revision, if known"),
    ("teacher_backend", pa.string(), "dataset | vllm | openai"),
    ("teacher_config_hash", pa.string(), "hash of the teacher + sampling settings"),
    ("sampling", pa.string(), "sampling parameters as JSON"),
    ("seed", pa.int64(), "per-request seed (derived from trace_id)"),
    ("template_hash", pa.string(), "hash of the prompt template"),
    ("completion", pa.string(), "the completion the dataset uses: as received, or as rewritten (`rewrite:`)"),
    ("original_completion", pa.string(), "the teacher's completion before `rewrite:` replaced it (keep_original)"),
    ("rewrite_model", pa.string(), "model that rewrote the completion (`rewrite:`), null if not rewritten"),
    ("rewrite_detail", pa.string(), "JSON: the rewrite request's template hash, finish reason, tokens or error"),
    ("reasoning", pa.string(), "the reasoning (thinking) text"),
    ("answer_text", pa.string(), "text after the reasoning block"),
    ("extracted_answer", pa.string(), "final answer extracted from answer_text (last \\boxed{} ...)"),
    ("think_format", pa.string(), "think | thought | field | none | unclosed"),
    ("think_blocks", pa.int32(), "number of opening reasoning tags in the completion"),
    ("finish_reason", pa.string(), "stop | length | error | null if unknown"),
    ("prompt_tokens", pa.int64(), "prompt tokens, if counted"),
    ("completion_tokens", pa.int64(), "completion tokens, if counted"),
    ("completion_chars", pa.int64(), "length of the raw completion in characters (length stats without reading it)"),
    ("reasoning_tokens", pa.int64(), "tokens of the reasoning part, if counted"),
    ("latency_s", pa.float64(), "request latency in seconds, if sampled live"),
    ("error", pa.string(), "teacher error after retries, if any"),
    ("verdict", pa.string(), "correct | incorrect | error | unverified"),
    ("verify_method", pa.string(), "which verifier decided (math_rule, code_sandbox, judge, ...)"),
    ("verify_detail", pa.string(), "detail of the verdict (no_answer, timeout, failing test, ...)"),
    ("filter_flags", pa.list_(pa.string()), "every filter that dropped this trace: its reason, or reason:signal naming the check that tripped"),
    ("duplicate_of", pa.string(), "trace_id of the kept duplicate, if this one is a duplicate"),
    ("dedup_cluster", pa.string(), "near-duplicate prompt cluster id, if any"),
    (
        "contamination",
        pa.list_(CONTAMINATION_TYPE),
        "benchmark matches (benchmark, item, matched n-gram, method, score, item text, judge answer)",
    ),
    (
        "contamination_cleared",
        pa.list_(CONTAMINATION_TYPE),
        "rephrase candidates a judge was asked about and said are a different problem (with its answer)",
    ),
    ("bucket", pa.string(), "mix bucket the trace was selected into"),
    ("split", pa.string(), "dataset split (train/test) if kept"),
    ("kept", pa.bool_(), "true if the trace is in the dataset"),
    ("drop_reason", pa.string(), "first reason the trace was dropped (null if kept)"),
    ("tool_versions", pa.string(), "JSON of tracekit/datatrove/verifier versions"),
]

LEDGER_SCHEMA = pa.schema([pa.field(name, typ) for name, typ, _ in LEDGER_FIELDS])
LEDGER_COLUMNS: list[str] = [name for name, _, _ in LEDGER_FIELDS]


def ledger_schema_of(*columns: str) -> pa.Schema:
    """The schema of some ledger columns, in the order given (a decision table's, for example).

    >>> ledger_schema_of("trace_id", "kept").names
    ['trace_id', 'kept']
    """
    return pa.schema([LEDGER_SCHEMA.field(c) for c in columns])

DATASET_SCHEMA = pa.schema(
    [
        ("messages", pa.list_(MESSAGE_TYPE)),
        ("trace_id", pa.string()),
        ("prompt_id", pa.string()),
        ("source", pa.string()),
        ("domain", pa.string()),
        ("bucket", pa.string()),
        ("num_tokens", pa.int64()),
        ("verified", pa.bool_()),
    ]
)


def stable_hash(*parts: Any, size: int = 8) -> str:
    """Hex digest (2*size chars) of the parts, stable across processes and runs."""
    h = hashlib.blake2b(digest_size=size)
    for p in parts:
        h.update(str(p).encode("utf-8", "surrogatepass"))
        h.update(b"\x1f")
    return h.hexdigest()


def prompt_id(source: str, prompt: str) -> str:
    return stable_hash("prompt", source, prompt)


def trace_id(prompt_id_: str, row_key: object, sample_index: int, teacher_config_hash: str) -> str:
    # The row index is part of the id so identical prompts in different rows are different traces
    # (and get different seeds).
    return stable_hash("trace", prompt_id_, row_key, sample_index, teacher_config_hash)


def selection_row_id(prompt_id_: str, row_key: object) -> str:
    """Id of the ledger row of a prompt dropped by the select stage (it has no sample)."""
    return stable_hash("selected-out", prompt_id_, row_key)


def seed_from_trace_id(tid: str) -> int:
    return int(tid[:15], 16)  # fits a signed 64-bit int and vLLM's seed


def empty_record() -> dict[str, Any]:
    """A metadata dict with every ledger column present (None, or the neutral value)."""
    rec: dict[str, Any] = dict.fromkeys(LEDGER_COLUMNS)
    rec.update(
        verdict="unverified",
        filter_flags=[],
        contamination=[],
        contamination_cleared=[],
        kept=True,
        prompt_messages=[],
    )
    return rec


def trace_json_schema() -> dict[str, Any]:
    """JSON Schema of one ledger row (schemas/trace.schema.json)."""

    def js(t: pa.DataType) -> dict[str, Any]:
        if pa.types.is_string(t):
            return {"type": ["string", "null"]}
        if pa.types.is_integer(t):
            return {"type": ["integer", "null"]}
        if pa.types.is_floating(t):
            return {"type": ["number", "null"]}
        if pa.types.is_boolean(t):
            return {"type": ["boolean", "null"]}
        if pa.types.is_list(t):
            return {"type": ["array", "null"], "items": js(t.value_type)}
        if pa.types.is_struct(t):
            return {
                "type": "object",
                "properties": {t.field(i).name: js(t.field(i).type) for i in range(t.num_fields)},
            }
        raise TypeError(t)

    props = {}
    for name, typ, desc in LEDGER_FIELDS:
        props[name] = {**js(typ), "description": desc}
    props["verdict"]["enum"] = list(VERDICTS)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "tracekit ledger row",
        "type": "object",
        "properties": props,
        "required": ["trace_id", "prompt_id", "source", "domain", "prompt", "verdict", "kept"],
    }


def dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, sort_keys=True, default=str)


# Characters JSON leaves raw inside a string (with ensure_ascii=False) but that line splitters break
# lines at: Python's str.splitlines and JavaScript split on them; JSON Lines readers split on "\n" only.
_LINE_BREAKS = str.maketrans({"\x85": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"})


def jsonl_line(obj: Any, **dumps_kw: Any) -> str:
    r"""`obj` as one JSON Lines record (ending in a newline) that every line splitter reads as one line:
    text stays readable (no ASCII escaping) except the three line separators JSON does not escape.

        >>> line = jsonl_line({"completion": "a\u2028b\x85c"})
        >>> line
        '{"completion": "a\\u2028b\\u0085c"}\n'
        >>> len(line.splitlines()), json.loads(line)["completion"] == "a\u2028b\x85c"
        (1, True)
    """
    return json.dumps(obj, ensure_ascii=False, **dumps_kw).translate(_LINE_BREAKS) + "\n"
