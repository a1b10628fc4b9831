"""The bundled SFT trainer (`tracekit train`): config, data + assistant masks, packing, loop, export.

Only the config is imported here; torch and transformers load when training starts.
"""

from tracekit.train.config import TrainConfig

__all__ = ["TrainConfig"]
