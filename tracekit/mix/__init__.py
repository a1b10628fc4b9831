"""Mixing the kept traces to exact quotas per bucket (MixConfig, MixStage)."""
