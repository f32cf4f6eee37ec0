"""Tests of audio reading and resampling."""

import numpy as np
import pytest
import soundfile as sf

from neuro_sae.data import demo_stimuli_dir, list_demo_stimuli
from neuro_sae.io._audio import read_audio
from neuro_sae.io._eeg import read_raw_runs


def test_read_audio_stereo_44k(tmp_path):
    """A stereo 44.1 kHz tone comes back as 16 kHz mono at the same frequency and length."""
    sr, dur, f0 = 44100, 1.7, 440.0
    t = np.arange(int(sr * dur)) / sr
    tone = 0.5 * np.sin(2 * np.pi * f0 * t)
    stereo = np.c_[tone, 0.2 * tone]  # the channel mean is 0.3 sin
    fname = tmp_path / "tone.wav"
    sf.write(fname, stereo, sr)
    audio, sfreq = read_audio(fname)
    assert sfreq == 16000
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert abs(len(audio) - dur * 16000) <= 1
    spec = np.abs(np.fft.rfft(audio * np.hanning(len(audio))))
    freqs = np.fft.rfftfreq(len(audio), 1 / 16000)
    assert abs(freqs[np.argmax(spec)] - f0) < 1.0
    mid = slice(1000, -1000)
    ref = 0.3 * np.sin(2 * np.pi * f0 * np.arange(len(audio)) / 16000)
    np.testing.assert_allclose(audio[mid], ref[mid], atol=5e-3)


def test_demo_stimuli():
    """The packaged demo stimuli are at least 5 runs of at least 60 s of 16 kHz speech."""
    table = list_demo_stimuli()
    assert len(table) >= 5
    assert (table["duration_s"] >= 60).all()
    assert (demo_stimuli_dir() / "README.md").is_file()
    audio, sfreq = read_audio(table["path"].iloc[1])
    assert sfreq == 16000
    assert abs(len(audio) / sfreq - table["duration_s"].iloc[1]) < 0.01
    assert 0.05 < np.abs(audio).max() <= 1.0
    assert all(len(t.split()) == n for t, n in zip(table["transcript"], table["n_words"]))


def test_read_raw_runs(tmp_path):
    """A FIF file round trips; missing and non-FIF files raise."""
    import mne

    info = mne.create_info(["Fz", "Cz", "Pz"], 100.0, "eeg")
    raw = mne.io.RawArray(np.random.default_rng(0).normal(size=(3, 500)) * 1e-6, info, verbose=False)
    raw.set_annotations(mne.Annotations([1.0], [2.0], ["stim/run01"]))
    fname = tmp_path / "sub-01_eeg.fif"
    raw.save(fname, verbose=False)
    raw2 = read_raw_runs(fname)
    np.testing.assert_allclose(raw2.get_data(), raw.get_data())
    assert list(raw2.annotations.description) == ["stim/run01"]
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_raw_runs(tmp_path / "nope_eeg.fif")
    other = tmp_path / "x.edf"
    other.write_bytes(b"0")
    with pytest.raises(ValueError, match="FIF"):
        read_raw_runs(other)
