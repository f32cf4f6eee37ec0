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
    """A FIF file round trips (missing and unreadable files: tests/bad_input/eeg.py)."""
    import mne

    info = mne.create_info(["Fz", "Cz", "Pz"], 100.0, "eeg")
    raw = mne.io.RawArray(np.random.default_rng(0).normal(size=(3, 500)) * 1e-6, info, verbose=False)
    raw.set_annotations(mne.Annotations([1.0], [2.0], ["stim/run01"]))
    fname = tmp_path / "sub-01_eeg.fif"
    raw.save(fname, verbose=False)
    raw2 = read_raw_runs(fname)
    np.testing.assert_allclose(raw2.get_data(), raw.get_data())
    assert list(raw2.annotations.description) == ["stim/run01"]


def test_read_audio_info_and_intact_files(tmp_path):
    """return_info gives the file's own rate, channels and length; complete WAVs (also
    with a chunk after the data, and odd-sized 24-bit stereo) pass the truncation check."""
    rng = np.random.default_rng(2)
    x = 0.1 * rng.standard_normal((44101, 2))
    fname = tmp_path / "st.wav"
    sf.write(fname, x, 44100, subtype="PCM_24")
    audio, sfreq, info = read_audio(fname, return_info=True)
    assert info["orig_sfreq"] == 44100.0 and info["orig_n_channels"] == 2
    assert info["orig_n_samples"] == 44101 and info["subtype"] == "PCM_24"
    assert info["duration_s"] == pytest.approx(44101 / 44100)
    assert len(read_audio(fname)) == 2 and sfreq == 16000
    # a trailing LIST chunk after the data: not a truncation
    data = fname.read_bytes()
    extra = b"LIST" + (10).to_bytes(4, "little") + b"INFOabcdef"
    riff = (len(data) + len(extra) - 8).to_bytes(4, "little")
    (tmp_path / "list.wav").write_bytes(data[:4] + riff + data[8:] + extra)
    np.testing.assert_array_equal(read_audio(tmp_path / "list.wav")[0], audio)
