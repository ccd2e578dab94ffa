"""The byte-level decoder: its config and sizes (:mod:`.decoder`), attention and its CPU kernels
(:mod:`.attention`)."""

from xfer.model.decoder import MODEL_CONFIGS, ByteLM, ModelConfig, get_model_config, rms_norm

__all__ = ["MODEL_CONFIGS", "ByteLM", "ModelConfig", "get_model_config", "rms_norm"]
