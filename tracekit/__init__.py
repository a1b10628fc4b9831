"""tracekit: build verified reasoning-distillation datasets and fine-tune on them."""

__version__ = "0.1.0"
