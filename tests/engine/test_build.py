"""`tracekit build` with the replay teacher: ledger, dataset, formats, bad input, identity."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.conftest import read_dataset, read_ledger, run_cli, write_recipe
from tracekit.engine.layout import BuildLayout


def jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def math_rows(n: int) -> list[dict]:
    return [
        {
            "q": f"What is {i} + {i}?",
            "a": str(2 * i),
            "gens": [
                f"<think>\n{i}+{i}={2 * i}\n</think>\n\nSo \\boxed{{{2 * i}}}.",
                f"<think>\nhmm {i} and {i}",  # cut off: truncated
            ],
        }
        for i in range(n)
    ]


def test_replay_build_writes_ledger_dataset_and_resolved_recipe(tmp_path: Path) -> None:
    jsonl(tmp_path / "m.jsonl", math_rows(30))
    recipe = write_recipe(
        tmp_path,
        sources=[{"name": "m", "path": "m.jsonl", "columns": {"prompt": "q", "answer": "a", "generations": "gens"}}],
    )
    r = run_cli("build", str(recipe))
    assert r.returncode == 0, r.stderr
    out = tmp_path / "out"
    layout = BuildLayout(out)
    assert layout.resolved_recipe.exists()
    assert "tool_versions" in layout.resolved_recipe.read_text()
    assert layout.stage_logs("sample").is_dir() and layout.stage_logs("finalize").is_dir()

    ledger = read_ledger(out)
    assert len(ledger) == 60  # one row per generation
    assert len({r["trace_id"] for r in ledger}) == 60
    truncated = [r for r in ledger if r["drop_reason"] == "truncated"]
    assert len(truncated) == 30 and not any(r["kept"] for r in truncated)
    good = [r for r in ledger if r["kept"]]
    assert len(good) == 30
    g = next(r for r in good if r["prompt"] == "What is 7 + 7?")
    assert g["reasoning"] == "7+7=14" and g["answer_text"] == "So \\boxed{14}."
    assert g["extracted_answer"] == "14" and g["gold_answer"] == "14"
    assert g["verdict"] == "unverified" and g["source"] == "m" and g["domain"] == "math"
    assert g["think_format"] == "think" and g["row_index"] == 7 and g["sample_index"] == 0

    data = read_dataset(out)
    assert len(data) == 30 and {d["_split"] for d in data} == {"train"}
    d = next(x for x in data if x["trace_id"] == g["trace_id"])
    assert d["messages"] == [
        {"role": "user", "content": "What is 7 + 7?"},
        {"role": "assistant", "content": "<think>\n7+7=14\n</think>\n\nSo \\boxed{14}."},
    ]
    assert d["source"] == "m" and d["domain"] == "math" and d["verified"] is False


def test_trace_ids_do_not_depend_on_the_number_of_tasks(tmp_path: Path) -> None:
    jsonl(tmp_path / "m.jsonl", math_rows(25) + math_rows(3))  # identical prompts in different rows
    outs = []
    for tasks in (1, 3):
        d = tmp_path / f"t{tasks}"
        d.mkdir()
        (d / "m.jsonl").write_bytes((tmp_path / "m.jsonl").read_bytes())
        recipe = write_recipe(
            d,
            sources=[{"name": "m", "path": "m.jsonl", "columns": {"prompt": "q", "answer": "a", "generations": "gens"}}],
            executor={"kind": "local", "tasks": tasks, "workers": 2},
        )
        assert run_cli("build", str(recipe)).returncode == 0
        outs.append(read_ledger(d / "out"))
    ids = [[(r["trace_id"], r["kept"], r["completion"]) for r in ledger] for ledger in outs]
    assert ids[0] == ids[1]
    assert len({r["trace_id"] for r in outs[0]}) == 56  # same prompt text, different rows: different traces
    assert len({r["prompt_id"] for r in outs[0]}) == 25


def test_sources_parquet_saved_dataset_json_and_messages(tmp_path: Path) -> None:
    import datasets

    rows = math_rows(6)
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "m.parquet", row_group_size=2)
    datasets.Dataset.from_list(rows).save_to_disk(str(tmp_path / "saved"))
    (tmp_path / "arr.json").write_text(json.dumps([{"q": "single?", "gens": "<think>x</think> y"}]))
    jsonl(
        tmp_path / "chat.jsonl",
        [{"conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "hello there"}]}],
    )
    cols = {"prompt": "q", "answer": "a", "generations": "gens"}
    recipe = write_recipe(
        tmp_path,
        sources=[
            {"name": "pq", "path": "m.parquet", "columns": cols},
            {"name": "saved", "path": "saved", "columns": cols},
            {"name": "arr", "path": "arr.json", "columns": {"prompt": "q", "generations": "gens"}},
            {"name": "chat", "domain": "general", "reasoning": False, "path": "chat.jsonl", "columns": {"messages": "conversations"}},
        ],
    )
    r = run_cli("build", str(recipe))
    assert r.returncode == 0, r.stderr
    ledger = read_ledger(tmp_path / "out")
    by_source: dict[str, int] = {}
    for row in ledger:
        by_source[row["source"]] = by_source.get(row["source"], 0) + 1
    assert by_source == {"pq": 12, "saved": 12, "arr": 1, "chat": 1}
    pq_rows = sorted((r["row_index"], r["sample_index"]) for r in ledger if r["source"] == "pq")
    assert pq_rows == [(i, s) for i in range(6) for s in (0, 1)]
    chat = next(r for r in ledger if r["source"] == "chat")
    assert chat["prompt"] == "hi" and chat["answer_text"] == "hello there" and chat["kept"]
    data = {d["source"]: d for d in read_dataset(tmp_path / "out")}
    assert data["chat"]["messages"] == [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello there"},
    ]


def test_sky_t1_traces_are_parsed_and_truncated_ones_dropped(tmp_path: Path, shared_data: Path) -> None:
    folder = shared_data / "traces" / "skythought_eval_outputs" / "Sky-T1-math-correct-5K-14B" / "aime24_eval" / "aime24"
    src = next(folder.glob("*.jsonl"))
    recipe = write_recipe(
        tmp_path,
        sources=[{"name": "sky", "path": str(src), "columns": {"prompt": "question", "answer": "gt", "generations": "code"}}],
    )
    r = run_cli("build", str(recipe))
    assert r.returncode == 0, r.stderr
    ledger = read_ledger(tmp_path / "out")
    raw = [json.loads(line) for line in src.read_text().splitlines()]
    assert len(ledger) == len(raw) == 30
    closed = sum("<|end_of_thought|>" in x["code"][0] for x in raw)
    assert sum(r["think_format"] == "thought" for r in ledger) == closed
    assert sum(r["drop_reason"] == "truncated" for r in ledger) == len(raw) - closed
    for row in ledger:
        if row["think_format"] == "thought":
            assert "<|begin_of_solution|>" not in row["answer_text"]
            assert "<|end_of_thought|>" not in row["reasoning"]
            if row["extracted_answer"] is not None:
                orig = next(x for x in raw if x["question"] == row["prompt"])
                assert row["extracted_answer"] == orig["pred"][0].strip() or "\\boxed" in row["answer_text"]


def test_corrupt_shard_and_bad_rows_are_skipped_and_counted(tmp_path: Path) -> None:
    data = tmp_path / "src"
    data.mkdir()
    pq.write_table(pa.Table.from_pylist(math_rows(4)), data / "a.parquet")
    (data / "b.parquet").write_bytes(b"PAR1 this is not a parquet file")
    jsonl(data / "c.jsonl", math_rows(2))
    with open(data / "c.jsonl", "a") as f:
        f.write("{not json\n")
        f.write(json.dumps({"other": 1}) + "\n")
    recipe = write_recipe(
        tmp_path, sources=[{"name": "s", "path": "src", "columns": {"prompt": "q", "answer": "a", "generations": "gens"}}]
    )
    r = run_cli("build", str(recipe))
    assert r.returncode == 0, r.stderr
    assert len(read_ledger(tmp_path / "out")) == 12
    assert re.search(r"unreadable source rows skipped\s*│\s*3\s", r.stderr), r.stderr
    logs = "".join(p.read_text() for p in BuildLayout(tmp_path / "out").task_logs("sample").glob("*.log"))
    assert "b.parquet: corrupt parquet file" in logs
    assert "c.jsonl:3: invalid JSON" in logs
    assert "c.jsonl:4: no prompt" in logs

    strict = run_cli("build", str(recipe), "--strict", "--overwrite")
    assert strict.returncode == 1
    assert "b.parquet" in strict.stderr or "c.jsonl" in strict.stderr


COLS = {"prompt": "q", "answer": "a", "generations": "gens"}


@pytest.mark.parametrize(
    ("name", "content", "why"),
    [
        ("b.parquet", b"PAR1 this is not a parquet file", "is not a readable parquet file (ArrowInvalid: "),
        ("e.parquet", b"", "is empty (0 bytes)"),
        ("e.jsonl", b"", "is empty (0 bytes)"),
        ("e.jsonl", b"\n\n", "is empty (only blank lines)"),
    ],
)
def test_a_source_that_yields_no_row_is_named_with_why_and_exits_2(tmp_path: Path, name, content, why) -> None:
    (tmp_path / name).write_bytes(content)
    recipe = write_recipe(tmp_path, sources=[{"name": "s", "path": name, "columns": COLS}])
    r = run_cli("build", str(recipe))
    assert r.returncode == 2, r.stderr
    assert f"sources[0].path: {tmp_path / name} {why}" in r.stderr
    assert "Traceback" not in r.stderr and "does not exist" not in r.stderr  # not a missing column
    assert not (tmp_path / "out").exists()


def test_a_build_whose_every_row_is_unreadable_names_the_rows_and_exits_2(tmp_path: Path) -> None:
    (tmp_path / "b.jsonl").write_text('{not json\n[1, 2]\n{"other": 1}\n')
    recipe = write_recipe(tmp_path, sources=[{"name": "s", "path": "b.jsonl", "columns": COLS}])
    r = run_cli("build", str(recipe))
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr
    assert "the build read no row from its sources" in r.stderr
    for line in (":1: invalid JSON", ":2: expected a JSON object, got list", ":3: no prompt"):
        assert f"{tmp_path / 'b.jsonl'}{line}" in r.stderr


def test_output_written_by_another_recipe_is_refused(tmp_path: Path) -> None:
    jsonl(tmp_path / "m.jsonl", math_rows(3))
    cols = {"prompt": "q", "answer": "a", "generations": "gens"}
    r1 = write_recipe(tmp_path, name="one", sources=[{"name": "m", "path": "m.jsonl", "columns": cols}])
    assert run_cli("build", str(r1)).returncode == 0
    before = read_ledger(tmp_path / "out")
    r2 = write_recipe(tmp_path, name="two", sources=[{"name": "m2", "path": "m.jsonl", "columns": cols}])
    r = run_cli("build", str(r2))
    assert r.returncode == 2
    assert "different recipe" in r.stderr and "--overwrite" in r.stderr
    assert read_ledger(tmp_path / "out") == before
    # the same recipe again is a resume: nothing changes
    assert run_cli("build", str(r1)).returncode == 0
    assert read_ledger(tmp_path / "out") == before


@pytest.mark.slow
def test_dataset_loads_with_datasets_and_trains_one_trl_step(tmp_path: Path) -> None:
    import datasets

    jsonl(tmp_path / "m.jsonl", math_rows(8))
    recipe = write_recipe(
        tmp_path, sources=[{"name": "m", "path": "m.jsonl", "columns": {"prompt": "q", "answer": "a", "generations": "gens"}}]
    )
    assert run_cli("build", str(recipe)).returncode == 0
    ds = datasets.load_dataset(str(BuildLayout(tmp_path / "out").dataset), split="train")
    assert len(ds) == 8 and set(ds.column_names) >= {"messages", "trace_id", "source", "domain"}
    assert ds[0]["messages"][-1]["role"] == "assistant"

    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    from tests.teachers.tiny_model import save_tiny_model

    path = save_tiny_model(tmp_path / "model")
    model, tok = AutoModelForCausalLM.from_pretrained(path), AutoTokenizer.from_pretrained(path)

    cfg = SFTConfig(
        output_dir=str(tmp_path / "trl"), max_steps=1, per_device_train_batch_size=2, report_to=[],
        logging_steps=1, save_strategy="no", max_length=128, use_cpu=True, bf16=False,
    )
    trainer = SFTTrainer(model=model, args=cfg, train_dataset=ds, processing_class=tok)
    result = trainer.train()
    assert result.global_step == 1
    assert result.training_loss > 0


def test_tokenizer_counts_tokens_and_hub_source_loads_a_local_dataset(tmp_path: Path) -> None:
    import datasets
    from transformers import AutoTokenizer

    from tests.teachers.tiny_model import build_tokenizer

    build_tokenizer().save_pretrained(str(tmp_path / "tok"))
    rows = math_rows(5)
    datasets.Dataset.from_list(rows).to_parquet(str(tmp_path / "hubds" / "data" / "train-00000.parquet"))
    recipe = write_recipe(
        tmp_path,
        sources=[{"name": "h", "hub": str(tmp_path / "hubds"), "columns": {"prompt": "q", "answer": "a", "generations": "gens"}}],
        tokenizer="tok",
    )
    r = run_cli("build", str(recipe))
    assert r.returncode == 0, r.stderr
    ledger = read_ledger(tmp_path / "out")
    assert len(ledger) == 10
    tok = AutoTokenizer.from_pretrained(str(tmp_path / "tok"))
    for row in ledger:
        assert row["completion_tokens"] == len(tok(row["completion"], add_special_tokens=False)["input_ids"])
        assert row["prompt_tokens"] == len(tok(row["prompt"], add_special_tokens=False)["input_ids"])
        assert row["source_file"].startswith("hub://")
    data = read_dataset(tmp_path / "out")
    assert all(d["num_tokens"] and d["num_tokens"] > 0 for d in data)


def test_per_source_verify_settings_replace_the_recipe_ones(tmp_path: Path) -> None:
    rows = [{"q": f"What is {i} + {i}?", "a": str(2 * i), "gens": [f"<think>\nadd\n</think>\n\nIt is {2 * i}"]} for i in range(4)]
    jsonl(tmp_path / "m.jsonl", rows)
    cols = {"prompt": "q", "answer": "a", "generations": "gens"}
    recipe = write_recipe(
        tmp_path,
        sources=[
            {"name": "strict", "path": "m.jsonl", "columns": cols},
            {"name": "bare", "path": "m.jsonl", "columns": cols, "verify": {"math": {"allow_bare_number": True}}},
        ],
        verify={"math": {"allow_bare_number": False}},
    )
    r = run_cli("build", str(recipe))
    assert r.returncode == 0, r.stderr
    ledger = read_ledger(tmp_path / "out")
    strict = [x for x in ledger if x["source"] == "strict"]
    bare = [x for x in ledger if x["source"] == "bare"]
    assert len(strict) == len(bare) == 4
    assert all(x["verdict"] == "incorrect" and x["drop_reason"] == "incorrect" for x in strict)  # no boxed answer
    assert all(x["verdict"] == "correct" and x["kept"] for x in bare)  # the bare last number is the answer
