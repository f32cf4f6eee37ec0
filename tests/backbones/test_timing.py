"""Frame timing with planted clicks: the stem output changes exactly on the frames whose
receptive field holds the click, and most on the frame whose centre is nearest to it."""

import numpy as np
import pytest

from neuro_sae.activations import extract_activations
from neuro_sae.backbones import frame_times
from tests.backbones._tiny import tiny_backbone

# receptive field of frame i at the stem output, in samples (see frame_times):
# Whisper [320 i - 520, 320 i + 520) (mel STFT 400 centred, conv1 k=3, conv2 k=3 stride 2),
# HuBERT [320 i, 320 i + 400) (conv stem: receptive field 400, stride 320)
_RF = {"whisper": lambda i: (320 * i - 520, 320 * i + 520),
       "hubert": lambda i: (320 * i, 320 * i + 400)}


@pytest.mark.parametrize("kind", ["whisper", "hubert"])
def test_click_on_frames(kind):
    """Planted clicks at several sub-frame offsets."""
    bb = tiny_backbone(kind, seed=4, **({"max_source_positions": 150} if kind == "whisper"
                                         else {"feat_extract_norm": "layer"}))
    rng = np.random.default_rng(7)
    x = (rng.standard_normal(16000 * 2) * 0.05).astype(np.float32)
    base = extract_activations(bb, x, layers=[0, 1], window_s=3.0, context_s=0.5)
    times = frame_times(base.n_frames, kind)
    # clicks at 0.1, 0.3 and 0.7 of a frame after a frame centre (never half-way)
    centre = 0 if kind == "whisper" else 200
    for frame, frac in [(23, 0.1), (61, 0.3), (86, 0.7)]:
        c = centre + 320 * frame + int(round(frac * 320))
        y = x.copy()
        y[c] += 3.0
        acts = extract_activations(bb, y, layers=[0, 1], window_s=3.0, context_s=0.5)
        nearest = int(np.argmin(np.abs(times - c / 16000)))
        assert nearest == frame + (frac > 0.5)
        for layer in (0, 1):
            diff = np.linalg.norm(acts.data[layer] - base.data[layer], axis=1)
            assert int(np.argmax(diff)) == nearest, (kind, layer, c, np.argmax(diff), nearest)
        if kind == "whisper":  # layer 0 (conv stem + positions) is purely local
            diff0 = np.linalg.norm(acts.data[0] - base.data[0], axis=1)
            changed = np.flatnonzero(diff0 > 1e-6 * diff0.max())
            expected = [i for i in range(base.n_frames) if _RF[kind](i)[0] <= c < _RF[kind](i)[1]]
            assert changed.tolist() == expected, (c, changed, expected)


def test_hubert_conv_stem_receptive_field():
    """HuBERT's conv stem output (before the positional convolution) changes exactly on
    the frames i with 320 i <= click < 320 i + 400."""
    import torch

    bb = tiny_backbone("hubert", seed=6, feat_extract_norm="layer")
    rng = np.random.default_rng(8)
    x = (rng.standard_normal(16000) * 0.05).astype(np.float32)
    with torch.inference_mode():
        base = bb.encoder.feature_extractor(torch.from_numpy(x)[None])[0].T.numpy()
        for c in (5000, 5119, 5120, 5150, 9999):
            y = x.copy()
            y[c] += 3.0
            out = bb.encoder.feature_extractor(torch.from_numpy(y)[None])[0].T.numpy()
            changed = np.flatnonzero(np.abs(out - base).max(axis=1) > 0)
            expected = [i for i in range(len(base)) if 320 * i <= c < 320 * i + 400]
            assert changed.tolist() == expected, (c, changed, expected)
