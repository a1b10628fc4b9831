"""Global deduplication of the ledger: prompts (exact / MinHash, digits kept), completions, k per prompt."""

from tracekit._lazy import lazy_exports

# names resolve on first use: importing a config module must not load the stage's dependencies
__getattr__ = lazy_exports(
    __name__,
    {
        "DedupConfig": "config",
        "DedupStage": "stage",
        "MinHashConfig": "config",
    },
)

__all__ = ["DedupConfig", "DedupStage", "MinHashConfig"]
