"""Must-pass and must-drop examples for every filter, plus the recipe shape and the pipeline contract."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from datatrove.data import Document
from pydantic import ValidationError

from tracekit.filters import (
    AnswerPresentFilter,
    FormatFilter,
    LanguageMixFilter,
    LengthFilter,
    RepetitionFilter,
    TraceFilter,
    TruncatedFilter,
    build_filters,
)
from tracekit.parse.split import last_boxed, split_reasoning
from tracekit.record import empty_record

TRACES = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "traces" / "skythought_eval_outputs"


def doc(completion: str, **meta: Any) -> Document:
    """A trace as the parse step leaves it."""
    md = empty_record()
    sp = split_reasoning(completion, meta.pop("reasoning_field", None))
    md.update(
        reasoning=sp.reasoning,
        answer_text=sp.answer_text,
        think_format=sp.think_format,
        think_blocks=sp.think_blocks,
        extracted_answer=last_boxed(sp.answer_text),
        domain="math",
        prompt="What is 2 + 2?",
        finish_reason="stop",
    )
    md.update(meta)
    return Document(text=completion, id="t", metadata=md)


def dropped(f: TraceFilter, d: Document) -> bool:
    """Whether the filter's check drops the trace (datatrove's polarity: True keeps, False or (False, why) drops)."""
    result = f.check(d)
    keep = result[0] if isinstance(result, tuple) else result
    assert isinstance(keep, bool), result
    return not keep


GOOD = "<think>\nWe add 2 and 2 to get 4. Check: 4 - 2 = 2, fine.\n</think>\n\nThe answer is $\\boxed{4}$."


# -- format --------------------------------------------------------------------------------------
def test_format_passes_one_closed_block_with_answer() -> None:
    f = FormatFilter()
    assert not dropped(f, doc(GOOD))
    assert not dropped(f, doc("We add 2 and 2.</think>\n\n$\\boxed{4}$"))  # R1 template pre-fills <think>
    assert not dropped(f, 
        doc("<|begin_of_thought|>add<|end_of_thought|><|begin_of_solution|>\\boxed{4}<|end_of_solution|>")
    )
    assert not dropped(f, doc("The answer is 4.", reasoning_field="2+2=4"))
    assert not dropped(f, doc("Hello! How can I help?", reasoning_enabled=False, think_format="none"))


@pytest.mark.parametrize(
    "completion",
    [
        "<think>a</think><think>b</think> \\boxed{4}",  # two blocks
        "<think>We add 2 and 2.</think>   ",  # no answer after the block
        "<think>We add 2 and 2 and keep going",  # never closed
        "The answer is \\boxed{4}.",  # no reasoning block at all
        "<think>   </think> \\boxed{4}",  # empty reasoning
        "<think>a</think> 4 </think> 5",  # a stray second closing tag in the answer
    ],
)
def test_format_drops_malformed(completion: str) -> None:
    assert dropped(FormatFilter(), doc(completion))


# -- truncated -----------------------------------------------------------------------------------
def test_truncated() -> None:
    f = TruncatedFilter()
    assert not dropped(f, doc(GOOD))
    assert dropped(f, doc(GOOD, finish_reason="length"))
    assert dropped(f, doc("<think>so far we have 2 + 2 and"))
    # without parse metadata, an unclosed tag still counts
    assert dropped(f, Document(text="<think>so far", id="x", metadata={}))
    assert not dropped(f, Document(text=GOOD, id="x", metadata={}))


# -- language mix --------------------------------------------------------------------------------
ENGLISH_COT = (
    "<think>\nWe need the number of ways to choose 2 of the 5 books. That is $\\binom{5}{2} = 10$. "
    "{mix}Let me double check by listing the pairs: there are four pairs with the first book, three "
    "with the second, two with the third and one with the fourth, so ten in total.\n</think>\n\n"
    "The answer is $\\boxed{10}$."
)
CHINESE_PROMPT = "从5本不同的书中选出2本，共有多少种不同的选法？"
CHINESE_COT = (
    "<think>\n我们需要从5本书中选出2本，所以答案是组合数 $\\binom{5}{2} = 10$。让我验证一下：第一本书可以和其余四本"
    "配对，第二本和三本，第三本和两本，第四本和一本，总共10种。用 Python 的 itertools.combinations 也可以验证。\n"
    "</think>\n\n共有 $\\boxed{10}$ 种选法。"
)


def test_language_mix_drops_chinese_inside_english_cot() -> None:
    f = LanguageMixFilter()
    mixed = ENGLISH_COT.replace("{mix}", "所以答案是十，我们再检查一下。")
    assert dropped(f, doc(mixed, prompt="How many ways can 2 of 5 books be chosen?"))


def test_language_mix_keeps_pure_english_and_pure_chinese() -> None:
    f = LanguageMixFilter()
    assert not dropped(f, 
        doc(ENGLISH_COT.replace("{mix}", ""), prompt="How many ways can 2 of 5 books be chosen?")
    )
    # fully Chinese prompt and reasoning (with Latin code names and LaTeX) is fine
    assert not dropped(f, doc(CHINESE_COT, prompt=CHINESE_PROMPT))
    # a single stray foreign character is below min_foreign_units
    assert not dropped(f, doc(ENGLISH_COT.replace("{mix}", "(即 "), prompt="How many ways?"))


def test_language_mix_drops_reasoning_not_in_the_prompt_language() -> None:
    f = LanguageMixFilter()
    assert dropped(f, doc(CHINESE_COT, prompt="How many ways can 2 of 5 books be chosen?"))
    assert dropped(f, doc(ENGLISH_COT.replace("{mix}", ""), prompt=CHINESE_PROMPT))


# -- repetition ----------------------------------------------------------------------------------
def _real_traces() -> list[str]:
    out = []
    for path in sorted(TRACES.glob("**/*.jsonl")):
        with open(path) as fh:
            out.extend(json.loads(line)["code"][0] for line in fh)
    return out


def test_repetition_drops_a_looping_tail() -> None:
    f = RepetitionFilter()
    head = ENGLISH_COT.replace("{mix}", "").split("</think>")[0]
    loop = head + "\nWait, let me recompute: 10 choose 2 is 45, no, 5 choose 2 is 10.\n" * 80
    assert dropped(f, doc(loop + "</think> \\boxed{10}"))
    # a character-level loop without spaces
    assert dropped(f, doc("<think>The digits are 0." + "142857" * 500))


def test_repetition_keeps_normal_long_math() -> None:
    traces = _real_traces()
    completed = [t for t in traces if "<|end_of_thought|>" in t]
    assert len(completed) > 300
    f = RepetitionFilter()
    flagged = [t for t in completed if dropped(f, Document(text=t, id="x"))]
    assert flagged == []  # no completed real long-CoT trace is a loop
    longest = max(completed, key=len)
    assert len(longest) > 30_000 and not dropped(f, Document(text=longest, id="x"))


def test_repetition_catches_most_real_looping_truncations() -> None:
    truncated = [t for t in _real_traces() if "<|end_of_thought|>" not in t]
    f = RepetitionFilter()
    share = sum(dropped(f, Document(text=t, id="x")) for t in truncated) / len(truncated)
    assert share > 0.5  # greedy decoding that ran out of tokens mostly looped


# -- length --------------------------------------------------------------------------------------
def test_length_uses_metadata_counts_first() -> None:
    f = LengthFilter(max_completion_tokens=100, min_prompt_tokens=2)
    assert not dropped(f, doc(GOOD, completion_tokens=100, prompt_tokens=2))
    assert dropped(f, doc(GOOD, completion_tokens=101, prompt_tokens=2))
    assert dropped(f, doc(GOOD, completion_tokens=10, prompt_tokens=1))


def test_length_approximates_without_counts_or_tokenizer() -> None:
    f = LengthFilter(max_completion_tokens=10)
    assert not dropped(f, doc("<think>a</think>" + "x" * 20))  # 36 chars -> 9 tokens
    assert dropped(f, doc("<think>a</think>" + "x" * 40))  # 56 chars -> 14 tokens


@pytest.mark.slow  # importing transformers takes seconds
def test_length_counts_with_the_recipe_tokenizer(tmp_path: Path) -> None:
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"[UNK]": 0, **{w: i + 1 for i, w in enumerate(["the", "answer", "is", "four", "two", "plus"])}}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]").save_pretrained(tmp_path / "tok")
    # whitespace words: 6 tokens (the char approximation would say 8)
    text = "two plus two the answer four"
    f = LengthFilter(max_completion_tokens=6, max_prompt_tokens=3, tokenizer=str(tmp_path / "tok"))
    assert not dropped(f, doc(text, prompt="two plus two"))
    assert dropped(f, doc(text + " is", prompt="two plus two"))
    assert dropped(f, doc(text, prompt="two plus two is"))
    assert f.count(text) == 6


# -- answer present ------------------------------------------------------------------------------
def test_answer_present() -> None:
    f = AnswerPresentFilter()
    assert not dropped(f, doc(GOOD))
    assert dropped(f, doc("<think>hmm</think> I am not sure."))
    assert not dropped(f, doc("<think>hmm</think> def f(): pass", domain="code"))
    assert dropped(f, doc(GOOD, extracted_answer="  "))
    assert dropped(AnswerPresentFilter(domains=["math", "science"]), doc("<think>x</think> maybe", domain="science"))


# -- recipe shape and pipeline contract ----------------------------------------------------------
RECIPE = [
    "format",
    "truncated",
    "language_mix",
    "repetition",
    {"length": {"max_completion_tokens": 32768}},
    "answer_present",
]


def test_build_filters_in_recipe_order_with_options() -> None:
    steps = build_filters(RECIPE)
    assert [type(s) for s in steps] == [
        FormatFilter,
        TruncatedFilter,
        LanguageMixFilter,
        RepetitionFilter,
        LengthFilter,
        AnswerPresentFilter,
    ]
    assert [s.reason for s in steps] == [
        "bad_format",
        "truncated",
        "language_mix",
        "repetition",
        "length",
        "no_answer",
    ]
    steps = build_filters([{"language_mix": {"max_foreign_ratio": 0.2}}, "length"], tokenizer="some/tok")
    assert isinstance(steps[0], LanguageMixFilter) and steps[0].max_foreign_ratio == 0.2
    assert isinstance(steps[1], LengthFilter) and steps[1].tokenizer == "some/tok"


@pytest.mark.parametrize(
    ("specs", "where"),
    [
        (["format", "dedupe"], "unknown filter"),
        ([{"length": {"max_completion_tokenz": 3}}], "max_completion_tokenz"),
        ([{"length": {}, "format": {}}], "unknown filter"),
    ],
)
def test_bad_specs_fail_validation_clearly(specs: list[Any], where: str) -> None:
    with pytest.raises(ValidationError, match=where):
        build_filters(specs)


def test_flagged_traces_stay_in_the_stream_with_first_reason() -> None:
    docs = [
        doc(GOOD),
        doc("<think>We add 2 and 2 and keep", finish_reason="length"),  # truncated + format + no answer
        doc("<think>hmm</think> I am not sure."),  # no answer only
    ]
    out = list(docs)
    for step in build_filters(RECIPE):
        out = list(step.run(out))
    assert [d.metadata["kept"] for d in out] == [True, False, False]
    assert out[1].metadata["drop_reason"] == "bad_format"
    assert out[1].metadata["filter_flags"] == ["bad_format", "truncated:length", "no_answer"]
    assert out[2].metadata["drop_reason"] == "no_answer"


# -- which signal tripped ------------------------------------------------------------------------
LOOPING_LINES = "<think>\n" + "".join(
    f"Step {i}: we check the sum of the first terms again.\nThe running total is {i * 7 % 13} so far.\n"
    for i in range(40)
)


@pytest.mark.parametrize(
    ("options", "text", "signal"),
    [
        ({}, "<think>The digits are 0." + "142857" * 500, "tail_compression"),
        # compression switched off: the same loop is caught by its repeated word n-grams
        ({"min_tail_compression": 0.0}, "<think>" + "we add two and two and get four again " * 120, "tail_ngram_repeat"),
        # both tail checks switched off: a trace whose lines repeat
        ({"min_tail_compression": 0.0, "max_tail_ngram_repeat": 1.0}, LOOPING_LINES * 3, "repeated_lines"),
    ],
)
def test_repetition_names_the_signal_that_tripped(options: dict, text: str, signal: str) -> None:
    (step,) = build_filters([{"repetition": options}])
    out = list(step.run([Document(text=text, id="t", metadata={})]))
    assert out[0].metadata["drop_reason"] == "repetition"
    assert out[0].metadata["filter_flags"] == [f"repetition:{signal}"]
    # the signal alone decides: loosen the threshold it names and the trace is kept by it
    loosened = {"tail_compression": {"min_tail_compression": 0.0},
                "tail_ngram_repeat": {"max_tail_ngram_repeat": 1.0},
                "repeated_lines": {"max_repeated_lines": 1.0}}[signal]
    result = RepetitionFilter(**{**options, **loosened}).check(Document(text=text, id="t"))
    assert result is True or result[1] != signal


def test_each_signal_of_the_other_filters_is_named() -> None:
    assert TruncatedFilter().check(doc(GOOD, finish_reason="length")) == (False, "length")
    assert TruncatedFilter().check(doc("<think>so far")) == (False, "unclosed")
    lf = LengthFilter(min_prompt_tokens=3, max_prompt_tokens=5, min_completion_tokens=2, max_completion_tokens=9)
    assert lf.check(doc(GOOD, prompt_tokens=2, completion_tokens=5)) == (False, "short_prompt")
    assert lf.check(doc(GOOD, prompt_tokens=6, completion_tokens=5)) == (False, "long_prompt")
    assert lf.check(doc(GOOD, prompt_tokens=4, completion_tokens=1)) == (False, "short_completion")
    assert lf.check(doc(GOOD, prompt_tokens=4, completion_tokens=10)) == (False, "long_completion")
    assert lf.check(doc(GOOD, prompt_tokens=4, completion_tokens=9)) is True


# -- each filter is its own config ---------------------------------------------------------------
def test_recipe_options_are_the_constructors_keyword_arguments() -> None:
    import inspect

    from tracekit.filters import FILTERS

    for name, cls in FILTERS.items():
        params = {
            p.name: p.default
            for p in inspect.signature(cls.__init__).parameters.values()
            if p.kind is p.KEYWORD_ONLY and p.name not in cls.set_by_build
        }
        (built,) = build_filters([{name: {}}])
        defaults = cls.options_model()().model_dump()
        assert set(defaults) == set(params), name
        seq = (list, tuple)
        for key, default in params.items():
            # a recipe that leaves an option out gets the constructor's default, stored on the step
            got = getattr(built, key)
            for value in (defaults[key], got):
                assert (list(value) if isinstance(value, seq) else value) == (
                    list(default) if isinstance(default, seq) else default
                ), (name, key)


@pytest.mark.parametrize(
    ("spec", "where"),
    [
        ({"repetition": {"ngram": 1}}, "ngram"),  # the constructor's bound (ge=2)
        ({"language_mix": {"max_foreign_ratio": 1.5}}, "max_foreign_ratio"),
        ({"length": {"tokenizer": "x"}}, "tokenizer"),  # set by the build, not by a recipe
        ({"format": {"anything": 1}}, "anything"),
    ],
)
def test_option_bounds_come_from_the_constructor(spec: dict, where: str) -> None:
    with pytest.raises(ValidationError, match=where):
        build_filters([spec])


def test_recipe_schema_describes_the_options_from_the_constructor() -> None:
    from pydantic import TypeAdapter

    from tracekit.filters import FilterList

    defs = TypeAdapter(FilterList).json_schema()["$defs"]
    ngram = defs["RepetitionOptions"]["properties"]["ngram"]
    assert ngram["minimum"] == 2 and ngram["default"] == 8 and "n-gram" in ngram["description"]
    assert "tokenizer" not in defs["LengthOptions"]["properties"]
