"""Acoustic baselines on the EEG grid: planted envelopes, onsets, spectra and words."""

import numpy as np
import pytest
from scipy.signal import find_peaks

from neuro_sae.align import (
    acoustic_envelope,
    acoustic_features,
    log_mel_spectrogram,
    mel_filterbank,
    onsets_from_envelope,
    word_onset_series,
)

SR = 16000


@pytest.mark.parametrize("sfreq", [128.0, 64.0])
@pytest.mark.parametrize("t0", [0.0, 0.0037])
def test_am_tone_envelope(sfreq, t0):
    """A 1 kHz tone modulated at 3 Hz: the envelope is the modulator, on the right samples."""
    t = np.arange(int(4.3 * SR)) / SR
    mod = 1 + 0.8 * np.sin(2 * np.pi * 3.0 * t)
    audio = mod * np.sin(2 * np.pi * 1000 * t)
    n = int(4.0 * sfreq)
    env = acoustic_envelope(audio, SR, sfreq, n, t0=t0)
    assert env.shape == (n, 1)
    tt = t0 + np.arange(n) / sfreq
    inner = (tt > 0.3) & (tt < 3.9)
    np.testing.assert_allclose(env[inner, 0], 1 + 0.8 * np.sin(2 * np.pi * 3.0 * tt[inner]), atol=5e-3)


def test_band_envelopes():
    """Gammatone bands: the band nearest the carrier carries the modulation, others little."""
    t = np.arange(int(3.0 * SR)) / SR
    audio = (1 + 0.8 * np.sin(2 * np.pi * 2.0 * t)) * np.sin(2 * np.pi * 1000 * t)
    env = acoustic_envelope(audio, SR, 100.0, 280, n_bands=8, fmin=100.0, fmax=7000.0)
    assert env.shape == (280, 8)
    best = int(np.argmax(env[40:-40].mean(axis=0)))
    from neuro_sae.align._acoustic import _erb_space

    assert abs(_erb_space(100.0, 7000.0, 8)[best] - 1000) < 500
    tt = np.arange(280) / 100
    r = np.corrcoef(env[40:-40, best], np.sin(2 * np.pi * 2.0 * tt[40:-40]))[0, 1]
    assert r > 0.99
    assert env[40:-40, best].mean() > 10 * env[40:-40, -1].mean()


@pytest.mark.parametrize("sfreq", [128.0, 64.0])
def test_onsets_at_planted_times(sfreq):
    """Tone bursts: onset spikes within one sample of each planted onset, none at offsets."""
    planted = np.array([0.5, 1.31, 2.2, 3.05, 3.77])
    t = np.arange(int(4.5 * SR)) / SR
    gate = np.zeros_like(t)
    for p in planted:
        gate[(t >= p) & (t < p + 0.25)] = 1.0
    audio = gate * np.sin(2 * np.pi * 800 * t)
    n = int(4.4 * sfreq)
    env = acoustic_envelope(audio, SR, sfreq, n)
    on = onsets_from_envelope(env, sfreq)[:, 0]
    assert on.min() >= 0
    peaks, _ = find_peaks(on, height=0.5 * on.max())
    assert len(peaks) == len(planted)
    assert np.all(np.abs(peaks - planted * sfreq) <= 1.0)


def test_mel_filterbank_matches_transformers():
    """Our HTK triangles equal transformers' mel_filter_bank (unnormalised)."""
    from transformers.audio_utils import mel_filter_bank

    ours = mel_filterbank(23, 512, 16000, 60.0, 7600.0)
    ref = mel_filter_bank(257, 23, 60.0, 7600.0, 16000, norm=None, mel_scale="htk")
    np.testing.assert_allclose(ours, ref, atol=1e-10)


def test_log_mel_spectrogram():
    """A 2 kHz tone then a 400 Hz tone: the matching mel bands dominate in each half."""
    t = np.arange(int(4.0 * SR)) / SR
    audio = np.where(t < 2.0, np.sin(2 * np.pi * 2000 * t), np.sin(2 * np.pi * 400 * t))
    spec = log_mel_spectrogram(audio, SR, 32.0, 120, n_mels=12, fmin=50.0, fmax=8000.0)
    assert spec.shape == (120, 12)
    fb_centres = 700 * (10 ** (np.linspace(2595 * np.log10(1 + 50 / 700), 2595 * np.log10(1 + 8000 / 700), 14)[1:-1] / 2595) - 1)
    first, second = spec[8:56].mean(axis=0), spec[72:112].mean(axis=0)
    assert abs(fb_centres[np.argmax(first)] - 2000) < abs(fb_centres[1] - fb_centres[0]) * 6
    assert np.argmax(first) > np.argmax(second)
    assert abs(fb_centres[np.argmax(second)] - 400) < 200


def test_word_onsets_and_bundle():
    """Word impulses at round((onset - t0) * sfreq); the bundle names its columns."""
    x = word_onset_series([0.1, 0.52, 2.0, 9.0], 64.0, 140, t0=0.01, values=[1, 2, 3, 4])
    assert x.shape == (140, 1) and x.sum() == 6  # 9.0 s is after the run: dropped
    assert x[round(0.09 * 64), 0] == 1 and x[round(0.51 * 64), 0] == 2 and x[round(1.99 * 64), 0] == 3
    t = np.arange(int(2.0 * SR)) / SR
    audio = np.sin(2 * np.pi * 500 * t) * (1 + np.sin(2 * np.pi * 4 * t))
    feats = acoustic_features(audio, SR, 64.0, 120, kinds=("envelope", "onsets", "spectrogram", "words"),
                              n_mels=5, words=[0.3, 1.1])
    assert set(feats) == {"envelope", "onsets", "spectrogram", "words"}
    assert feats["spectrogram"][0].shape == (120, 5) and feats["spectrogram"][1][0] == "mel_0"
    assert feats["envelope"][1] == ["envelope_broadband"]
    with pytest.raises(ValueError, match="word onsets"):
        acoustic_features(audio, SR, 64.0, 120, kinds=("words",))
    with pytest.raises(ValueError, match="kinds"):
        acoustic_features(audio, SR, 64.0, 120, kinds=("pitch",))
