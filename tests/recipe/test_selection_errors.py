"""Bad selection settings (select windows, order_by, majority votes) are recipe errors naming the key
and its line; `tracekit validate` and `build` exit with status 2 and no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import run_cli
from tracekit.recipe import RecipeError, load_recipe
from tracekit.recipe.checks import check_select, check_sources, check_votes

HEAD = (
    "name: t\n"
    "output: out\n"
    "sources:\n"
    "  - name: m\n"
    "    domain: math\n"
    "    path: m.jsonl\n"
    "    columns: {prompt: q, answer: a}\n"
    "  - name: c\n"
    "    domain: code\n"
    "    path: m.jsonl\n"
    "    columns: {prompt: q}\n"
)  # 11 lines; what a case adds starts on line 12

CASES = {
    "order_by unknown column": (
        "mix:\n  buckets:\n    - name: b\n      count: 3\n      order_by: pass_rate ASC, nope DESC\n",
        16,
        "mix.buckets[0].order_by",
        "'nope', which is not a ledger column",
    ),
    "order_by injection": (
        "mix:\n  buckets:\n    - name: b\n      count: 3\n      order_by: \"pass_rate; DELETE FROM traces\"\n",
        16,
        "mix.buckets[0].order_by",
        "is not `column [ASC|DESC]",
    ),
    "majority on code verifier": (
        "verify:\n  code: {no_gold: majority}\n",
        13,
        "verify.code",
        "majority voting (`no_gold` / `gold_repair`) is for math answers",
    ),
    "majority with a code domain": (
        "verify:\n  math:\n    domains: [math, code]\n    no_gold: majority\n",
        15,
        "verify.math.no_gold",
        "domain(s) ['code'] have none",
    ),
    "majority on a code source": (
        None,  # built below: the code source gets its own math verifier
        12,
        "sources[1].verify.math.gold_repair",
        "source 'c' has domain 'code'",
    ),
    "keep outside [0, 1]": (
        "select:\n  pass_rate:\n    column: a\n    keep: [0.2, 1.5]\n",
        15,
        "select.pass_rate.keep",
        "`keep` bounds lie in [0, 1]",
    ),
    "keep reversed": (
        "select:\n  pass_rate: {kind: dataset, generations: a, keep: [0.8, 0.2]}\n",
        13,
        "select.pass_rate.keep",
        "(reversed)",
    ),
    "student keep reversed": (
        "verify: {math: {}}\nselect:\n  pass_rate:\n    model: m\n    n: 4\n    keep: [1, 0]\n",
        17,
        "select.pass_rate.keep",
        "(reversed)",
    ),
    "keep_difficulty outside 1-10": (
        "select:\n  labels:\n    judge: {kind: openai, base_urls: [http://x/v1], model: j}\n"
        "    ask: [difficulty]\n    keep_difficulty: [0, 11]\n",
        16,
        "select.labels.keep_difficulty",
        "bounds lie in [1, 10]",
    ),
    "domain without a list": (
        "select:\n  labels:\n    judge: {kind: vllm, model: j}\n    ask: [domain]\n",
        13,
        "select.labels",
        "asking for `domain` needs `domains`",
    ),
    "unknown label": (
        "select:\n  labels:\n    judge: {kind: vllm, model: j}\n    ask: [topic]\n",
        15,
        "select.labels.ask[0]",
        "'difficulty' or 'domain'",
    ),
    "select source unknown": (
        "select:\n  pass_rate:\n    column: a\n    keep: [0, 1]\n    sources: [m, nope]\n",
        16,
        "select.pass_rate.sources[1]",
        "no source is named 'nope'",
    ),
    "pass rate column missing": (
        "select:\n  pass_rate: {column: rate, keep: [0, 1]}\n",
        13,
        "select.pass_rate.column",
        "column 'rate' does not exist in source 'm'",
    ),
    "student without verifiers": (
        "select:\n  pass_rate: {kind: openai, base_urls: [http://x/v1], model: s, keep: [0, 1]}\n",
        13,
        "select.pass_rate",
        "needs the build's verifiers",
    ),
    "n given twice": (
        "verify: {math: {}}\nselect:\n  pass_rate: {model: s, n: 4, sampling: {n: 8}, keep: [0, 1]}\n",
        14,
        "select.pass_rate.n",
        "`pass_rate.n`, not inside `sampling`",
    ),
    "vllm select without a GPU on slurm": (
        "verify: {math: {}}\nselect:\n  pass_rate: {model: s, keep: [0, 1]}\n"
        "executor: {kind: slurm, gpus_per_task: 1}\n",
        15,
        "executor.gpu_stages",
        "add `select` to `gpu_stages`",
    ),
    "engine named instead of kind": (
        "verify: {math: {}}\nselect:\n  pass_rate: {model: s, engine: openai, n: 4, keep: [0, 1]}\n",
        14,
        "select.pass_rate.engine",
        "write `kind: openai`",
    ),
    "min_agreement above 1": (
        "verify:\n  math: {no_gold: majority, min_agreement: 1.5}\n",
        13,
        "verify.math.min_agreement",
        "less than or equal to 1",
    ),
}


def problems_of(tmp: Path, text: str) -> list[tuple[int | None, str, str]]:
    (tmp / "m.jsonl").write_text('{"q": "1+1?", "a": "2"}\n')
    (tmp / "r.yaml").write_text(text)
    try:
        loaded = load_recipe(tmp / "r.yaml")
    except RecipeError as e:
        found = e.problems
    else:
        found = [*check_sources(loaded), *check_votes(loaded), *check_select(loaded)]
    from tracekit.recipe.loader import format_path

    return [(p.line, format_path(p.path), p.message) for p in found]


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_setting_is_named_with_its_line(tmp_path: Path, case: str) -> None:
    tail, line, key, words = CASES[case]
    if tail is None:
        text = HEAD + "    verify: {math: {domains: [code], gold_repair: majority}}\n"
    else:
        text = HEAD + tail
    found = problems_of(tmp_path, text)
    assert any(ln == line and k == key and words in msg for ln, k, msg in found), found


def test_cli_exits_2_without_a_traceback(tmp_path: Path) -> None:
    tail = CASES["order_by injection"][0]
    (tmp_path / "m.jsonl").write_text('{"q": "1+1?", "a": "2"}\n')
    recipe = tmp_path / "r.yaml"
    recipe.write_text(HEAD + tail)
    for cmd in ("validate", "build"):
        r = run_cli(cmd, str(recipe))
        assert r.returncode == 2, r.stderr
        assert f"{recipe}:16: mix.buckets[0].order_by:" in r.stderr
        assert "Traceback" not in r.stderr
    assert not (tmp_path / "out").exists()
