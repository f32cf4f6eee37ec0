"""extract_activations(causal=True): no frame sees audio after its receptive field."""

import numpy as np
import pytest

from neuro_sae.activations import extract_activations
from neuro_sae.activations._extract import _plan_causal
from tests.backbones._tiny import tiny_backbone

# a tiny Whisper with a 3 s input (150 frames) keeps the many causal windows cheap
N_POS = 150
RF_END = {"whisper": 520, "hubert": 400}  # receptive-field end of frame i: 320 i + this


@pytest.fixture(scope="module")
def whisper_bb():
    return tiny_backbone("whisper", seed=8, max_source_positions=N_POS)


def _audio(n, seed):
    rng = np.random.default_rng(seed)
    t = np.arange(n) / 16000
    return (0.05 * rng.standard_normal(n) + 0.2 * np.sin(2 * np.pi * 310 * t)).astype(np.float32)


def _change_after(x, t_sample, seed):
    y = x.copy()
    y[t_sample:] = _audio(len(x) - t_sample, seed) * 3.0
    return y


def test_plan_causal():
    """Kept segments tile the frames, each at the end of its window with <= ctx context."""
    for n_frames, step, ctx in [(100, 1, 50), (101, 7, 20), (5, 10, 3)]:
        plan = _plan_causal(n_frames, step, ctx)
        assert len(plan) == -(-n_frames // step)
        assert plan[0][1] == 0 and plan[-1][2] == n_frames
        for (_, _, hi0), (_, lo1, _) in zip(plan[:-1], plan[1:]):
            assert hi0 == lo1
        for start, lo, hi in plan:
            assert 0 < hi - lo <= step and start == max(0, lo - ctx)


@pytest.mark.parametrize("kind", ["whisper", "hubert"])
def test_causal_future_does_not_leak(kind, whisper_bb):
    """Changing the audio after t leaves every frame with receptive-field end <= t
    unchanged in causal mode; non-causal, every frame changes (attention)."""
    bb = whisper_bb if kind == "whisper" else tiny_backbone("hubert", seed=9)
    n = 16000 * 2 + 77
    x = _audio(n, 0)
    t = 14400 + 37  # change everything from 0.9023 s on
    y = _change_after(x, t, 1)
    kw = dict(layers=[0, 3], causal=True, context_s=1.0, batch_size=16)
    a, b = extract_activations(bb, x, **kw), extract_activations(bb, y, **kw)
    full = extract_activations(bb, x, layers=[0, 3], window_s=3.0, context_s=0.5)
    assert a.n_frames == full.n_frames
    np.testing.assert_array_equal(a.times, full.times)
    np.testing.assert_array_equal(a.mask, full.mask)
    assert a.provenance["causal"] is True and full.provenance["causal"] is False
    assert a.provenance["context_s"] == 1.0 and a.provenance["step_s"] == 0.02
    assert a.provenance["n_windows"] == a.n_frames
    rf_end = 320 * np.arange(a.n_frames) + RF_END[kind]
    past = rf_end <= t
    assert 20 < past.sum() < a.n_frames - 20
    for layer in (0, 3):
        np.testing.assert_allclose(a.data[layer][past], b.data[layer][past], rtol=0, atol=1e-6)
        # frames whose receptive field reaches the changed audio do change
        diff = np.abs(a.data[layer] - b.data[layer]).max(axis=1)
        assert (diff[~past] > 1e-4).all(), (layer, diff[~past].min())
    # non-causal (one window): the change reaches every frame through attention
    full_y = extract_activations(bb, y, layers=[3], window_s=3.0, context_s=0.5)
    diff = np.abs(full.data[3] - full_y.data[3]).max(axis=1)
    assert (diff[past] > 1e-4).all()


def test_causal_matches_direct_windows(whisper_bb):
    """Each causal frame equals a direct pass over its own window (independent reference),
    and a larger step keeps segments of several frames at the end of their windows."""
    bb = whisper_bb
    x = _audio(16000 + 900, 2)
    acts = extract_activations(bb, x, layers=[2], causal=True, context_s=0.4, step_s=0.1,
                               batch_size=3)
    n = acts.n_frames
    assert n == -(-len(x) // 320) and acts.provenance["n_windows"] == -(-n // 5)
    for lo in (0, 15, 5 * (n // 5)):
        hi = min(lo + 5, n)
        start = max(0, lo - 20)
        seg = x[320 * start : 320 * (hi - 1) + 520]
        ref = bb.forward_layers(bb.prepare([seg]), [2])[2][0].numpy()
        np.testing.assert_allclose(acts.data[2][lo:hi], ref[lo - start : hi - start],
                                   rtol=1e-5, atol=1e-5)
    # the causal frames differ from the non-causal ones (they lack the future context)
    full = extract_activations(bb, x, layers=[2], window_s=3.0, context_s=0.5)
    assert np.abs(full.data[2][:40] - acts.data[2][:40]).max() > 1e-4


def test_causal_hubert_normalize_per_window():
    """A model that normalises its input does so per causal window (no future statistics)."""
    bb = tiny_backbone("hubert", seed=10)
    bb.normalize_audio = True
    x = _audio(12000, 3)
    y = _change_after(x, 6000, 4)
    kw = dict(layers=[1], causal=True, context_s=0.3, step_s=0.04, batch_size=8)
    a, b = extract_activations(bb, x, **kw), extract_activations(bb, y, **kw)
    # window ends at 320 (hi - 1) + 400 for the segment [lo, hi) = [2 k, 2 k + 2)
    hi = np.minimum(np.arange(a.n_frames) // 2 * 2 + 2, a.n_frames)
    past = 320 * (hi - 1) + 400 <= 6000
    assert past.sum() >= 10
    np.testing.assert_allclose(a.data[1][past], b.data[1][past], rtol=0, atol=1e-6)


def test_causal_errors(whisper_bb):
    """Windows must fit Whisper's input; step_s must be positive."""
    x = _audio(8000, 5)
    with pytest.raises(ValueError, match="context_s \\+ step_s = 3 s does not fit.*<= 2.98"):
        extract_activations(whisper_bb, x, causal=True, context_s=2.9, step_s=0.1)
    with pytest.raises(ValueError, match="step_s"):
        extract_activations(whisper_bb, x, causal=True, context_s=1.0, step_s=0.0)
    with pytest.raises(TypeError, match="causal"):
        extract_activations(whisper_bb, x, causal="yes")
