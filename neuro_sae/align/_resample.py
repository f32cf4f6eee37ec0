"""Feature series (50 Hz frames) onto the EEG sample grid, anti-aliased."""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from ..utils import check_positive, fill_doc, logger, validate_type, verbose

_PAD_FRAMES = 16  # zero frames added on each side so the filter transients are represented
# Kaiser beta of the polyphase anti-aliasing FIR: scipy's default (5.0) ripples by ~3e-3 in
# the pass band; 10.0 keeps band-limited content below ~0.35 x the lower rate to ~1e-5
# (tested: 50 -> 128 Hz to 1e-4, 50 -> 128 -> 50 Hz to 1e-3 of the signal's std up to 8 Hz)
_KAISER_BETA = 10.0


def _rational(sfreq_out, sfreq_in, max_den=1000):
    """Up/down factors with ``sfreq_in * up / down`` as close to ``sfreq_out`` as allowed."""
    ratio = Fraction(float(sfreq_out) / float(sfreq_in)).limit_denominator(max_den)
    return ratio.numerator, ratio.denominator


def _fractional_delay(y, delta, half_len=32, beta=8.0):
    """Values of the band-limited signal ``y`` (n, m) at ``k + delta`` (0 < delta < 1), per row.

    A Kaiser-windowed sinc interpolator of ``2 * half_len + 1`` taps, normalised to unit DC
    gain; exact to ~1e-5 for content below ~0.35 x the rate (zero outside ``y``).
    """
    from scipy.ndimage import correlate1d

    m = np.arange(-half_len, half_len + 1)
    h = np.sinc(m - delta) * np.kaiser(2 * half_len + 1, beta)
    h /= h.sum()
    return correlate1d(y, h, axis=0, mode="constant", cval=0.0)


def _resample_dense(x, first_time, sfreq_in, sfreq_out, n_times, t0):
    """Resample dense frames ``x`` (n_frames, n) onto ``t0 + arange(n_times) / sfreq_out``.

    Frames are at ``first_time + i / sfreq_in``; the signal is zero outside them.
    """
    from scipy.interpolate import make_interp_spline
    from scipy.signal import resample_poly

    x = np.asarray(x, dtype=np.float64)
    n_frames = x.shape[0]
    target = t0 + np.arange(n_times) / sfreq_out
    out = np.zeros((n_times, x.shape[1]))
    if n_frames == 0 or x.shape[1] == 0:
        return out
    up, down = _rational(sfreq_out, sfreq_in)
    # pad by a multiple of `down` frames so that the resampled grid keeps the frames' phase
    # (then targets on that grid are read directly, without interpolation)
    pad = -(-_PAD_FRAMES // down) * down
    padded = np.concatenate([np.zeros((pad, x.shape[1])), x, np.zeros((pad, x.shape[1]))])
    # resample_poly's FIR low-passes at min(sfreq_in, sfreq_r) / 2, removing images when
    # upsampling and content above the new Nyquist frequency when downsampling
    y = (
        resample_poly(padded, up, down, axis=0, window=("kaiser", _KAISER_BETA))
        if (up, down) != (1, 1)
        else padded
    )
    sfreq_r = sfreq_in * up / down
    y_times = first_time - pad / sfreq_in + np.arange(y.shape[0]) / sfreq_r
    # frames cover [first - half frame, last + half frame]; outside is zero (no extrapolation)
    half = 0.5 / sfreq_in
    inside = (target >= first_time - half - 1e-9) & (
        target <= first_time + (n_frames - 1) / sfreq_in + half + 1e-9
    )
    if not inside.any():
        return out
    if np.isclose(sfreq_r, sfreq_out):
        # same rate: the targets sit at a constant fractional offset from the resampled grid
        pos = (target[inside] - y_times[0]) * sfreq_r
        base = np.floor(pos[0] + 1e-6)
        delta = pos[0] - base
        idx = (base + np.round(pos - pos[0])).astype(np.int64)
        if delta > 1e-6:
            y = _fractional_delay(y, delta)
        out[inside] = y[np.clip(idx, 0, y.shape[0] - 1)]
    else:
        # inexact rational rate: cubic interpolation of the band-limited, oversampled signal
        spline = make_interp_spline(y_times, y, k=3, axis=0)
        out[inside] = spline(target[inside])
    return out


@fill_doc
@verbose
def resample_features(series, sfreq_out, n_times, *, t0=0.0, verbose=None):
    """Resample a feature series onto the EEG sample grid of one run, anti-aliased.

    The frames (at ``series.times``, ``series.sfreq`` apart) are resampled with
    :func:`scipy.signal.resample_poly` by the rational factor ``up / down`` closest to
    ``sfreq_out / series.sfreq`` (e.g. 64/25 for 50 to 128 Hz); its Kaiser-windowed FIR
    (beta 10: pass-band error ~1e-5 up to ~0.35 x the lower rate, e.g. 17 Hz at 50 Hz) keeps
    only content below ``min(series.sfreq, sfreq_out) / 2``, so upsampling leaves no images and
    downsampling (e.g. 50 to 32 Hz) removes content above the new Nyquist frequency instead of
    aliasing it. The resampled signal is then read at the exact target times
    ``t_j = t0 + j / sfreq_out``, which accounts for the frame-time offset
    (``series.times[0]`` is 0.0 for Whisper and 0.0125 s for HuBERT) and the onset rounding:
    targets on the resampled grid are read directly; a constant fractional offset is applied
    with a 65-tap Kaiser-windowed sinc (error ~1e-5 below 0.35 x the rate); rates with no
    exact rational ratio fall back to cubic-spline interpolation.

    The series is taken to be zero outside its frames: target samples before the first frame
    or after the last frame (beyond half a frame period) are zero-filled.

    Parameters
    ----------
    series : neuro_sae.features.FeatureSeries
        The feature series of one stimulus (sparse, uniform frame times).
    sfreq_out : float
        The EEG sampling rate in Hz.
    n_times : int
        Number of EEG samples of the run.
    t0 : float
        Time in seconds, from the stimulus start, of the first EEG sample of the run.
    %(verbose)s

    Returns
    -------
    x : ndarray of float64, shape (n_times, n_features)
        The features on the EEG grid.
    """
    from ..io import FeatureSeries

    validate_type(series, FeatureSeries, "series", "FeatureSeries")
    check_positive(sfreq_out, "sfreq_out")
    validate_type(n_times, "int", "n_times")
    if n_times < 0:
        raise ValueError(f"n_times must be >= 0, got {n_times}.")
    times = series.times
    sfreq_in = float(series.sfreq)
    if len(times) > 1:
        step = np.diff(times)
        if not np.allclose(step, 1.0 / sfreq_in, rtol=1e-4, atol=1e-6):
            raise ValueError(
                f"series.times must be uniform at series.sfreq={sfreq_in:g} Hz (steps of "
                f"{1 / sfreq_in:g} s), but steps range from {step.min():g} to {step.max():g} s; "
                "padding frames must have been removed only at the ends."
            )
    first = float(times[0]) if len(times) else 0.0
    up, down = _rational(sfreq_out, sfreq_in)
    logger.info(
        f"Resampling {series.n_features} features from {sfreq_in:g} Hz to {sfreq_out:g} Hz "
        f"(up {up}, down {down}), {n_times} samples from t0={t0:.4f} s"
    )
    data = series.data.tocsc()
    n_features = series.n_features
    out = np.zeros((n_times, n_features))
    # densify a chunk of columns at a time (about 64 MB of float64 per chunk)
    chunk = max(1, int(8e6 // max(1, series.n_frames)))
    for start in range(0, n_features, chunk):
        stop = min(start + chunk, n_features)
        block = data[:, start:stop]
        active = np.flatnonzero(np.diff(block.indptr))
        if len(active) == 0:
            continue
        dense = block[:, active].toarray()
        out[:, start + active] = _resample_dense(dense, first, sfreq_in, sfreq_out, n_times, t0)
    return out
