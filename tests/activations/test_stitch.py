"""Whisper stitched windows against one single-window pass of the same audio.

28 s of audio fit one 30 s Whisper input. Extracted with ``window_s=20,
context_s=4`` instead, it is cut into two windows: window A = audio [0, 20 s)
keeps frames [0, 16 s) (800 frames), window B = audio [12, 28 s) keeps frames
[16, 28 s) (600 frames); every kept frame is at least 4 s (200 frames) from the
end of its window, the audio start/end aside.

Exact equality is impossible, for three reasons:

1. Self-attention is global over the 30 s input: a frame attends to every
   other frame of its window, so different context (window A sees 20 s of
   speech then silence padding, the single pass 28 s of speech) changes every
   block's output, most near the window's end.
2. Whisper adds an *absolute* sinusoidal positional embedding to the conv stem
   output. A frame of window B sits 600 positions (12 s) earlier in its window
   than in the single pass, so from layer 0 on it carries another position
   code (for whisper-base the median per-frame cosine to the single pass is
   only ~0.45 at layer 0, 0.74-0.91 at layers 1-5, ~0.44 at the last layer).
   Agreement is therefore only asked where the positions coincide (window A).
3. The log-mel extractor clamps each input at (its maximum - 8) in log10
   units, per window: in near-silence the floor can differ between windows.

What is tested:

- layer 0 minus the frame's own positional embedding (i.e. the conv stem,
  which is local) agrees in *both* windows: this also proves the stitched
  frames are aligned to the right audio (a one-frame shift would fail);
- in window A, every layer agrees per frame (cosine), with stated bounds
  measured on these inputs.
"""

import numpy as np
import pytest

from neuro_sae.activations import extract_activations
from neuro_sae.activations._extract import _plan_windows
from tests.backbones._tiny import tiny_backbone

WINDOW_S, CONTEXT_S, SECONDS = 20, 4, 28
# (window start, first kept frame, end of kept frames), in 20 ms frames
PLAN = [(0, 0, 800), (600, 800, 1400)]


def _cosine(a, b):
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def _single_and_stitched(bb, x, layers):
    one = extract_activations(bb, x, layers=layers, window_s=30, verbose=False)
    st = extract_activations(
        bb, x, layers=layers, window_s=WINDOW_S, context_s=CONTEXT_S, batch_size=2,
        verbose=False,
    )
    assert one.provenance["n_windows"] == 1 and st.provenance["n_windows"] == 2
    assert one.n_frames == st.n_frames == SECONDS * 50
    assert _plan_windows(one.n_frames, WINDOW_S * 50, CONTEXT_S * 50) == PLAN
    return one, st


def _check_stem(bb, one, st, min_cos):
    """Layer 0 without its positional embedding agrees in both windows, aligned.

    Per-frame cosine >= ``min_cos`` (not equality: reason 3 above). The same
    comparison shifted by one frame agrees far less (median < 0.99), so the
    stitched frames sit on the right audio.
    """
    pos = bb.encoder.embed_positions.weight.detach().float().numpy()
    for start, lo, hi in PLAN:
        got = st.data[0][lo:hi] - pos[lo - start : hi - start]
        ref = one.data[0][lo:hi] - pos[lo:hi]
        cos = _cosine(got, ref)
        assert cos.min() >= min_cos, (start, cos.min())
        assert np.median(_cosine(got[1:], ref[:-1])) < 0.99
        if start:  # without the correction window B's frames differ: their positions do
            assert np.median(_cosine(st.data[0][lo:hi], one.data[0][lo:hi])) < 0.9


def _check_window_a(one, st, bounds):
    """Per-frame cosine in window A: ``{layer: (5th percentile, median)}`` bounds."""
    _, lo, hi = PLAN[0]
    for layer, (p5, med) in bounds.items():
        cos = _cosine(one.data[layer][lo:hi], st.data[layer][lo:hi])
        assert np.percentile(cos, 5) >= p5, (layer, np.percentile(cos, 5))
        assert np.median(cos) >= med, (layer, np.median(cos))


def _speechlike(seconds, seed):
    """Noise bursts and chirps with pauses, so windows differ in content."""
    rng = np.random.default_rng(seed)
    n = seconds * 16000
    t = np.arange(n) / 16000
    env = (np.sin(2 * np.pi * 0.7 * t) > -0.3).astype(float)
    x = env * (0.05 * rng.standard_normal(n) + 0.2 * np.sin(2 * np.pi * (150 + 20 * t) * t))
    return (x + 1e-3 * rng.standard_normal(n)).astype(np.float32)


def test_stitched_tiny_whisper():
    """Random-init tiny Whisper (3 blocks, d_model 40) on a synthetic speech-like signal.

    Measured: stem cosine >= 0.99997; window A per-frame cosine >= 0.9993 at every
    layer (medians >= 0.9999).
    """
    bb = tiny_backbone("whisper", seed=3)
    one, st = _single_and_stitched(bb, _speechlike(SECONDS, 0), [0, 1, 2, 3])
    _check_stem(bb, one, st, min_cos=0.9995)
    _check_window_a(one, st, {1: (0.999, 0.9995), 2: (0.999, 0.9995), 3: (0.999, 0.9995)})
    for layer in (1, 2, 3):
        _, lo, hi = PLAN[0]
        assert _cosine(one.data[layer][lo:hi], st.data[layer][lo:hi]).min() >= 0.999


@pytest.fixture(scope="module")
def whisper_base():
    from neuro_sae.backbones import installed_demo_models, load_backbone

    if "whisper-base" not in installed_demo_models():
        pytest.skip("whisper-base demo weights not installed")
    return load_backbone("whisper-base", verbose=False)


@pytest.mark.requires_model
def test_stitched_whisper_base(whisper_base):
    """Real whisper-base on the first 28 s of the demo chapter (speech).

    Measured in window A (per-frame cosine, 5th percentile / median): layer 1
    0.998 / 0.9999, layer 3 0.997 / 0.999, layer 5 0.989 / 0.998, layer 6
    (final layer norm) 0.988 / 0.997; the stem after removing positions >= 0.9998.
    A few frames agree less (layer 6 minimum -0.02, a low-norm frame 6 s before the
    window's end whose deep representation is dominated by context), and frames
    nearer the window's end agree less on average.
    """
    from importlib.resources import files

    from neuro_sae.io import read_audio

    wave, sfreq = read_audio(files("neuro_sae.data") / "demo_stimuli" / "run01.ogg")
    assert sfreq == 16000
    bb = whisper_base
    layers = [1, 3, 5, 6]
    one, st = _single_and_stitched(bb, wave[: SECONDS * 16000], [0, *layers])
    _check_stem(bb, one, st, min_cos=0.999)
    _check_window_a(
        one, st, {1: (0.995, 0.999), 3: (0.99, 0.995), 5: (0.98, 0.995), 6: (0.98, 0.995)}
    )
    # away from the window's end is better: frames >= 6 s from it (0-14 s) against
    # frames 4-6 s from it (14-16 s)
    for layer in layers:
        cos = _cosine(one.data[layer][:800], st.data[layer][:800])
        assert cos[:700].mean() > cos[700:].mean(), layer
