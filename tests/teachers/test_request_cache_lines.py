"""The request cache after kill -9, for generated answers: whatever text an answer holds (line
separators that `str.splitlines` breaks at, quotes, braces, emoji) it is one line of the file, and a
last line cut at any byte (inside a UTF-8 character too) is dropped on reopening while every complete
answer is kept. The oracle is the list of answers put before the cut."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from tracekit.teachers.request_cache import RequestCache

# what a model may write, weighted towards what line splitters and JSON care about
ALPHABET = ["a", "7", " ", "\n", "\r", "\x85", "\u2028", "\u2029", "\x1c", '"', "\\", "{", "}", "é", "😀", "\t"]


def text(rng: random.Random) -> str:
    return "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 40)))


@pytest.mark.parametrize("seed", range(25))
def test_every_answer_is_one_line_and_a_cut_last_line_is_dropped(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    path = tmp_path / "00000.jsonl"
    put = {f"t{i}": {"completion": text(rng), "reasoning": text(rng)} for i in range(rng.randint(1, 12))}
    cache = RequestCache(path, fsync_every=rng.randint(1, 5))
    for tid, answer in put.items():
        cache.put(tid, answer)
    # kill -9 while the next answer was being written: some prefix of its line reached the file
    cut = RequestCache(tmp_path / "whole.jsonl")
    cut.put("torn", {"completion": text(rng) + "\u2028" + text(rng)})
    cut.close()
    line = (tmp_path / "whole.jsonl").read_bytes()
    cache._f.close()  # the killed process wrote nothing more
    with open(path, "ab") as f:
        f.write(line[: rng.randrange(len(line) - 1)])  # never the whole line with its newline

    again = RequestCache(path)
    assert again.answers == put
    # one answer per line for any splitter, the answer's text intact
    lines = path.read_text(encoding="utf-8").splitlines()
    assert [json.loads(x)["trace_id"] for x in lines] == list(put)
    assert [json.loads(x)["answer"] for x in lines] == list(put.values())
    # the resumed task appends after the complete lines
    more = {"u": {"completion": text(rng) + "\x85"}}
    again.put("u", more["u"])
    again.close()
    assert RequestCache(path).answers == {**put, **more}
