"""On-policy distillation (`tracekit distill`): the student samples, the teacher scores every token, the student
learns from the per-token divergence on its own samples.

Only the config is imported here; torch, transformers and vLLM load when distillation starts.
"""

from tracekit.distill.config import DistillConfig

__all__ = ["DistillConfig"]
