"""Lag bases: smooth kernels tiling the lag window (as Eelbrain's ``basis``).

A TRF in a basis is ``w = B beta`` with ``B`` (n_delays, n_basis): the ridge is fitted
on the design ``X_lag @ B`` (penalty ``alpha * ||beta||^2``), so the fitted dimension
drops from ``n_delays`` to ``n_basis`` and the kernels are smooth.
"""

from __future__ import annotations

import numpy as np

from ..utils import check_option, check_positive, fill_doc, verbose
from ._lagged import _times_to_delays


@fill_doc
@verbose
def lag_basis(sfreq, tmin, tmax, width, *, kind="hann", placement="tile", verbose=None):
    """Raised-cosine (Hann) or Hamming kernels of a given width tiling the lag window.

    Kernel ``k`` is centred at delay ``c_k`` (samples): ``c = linspace(d_0, d_last,
    n_basis)`` with ``n_basis = ceil((d_last - d_0) / (width * sfreq / 2)) + 1``,
    i.e. neighbouring kernels overlap by at least half their width (Hann kernels at
    exactly half a width sum to one), and ``B[l, k] = h((d_l - c_k) / (width * sfreq))``
    with ``h(u) = a + (1 - a) cos(2 pi u)`` for ``|u| <= 1/2`` (0 outside); ``a = 0.5``
    (``"hann"``) or ``0.54`` (``"hamming"``).

    Parameters
    ----------
    %(sfreq_features)s
    %(tmin_trf)s
    %(tmax_trf)s
    width : float
        Width of each kernel in seconds (at least two samples), e.g. ``0.05``.
    kind : ``"hann"`` | ``"hamming"``
        The window.
    placement : ``"tile"`` | ``"inside"``
        ``"tile"`` (default): as above, kernels centred from the first to the last
        delay (possibly between samples), cut off at the window's ends, so every delay
        is covered. ``"inside"``: kernels centred on whole delays, ``round(width *
        sfreq / 2)`` samples apart, each lying entirely inside the window (the TRF goes
        to zero at ``tmin`` and ``tmax``; the slack is split between both ends). Every
        kernel is then a whole-sample translate of one kernel, so the model is a filter
        of the feature: the circular-shift null of a sweep fitted in this basis filters
        each feature once per run instead of gathering every lag, several times faster
        (:func:`neuro_sae.stats.sweep_permutation_test`).
    %(verbose)s

    Returns
    -------
    basis : ndarray, shape (n_delays, n_basis)
        One column per kernel, rows in the order of the delays
        (``arange(round(tmin * sfreq), round(tmax * sfreq) + 1)``).
    """
    check_option("kind", kind, ("hann", "hamming"))
    check_positive(width, "width")
    delays = _times_to_delays(tmin, tmax, sfreq)
    w = float(width) * float(sfreq)
    if w < 2:
        raise ValueError(
            f"width={width!r} s is {w:.3g} samples at {sfreq:g} Hz; a kernel needs at least "
            f"2 samples: pass width >= {2 / sfreq:.3g}."
        )
    check_option("placement", placement, ("tile", "inside"))
    a = 0.5 if kind == "hann" else 0.54
    if placement == "inside":
        return _inside_basis(delays, w, a, width, sfreq)
    span = float(delays[-1] - delays[0])
    n_basis = int(np.ceil(span / (w / 2))) + 1 if span > 0 else 1
    centres = np.linspace(delays[0], delays[-1], n_basis)
    u = (delays[:, np.newaxis] - centres[np.newaxis, :]) / w
    return _window(u, a)


def _window(u, a):
    """The raised-cosine window ``a + (1 - a) cos(2 pi u)`` on ``|u| <= 1/2``, else 0."""
    return np.where(np.abs(u) <= 0.5, a + (1 - a) * np.cos(2 * np.pi * u), 0.0)


def _inside_basis(delays, w, a, width, sfreq):
    """Whole-sample translates of one kernel, each inside the delay window."""
    half = int(np.floor(w / 2))
    taps = np.arange(-half, half + 1)
    kernel = _window(taps / w, a)
    nz = np.nonzero(kernel > 0)[0]
    taps, kernel = taps[nz[0] : nz[-1] + 1], kernel[nz[0] : nz[-1] + 1]
    L = len(delays)
    if len(kernel) > L:
        raise ValueError(
            f"width={width!r} s ({w:.3g} samples at {sfreq:g} Hz) gives kernels of "
            f"{len(kernel)} delays, longer than the window's {L}: pass a smaller width or "
            "placement='tile'."
        )
    step = max(1, int(round(w / 2)))
    room = L - len(kernel)  # first-row positions 0 ... room
    n_basis = room // step + 1
    first = (room - (n_basis - 1) * step) // 2
    B = np.zeros((L, n_basis))
    for b in range(n_basis):
        start = first + b * step
        B[start : start + len(kernel), b] = kernel
    return B


def _check_basis(basis, delays, sfreq):
    """``None`` or an (n_delays, n_basis) float array (a width in s builds Hann kernels)."""
    if basis is None:
        return None
    if np.isscalar(basis) and not isinstance(basis, (str, bool)):
        tmin, tmax = delays[0] / sfreq, delays[-1] / sfreq
        return lag_basis(sfreq, tmin, tmax, float(basis))
    arr = np.asarray(basis, dtype=np.float64) if not isinstance(basis, str) else None
    L = len(delays)
    got = repr(basis) if arr is None else f"shape {arr.shape}"
    if arr is None or arr.ndim != 2 or arr.shape[0] != L or not 1 <= arr.shape[1] <= L:
        raise ValueError(
            f"basis must be None, a kernel width in seconds (e.g. 0.05) or an array of "
            f"shape (n_delays={L}, n_basis <= {L}), got {got}; build one with "
            "neuro_sae.encoding.lag_basis(sfreq, tmin, tmax, width)."
        )
    if not np.all(np.isfinite(arr)) or np.linalg.matrix_rank(arr) < arr.shape[1]:
        raise ValueError(
            "basis has non-finite values or linearly dependent columns; use "
            "neuro_sae.encoding.lag_basis(sfreq, tmin, tmax, width) or independent kernels."
        )
    return arr
