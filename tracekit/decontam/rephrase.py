"""The decisions of the rephrase check, as arrays over the candidates of a batch (`ScanResult`).

Without a judge a candidate (text, benchmark item) is flagged when:
- every distinct number of the item is in the text and the text has at most `max_extra_numbers`
  numbers beyond the item's count of each value (one changed number shows up as one extra);
- the text holds at least `min_formula_share` of the item's formula (pairs of adjacent math tokens),
  when the item has `MIN_FORMULA_PAIRS` or more of them (a sibling problem with a changed
  expression fails here);
- the similarity reaches the threshold for the item's count of distinct numbers
  (`RephraseConfig.threshold`; none: never without a judge).

With a judge, the candidates it is asked about are the best `max_candidates` per text with a
similarity from `judge.min_score` and at most `judge.max_missing_numbers` item numbers missing.

Example:
    >>> import numpy as np
    >>> from tracekit.decontam.config import RephraseConfig
    >>> cfg = RephraseConfig(min_score_many_numbers=0.5, min_score_few_numbers=0.7, max_extra_numbers=1)
    >>> rule_flags(cfg, distinct_numbers=np.array([4, 1]), formula_pairs=np.array([0, 0]),
    ...            items=np.array([[0, 1]]), scores=np.array([[0.6, 0.6]]), missing=np.array([[0, 0]]),
    ...            extra=np.array([[1, 0]]), formula=np.array([[1.0, 1.0]])).tolist()
    [[True, False]]
"""

from __future__ import annotations

import numpy as np

from tracekit.decontam.config import JudgeFields, RephraseConfig

MIN_FORMULA_PAIRS = 3  # an item with fewer formula pairs has no formula worth checking


def thresholds(config: RephraseConfig, distinct_numbers: np.ndarray) -> np.ndarray:
    """The similarity threshold of each item by its count of distinct numbers (inf: never)."""

    def t(v: float | None) -> float:
        return np.inf if v is None else v

    return np.where(
        distinct_numbers >= 3,
        t(config.min_score_many_numbers),
        np.where(distinct_numbers >= 1, t(config.min_score_few_numbers), t(config.min_score_no_numbers)),
    ).astype(np.float32)


def rule_flags(
    config: RephraseConfig,
    *,
    distinct_numbers: np.ndarray,
    formula_pairs: np.ndarray,
    items: np.ndarray,
    scores: np.ndarray,
    missing: np.ndarray,
    extra: np.ndarray,
    formula: np.ndarray,
) -> np.ndarray:
    """Bool array shaped like `items` (-1 = no candidate): the candidates the no-judge rule flags."""
    valid = items >= 0
    safe = np.where(valid, items, 0)
    thr = thresholds(config, distinct_numbers)[safe]
    formula_ok = (formula_pairs[safe] < MIN_FORMULA_PAIRS) | (formula >= config.min_formula_share - 1e-6)
    return valid & (missing == 0) & (extra <= config.max_extra_numbers) & formula_ok & (scores >= thr - 1e-6)


def judge_candidates(
    judge: JudgeFields, *, items: np.ndarray, scores: np.ndarray, missing: np.ndarray
) -> np.ndarray:
    """Bool array shaped like `items`: the candidates the judge is asked about."""
    ok = (items >= 0) & (scores >= judge.min_score - 1e-6) & (missing <= judge.max_missing_numbers)
    # candidates come best first: keep the first `max_candidates` that qualify in each row
    return ok & (np.cumsum(ok, axis=1) <= judge.max_candidates)
