"""Acoustic baselines on the EEG clock: envelope, acoustic onsets, log-mel spectrogram, words.

Every function takes the audio of one stimulus (time 0 = its first sample) and returns values
on the EEG sample grid of the run, ``t_j = t0 + j / sfreq_out`` (seconds from the audio start),
through the same anti-aliased resampler as the SAE features
(:func:`neuro_sae.align.resample_features`): a polyphase FIR low-pass at the lower Nyquist
frequency, then cubic interpolation at the exact sample times. No step adds a time shift
(zero-phase filters, central differences, centred STFT frames).
"""

from __future__ import annotations

import numpy as np

from ..utils import check_option, check_positive, fill_doc, logger, validate_type, verbose
from ._resample import _resample_dense

KINDS = ("envelope", "onsets", "spectrogram", "words")


def _check_common(audio, sfreq_audio, sfreq_out, n_times):
    audio = np.asarray(audio, dtype=np.float64)
    if audio.ndim == 2:
        audio = audio.mean(axis=1)
    if audio.ndim != 1 or audio.size == 0:
        raise ValueError(
            f"audio must be a non-empty 1-D waveform (n_samples,), got shape {audio.shape}; "
            "read it with neuro_sae.io.read_audio."
        )
    check_positive(sfreq_audio, "sfreq_audio")
    bad = ~np.isfinite(audio)
    if bad.any():
        raise ValueError(
            f"audio holds {int(bad.sum())} NaN or infinite samples (the first at "
            f"{np.argmax(bad) / sfreq_audio:.4f} s); fix the file or its decoding (a file read "
            "with neuro_sae.io.read_audio holds finite samples)."
        )
    check_positive(sfreq_out, "sfreq_out")
    validate_type(n_times, "int", "n_times")
    if n_times < 0:
        raise ValueError(f"n_times must be >= 0, got {n_times}.")
    if sfreq_out >= sfreq_audio / 2:
        raise ValueError(
            f"sfreq_out ({sfreq_out:g} Hz) must be below half the audio rate ({sfreq_audio:g} Hz); "
            "the baselines are for the EEG clock (e.g. 64-512 Hz)."
        )
    return audio


def _erb_space(fmin, fmax, n):
    """``n`` centre frequencies equally spaced on the ERB-number scale (Glasberg & Moore)."""
    erb = lambda f: 21.4 * np.log10(1 + 0.00437 * f)  # noqa: E731
    inv = lambda e: (10 ** (e / 21.4) - 1) / 0.00437  # noqa: E731
    return inv(np.linspace(erb(fmin), erb(fmax), n))


def _band_signals(audio, sfreq_audio, n_bands, fmin, fmax):
    """Audio split into ERB-spaced gammatone bands, filtered forwards and backwards (zero phase)."""
    from scipy.signal import filtfilt, gammatone

    fmax = min(fmax, 0.45 * sfreq_audio)
    for fc in _erb_space(fmin, fmax, n_bands):
        b, a = gammatone(fc, "iir", fs=sfreq_audio)
        yield fc, filtfilt(b, a, audio)


@fill_doc
@verbose
def acoustic_envelope(
    audio, sfreq_audio, sfreq_out, n_times, *, t0=0.0, n_bands=None, fmin=100.0, fmax=8000.0,
    compression=None, verbose=None,
):
    """Amplitude envelope of the audio on the EEG grid.

    The broadband envelope is the magnitude of the analytic signal (:func:`scipy.signal.hilbert`).
    With ``n_bands``, the audio is first split into gammatone bands (:func:`scipy.signal.gammatone`,
    4th-order IIR at ERB-spaced centre frequencies from ``fmin`` to ``fmax``, applied forwards and
    backwards so that it adds no delay) and each band's Hilbert envelope is taken.

    Parameters
    ----------
    audio : ndarray, shape (n_samples,)
        The waveform (time 0 = first sample).
    sfreq_audio : float
        Audio rate in Hz.
    sfreq_out : float
        EEG rate in Hz.
    n_times : int
        Number of EEG samples of the run.
    t0 : float
        Time of the first EEG sample in seconds from the audio start.
    n_bands : int | None
        ``None``: broadband; else the number of gammatone bands.
    fmin, fmax : float
        Band range in Hz (bands only).
    compression : float | None
        Exponent applied to the envelope before resampling (e.g. 0.3); ``None``: none.
    %(verbose)s

    Returns
    -------
    envelope : ndarray of float64, shape (n_times, n_bands or 1)
        The envelope (audio units) at ``t0 + arange(n_times) / sfreq_out``.
    """
    from scipy.fft import next_fast_len
    from scipy.signal import hilbert

    audio = _check_common(audio, sfreq_audio, sfreq_out, n_times)
    n = len(audio)
    nfft = next_fast_len(n)

    def env(x):
        e = np.abs(hilbert(x, N=nfft)[:n])
        return e if compression is None else e**compression

    if n_bands is None:
        envs = env(audio)[:, None]
    else:
        validate_type(n_bands, "int", "n_bands")
        if n_bands < 1 or not 0 < fmin < fmax:
            raise ValueError(
                f"n_bands must be >= 1 and 0 < fmin < fmax, got n_bands={n_bands}, fmin={fmin}, "
                f"fmax={fmax}."
            )
        envs = np.stack([env(x) for _, x in _band_signals(audio, sfreq_audio, n_bands, fmin, fmax)], axis=1)
    logger.info(f"Envelope ({envs.shape[1]} band(s)) from {n / sfreq_audio:.2f} s of audio")
    return _resample_dense(envs, 0.0, float(sfreq_audio), float(sfreq_out), n_times, t0)


@fill_doc
@verbose
def onsets_from_envelope(envelope, sfreq, *, verbose=None):
    """Acoustic onsets: the half-wave rectified time derivative of an envelope.

    Parameters
    ----------
    envelope : ndarray, shape (n_times, n_bands)
        An envelope on the EEG grid.
    sfreq : float
        Its rate in Hz.
    %(verbose)s

    Returns
    -------
    onsets : ndarray, shape (n_times, n_bands)
        ``max(d envelope / dt, 0)`` in envelope units per second (central differences, so the
        peaks are not shifted by half a sample).
    """
    envelope = np.asarray(envelope, dtype=np.float64)
    if len(envelope) < 2:
        return np.zeros_like(envelope)
    return np.clip(np.gradient(envelope, 1.0 / sfreq, axis=0), 0, None)


@fill_doc
@verbose
def mel_filterbank(n_mels, n_fft, sfreq, fmin=0.0, fmax=None, *, verbose=None):
    """Triangular mel filters (HTK mel scale, unit peak) on the rfft bins.

    Parameters
    ----------
    n_mels : int
        Number of bands.
    n_fft : int
        FFT length.
    sfreq : float
        Sampling rate in Hz.
    fmin, fmax : float
        Lowest and highest edge in Hz (``fmax=None``: ``sfreq / 2``).
    %(verbose)s

    Returns
    -------
    fb : ndarray, shape (n_fft // 2 + 1, n_mels)
        The filters.
    """
    fmax = sfreq / 2 if fmax is None else fmax
    mel = lambda f: 2595.0 * np.log10(1 + np.asarray(f) / 700.0)  # noqa: E731
    hz = lambda m: 700.0 * (10 ** (np.asarray(m) / 2595.0) - 1)  # noqa: E731
    edges = hz(np.linspace(mel(fmin), mel(fmax), n_mels + 2))
    freqs = np.linspace(0, sfreq / 2, n_fft // 2 + 1)
    lo, ce, hi = edges[:-2], edges[1:-1], edges[2:]
    up = (freqs[:, None] - lo) / (ce - lo)
    down = (hi - freqs[:, None]) / (hi - ce)
    return np.clip(np.minimum(up, down), 0, None)


@fill_doc
@verbose
def log_mel_spectrogram(
    audio, sfreq_audio, sfreq_out, n_times, *, t0=0.0, n_mels=16, fmin=50.0, fmax=8000.0,
    win_s=0.025, hop_s=0.01, floor=1e-10, verbose=None,
):
    """Log-mel spectrogram of the audio on the EEG grid.

    Power spectra of Hann-windowed frames (``win_s`` long, every ``hop_s``, each centred on
    its time ``i * hop_s``; the audio is zero-padded by half a window at both ends), pooled by
    triangular HTK mel filters (:func:`mel_filterbank`), ``log10(power + floor * max)``, then
    resampled from ``1 / hop_s`` Hz to the EEG grid.

    Parameters
    ----------
    audio : ndarray, shape (n_samples,)
        The waveform.
    sfreq_audio : float
        Audio rate in Hz.
    sfreq_out : float
        EEG rate in Hz. Above the frame rate ``1 / hop_s`` the frames are upsampled (content
        stays below ``1 / (2 * hop_s)``, 50 Hz by default, far above the EEG band).
    n_times : int
        Number of EEG samples.
    t0 : float
        Time of the first EEG sample in seconds from the audio start.
    n_mels : int
        Number of mel bands.
    fmin, fmax : float
        Band range in Hz.
    win_s, hop_s : float
        Frame length and step in seconds.
    floor : float
        Relative floor of the power before the log (avoids log(0) in silence).
    %(verbose)s

    Returns
    -------
    spec : ndarray of float64, shape (n_times, n_mels)
        log10 power per band.
    """
    from numpy.lib.stride_tricks import sliding_window_view

    audio = _check_common(audio, sfreq_audio, sfreq_out, n_times)
    validate_type(n_mels, "int", "n_mels")
    if n_mels < 1:
        raise ValueError(f"n_mels must be >= 1, got {n_mels}.")
    win = int(round(win_s * sfreq_audio))
    hop = int(round(hop_s * sfreq_audio))
    if win < 2 or hop < 1:
        raise ValueError(f"win_s={win_s} and hop_s={hop_s} are too short for {sfreq_audio:g} Hz audio.")
    n_frames = len(audio) // hop + 1
    padded = np.concatenate([np.zeros(win // 2), audio, np.zeros(win)])
    frames = sliding_window_view(padded, win)[::hop][:n_frames]
    power = np.abs(np.fft.rfft(frames * np.hanning(win + 2)[1:-1], axis=1)) ** 2
    mel = power @ mel_filterbank(n_mels, win, sfreq_audio, fmin, min(fmax, sfreq_audio / 2))
    spec = np.log10(mel + floor * max(mel.max(), np.finfo(float).tiny))
    logger.info(f"Log-mel spectrogram: {n_mels} bands, {n_frames} frames at {1 / hop_s:g} Hz")
    return _resample_dense(spec, 0.0, sfreq_audio / hop, float(sfreq_out), n_times, t0)


@fill_doc
@verbose
def word_onset_series(onsets, sfreq_out, n_times, *, t0=0.0, values=None, verbose=None):
    """Impulses at word onsets on the EEG grid.

    Parameters
    ----------
    onsets : array-like of float, shape (n_words,)
        Word onsets in seconds from the audio start.
    sfreq_out : float
        EEG rate in Hz.
    n_times : int
        Number of EEG samples.
    t0 : float
        Time of the first EEG sample in seconds from the audio start.
    values : array-like, shape (n_words,) | None
        Impulse heights (e.g. surprisal); ``None``: 1.
    %(verbose)s

    Returns
    -------
    x : ndarray, shape (n_times, 1)
        Value at sample ``round((onset - t0) * sfreq_out)``; words outside the run are dropped
        (logged).
    """
    onsets = np.asarray(onsets, dtype=np.float64).ravel()
    values = np.ones_like(onsets) if values is None else np.asarray(values, float).ravel()
    if values.shape != onsets.shape:
        raise ValueError(f"values has {values.size} entries but onsets {onsets.size}; give one per word.")
    idx = np.round((onsets - t0) * sfreq_out).astype(np.int64)
    keep = (idx >= 0) & (idx < n_times)
    if (~keep).any():
        logger.info(f"{int((~keep).sum())} word onsets fall outside the run; dropped")
    x = np.zeros((n_times, 1))
    np.add.at(x[:, 0], idx[keep], values[keep])
    return x


@fill_doc
@verbose
def acoustic_features(
    audio, sfreq_audio, sfreq_out, n_times, *, t0=0.0, kinds=("envelope", "onsets", "spectrogram"),
    n_bands=None, n_mels=16, words=None, verbose=None,
):
    """Several acoustic baselines of one run on the EEG grid.

    Parameters
    ----------
    audio : ndarray, shape (n_samples,)
        The waveform.
    sfreq_audio : float
        Audio rate in Hz.
    sfreq_out : float
        EEG rate in Hz.
    n_times : int
        Number of EEG samples.
    t0 : float
        Time of the first EEG sample in seconds from the audio start.
    kinds : tuple of str
        Among ``"envelope"``, ``"onsets"`` (of the same envelope), ``"spectrogram"`` (log-mel),
        ``"words"`` (needs ``words``).
    n_bands : int | None
        Gammatone bands of the envelope (``None``: broadband).
    n_mels : int
        Bands of the spectrogram.
    words : array-like of float | pandas.DataFrame | None
        Word onsets in seconds (or a table with an ``onset`` column).
    %(verbose)s

    Returns
    -------
    features : dict of str to tuple (ndarray, list of str)
        Kind to ``(x, column names)``, ``x`` of shape (n_times, n_columns).
    """
    if isinstance(kinds, str):
        kinds = (kinds,)
    for k in kinds:
        check_option("kinds", k, KINDS)
    out = {}
    if "envelope" in kinds or "onsets" in kinds:
        env = acoustic_envelope(audio, sfreq_audio, sfreq_out, n_times, t0=t0, n_bands=n_bands)
        tag = ["broadband"] if n_bands is None else [f"band{i}" for i in range(env.shape[1])]
        if "envelope" in kinds:
            out["envelope"] = (env, [f"envelope_{t}" for t in tag])
        if "onsets" in kinds:
            out["onsets"] = (onsets_from_envelope(env, sfreq_out), [f"onsets_{t}" for t in tag])
    if "spectrogram" in kinds:
        spec = log_mel_spectrogram(audio, sfreq_audio, sfreq_out, n_times, t0=t0, n_mels=n_mels)
        out["spectrogram"] = (spec, [f"mel_{i}" for i in range(n_mels)])
    if "words" in kinds:
        if words is None:
            raise ValueError(
                "kinds includes 'words' but no word onsets were given; pass words= (seconds "
                "from the audio start, e.g. from read_word_onsets) or drop 'words'."
            )
        if hasattr(words, "columns"):
            words = words["onset"].to_numpy()
        out["words"] = (word_onset_series(words, sfreq_out, n_times, t0=t0), ["word_onset"])
    return out
