"""DedupStage against hand-made ledgers with known ground truth."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from datatrove.executor import LocalPipelineExecutor

from tracekit.dedup import DedupConfig, DedupStage
from tracekit.dedup.config import MinHashConfig
from tracekit.record import LEDGER_SCHEMA, empty_record, prompt_id

BASE = (
    "A bag contains {a} red marbles and {b} blue marbles. Two marbles are drawn at random without "
    "replacement from the bag. What is the probability that both marbles drawn are the same colour? "
    "Express your answer as a common fraction in lowest terms."
)


def trace(
    tid: str,
    prompt: str,
    *,
    row: int = 0,
    sample: int = 0,
    verdict: str = "correct",
    tokens: int | None = 100,
    completion: str | None = None,
    kept: bool = True,
    source: str = "s",
) -> dict[str, Any]:
    rec = empty_record()
    rec.update(
        trace_id=tid,
        prompt=prompt,
        source=source,
        row_index=row,
        sample_index=sample,
        prompt_id=prompt_id(source, prompt),
        verdict=verdict,
        completion_tokens=tokens,
        completion=completion if completion is not None else f"<think>{tid}</think> answer {tid}",
        kept=kept,
        drop_reason=None if kept else "incorrect",
    )
    return rec


def write_ledger(folder: Path, rows: list[dict[str, Any]], shards: int = 2) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for s in range(shards):
        part = rows[s::shards]
        pq.write_table(pa.Table.from_pylist(part, schema=LEDGER_SCHEMA), folder / f"{s:05d}.parquet")
    return folder


def run_stage(tmp_path: Path, rows: list[dict[str, Any]], config: DedupConfig) -> dict[str, dict[str, Any]]:
    ledger = write_ledger(tmp_path / "ledger", rows)
    out = tmp_path / "stages" / "dedup.parquet"
    list(DedupStage(config=config, input_dir=str(ledger), output_path=str(out)).run())
    return {r["trace_id"]: r for r in pq.read_table(out).to_pylist()}


def test_numbers_only_differences_are_not_duplicates(tmp_path: Path) -> None:
    rows = [
        trace("t1", BASE.format(a=5, b=7), row=0),
        trace("t2", BASE.format(a=6, b=7), row=1),  # a different problem: one number changed
        trace("t3", BASE.format(a=5, b=9), row=2),
    ]
    res = run_stage(tmp_path, rows, DedupConfig(prompts="minhash"))
    assert [res[t]["drop_reason"] for t in ("t1", "t2", "t3")] == [None, None, None]


def test_near_duplicates_with_small_word_edits_are_dropped(tmp_path: Path) -> None:
    original = BASE.format(a=5, b=7)
    # one edit: 3-gram Jaccard 0.84 (two edits give 0.74, too close to the 0.7 threshold for a
    # 128-permutation estimate, whose standard deviation there is 0.04)
    edited = original.replace("at random", "randomly")
    recased = original.upper().replace(",", "")  # exact after normalisation? no: punctuation kept
    rows = [
        trace("t1", original, row=0, tokens=300),
        trace("t2", edited, row=1, tokens=100),  # shorter, so it survives
        trace("t3", "  " + original.lower() + " ", row=2, tokens=500),
        trace("t4", recased, row=3, tokens=500),
        trace("t5", "Compute the sum of all positive divisors of 500 that are perfect squares.", row=4),
    ]
    res = run_stage(tmp_path, rows, DedupConfig(prompts="minhash"))
    assert res["t2"]["drop_reason"] is None
    assert res["t1"]["drop_reason"] == "near_duplicate_prompt"
    assert res["t3"]["drop_reason"] == "near_duplicate_prompt"
    assert res["t4"]["drop_reason"] == "near_duplicate_prompt"
    assert {res[t]["duplicate_of"] for t in ("t1", "t3", "t4")} == {"t2"}
    assert res["t5"]["drop_reason"] is None and res["t5"]["dedup_cluster"] is None
    cluster = res["t2"]["dedup_cluster"]
    assert cluster == prompt_id("s", edited)
    assert all(res[t]["dedup_cluster"] == cluster for t in ("t1", "t2", "t3", "t4"))


def test_exact_mode_ignores_near_duplicates_but_normalises_case_and_space(tmp_path: Path) -> None:
    original = BASE.format(a=5, b=7)
    rows = [
        trace("t1", original, row=0, tokens=300),
        trace("t2", "  " + original.upper().replace(" ", "   "), row=1, tokens=100),
        trace("t3", original.replace("at random", "randomly"), row=2, tokens=50),
    ]
    res = run_stage(tmp_path, rows, DedupConfig(prompts="exact"))
    assert res["t1"]["drop_reason"] == "duplicate_prompt" and res["t1"]["duplicate_of"] == "t2"
    assert res["t2"]["drop_reason"] is None and res["t3"]["drop_reason"] is None


def test_samples_of_one_prompt_row_are_not_prompt_duplicates(tmp_path: Path) -> None:
    p = BASE.format(a=1, b=2)
    rows = [trace(f"t{i}", p, row=0, sample=i) for i in range(4)]
    res = run_stage(tmp_path, rows, DedupConfig(prompts="minhash"))
    assert all(r["drop_reason"] is None for r in res.values())


def test_survivor_priority_verified_then_shorter_then_trace_id(tmp_path: Path) -> None:
    p = BASE.format(a=3, b=4)
    rows = [
        # row 0: an unverified short trace and a long correct one
        trace("a-short-wrong", p, row=0, sample=0, verdict="unverified", tokens=10),
        trace("a-long-correct", p, row=0, sample=1, verdict="correct", tokens=900),
        # row 1 (same prompt): a correct trace shorter than row 0's correct one -> row 1 survives
        trace("b-correct", p, row=1, sample=0, verdict="correct", tokens=500),
        trace("b-unverified", p, row=1, sample=1, verdict="unverified", tokens=5),
    ]
    res = run_stage(tmp_path, rows, DedupConfig(prompts="exact"))
    assert res["b-correct"]["drop_reason"] is None and res["b-unverified"]["drop_reason"] is None
    for t in ("a-short-wrong", "a-long-correct"):
        assert res[t]["drop_reason"] == "duplicate_prompt"
        assert res[t]["duplicate_of"] == "b-correct"
    # equal verdict and length: the smaller trace_id wins
    rows = [trace("z", p, row=0, tokens=7), trace("y", p, row=1, tokens=7)]
    res = run_stage(tmp_path / "tie", rows, DedupConfig(prompts="exact"))
    assert res["y"]["drop_reason"] is None and res["z"]["duplicate_of"] == "y"


def test_token_count_falls_back_to_completion_length(tmp_path: Path) -> None:
    p = BASE.format(a=8, b=8)
    rows = [
        trace("long", p, row=0, tokens=None, completion="x" * 500),
        trace("short", p, row=1, tokens=None, completion="x" * 50),
    ]
    res = run_stage(tmp_path, rows, DedupConfig(prompts="exact"))
    assert res["short"]["drop_reason"] is None and res["long"]["duplicate_of"] == "short"


def test_unicode_prompts_meet_their_ascii_twins(tmp_path: Path) -> None:
    ascii_prompt = BASE.format(a=3, b=5)
    rows = [
        trace("u1", ascii_prompt, row=0, tokens=300),
        # NFKC maps the no-break space and the fullwidth digit to their ASCII twins: an exact duplicate
        trace("u2", ascii_prompt.replace(" red", "\u00a0RED").replace("3", "\uff13"), row=1, tokens=100),
        # a non-ASCII prompt with one word changed (Jaccard 0.86): a near-duplicate via the polars path
        trace("u3", ascii_prompt.replace("random", "aléatoire"), row=2, tokens=500),
        trace("u4", "Trouvez x tel que 2x = 10, où x est réel.", row=3),
    ]
    res = run_stage(tmp_path, rows, DedupConfig(prompts="minhash"))
    assert res["u2"]["drop_reason"] is None
    assert res["u1"]["drop_reason"] == "duplicate_prompt" and res["u1"]["duplicate_of"] == "u2"
    assert res["u3"]["drop_reason"] == "near_duplicate_prompt" and res["u3"]["duplicate_of"] == "u2"
    assert res["u4"]["drop_reason"] is None


def test_duplicate_completions_and_dropped_traces_ignored(tmp_path: Path) -> None:
    rows = [
        trace("c1", "Problem one about triangles and their angles.", row=0, completion="same text", tokens=9),
        trace(
            "c2", "Problem two about circles and their chords.", row=1, completion="  same text\n", tokens=9
        ),
        trace("c3", "Problem three about squares.", row=2, completion="other text"),
        trace("gone", "Problem one about triangles and their angles.", row=3, kept=False),
    ]
    res = run_stage(tmp_path, rows, DedupConfig(prompts="exact", completions="exact"))
    assert "gone" not in res  # already dropped traces do not compete and are not rewritten
    assert res["c1"]["drop_reason"] is None
    assert res["c2"]["drop_reason"] == "duplicate_completion" and res["c2"]["duplicate_of"] == "c1"
    res = run_stage(tmp_path / "none", rows, DedupConfig(prompts="none", completions="none"))
    assert all(r["drop_reason"] is None for r in res.values())


def test_max_per_prompt_keeps_the_k_best(tmp_path: Path) -> None:
    p = BASE.format(a=2, b=9)
    verdicts = ["incorrect", "correct", "unverified", "correct", "correct"]
    tokens = [10, 400, 20, 300, 350]
    rows = [
        trace(f"s{i}", p, row=0, sample=i, verdict=v, tokens=t)
        for i, (v, t) in enumerate(zip(verdicts, tokens, strict=True))
    ]
    rows.append(trace("other", "A different problem entirely, about primes below 100.", row=1))
    res = run_stage(tmp_path, rows, DedupConfig(prompts="minhash", max_per_prompt=2))
    kept = sorted(t for t, r in res.items() if r["drop_reason"] is None)
    assert kept == ["other", "s3", "s4"]
    for t in ("s0", "s1", "s2"):
        assert res[t]["drop_reason"] == "max_per_prompt" and res[t]["duplicate_of"] == "s3"


def test_bands_must_divide_num_perm() -> None:
    with pytest.raises(ValueError, match="multiple of bands"):
        MinHashConfig(num_perm=100, bands=16)
    with pytest.raises(ValueError):
        DedupConfig.model_validate({"prompts": "fuzzy"})


def test_runs_through_local_executor(tmp_path: Path) -> None:
    p = BASE.format(a=4, b=4)
    rows = [trace("x1", p, row=0, tokens=50), trace("x2", p, row=1, tokens=10)]
    ledger = write_ledger(tmp_path / "ledger", rows)
    out = tmp_path / "stages" / "dedup.parquet"
    step = DedupStage(config=DedupConfig(), input_dir=str(ledger), output_path=str(out))
    LocalPipelineExecutor([step], tasks=1, workers=1, logging_dir=str(tmp_path / "logs")).run()
    table = pq.read_table(out)
    assert table.schema.names == ["trace_id", "drop_reason", "duplicate_of", "dedup_cluster"]
    res = {r["trace_id"]: r for r in table.to_pylist()}
    assert res["x1"]["drop_reason"] == "duplicate_prompt" and res["x2"]["drop_reason"] is None


def _pure_python(monkeypatch: pytest.MonkeyPatch) -> None:
    """Swap every numba-compiled function of the dedup modules for its Python source."""
    import tracekit.dedup.kernels as kn
    import tracekit.dedup.minhash as mh
    import tracekit.dedup.ngrams as ng

    for mod in (kn, ng, mh):
        for name, obj in list(vars(mod).items()):
            if hasattr(obj, "py_func"):
                monkeypatch.setattr(mod, name, obj.py_func)


def _lsh_input(sketch: Any) -> dict[str, Any]:
    return {"signatures": sketch.signatures, "has_words": sketch.has_words, "numbers": sketch.numbers}


def test_compiled_and_pure_python_sketches_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    import warnings

    import numpy as np

    import tracekit.dedup.minhash as mh
    from tracekit.dedup.ngrams import exact_keys

    hasher = mh.MinHasher(num_perm=32, bands=8, ngram=3, seed=7)
    texts = [BASE.format(a=i, b=i + 1) for i in range(6)] + ["", None, "two words", "中文的题目也可以 12"]
    fast, keys = hasher.sketch(texts), exact_keys(texts)
    labels, _, links = mh.near_duplicate_clusters(
        hasher, **_lsh_input(fast), threshold=0.5, numbers_must_match=False
    )
    _pure_python(monkeypatch)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # uint64 overflow is the intended wrap-around
        slow, slow_keys = hasher.sketch(texts), exact_keys(texts)
        slow_labels, _, slow_links = mh.near_duplicate_clusters(
            hasher, **_lsh_input(slow), threshold=0.5, numbers_must_match=False
        )
    assert np.array_equal(fast.signatures, slow.signatures)
    assert np.array_equal(fast.numbers, slow.numbers) and np.array_equal(keys, slow_keys)
    assert np.array_equal(labels, slow_labels) and links == slow_links
    assert labels[:6].tolist() == [0] * 6  # the six number variants merge without the numbers guard
    assert (fast.signatures[6:8] == np.iinfo(np.uint32).max).all()  # empty and null: empty signature
    assert fast.has_words.tolist() == [True] * 6 + [False, False, True, True]
    assert mh.MinHasher.similarity(fast.signatures[0], fast.signatures[1]) > 0.3


def test_ascii_fast_path_matches_unicode_normalisation() -> None:
    import numpy as np
    import polars as pl
    import pyarrow as pa

    from tracekit.dedup.minhash import MinHasher
    from tracekit.dedup.ngrams import exact_keys, normalized_words

    texts = [
        "Find $x^2$ if \\\\frac{3}{4}x = 6.",
        "A_b-c: 3.14, (x+1)^{2} \\alpha2 \\ beta TAB\there 1.2.3 and 7.",
        "  MiXeD case\n\nand 1..2 numbers 10 ",
        "ab",
        "",
        "x2y3.5z .5 7.x8 12.34.56 3. a1.b 1.5x3 \\frac12 \\x2 q9.25",  # numbers inside and across words
    ]
    h = MinHasher(num_perm=64, bands=8, ngram=3)
    fast = h.sketch_ascii(pa.array(texts, pa.large_string()))
    slow = h.sketch_unicode(pl.Series(texts))  # polars NFKC / regex path, then the same hashing
    for field in ("signatures", "has_words", "numbers", "exact"):
        assert np.array_equal(getattr(fast, field), getattr(slow, field)), field
    assert fast.has_words.tolist() == [bool(w) for w in normalized_words(texts).to_list()]
    assert len(set(fast.numbers[:3].tolist())) == 3 and fast.numbers[3] == fast.numbers[4] == 0  # 0: none
    # non-ASCII variants of one prompt take the polars path and must meet the ASCII keys
    keys = exact_keys(
        [
            "Two apples cost 3.5 dollars",
            "two\u00a0apples  COST 3.5 dollars ",
            "ＴＷＯ apples cost 3.5 dollars",
        ]
    )
    assert keys[0] == keys[1] == keys[2]
    sk = h.sketch(
        [
            "Two apples cost 3.5 and 7 dollars",
            "Two apples cost 3.5 and ７ dollars",
            "7 then 3.5",
            "3.5 then 8",
        ]
    )
    assert np.array_equal(sk.signatures[0], sk.signatures[1]) and sk.exact[0] == sk.exact[1]
    assert sk.numbers[0] == sk.numbers[1] == sk.numbers[2] != sk.numbers[3]


def test_one_permutation_signatures_estimate_jaccard_like_independent_permutations() -> None:
    """Densified one-permutation MinHash: unbiased, spread close to k independent permutations.

    Pairs of word sets with known Jaccard similarity, from 10 words (most bins empty, filled by
    densification) to 400 (every bin hit); with ngram=1 each word is one shingle, entering as four
    copies. The spread is a little wider than classic MinHash's for tiny sets (densified bins copy
    each other) and narrower from 40 shingles (a 50-word prompt) on (bins sample without
    replacement). With one copy per shingle it was up to 1.55x at 5-10 words and 1.05-1.15x at 40.
    """
    import numpy as np

    from tracekit.dedup.minhash import MinHasher

    k = 128
    h = MinHasher(num_perm=k, bands=16, ngram=1, seed=11)
    rng = np.random.default_rng(5)
    for size, widest in ((10, 1.25), (40, 1.05), (400, 1.0)):
        for target in (0.5, 0.7, 0.9):
            common = round(2 * size * target / (1 + target))
            true_j = common / (2 * size - common)
            left, right = [], []
            for _ in range(300):
                words = [f"w{x}" for x in rng.choice(10**9, size=2 * size - common, replace=False)]
                left.append(" ".join(words[:size]))
                right.append(" ".join(words[:common] + words[size:]))
            a, b = h.signatures(left), h.signatures(right)
            assert (a != np.iinfo(np.uint32).max).all()  # densification filled every bin
            err = MinHasher.similarity(a, b) - true_j
            spread = np.sqrt(true_j * (1 - true_j) / k)  # classic MinHash's standard deviation
            assert abs(err.mean()) < 0.35 * spread, (size, target, err.mean())
            assert err.std() < widest * spread, (size, target, err.std(), spread)


def test_threads_change_neither_signatures_nor_clusters() -> None:
    """Sketching and LSH split over threads (bytes, then bands) give the one-thread result exactly."""
    import numpy as np

    from tracekit.dedup.minhash import MinHasher, near_duplicate_clusters

    rng = np.random.default_rng(9)
    vocab = np.array(["".join(chr(97 + (i // 26**k) % 26) for k in range(3)) for i in range(3000)])
    texts = [" ".join(rng.choice(vocab, size=30)) + f" {i % 7}" for i in range(45_000)]
    for i in range(0, 45_000, 50):  # near-duplicates: one word changed
        words = texts[i].split()
        words[3] = "changed"
        texts[i + 1] = " ".join(words)
    texts[7] = "Ünïcode text takes the other path, 7"
    one, two = (MinHasher(num_perm=64, bands=16, ngram=3, threads=t) for t in (1, 2))
    a, b = one.sketch(texts), two.sketch(texts)
    for field in ("signatures", "has_words", "numbers", "exact"):
        assert np.array_equal(getattr(a, field), getattr(b, field)), field
    args = {"signatures": a.signatures, "has_words": a.has_words, "numbers": a.numbers}
    labels_one, cand_one, merges_one = near_duplicate_clusters(
        one, **args, threshold=0.7, numbers_must_match=True
    )
    labels_two, cand_two, merges_two = near_duplicate_clusters(
        two, **args, threshold=0.7, numbers_must_match=True
    )
    assert np.array_equal(labels_one, labels_two)
    assert (cand_one, merges_one) == (cand_two, merges_two)
    assert merges_one >= 800  # the planted pairs (some unlucky edits may fall below the threshold)
    assert (labels_one[1::50] == np.arange(0, 45_000, 50)).mean() > 0.95


def test_prefetched_keeps_order_raises_where_the_reader_failed_and_stops_when_closed() -> None:
    import threading

    from tracekit.dedup.prefetch import prefetched

    def items(fail_at: int | None = None):  # type: ignore[no-untyped-def]
        for i in range(100):
            if i == fail_at:
                raise OSError(f"corrupt shard at item {i}")
            yield i

    assert list(prefetched(items(), depth=3)) == list(range(100))

    got: list[int] = []
    with pytest.raises(OSError, match="corrupt shard at item 7"):
        for x in prefetched(items(fail_at=7), depth=3):
            got.append(x)
    assert got == list(range(7))  # everything read before the failure was handed over

    before = {t.ident for t in threading.enumerate()}
    gen = prefetched(items(), depth=2)
    assert next(gen) == 0
    gen.close()  # the consumer stops early: the producer thread ends too
    assert not [t for t in threading.enumerate() if t.name == "tracekit-prefetch" and t.ident not in before]


def test_a_corrupt_ledger_shard_is_named(tmp_path: Path) -> None:
    from tracekit.ledger.shards import LedgerShardError

    ledger = tmp_path / "ledger"
    ledger.mkdir()
    (ledger / "00003.parquet").write_bytes(b"PAR1 this is not a parquet file")
    stage = DedupStage(config=DedupConfig(), input_dir=str(ledger), output_path=str(tmp_path / "d.parquet"))
    with pytest.raises(LedgerShardError, match=r"ledger/00003\.parquet: unreadable ledger shard"):
        stage.decide()
    assert not (tmp_path / "d.parquet").exists()


def test_batching_held_batches_and_a_growing_ledger_change_no_decision(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Small batches (prompts repeated across them), batches held while the kernels load, and a
    ledger with more rows than its footers said give the decisions of one big batch."""
    import time

    import tracekit.dedup.stage as stage_module
    from tracekit.dedup.minhash import MinHasher

    rows = []
    for i in range(12):
        prompt = BASE.format(a=i, b=i + 1)
        rows += [trace(f"t{i}-{s}", prompt, row=i, sample=s, tokens=100 + s) for s in range(3)]
        rows.append(trace(f"u{i}", "  " + prompt.upper(), row=100 + i, tokens=50))  # exact duplicate
        rows.append(trace(f"v{i}", prompt.replace("at random", "randomly"), row=200 + i, tokens=40))
    rows.append(trace("w", "Ünïcode prompt with 7 words in it", row=300))

    def decisions(name: str, batch_size: int) -> dict[str, dict[str, Any]]:
        ledger = write_ledger(tmp_path / name / "ledger", rows, shards=3)
        out = tmp_path / name / "dedup.parquet"
        config = DedupConfig(prompts="minhash", max_per_prompt=2, batch_size=batch_size)
        list(DedupStage(config=config, input_dir=str(ledger), output_path=str(out)).run())
        return {r["trace_id"]: r for r in pq.read_table(out).to_pylist()}

    whole = decisions("whole", 10_000)
    assert {whole[f"u{i}"]["drop_reason"] for i in range(12)} == {"near_duplicate_prompt"}
    assert whole["t0-0"]["dedup_cluster"] == whole["v0"]["dedup_cluster"] is not None
    # each cluster keeps the row of its best trace (v: the shortest)
    assert {t for t, r in whole.items() if r["drop_reason"] is None} == {f"v{i}" for i in range(12)} | {"w"}

    load = MinHasher.warm_up
    monkeypatch.setattr(MinHasher, "warm_up", lambda self: (time.sleep(0.5), load(self)))
    footers = stage_module.ledger_footers
    monkeypatch.setattr(stage_module, "ledger_footers", lambda d: (footers(d)[0], 1))
    assert decisions("held", 4) == whole  # every batch held until the kernels load, rows grown
    monkeypatch.setattr(stage_module, "_HOLD_BYTES", 300)
    assert decisions("capped", 4) == whole  # held up to 300 bytes of prompts at a time
