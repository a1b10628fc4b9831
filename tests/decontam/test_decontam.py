"""Decontamination against the real benchmark files in ../shared/data/benchmarks."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from datatrove.executor import LocalPipelineExecutor
from pydantic import ValidationError

from tracekit.decontam import BENCHMARKS, BenchmarkEntry, DecontamConfig, DecontamStage, load_benchmark
from tracekit.decontam.registry import BenchmarkFileError
from tracekit.dedup.ngrams import normalized_words
from tracekit.record import CONTAMINATION_TYPE, LEDGER_SCHEMA, empty_record

BENCH_DIR = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "benchmarks"
LOCAL = ["aime24", "aime25", "amc23", "math500", "gsm8k", "humaneval", "mbpp"]

UNRELATED = (
    "A farmer plants 3 rows of sunflowers along a fence. Each row holds 14 plants and every plant "
    "produces 120 seeds. If a squirrel eats one seed out of every five, how many seeds remain?"
)


def aime24_row(item_id: int) -> dict:
    with open(BENCH_DIR / "aime24.jsonl") as f:
        return next(r for r in map(json.loads, f) if r["id"] == item_id)


def ledger(tmp_path: Path, rows: list[tuple[str, str, bool]], completion: str = "") -> Path:
    recs = []
    for tid, prompt, kept in rows:
        rec = empty_record()
        rec.update(trace_id=tid, prompt=prompt, completion=completion or f"<think>x</think>{tid}", kept=kept)
        recs.append(rec)
    folder = tmp_path / "ledger"
    folder.mkdir()
    pq.write_table(pa.Table.from_pylist(recs, schema=LEDGER_SCHEMA), folder / "00000.parquet")
    return folder


def run(tmp_path: Path, folder: Path, cfg: DecontamConfig) -> dict[str, dict]:
    out = tmp_path / "decisions" / "decontam.parquet"
    list(DecontamStage(config=cfg, input_dir=str(folder), output_path=str(out)).run())
    table = pq.read_table(out)
    assert table.schema.field("contamination").type == pa.list_(CONTAMINATION_TYPE)
    return {r["trace_id"]: r for r in table.to_pylist()}


def test_local_registry_files_load() -> None:
    for name in LOCAL:
        texts = load_benchmark(BENCHMARKS[name], data_dir=str(BENCH_DIR))
        assert len(texts.texts) == len(texts.items) > 0
        assert all(isinstance(t, str) and t for t in texts.texts[:5])
    assert len(load_benchmark(BENCHMARKS["aime24"], data_dir=str(BENCH_DIR)).items) == 30
    assert load_benchmark(BENCHMARKS["humaneval"], data_dir=str(BENCH_DIR)).items[0] == "HumanEval/0"


def test_planted_aime24_problem_is_caught_and_unrelated_is_not(tmp_path: Path) -> None:
    row = aime24_row(60)
    # rephrased wrapper, different case and LaTeX spacing: still caught
    planted = "Solve the following problem.\n\n" + row["problem"].upper().replace("$", " $ ")
    folder = ledger(tmp_path, [("hit", planted, True), ("clean", UNRELATED, True), ("old", planted, False)])
    res = run(tmp_path, folder, DecontamConfig(benchmarks=LOCAL, data_dir=str(BENCH_DIR)))
    hits = res["hit"]["contamination"]
    assert [(h["benchmark"], h["item"]) for h in hits] == [("aime24", "60")]
    assert hits[0]["ngram"] == "every morning aya goes for a 9 kilometer"
    assert res["hit"]["drop_reason"] == "contaminated"
    assert res["clean"]["contamination"] == [] and res["clean"]["drop_reason"] is None
    # an already-dropped trace records its hit but gets no new drop reason
    assert res["old"]["contamination"] and res["old"]["drop_reason"] is None


def test_numbers_matter_and_short_overlap_is_not_enough(tmp_path: Path) -> None:
    words = normalized_words([aime24_row(60)["problem"]]).to_list()[0]
    assert words[:8] == ["every", "morning", "aya", "goes", "for", "a", "9", "kilometer"]
    tail = "and then something else entirely"
    rows = [
        ("eight", " ".join(words[:8]) + " " + tail, True),
        ("seven", " ".join(words[:7]) + " " + tail, True),  # below the 8-gram: not contamination
        ("number", " ".join(words[:8]).replace(" 9 ", " 10 ") + " " + tail, True),  # digits are kept
    ]
    res = run(
        tmp_path, ledger(tmp_path, rows), DecontamConfig(benchmarks=["aime24"], data_dir=str(BENCH_DIR))
    )
    assert [h["item"] for h in res["eight"]["contamination"]] == ["60"]
    assert res["seven"]["contamination"] == [] and res["number"]["contamination"] == []


def test_completion_field_and_user_file(tmp_path: Path) -> None:
    user = tmp_path / "my_eval.jsonl"
    user.write_text(
        json.dumps({"qid": "q7", "question": "the quick brown fox jumps over the lazy dog twice"}) + "\n"
    )
    folder = ledger(
        tmp_path,
        [("t", UNRELATED, True)],
        completion="I recall: the quick brown fox jumps over the lazy dog twice.",
    )
    cfg = DecontamConfig.model_validate(
        {
            "fields": ["prompt", "completion"],
            "benchmarks": [{"name": "mine", "path": str(user), "column": "question", "id_column": "qid"}],
        }
    )
    res = run(tmp_path, folder, cfg)
    assert res["t"]["contamination"] == [
        {
            "benchmark": "mine",
            "item": "q7",
            "ngram": "the quick brown fox jumps over the lazy",
            "method": "ngram",
            "score": 1.0,  # all 3 of the item's 8-grams
            "item_text": "the quick brown fox jumps over the lazy dog twice",
            "judge": None,
        }
    ]
    only_prompt = cfg.model_copy(update={"fields": ["prompt"]})
    assert run(tmp_path / "p", folder, only_prompt)["t"]["contamination"] == []


def test_config_errors_are_clear() -> None:
    with pytest.raises(ValidationError, match="unknown benchmark 'aime2024'"):
        DecontamConfig(benchmarks=["aime2024"])
    with pytest.raises(ValidationError, match="give a `path` or `hub`"):
        DecontamConfig.model_validate({"benchmarks": [{"name": "nowhere"}]})
    with pytest.raises(ValidationError):
        DecontamConfig.model_validate({"fields": ["reasoning"]})
    assert DecontamConfig().ngram == 8 and DecontamConfig().fields == ["prompt"]


def test_missing_local_copy_without_hub_fails_loudly(tmp_path: Path) -> None:
    with pytest.raises(BenchmarkFileError, match="olympiadbench"):
        load_benchmark(BENCHMARKS["olympiadbench"], data_dir=str(tmp_path))


def test_a_file_without_the_named_column_names_file_and_column(tmp_path: Path) -> None:
    f = tmp_path / "mine.jsonl"
    f.write_text(json.dumps({"question": "q"}) + "\n" + json.dumps({"prompt": "p"}) + "\n")
    entry = BenchmarkEntry(name="mine", path=str(f), column="question")
    with pytest.raises(
        BenchmarkFileError, match=r"mine\.jsonl row 1 has no column 'question' \(it has: prompt\)"
    ):
        load_benchmark(entry.source())
    with pytest.raises(BenchmarkFileError, match="id column 'qid'"):
        load_benchmark(BenchmarkEntry(name="mine", path=str(f), column="question", id_column="qid").source())


def test_runs_through_local_executor(tmp_path: Path) -> None:
    row = aime24_row(61)
    folder = ledger(tmp_path, [("hit", row["problem"], True), ("clean", UNRELATED, True)])
    out = tmp_path / "decisions" / "decontam.parquet"
    cfg = DecontamConfig(benchmarks=LOCAL, data_dir=str(BENCH_DIR))
    step = DecontamStage(config=cfg, input_dir=str(folder), output_path=str(out))
    LocalPipelineExecutor([step], tasks=1, workers=1, logging_dir=str(tmp_path / "logs")).run()
    res = {r["trace_id"]: r for r in pq.read_table(out).to_pylist()}
    assert res["hit"]["drop_reason"] == "contaminated"
    assert res["hit"]["contamination"][0]["benchmark"] == "aime24"
    assert res["hit"]["contamination"][0]["item"] == "61"
    assert res["clean"]["drop_reason"] is None
