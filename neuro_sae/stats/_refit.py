"""Refit circular-shift null of a univariate sweep, from FFT cross-correlations.

For one permutation every run ``j``'s EEG is circularly shifted by ``s_j`` samples
(``np.roll(y_j, s_j, axis=0)``: the same shift on every channel), consistently in the
training and the held-out role, and every outer fold is refit with the alpha the
observed nested CV chose for that (fold, feature, channel). Only the EEG moves, so
the lagged grams ``G`` and the sums of the lagged predictors are shift-invariant and
each fold's eigendecomposition is computed once. The lagged cross-products of every
shift come from one circular cross-correlation per run (FFT) plus an exact
correction of the few products that the zero-padded lags exclude at the run edges.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import scipy.fft as sfft
import scipy.sparse as sp

from ..encoding._lagged import _univariate_run_stats
from ..encoding._ridge import _eig, _safe_r


def _edge_design(x, delays):
    """Edge terms of one run for the positive and the negative delays.

    The zero-padded cross-product at delay ``d`` and shift ``s`` equals the circular
    one minus ``sum_m T[:, l, m] * y((m - s) mod n)``: for ``d > 0`` over offsets
    ``0 <= m < d`` with ``T = x(n - d + m)``; for ``d < 0`` over ``d <= m < 0`` with
    ``T = x(m - d)``. Returns ``(T_pos, T_neg)`` of shapes (F, L, n_pos) and
    (F, L, n_neg) (offsets ``0 ... n_pos - 1`` and ``-n_neg ... -1``), zero for lags
    of the other sign.
    """
    n_times, n_feat = x.shape
    n_neg, n_pos = max(0, -int(delays[0])), max(0, int(delays[-1]))
    T_pos = np.zeros((n_feat, len(delays), n_pos))
    T_neg = np.zeros((n_feat, len(delays), n_neg))
    for li, d in enumerate(delays):
        d = int(d)
        if d > 0:
            T_pos[:, li, :d] = x[n_times - d :].T
        elif d < 0:
            T_neg[:, li, n_neg + d :] = x[:-d].T
    return T_pos, T_neg


class _Workspace:
    """Reused flat float64 buffers: fresh large arrays cost page faults on every call
    (several times the arithmetic here), so each named buffer is allocated once."""

    def __init__(self):
        self._bufs = {}

    def get(self, name, shape):
        size = int(np.prod(shape))
        buf = self._bufs.get(name)
        if buf is None or buf.size < size:
            buf = self._bufs[name] = np.empty(size)
        return buf[:size].reshape(shape)


def _shifted_cross(xcorr_t, edges, y, delays, shifts, out, ws):
    """Zero-padded lagged cross-products for each shift, shape (F, L, P, C).

    ``xcorr_t`` (F, n, C) is the circular cross-correlation
    ``c[f, m, c] = sum_u x[u, f] y[(u + m) mod n, c]``; for ``np.roll(y, s)`` the
    circular product at delay ``d`` is ``c[(d - s) mod n]``; ``edges`` from
    :func:`_edge_design`; written into ``out``.
    """
    n_times = y.shape[0]
    idx = (delays[:, np.newaxis] - shifts[np.newaxis, :]) % n_times  # (L, P)
    H = np.take(xcorr_t, idx, axis=1, out=out, mode="clip")  # (F, L, P, C)
    # delays are consecutive: the negative ones come first, the positive ones last
    neg = slice(0, int(np.sum(delays < 0)))
    pos = slice(len(delays) - int(np.sum(delays > 0)), len(delays))
    for T, sel, m in ((edges[0], pos, np.arange(edges[0].shape[-1])),
                      (edges[1], neg, np.arange(-edges[1].shape[-1], 0))):  # fmt: skip
        if not m.size:
            continue
        yblk = y[(m[:, np.newaxis] - shifts[np.newaxis, :]) % n_times]  # (M, P, C)
        Ts = np.ascontiguousarray(T[:, sel])
        corr = ws.get("corr", (Ts.shape[0] * Ts.shape[1], yblk.shape[1] * yblk.shape[2]))
        np.matmul(Ts.reshape(-1, len(m)), yblk.reshape(len(m), -1), out=corr)
        H[:, sel] -= corr.reshape(Ts.shape[:2] + H.shape[2:])
    return H


class _ChunkFolds:
    """Shift-invariant per-fold quantities of a chunk of features."""

    def __init__(self, G_runs, sx_runs, sy_runs, yy_runs, n_runs):
        R = len(n_runs)
        n = np.asarray(n_runs, dtype=np.float64)
        G_tot, sx_tot, sy_tot, n_tot = G_runs.sum(0), sx_runs.sum(0), sy_runs.sum(0), n.sum()
        self.folds = []
        for k in range(R):
            n_t = n_tot - n[k]
            sx_t, sy_t = sx_tot - sx_runs[k], sy_tot - sy_runs[k]
            G_t = G_tot - G_runs[k] - sx_t[..., :, np.newaxis] * sx_t[..., np.newaxis, :] / n_t
            s, V = _eig(G_t)
            Vt = np.ascontiguousarray(V.transpose(0, 2, 1))
            sx_k, sy_k = sx_runs[k], sy_runs[k]
            G_k = G_runs[k] - sx_k[..., :, np.newaxis] * sx_k[..., np.newaxis, :] / n[k]
            self.folds.append(
                dict(
                    s=s,
                    Vt=Vt,
                    M=Vt @ G_k @ V,  # held-out gram in the training eigenbasis
                    # centring terms of training and held-out cross-products (F, L, C)
                    ct=Vt @ (sx_t[..., :, np.newaxis] * sy_t / n_t),
                    ck=Vt @ (sx_k[..., :, np.newaxis] * sy_k / n[k]),
                    yy=yy_runs[k] - sy_k**2 / n[k],
                )
            )


def _bmm(A, B, out):
    """``A @ B`` over a leading batch axis, one 2-D product per item, into ``out``.

    For (L, L) @ (L, P * C) this was ~2x faster than NumPy's batched matmul here.
    """
    for ii in range(A.shape[0]):
        np.matmul(A[ii], B[ii], out=out[ii])
    return out


def _fold_r(fold, H_tot, H_k, alpha, ws):
    """Held-out r of one refit fold for every permutation, shape (F, P, C).

    ``H_tot``, ``H_k``: raw cross-products (F, L, P, C) summed over all runs and of
    the held-out run; ``alpha``: (F, C).
    """
    F, L, P, C = H_tot.shape
    Vt = fold["Vt"]
    shape = (F, L, P * C)
    z_tot = _bmm(Vt, H_tot.reshape(shape), ws.get("z", shape)).reshape(F, L, P, C)
    a = _bmm(Vt, H_k.reshape(shape), ws.get("a", shape)).reshape(F, L, P, C)
    z_tot -= a  # training cross-products in the eigenbasis
    z_tot -= fold["ct"][:, :, np.newaxis, :]
    a -= fold["ck"][:, :, np.newaxis, :]
    z_tot /= fold["s"][:, :, np.newaxis, np.newaxis] + alpha[:, np.newaxis, np.newaxis, :]
    num = np.einsum("flpc,flpc->fpc", z_tot, a)
    Mw = _bmm(fold["M"], z_tot.reshape(shape), ws.get("Mw", shape)).reshape(F, L, P, C)
    den = np.einsum("flpc,flpc->fpc", z_tot, Mw)
    return _safe_r(num, den, fold["yy"])


def _refit_null_iter(X_runs, Y_runs, sweep, shifts, chunk_size, max_bytes=32e6, n_workers=1):
    """Yield ``(slice, null)`` per chunk of features; null (P, F_chunk, C), float64.

    ``shifts`` (P, R): the shift (samples, ``np.roll`` convention) of each run in each
    permutation; a row of zeros gives the observed statistic (``sweep.r``).
    """
    delays = np.asarray(sweep.delays)
    F, C, L = sweep.n_features, sweep.n_channels, len(delays)
    y_spec = [sfft.rfft(y, axis=0) for y in Y_runs]  # (n/2 + 1, C)
    sy = np.stack([y.sum(0) for y in Y_runs])
    yy = np.stack([np.einsum("tc,tc->c", y, y) for y in Y_runs])
    alpha = np.asarray(sweep.alpha, dtype=np.float64)  # (R, F, C)
    # permutations per block: each of the R + 5 work arrays stays below max_bytes
    p_step = max(1, int(max_bytes // (min(chunk_size, F) * L * C * 8)))
    local = threading.local()

    def one_chunk(start):
        if not hasattr(local, "ws"):
            local.ws = _Workspace()
        sl = slice(start, min(start + chunk_size, F))
        null = _chunk_null(
            X_runs, Y_runs, sl, delays, y_spec, sy, yy, alpha[:, sl], shifts, p_step, local.ws
        )
        return sl, null

    # Threads over feature chunks with single-threaded BLAS: NumPy and BLAS release
    # the GIL, and unlike BLAS threads they do not spin when the cores are shared.
    starts = range(0, F, chunk_size)
    if n_workers == 1 or len(starts) == 1:
        yield from map(one_chunk, starts)
        return
    with ThreadPoolExecutor(max_workers=n_workers) as pool:
        # at most n_workers chunks in flight beyond the one being consumed
        pending = []
        for start in starts:
            pending.append(pool.submit(one_chunk, start))
            if len(pending) > n_workers:
                yield pending.pop(0).result()
        for fut in pending:
            yield fut.result()


def _chunk_null(X_runs, Y_runs, sl, delays, y_spec, sy, yy, alpha, shifts, p_step, ws):
    """Refit null of one chunk of features, shape (P, F_chunk, C)."""
    R, L, C = len(Y_runs), len(delays), Y_runs[0].shape[1]
    P = shifts.shape[0]
    fc = sl.stop - sl.start
    n_runs = [y.shape[0] for y in Y_runs]
    G, sx, xcorr, edges = [], [], [], []
    for x, y, ys in zip(X_runs, Y_runs, y_spec):
        x = x[:, sl]
        x = x.toarray() if sp.issparse(x) else np.asarray(x, dtype=np.float64)
        G_j, _, sx_j = _univariate_run_stats(x, y, delays)
        G.append(G_j)
        sx.append(sx_j)
        xspec = np.conj(sfft.rfft(x, axis=0))  # (n/2 + 1, fc)
        cc = sfft.irfft(xspec.T[:, :, np.newaxis] * ys[np.newaxis], n=y.shape[0], axis=1)
        xcorr.append(cc)  # (fc, n, C)
        edges.append(_edge_design(x, delays))
    folds = _ChunkFolds(np.stack(G), np.stack(sx), sy, yy, n_runs).folds
    null = np.empty((P, fc, C))
    for p0 in range(0, P, p_step):
        ps = slice(p0, min(p0 + p_step, P))
        shape = (fc, L, ps.stop - p0, C)
        H = [
            _shifted_cross(
                xcorr[j], edges[j], Y_runs[j], delays, shifts[ps, j], ws.get(f"H{j}", shape), ws
            )
            for j in range(R)
        ]
        H_tot = ws.get("H_tot", shape)
        np.copyto(H_tot, H[0])
        for h in H[1:]:
            H_tot += h
        acc = np.zeros((fc, ps.stop - p0, C))
        for k in range(R):
            acc += _fold_r(folds[k], H_tot, H[k], alpha[k], ws)
        null[ps] = (acc / R).transpose(1, 0, 2)
    return null


def _refit_null(X_runs, Y_runs, sweep, shifts, chunk_size=16, n_workers=1):
    """The whole refit null, shape (P, F, C), float64 (for tests and small problems)."""
    out = np.empty((shifts.shape[0], sweep.n_features, sweep.n_channels))
    chunks = _refit_null_iter(X_runs, Y_runs, sweep, shifts, chunk_size, n_workers=n_workers)
    for sl, null in chunks:
        out[:, sl] = null
    return out
