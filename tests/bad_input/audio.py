"""Bad audio input: truncated or unreadable files, empty, too short, non-finite samples."""

from functools import cache

import numpy as np
import soundfile as sf

from neuro_sae.activations import extract_activations
from neuro_sae.align import acoustic_envelope
from neuro_sae.io import read_audio
from tests.bad_input import BadInput


@cache
def _backbone(kind):
    from tests.backbones._tiny import tiny_backbone

    if kind == "whisper":
        return tiny_backbone("whisper", seed=41, max_source_positions=150)
    return tiny_backbone("hubert", seed=42)


def _noise(n, seed=0):
    return (0.1 * np.random.default_rng(seed).standard_normal(n)).astype(np.float32)


def _truncated_wav(root):
    # header written for 64 s at 16 kHz, then the file cut after 0.16 s of data
    full = root / "full.wav"
    sf.write(full, _noise(64 * 16000), 16000, subtype="PCM_16")
    cut = root / "run01.wav"
    cut.write_bytes(full.read_bytes()[: 44 + int(0.16 * 16000) * 2])
    full.unlink()
    return lambda: read_audio(cut), None


def _truncated_stereo_wav(root):
    full = root / "full.wav"
    sf.write(full, np.c_[_noise(44100 * 3), _noise(44100 * 3, 1)], 44100, subtype="PCM_24")
    cut = root / "st.wav"
    cut.write_bytes(full.read_bytes()[: 44 + 44100 * 6])  # 1 s of 2 x 3 bytes
    full.unlink()
    return lambda: read_audio(cut), None


def _truncated_flac(root):
    full = root / "full.flac"
    sf.write(full, _noise(64 * 16000), 16000)
    cut = root / "run02.flac"
    data = full.read_bytes()
    cut.write_bytes(data[: len(data) // 50])
    full.unlink()
    return lambda: read_audio(cut), None


def _not_audio(root):
    bad = root / "bad.wav"
    bad.write_bytes(b"not audio at all" * 10)
    return lambda: read_audio(bad), None


def _missing_file(root):
    return lambda: read_audio(root / "missing.wav"), None


def _float_rate(root):
    f = root / "a.wav"
    sf.write(f, _noise(1600), 16000)
    return lambda: read_audio(f, sfreq=16000.5), None


def _empty(kind):
    def setup(root):
        return lambda: extract_activations(_backbone(kind), np.zeros(0, np.float32)), None

    return setup


def _hubert_short(root):
    return lambda: extract_activations(_backbone("hubert"), np.zeros(399, np.float32)), None


def _non_finite(value):
    def setup(root):
        x = np.zeros(8000, np.float32)
        x[[5, 70]] = value
        return lambda: extract_activations(_backbone("hubert"), x), None

    return setup


def _zero_rate(root):
    return lambda: extract_activations(_backbone("hubert"), _noise(8000), sfreq=0), None


def _envelope_nan(root):
    a = np.zeros(16000)
    a[5] = np.nan
    return lambda: acoustic_envelope(a, 16000, 64.0, 50), None


CASES = [
    BadInput("wav-truncated", _truncated_wav, ValueError,
             [r"run01\.wav is truncated", r"header declares 64\.000 s", r"holds only 0\.160 s",
              "copy or export it again"],
             "WAV whose header says 64 s but which holds 0.16 s (a cut copy)"),
    BadInput("wav-truncated-stereo-24bit", _truncated_stereo_wav, ValueError,
             [r"st\.wav is truncated", r"3\.000 s of audio \(132300 frames at 44100 Hz\)",
              r"only 1\.000 s \(44100 frames\)"],
             "stereo 24-bit WAV cut after 1 of 3 s"),
    BadInput("flac-truncated", _truncated_flac, ValueError,
             [r"run02\.flac", "Could not read", "truncated"],
             "FLAC cut short"),
    BadInput("not-audio", _not_audio, ValueError,
             [r"bad\.wav", "Could not read", "libsndfile", "sox"],
             "a file that is not audio"),
    BadInput("audio-missing", _missing_file, FileNotFoundError,
             [r"missing\.wav", r"stimuli\.root", r"stimuli\.runs"],
             "audio file that does not exist"),
    BadInput("audio-rate-not-integer", _float_rate, ValueError,
             [r"sfreq must be an integer number of Hz, got 16000\.5"],
             "output rate that is not a whole number of Hz"),
    BadInput("empty-audio-whisper", _empty("whisper"), ValueError,
             [r"too short: 0 samples", "need at least 1 samples"],
             "empty audio (Whisper)"),
    BadInput("empty-audio-hubert", _empty("hubert"), ValueError,
             [r"too short: 0 samples", "need at least 400 samples"],
             "empty audio (HuBERT)"),
    BadInput("hubert-shorter-than-field", _hubert_short, ValueError,
             [r"399 samples", r"at least 400 samples, 0\.025 s"],
             "audio shorter than one HuBERT receptive field"),
    BadInput("audio-nan", _non_finite(np.nan), ValueError,
             [r"audio contains 2 non-finite value"],
             "NaN samples in the waveform"),
    BadInput("audio-inf", _non_finite(np.inf), ValueError,
             [r"audio contains 2 non-finite value"],
             "inf samples in the waveform"),
    BadInput("audio-rate-zero", _zero_rate, ValueError,
             [r"sfreq must be a finite number > 0, got 0"],
             "audio rate of 0 Hz"),
    BadInput("envelope-audio-nan", _envelope_nan, ValueError,
             [r"audio holds 1 NaN or infinite samples \(the first at 0\.0003 s\)", "fix the file"],
             "acoustic baseline from audio with NaN"),
]
