"""Audio encoders (Whisper, HuBERT, wav2vec2): loading (demo weights, CTranslate2 folders,
transformers folders, hub ids), 1-based layer taps and frame timing."""

from ._backbone import (
    CONV_FIELD,
    CONV_STRIDE,
    FRAME_RATE,
    HUB_NAMES,
    LAYER_CONVENTION,
    SFREQ,
    Backbone,
    frame_times,
    load_backbone,
    n_frames_for,
)
from ._ct2 import (
    convert_ct2_whisper,
    ct2_to_transformers_state_dict,
    get_demo_whisper,
    installed_demo_models,
    read_ct2_model,
)

__all__ = [
    "CONV_FIELD",
    "CONV_STRIDE",
    "FRAME_RATE",
    "HUB_NAMES",
    "LAYER_CONVENTION",
    "SFREQ",
    "Backbone",
    "convert_ct2_whisper",
    "ct2_to_transformers_state_dict",
    "frame_times",
    "get_demo_whisper",
    "installed_demo_models",
    "load_backbone",
    "n_frames_for",
    "read_ct2_model",
]

from ._hooks import INTERVENTION_SITES, intervene, splice, steer  # noqa: E402

__all__ += ["INTERVENTION_SITES", "intervene", "splice", "steer"]
