"""Global deduplication of the ledger: prompts (exact / MinHash, digits kept), completions, k per prompt."""

from tracekit.dedup.config import DedupConfig, MinHashConfig
from tracekit.dedup.stage import DedupStage

__all__ = ["DedupConfig", "DedupStage", "MinHashConfig"]
