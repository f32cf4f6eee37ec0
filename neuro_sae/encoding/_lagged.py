"""Lagged designs without the whole-recording lag matrix: per-run sufficient statistics.

Conventions (MNE): ``delays = arange(round(tmin * sfreq), round(tmax * sfreq) + 1)``;
the lagged predictor of feature ``f`` at delay ``d`` is ``x[t - d, f]`` (a positive delay
means the EEG at ``t`` follows the stimulus at ``t - d``), zero outside the run. Lagged
columns are ordered feature-major: column ``f * n_delays + l``.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ..utils import check_array, check_positive, validate_type


def _times_to_delays(tmin, tmax, sfreq):
    """Integer delays in samples, exactly as MNE computes them."""
    validate_type(tmin, "numeric", "tmin")
    validate_type(tmax, "numeric", "tmax")
    check_positive(sfreq, "sfreq")
    if tmin > tmax:
        raise ValueError(
            f"tmin must be <= tmax, got tmin={tmin!r} and tmax={tmax!r}; swap them."
        )
    return np.arange(int(np.round(tmin * sfreq)), int(np.round(tmax * sfreq)) + 1)


def _check_runs(X, Y, *, allow_sparse=False, y_name="Y", x_name="X", finite=True):
    """Validate lists of runs (or single arrays) of features and EEG.

    Returns lists of 2-D arrays; X runs may stay scipy.sparse (CSC) if allowed.
    ``finite=False`` leaves the check for NaN and inf to the caller (the TRF checks the
    sums of its statistics instead of another pass over the data).
    """
    single = not isinstance(X, (list, tuple))
    if single != (not isinstance(Y, (list, tuple))):
        raise TypeError(
            f"{x_name} and {y_name} must both be lists of runs or both single arrays, got "
            f"{type(X).__name__} and {type(Y).__name__}."
        )
    X_runs = [X] if single else list(X)
    Y_runs = [Y] if single else list(Y)
    if len(X_runs) != len(Y_runs):
        raise ValueError(
            f"{x_name} has {len(X_runs)} run(s) but {y_name} has {len(Y_runs)}; give one "
            "feature array per EEG run."
        )
    if len(X_runs) == 0:
        raise ValueError(f"{x_name} and {y_name} must contain at least one run, got none.")
    xs, ys = [], []
    n_feat = n_ch = None
    for ii, (x, y) in enumerate(zip(X_runs, Y_runs)):
        x = _as_2d_x(x, f"{x_name}[{ii}]", allow_sparse, finite)
        y = check_array(y, f"{y_name}[{ii}]", ndim=(1, 2), finite=finite)
        if y.ndim == 1:
            y = y[:, np.newaxis]
        if x.shape[0] != y.shape[0]:
            raise ValueError(
                f"Run {ii}: {x_name} has {x.shape[0]} samples but {y_name} has "
                f"{y.shape[0]}; crop or resample them to the same length."
            )
        if n_feat is None:
            n_feat, n_ch = x.shape[1], y.shape[1]
        elif x.shape[1] != n_feat or y.shape[1] != n_ch:
            raise ValueError(
                f"Run {ii} has {x.shape[1]} features and {y.shape[1]} channels but run 0 "
                f"has {n_feat} and {n_ch}; every run needs the same columns."
            )
        xs.append(x)
        ys.append(y)
    return xs, ys, single


def _as_2d_x(x, name, allow_sparse=False, finite=True):
    """One run of features as a 2-D float64 array (or CSC sparse array if allowed)."""
    if sp.issparse(x):
        if x.ndim != 2:
            raise ValueError(f"{name} must be 2-D, got shape {x.shape}.")
        return sp.csc_array(x, dtype=np.float64) if allow_sparse else x.toarray().astype(float)
    x = check_array(x, name, ndim=(1, 2), finite=finite)
    return x[:, np.newaxis] if x.ndim == 1 else x


def _check_run_length(n_times, delays, run=0):
    n_delays = len(delays)
    reach = int(max(abs(delays[0]), abs(delays[-1])))
    if n_times < n_delays + reach + 1:
        raise ValueError(
            f"Run {run} has {n_times} samples, too few for {n_delays} delays reaching "
            f"{reach} samples; need at least {n_delays + reach + 1}. Use longer runs or a "
            "shorter lag window."
        )


def _valid_range(n_times, delay):
    """Source samples ``u`` of ``x`` that land inside the run at this delay."""
    return max(0, -int(delay)), min(n_times, n_times - int(delay))


def _lag_matrix(x, delays, start=0, stop=None):
    """Zero-padded lag matrix rows ``start:stop`` of one run, shape (n, n_feat * n_delays)."""
    n_times, n_feat = x.shape
    stop = n_times if stop is None else stop
    d_max = max(int(delays[-1]), 0)
    d_min = min(int(delays[0]), 0)
    xp = np.zeros((n_times + d_max - d_min, n_feat))
    xp[d_max : d_max + n_times] = x
    t = np.arange(start, stop)
    idx = t[:, np.newaxis] - delays[np.newaxis, :] + d_max  # (n, L)
    out = xp[idx]  # (n, L, F)
    return np.ascontiguousarray(out.transpose(0, 2, 1)).reshape(len(t), -1)


def _lagged_run_stats(x, y, delays):
    """Multivariate lagged statistics of one run without the lag matrix.

    ``X^T X`` of the zero-padded lag matrix is block Toeplitz: the block of delays
    ``(d_l, d_m)`` is the cross-correlation ``C(d_l - d_m) = sum_s x[s] x[s + d_l -
    d_m]^T`` of the run, minus the products that fall at times outside the run (at
    most ``max(0, -d_0)`` rows before it and ``max(0, d_max)`` after it). Returns a
    dict with ``n``, ``sx`` (P,), ``sy`` (C,), ``G`` (P, P), ``H`` (P, C) and ``yy``
    (C,) (sum of squares per channel), P = n_features * n_delays, in float64.
    """
    n_times, n_feat = x.shape
    L = len(delays)
    d0, d_max = int(delays[0]), int(delays[-1])
    # Cross-correlations C(k), k = -(L - 1) ... L - 1, shape (2L - 1, F, F)
    C = np.empty((2 * L - 1, n_feat, n_feat))
    for k in range(L):
        C[L - 1 + k] = x[: n_times - k].T @ x[k:]
        C[L - 1 - k] = C[L - 1 + k].T
    # Block Toeplitz G[(f, l), (g, m)] = C(l - m)[f, g] as a strided view: with r the
    # correlations reversed in k, row l of a block is r[L - 1 - l : 2 L - 1 - l]
    r = np.ascontiguousarray(C[::-1].transpose(1, 2, 0))  # (F, F, 2L - 1)
    T = np.lib.stride_tricks.sliding_window_view(r, L, axis=2)[:, :, ::-1]  # f, g, l, m
    G = np.array(T.transpose(0, 2, 1, 3), order="C").reshape(n_feat * L, n_feat * L)
    # Remove products at times t < 0 or t >= n_times (counted by the full correlation)
    xz = np.zeros((n_times + 2 * (L + abs(d0) + abs(d_max)), n_feat))
    off = L + abs(d0) + abs(d_max)
    xz[off : off + n_times] = x
    for lo, hi in ((min(d0, 0), 0), (n_times, n_times + max(d_max, 0))):
        if hi > lo:
            t = np.arange(lo, hi)
            Z = xz[t[:, np.newaxis] - delays[np.newaxis, :] + off]  # (n, L, F)
            Z = Z.transpose(0, 2, 1).reshape(len(t), -1)
            G -= Z.T @ Z
    # Cross-products with the EEG and column sums: blocks of lagged rows (lag-major,
    # at most ~32 MB) filled by slices, one matrix product per block
    H = np.zeros((L * n_feat, y.shape[1]))
    sx = np.zeros(L * n_feat)
    block = max(256, (1 << 22) // max(L * n_feat, 1))
    for t0 in range(0, n_times, block):
        t1 = min(t0 + block, n_times)
        Z = np.zeros((t1 - t0, L, n_feat))
        for li_, d in enumerate(delays):
            lo, hi = max(t0, int(d)), min(t1, n_times + int(d))
            if hi > lo:
                Z[lo - t0 : hi - t0, li_] = x[lo - d : hi - d]
        Z = Z.reshape(t1 - t0, -1)
        H += Z.T @ y[t0:t1]
        sx += Z.sum(0)
    H = H.reshape(L, n_feat, -1).transpose(1, 0, 2)
    sx = sx.reshape(L, n_feat).T
    return dict(
        n=n_times,
        sx=sx.reshape(-1),
        sy=y.sum(0),
        G=G,
        H=H.reshape(n_feat * L, -1),
        yy=np.einsum("tc,tc->c", y, y),
    )


def _univariate_run_stats(x, y, delays):
    """Per-feature lagged statistics of one run, never building a lag matrix.

    Parameters
    ----------
    x : ndarray | scipy.sparse array, shape (n_times, n_features)
        One run of features (a chunk of them).
    y : ndarray, shape (n_times, n_channels)
        The EEG of the run.
    delays : ndarray of int, shape (n_delays,)
        Consecutive integer delays.

    Returns
    -------
    G : ndarray, shape (n_features, n_delays, n_delays)
        Lagged auto-products of each feature with itself.
    H : ndarray, shape (n_features, n_delays, n_channels)
        Lagged cross-products with the EEG.
    sx : ndarray, shape (n_features, n_delays)
        Sums of the lagged predictors.
    """
    n_times, n_feat = x.shape
    L = len(delays)
    d0 = int(delays[0])
    is_sparse = sp.issparse(x)
    xd = x.toarray() if is_sparse else np.asarray(x, dtype=np.float64)
    xt = np.ascontiguousarray(xd.T)  # (F, T)
    # Cross-products, one matrix product per delay (views, no lag matrix)
    H = np.empty((n_feat, L, y.shape[1]))
    xr = sp.csr_array(x) if is_sparse else None
    sparse_pays = is_sparse and xr.nnz < 0.25 * n_times * n_feat
    for li, d in enumerate(delays):
        lo, hi = _valid_range(n_times, d)
        ys = y[lo + d : hi + d]
        if sparse_pays:
            H[:, li] = (xr[lo:hi].T @ ys)
        else:
            H[:, li] = xd[lo:hi].T @ ys
    # Sums of each lagged column
    cs = np.concatenate([np.zeros((n_feat, 1)), np.cumsum(xt, axis=1)], axis=1)
    lo_hi = np.array([_valid_range(n_times, d) for d in delays])
    sx = cs[:, lo_hi[:, 1]] - cs[:, lo_hi[:, 0]]
    # Full autocorrelation a[k] = sum_s x[s] x[s + k], k = 0..L-1
    a = np.empty((n_feat, L))
    for k in range(L):
        a[:, k] = np.einsum("ft,ft->f", xt[:, : n_times - k], xt[:, k:])
    # Edge corrections (products that fall outside the run at a given pair of delays)
    n_head = max(0, -d0)
    n_tail = max(0, int(delays[-1]))
    ks = np.arange(L)
    head = np.zeros((n_feat, L, n_head + 1))
    if n_head:
        s = np.arange(n_head)
        prod = xt[:, s][:, np.newaxis, :] * xt[:, s[np.newaxis, :] + ks[:, np.newaxis]]
        head[:, :, 1:] = np.cumsum(prod, axis=2)
    tail = np.zeros((n_feat, L, n_tail + 1))
    if n_tail:
        j = np.arange(1, n_tail + 1)
        prod = xt[:, n_times - j][:, np.newaxis, :] * xt[
            :, n_times - j[np.newaxis, :] - ks[:, np.newaxis]
        ]
        tail[:, :, 1:] = np.cumsum(prod, axis=2)
    li, mi = np.triu_indices(L)
    k = mi - li
    nh = np.maximum(0, -(d0 + mi))
    nt = np.maximum(0, d0 + li)
    vals = a[:, k] - head[:, k, nh] - tail[:, k, nt]
    G = np.empty((n_feat, L, L))
    G[:, li, mi] = vals
    G[:, mi, li] = vals
    return G, H, sx


class _RunStats:
    """Per-run statistics stacked over runs, with centred subsets.

    ``G`` (R, B, P, P), ``H`` (R, B, P, C), ``sx`` (R, B, P), ``sy`` (R, C), ``yy`` (R, C),
    ``n`` (R,). ``B`` is a batch of independent designs (features of a univariate sweep,
    or 1 for a multivariate TRF).
    """

    def __init__(self, G, H, sx, sy, yy, n):
        self.G, self.H, self.sx = G, H, sx
        self.sy, self.yy, self.n = sy, yy, np.asarray(n, dtype=np.float64)
        self.n_runs = len(self.n)
        self._tot = (G.sum(0), H.sum(0), sx.sum(0), sy.sum(0), yy.sum(0), self.n.sum())

    def raw(self, runs):
        """Raw sums over ``runs`` (using total minus the rest when that is shorter)."""
        runs = np.atleast_1d(np.asarray(runs, dtype=int))
        if len(runs) == self.n_runs:  # all runs (distinct indices): copies of the totals
            return tuple(np.array(t) for t in self._tot)
        if len(runs) > self.n_runs // 2:
            keep = np.ones(self.n_runs, bool)
            keep[runs] = False
            out = np.flatnonzero(keep)
            return tuple(t - self._take(a, out) for t, a in zip(self._tot, self._arrays()))
        return tuple(self._take(a, runs) for a in self._arrays())

    def _arrays(self):
        return (self.G, self.H, self.sx, self.sy, self.yy, self.n)

    @staticmethod
    def _take(a, idx):
        return a[idx].sum(0)

    def centred(self, runs, fit_intercept=True):
        """Centred (if ``fit_intercept``) statistics over ``runs``."""
        G, H, sx, sy, yy, n = self.raw(runs)
        if fit_intercept:
            G = G - sx[..., :, np.newaxis] * sx[..., np.newaxis, :] / n
            H = H - sx[..., :, np.newaxis] * sy / n
            yy = yy - sy**2 / n
        return G, H, sx, sy, yy, n


def _as_int(value, name):
    validate_type(value, "int", name)
    if isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}.")
    return int(value)

