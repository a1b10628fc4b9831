"""A resumed run keeps the metrics lines up to its checkpoint, whatever a kill left at the file's end."""

from __future__ import annotations

import json
import random

from tracekit.train.trainer import metrics_through


def test_every_cut_of_the_last_line_is_dropped_and_later_steps_go() -> None:
    rng = random.Random(0)
    for _ in range(40):
        steps = rng.randint(1, 12)
        lines = [
            json.dumps({"step": s, "loss": rng.random(), "note": "é"}) + "\n" for s in range(1, steps + 1)
        ]
        whole = "".join(lines)
        resume_at = rng.randint(0, steps)
        expected = "".join(lines[:resume_at])
        assert metrics_through(whole, step=resume_at) == expected
        # a kill while the next line was written: any prefix of it stays unread
        torn = json.dumps({"step": steps + 1, "loss": 0.5})
        for cut in range(1, len(torn) - 1):
            assert metrics_through(whole + torn[:cut], step=resume_at) == expected
