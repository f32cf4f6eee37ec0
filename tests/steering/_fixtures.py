"""Tiny full Whisper models, tokens and SAEs for the steering tests."""

import numpy as np

from neuro_sae.backbones import Backbone
from neuro_sae.steering import WhisperTokens
from tests.backbones._tiny import tiny_whisper

# vocabulary of the tiny config (97 tokens): ids below are its "special" tokens
TOKENS = WhisperTokens(sot=2, eot=1, no_speech=3, prompt=(2, 4, 5, 6),
                       suppress=(0, 2, 3, 4, 5, 6, 8), begin_suppress=(1, 7))
D_MODEL, N_LAYERS, D_SAE = 40, 3, 72


def tiny_full(seed=0, name="tiny-whisper"):
    """A tiny WhisperForConditionalGeneration as a Backbone."""
    return Backbone.from_model(tiny_whisper(seed, full=True), kind="whisper", name=name)


def tiny_sae(layer, backbone="tiny-whisper", seed=3, d_sae=D_SAE, k=6):
    """A random BatchTopK SAE recorded as reading ``layer`` of ``backbone``."""
    from neuro_sae.sae import SAEConfig, make_sae

    cfg = SAEConfig(d_in=D_MODEL, d_sae=d_sae, k=k, backbone=backbone, layer=layer)
    return make_sae(cfg, random_state=seed)


def waves(durations=(0.7, 1.9, 3.3), seed=0):
    """Noise clips of distinct lengths (16 kHz)."""
    rng = np.random.default_rng(seed)
    return [(0.1 * rng.standard_normal(int(16000 * d))).astype(np.float32) for d in durations]
