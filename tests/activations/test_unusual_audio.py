"""Unusual audio: silent, 8 kHz, stereo; documented handling (logged), never a silent
wrong result. The audio that raises (empty, too short, non-finite, truncated files) is in
the bad-input registry, tests/bad_input/audio.py."""

import numpy as np
import pytest
from scipy.signal import resample_poly

from neuro_sae.activations import extract_activations
from neuro_sae.utils import logger
from tests.backbones._tiny import tiny_backbone


@pytest.fixture(scope="module")
def bbs():
    return {"whisper": tiny_backbone("whisper", seed=41, max_source_positions=150),
            "hubert": tiny_backbone("hubert", seed=42)}


@pytest.fixture
def log(caplog):
    logger.propagate = True
    try:
        with caplog.at_level("INFO", logger="neuro_sae"):
            yield caplog
    finally:
        logger.propagate = False


@pytest.mark.parametrize("kind", ["whisper", "hubert"])
def test_silent_audio(kind, bbs):
    """Silence is valid input: finite activations, the usual frame count, and every
    frame alike away from the edges (nothing in the audio to tell them apart)."""
    acts = extract_activations(bbs[kind], np.zeros(16000, np.float32), layers=[0, 3])
    assert acts.n_frames == (50 if kind == "whisper" else 49)
    for layer in (0, 3):
        x = acts.data[layer]
        assert np.isfinite(x).all()
        if layer == 0 and kind == "hubert":
            # silence: every conv-stem frame identical (positions enter through the
            # positional convolution, which sees a constant input away from the edges)
            np.testing.assert_allclose(x[10:-10], np.broadcast_to(x[20], x[10:-10].shape),
                                       atol=1e-5)


def test_8khz_resampled_with_note(bbs, log):
    """8 kHz audio is resampled to 16 kHz (logged) and equals resampling it by hand."""
    rng = np.random.default_rng(0)
    x8 = 0.1 * rng.standard_normal(12000)
    a = extract_activations(bbs["hubert"], x8, sfreq=8000, layers=[1])
    assert "Resampling audio from 8000 Hz to 16000 Hz" in log.text
    b = extract_activations(bbs["hubert"], resample_poly(x8, 2, 1).astype(np.float32),
                            layers=[1])
    assert a.n_frames == b.n_frames == (24000 - 400) // 320 + 1
    np.testing.assert_allclose(a.data[1], b.data[1], rtol=1e-5, atol=1e-6)


def test_stereo_mixed_with_note(bbs, log):
    """Stereo is averaged to mono (logged, naming the channel axis)."""
    rng = np.random.default_rng(1)
    st = 0.1 * rng.standard_normal((16000, 2))
    a = extract_activations(bbs["whisper"], st, layers=[2])
    assert "averaging its 2 channels (axis 1" in log.text
    b = extract_activations(bbs["whisper"], st.mean(axis=1), layers=[2])
    np.testing.assert_allclose(a.data[2], b.data[2], rtol=1e-5, atol=1e-6)
