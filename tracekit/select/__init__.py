"""Prompt selection before sampling: a student's pass rate window and LLM labels (`select:`)."""

from tracekit._lazy import lazy_exports

# names resolve on first use: importing a config module must not load the stage's dependencies
__getattr__ = lazy_exports(
    __name__,
    {
        "SelectConfig": "config",
        "PassRateStep": "pass_rate",
        "LabelStep": "labels",
        "SelectionSplit": "shards",
        "SelectedPromptReader": "shards",
    },
)

__all__ = ["LabelStep", "PassRateStep", "SelectConfig", "SelectedPromptReader", "SelectionSplit"]
