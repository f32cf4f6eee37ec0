"""Refit circular-shift null of a univariate sweep, from FFT cross-correlations.

For one permutation every run ``j``'s EEG is circularly shifted by ``s_j`` samples
(``np.roll(y_j, s_j, axis=0)``: the same shift on every channel), consistently in the
training and the held-out role, and every outer fold is refit. With ``nested=True``
(the public default) the alpha of every (fold, feature, channel) is chosen in each
permutation by the same inner leave-one-run-out CV as the sweep's (:class:`_NestedFolds`);
otherwise it is held at the alpha the observed nested CV chose. Only the EEG moves, so
the lagged grams ``G`` and the sums of the lagged predictors are shift-invariant and
each (outer or inner) fold's eigendecomposition is computed once. The lagged
cross-products of every shift come from one circular cross-correlation table per run
and feature (one FFT, the EEG spectrum computed once per run) plus an exact
correction of the few products that the zero-padded lags exclude at the run edges.

Speed: features are processed one at a time in threads (BLAS single-threaded);
within a feature, all permutations of a block and all channels go through one matrix
product per fold. The EEG is centred per run before the tables are built (a circular
shift keeps a run's mean; the training-mean correction is a shift-invariant constant
per fold), which makes float32 tables and products safe: their error in r is ~1e-6 at
moderate alphas and up to ~1e-4 when the chosen alphas are tiny (ill-conditioned folds),
still far below the spread of any null distribution (~1e-2). ``dtype=np.float64`` gives
the exact (to ~1e-12) refit, used by the tests.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import numpy as np
import scipy.fft as sfft
import scipy.sparse as sp

from ..encoding import eigh_psd as _eig
from ..encoding import safe_r as _safe_r
from ..encoding import univariate_run_stats as _univariate_run_stats
from ._lowrank import _lowrank_basis, _project_edges, _projected_cross, _projected_operator
from ._translate import (
    WINDOW_BYTES,
    _Decimated,
    _edge_windows,
    _filtered_table,
    _kernel_spacing,
    _kernel_spectrum,
    _translate_cross,
    _translate_structure,
)

# Per-stage times (seconds summed over threads) when set to a dict, e.g. by
# benchmarks/bench_sweep_null.py: "tables" (FFT cross-correlations, grams, edges),
# "folds" (shift-invariant fold operators), "cross" (lagged cross-products of the
# shifts), "refit" (fold products and r).
STAGE_TIMES = None


@contextmanager
def _stage(name):
    if STAGE_TIMES is None:
        yield
        return
    t0 = time.perf_counter()
    try:
        yield
    finally:
        STAGE_TIMES[name] = STAGE_TIMES.get(name, 0.0) + time.perf_counter() - t0


def _edge_design(x, delays):
    """Edge terms of one run (one feature) for the positive and the negative delays.

    The zero-padded cross-product at delay ``d`` and shift ``s`` equals the circular
    one minus ``sum_m T[l, m] * y((m - s) mod n)``: for ``d > 0`` over offsets
    ``0 <= m < d`` with ``T = x(n - d + m)``; for ``d < 0`` over ``d <= m < 0`` with
    ``T = x(m - d)``. Returns ``(T_pos, T_neg)`` of shapes (L, n_pos) and (L, n_neg)
    (offsets ``0 ... n_pos - 1`` and ``-n_neg ... -1``), zero for lags of the other
    sign.
    """
    n_times = x.shape[0]
    n_neg, n_pos = max(0, -int(delays[0])), max(0, int(delays[-1]))
    T_pos = np.zeros((len(delays), n_pos))
    T_neg = np.zeros((len(delays), n_neg))
    for li, d in enumerate(delays):
        d = int(d)
        if d > 0:
            T_pos[li, :d] = x[n_times - d :]
        elif d < 0:
            T_neg[li, n_neg + d :] = x[:-d]
    return T_pos, T_neg


def _shifted_cross(table, edges, y, delays, shifts, dtype):
    """Zero-padded lagged cross-products for each shift, shape (L, P, C).

    ``table`` (n, C) is the circular cross-correlation
    ``c[m, c] = sum_u x[u] y[(u + m) mod n, c]``; for ``np.roll(y, s)`` the circular
    product at delay ``d`` is ``c[(d - s) mod n]``; ``edges`` from :func:`_edge_design`.
    """
    n_times = y.shape[0]
    idx = (delays[:, np.newaxis] - shifts[np.newaxis, :]) % n_times  # (L, P)
    H = table[idx]  # (L, P, C)
    n_neg = int(np.sum(delays < 0))
    n_pos = int(np.sum(delays > 0))
    L = len(delays)
    for T, sel, m in (
        (edges[0], slice(L - n_pos, L), np.arange(edges[0].shape[-1])),
        (edges[1], slice(0, n_neg), np.arange(-edges[1].shape[-1], 0)),
    ):
        if not m.size:
            continue
        yblk = y[(m[:, np.newaxis] - shifts[np.newaxis, :]) % n_times]  # (M, P, C)
        Ts = np.ascontiguousarray(T[sel], dtype=dtype)
        corr = Ts @ yblk.reshape(len(m), -1)
        H[sel] -= corr.reshape((Ts.shape[0],) + H.shape[1:])
    return H


class _FeatureFolds:
    """Shift-invariant per-fold quantities of one feature.

    For fold ``k`` and a chosen alpha ``a`` the refit weights are ``w = B e`` with
    ``B = (G_train + a I)^-1`` and ``e`` the training cross-products, and the
    held-out prediction's sum of squares is ``w^T G_k w = ||U e||^2`` with
    ``U^T U = B G_k B``. Channels that share an alpha share ``K = [B; U]`` (2L x L),
    so each (fold, alpha) costs one matrix product over all permutations and
    channels. Built in float64, stored in ``dtype``.
    """

    def __init__(self, G_runs, sx_runs, sy_runs, n_runs, alpha, dtype, yy_runs=None,
                 folds=None):  # fmt: skip
        # G_runs (R, L, L); sx_runs (R, L); sy_runs (R, C) sums of the raw EEG;
        # alpha (n_folds, C); yy_runs (R, C) per-run centred sums of squares;
        # folds: (train, test) run indices (default leave-one-run-out).
        # Cross-products are built from per-run centred EEG.
        R = len(n_runs)
        n = np.asarray(n_runs, dtype=np.float64)
        m = sy_runs / n[:, np.newaxis]  # run means (R, C)
        if folds is None:
            folds = _loro(R)
        self.folds = []
        for k, (train, test) in enumerate(folds):
            G_t, const = _centred_split(G_runs, sx_runs, sy_runs, n, m, train)
            s, V = _eig(G_t)
            G_k, const_k = _centred_split(G_runs, sx_runs, sy_runs, n, m, test)
            groups = []
            values, inverse = np.unique(alpha[k], return_inverse=True)
            for gi, a in enumerate(values):
                chans = np.nonzero(inverse == gi)[0]
                B = (V / (s + a)) @ V.T
                q, E = _eig(B @ G_k @ B)
                U = np.sqrt(q)[:, np.newaxis] * E.T
                K = np.ascontiguousarray(np.concatenate([B, U]), dtype=dtype)
                all_ch = len(chans) == len(alpha[k])
                groups.append((None if all_ch else chans, K))
            self.folds.append(dict(
                groups=groups, const=const.astype(dtype)[:, np.newaxis, :],
                out=np.setdiff1d(np.arange(R), train), test=np.asarray(test),
                const_k=None if len(test) == 1 else const_k.astype(dtype)[:, np.newaxis, :],
                yy=None if yy_runs is None else _test_yy(yy_runs, sy_runs, n, m, test),
            ))  # fmt: skip


def _loro(n_runs):
    """Leave-one-run-out folds: ``(train, test)`` run indices."""
    runs = np.arange(n_runs)
    return [(np.setdiff1d(runs, [j]), np.array([j])) for j in runs]


def _test_yy(yy_runs, sy_runs, n, m, test):
    """Sum of squares of the EEG over the test runs, centred on their common mean, from
    per-run centred sums of squares ``yy_runs`` (R, C); shape (C,)."""
    test = np.asarray(test)
    n_s, sy_s = n[test].sum(), sy_runs[test].sum(0)
    return yy_runs[test].sum(0) + (n[test][:, np.newaxis] * m[test] ** 2).sum(0) - sy_s**2 / n_s


def _fold_parts(fold, H, H_tot):
    """Training (``e``) and held-out (``h``) centred cross-products of a fold from the
    per-run ones ``H`` (list of (L, P, C)) and their sum ``H_tot``."""
    e = H_tot - H[fold["out"][0]]
    for i in fold["out"][1:]:
        e -= H[i]
    e += fold["const"]
    test = fold["test"]
    if len(test) == 1:
        return e, H[test[0]]
    h = H[test[0]] + fold["const_k"]
    for i in test[1:]:
        h += H[i]
    return e, h


def _fold_r(fold, H, H_tot, yy=None):
    """Held-out r of one refit fold for every permutation, shape (P, C).

    ``H``: per-run cross-products with per-run centred EEG (list of (L, P, C)),
    ``H_tot`` their sum; ``yy`` (C,) held-out centred sum of squares (default the
    fold's own).
    """
    L, P, C = H_tot.shape
    e, H_k = _fold_parts(fold, H, H_tot)
    yy = fold["yy"] if yy is None else yy
    num = np.empty((P, C))
    den = np.empty((P, C))
    for chans, K in fold["groups"]:
        if chans is None:
            e_g, h_g, cs = e, H_k, slice(None)
        else:
            e_g, h_g, cs = e[:, :, chans], H_k[:, :, chans], chans
        out = K @ e_g.reshape(L, -1)  # (2L, P * C_g)
        w = out[:L].reshape(L, P, -1)
        u = out[L:]
        num[:, cs] = np.einsum("lpc,lpc->pc", w, h_g)
        den[:, cs] = np.einsum("lq,lq->q", u, u).reshape(P, -1)
    return _safe_r(num, den, yy)


def _centred_split(G_runs, sx_runs, sy_runs, n, m, train):
    """Training gram centred on the training mean and the cross-product constant.

    Cross-products are built from per-run centred EEG; the centred training
    cross-product is ``sum_{i in train} H_i + const`` with
    ``const = sum_i sx_i m_i^T - sx_t sy_t^T / n_t``.
    """
    n_t = n[train].sum()
    sx_t, sy_t = sx_runs[train].sum(0), sy_runs[train].sum(0)
    G_t = G_runs[train].sum(0) - np.outer(sx_t, sx_t) / n_t
    const = sx_runs[train].T @ m[train] - np.outer(sx_t, sy_t) / n_t
    return G_t, const


class _NestedFolds:
    """Shift-invariant quantities of the nested alpha search of one feature.

    In every permutation the alpha of each outer fold ``j`` and channel is chosen as
    the observed sweep chose it: the grid value with the largest sum over inner folds
    ``k != j`` of the held-out r of a fit on the runs other than ``j`` and ``k``; then
    fold ``j`` is refit with that alpha and scored on run ``j``. Only the EEG moves, so
    every (outer, inner) training gram and its eigendecomposition ``V diag(s) V^T``
    are shared by all permutations; per permutation, block and fold the work is two
    projections into the eigenbasis plus one ``L x L`` product per alpha.
    """

    def __init__(self, G_runs, sx_runs, sy_runs, n_runs, alphas, dtype, yy_runs, folds=None):
        # G_runs (R, L, L); sx_runs (R, L); sy_runs (R, C); alphas (A,) raw grid;
        # yy_runs (R, C) per-run centred sums of squares; folds (train, test) pairs
        R = len(n_runs)
        n = np.asarray(n_runs, dtype=np.float64)
        m = sy_runs / n[:, np.newaxis]
        self.alphas = np.asarray(alphas, dtype=dtype)
        runs = np.arange(R)

        def op(train, test):
            G_t, const = _centred_split(G_runs, sx_runs, sy_runs, n, m, train)
            s, V = _eig(G_t)
            G_k, const_k = _centred_split(G_runs, sx_runs, sy_runs, n, m, test)
            M = V.T @ G_k @ V
            return dict(
                s=s.astype(dtype), Vt=np.ascontiguousarray(V.T, dtype=dtype),
                M=np.ascontiguousarray(M, dtype=dtype),
                const=const.astype(dtype)[:, np.newaxis, :],
                out=np.setdiff1d(runs, train), test=np.asarray(test),
                const_k=None if len(test) == 1 else const_k.astype(dtype)[:, np.newaxis, :],
                yy=_test_yy(yy_runs, sy_runs, n, m, test),
            )  # fmt: skip

        self.outer = []
        for train, test in _loro(R) if folds is None else folds:
            inner = [op(np.setdiff1d(train, [k]), [k]) for k in train]
            self.outer.append(dict(fold=op(train, test), inner=inner))


def _project(fold, e, h):
    """Training (``e``) and held-out (``h``) cross-products (L, P, C) in the eigenbasis."""
    L, P, C = e.shape
    ep = (fold["Vt"] @ e.reshape(L, -1)).reshape(L, P, C)
    hp = (fold["Vt"] @ h.reshape(L, -1)).reshape(L, P, C)
    return ep, hp


def _nested_fold_r(nested, j, H, H_tot):
    """Held-out r of outer fold ``j`` with the alpha chosen per permutation and channel,
    shape (P, C); ``H`` per-run cross-products (L, P, C), ``H_tot`` their sum."""
    alphas = nested.alphas
    L, P, C = H_tot.shape
    score = np.zeros((len(alphas), P, C))
    for fold in nested.outer[j]["inner"]:
        ep, hp = _project(fold, *_fold_parts(fold, H, H_tot))
        for ai, a in enumerate(alphas):
            d = ep / (fold["s"] + a)[:, np.newaxis, np.newaxis]
            num = np.einsum("lpc,lpc->pc", d, hp)
            den = np.einsum("lpc,lpc->pc", d, (fold["M"] @ d.reshape(L, -1)).reshape(L, P, C))
            score[ai] += _safe_r(num, den, fold["yy"])
    best = np.argmax(score, axis=0)  # first maximum, as in the sweep
    fold = nested.outer[j]["fold"]
    ep, hp = _project(fold, *_fold_parts(fold, H, H_tot))
    d = ep / (fold["s"][:, np.newaxis, np.newaxis] + alphas[best][np.newaxis])
    num = np.einsum("lpc,lpc->pc", d, hp)
    den = np.einsum("lpc,lpc->pc", d, (fold["M"] @ d.reshape(L, -1)).reshape(L, P, C))
    return _safe_r(num, den, fold["yy"]), best


class _EEG:
    """Shift-invariant EEG quantities shared by all features."""

    def __init__(self, Y_runs, dtype, folds=None):
        self.folds = _loro(len(Y_runs)) if folds is None else folds
        self.n = [y.shape[0] for y in Y_runs]
        self.sy = np.stack([y.sum(0) for y in Y_runs])
        self.yc = [np.asarray(y - y.mean(0), dtype=dtype) for y in Y_runs]
        self.yy = np.stack([np.einsum("tc,tc->c", yc, yc, dtype=np.float64) for yc in self.yc])
        cdt = np.complex64 if dtype == np.float32 else np.complex128
        self.spec = [sfft.rfft(yc, axis=0).astype(cdt, copy=False) for yc in self.yc]
        self.dtype = dtype
        self.trans = None  # set by use_translates

    def use_translates(self, trans, delays, shifts):
        """Prepare the translate route (:mod:`._translate`): the EEG spectra channels
        first, the kernel's spectrum per run and, when they fit in ``WINDOW_BYTES``,
        the EEG edge windows of every shift (shared by all features)."""
        kernel, starts = trans
        self.trans = trans
        self.first_delays = np.asarray(delays)[starts]
        self.spec_T = [np.ascontiguousarray(s.T) for s in self.spec]
        self.spec = None  # the raw tables are not used on this route
        self.khat = [_kernel_spectrum(kernel, n) for n in self.n]
        # runs whose shifts all fall on the kernels' spacing read a decimated table
        step = _kernel_spacing(starts)
        self.dec = [None] * len(self.n)
        for j, n in enumerate(self.n):
            if step > 1 and n % step == 0 and np.all(shifts[:, j] % step == 0):
                self.dec[j] = _Decimated(self.spec_T[j], n, step, int(self.first_delays[0]) % step)
                self.spec_T[j] = None
        n_neg, n_pos = max(0, -int(delays[0])), max(0, int(delays[-1]))
        self.offsets = np.arange(-n_neg, n_pos)
        P, C, M = shifts.shape[0], self.sy.shape[1], len(self.offsets)
        size = M * P * C * len(self.n) * np.dtype(self.dtype).itemsize
        self.windows = None
        if M and size <= WINDOW_BYTES:
            self.windows = [
                _edge_windows(self.yc[j], self.offsets, shifts[:, j]) for j in range(len(self.n))
            ]


def _feature_null(X_runs, eeg, f, delays, alpha_f, shifts, p_step, rank_tol=None, grid=None,
                  basis=None):  # fmt: skip
    """Refit null of feature ``f``, shape (P, C), float64, and ``(q, n_low)``.

    With ``rank_tol`` the folds of the ``n_low`` channels whose alphas allow it run
    in a common lag basis of rank ``q`` (see :mod:`._lowrank`), the other channels
    run the exact path; ``(n_lags, 0)`` when nothing is truncated. With ``grid``
    (the feature's alpha grid, shape (A,)) the alphas are chosen in every permutation
    by the nested CV (:class:`_NestedFolds`) instead of held at ``alpha_f``. With
    ``basis`` (L, q) (the sweep's lag basis) every fold is fitted on the design
    ``X_lag @ basis``: the projected path with ``Q = basis`` for all channels.
    """
    G, sx, tables, edges = [], [], [], []
    with _stage("tables"):
        _feature_tables(X_runs, eeg, f, delays, G, sx, tables, edges)
    if eeg.trans is not None:
        G, sx = np.stack(G), np.stack(sx)
        null = _translate_null(G, sx, tables, edges, eeg, delays, alpha_f, shifts, p_step,
                               basis, grid)  # fmt: skip
        return null, (basis.shape[1], eeg.sy.shape[1])
    G, sx = np.stack(G), np.stack(sx)
    P, C = shifts.shape[0], eeg.sy.shape[1]
    if basis is not None:
        null = _channels_null(G, sx, tables, edges, eeg, slice(None), delays, alpha_f,
                              shifts, p_step, basis, grid)  # fmt: skip
        return null, (basis.shape[1], C)
    Q, low = (None, None)
    if rank_tol is not None:
        Q, low = _lowrank_basis(G, sx, eeg.n, alpha_f, rank_tol)
    if Q is None:
        null = _channels_null(G, sx, tables, edges, eeg, slice(None), delays, alpha_f,
                              shifts, p_step, None, grid)  # fmt: skip
        return null, (len(delays), 0)
    null = np.empty((P, C))
    chans = np.nonzero(low)[0]
    sel = slice(None) if len(chans) == C else chans
    null[:, chans] = _channels_null(G, sx, tables, edges, eeg, sel, delays, alpha_f, shifts,
                                    p_step, Q)  # fmt: skip
    if len(chans) < C:
        rest = np.nonzero(~low)[0]
        null[:, rest] = _channels_null(G, sx, tables, edges, eeg, rest, delays, alpha_f,
                                       shifts, p_step, None)  # fmt: skip
    return null, (Q.shape[1], len(chans))


def _feature_tables(X_runs, eeg, f, delays, G, sx, tables, edges):
    """Fill the per-run grams, lagged sums, circular cross-correlation tables and edge
    designs of feature ``f``."""
    for j in range(len(X_runs)):
        x = X_runs[j][:, [f]]
        x = x.toarray() if sp.issparse(x) else np.asarray(x, dtype=np.float64)
        G_j, _, sx_j = _univariate_run_stats(x, eeg.yc[j][:, :0], delays)
        G.append(G_j[0])
        sx.append(sx_j[0])
        if eeg.trans is not None and eeg.dec[j] is not None:
            tables.append(eeg.dec[j].table(sfft.rfft(x[:, 0]) * eeg.khat[j]))
        elif eeg.trans is not None:
            tables.append(_filtered_table(x[:, 0], eeg.spec_T[j], eeg.n[j], eeg.khat[j]))
        else:
            xspec = np.conj(sfft.rfft(x[:, 0])).astype(eeg.spec[j].dtype)
            tables.append(sfft.irfft(eeg.spec[j] * xspec[:, np.newaxis], n=eeg.n[j], axis=0))
        edges.append(_edge_design(x[:, 0], delays))


def _channels_null(G, sx, tables, edges, eeg, chans, delays, alpha_f, shifts, p_step, Q,
                   grid=None):  # fmt: skip
    """Refit null of one feature on the channels ``chans``, exact or in basis ``Q``;
    alphas chosen per permutation by the nested CV over ``grid`` when given."""
    R = len(tables)
    dtype = eeg.dtype
    if isinstance(chans, slice):
        yc, sy, yy, alpha_c = eeg.yc, eeg.sy, eeg.yy, alpha_f
    else:
        tables = [t[:, chans] for t in tables]
        yc = [y[:, chans] for y in eeg.yc]
        sy, yy, alpha_c = eeg.sy[:, chans], eeg.yy[:, chans], alpha_f[:, chans]
    P, C = shifts.shape[0], sy.shape[1]
    p_step = max(1, p_step * eeg.sy.shape[1] // C)  # same block size in bytes
    if Q is not None:  # fold quantities in q dims: G_q = Q^T G Q, sx_q = Q^T sx
        G, sx = Q.T @ G @ Q, sx @ Q
        ops = [_projected_operator(Q, _project_edges(Q, e), dtype) for e in edges]
        n_neg, n_pos = max(0, -int(delays[0])), max(0, int(delays[-1]))
        offsets = np.arange(-n_neg, n_pos)
        buf = np.empty((len(delays) + len(offsets)) * min(p_step, P) * C, dtype)
    with _stage("folds"):
        if grid is None:
            folds = _FeatureFolds(G, sx, sy, eeg.n, alpha_c, dtype, yy, eeg.folds).folds
        else:
            nested = _NestedFolds(G, sx, sy, eeg.n, grid, dtype, yy, eeg.folds)
    null = np.empty((P, C))
    for p0 in range(0, P, p_step):
        ps = slice(p0, min(p0 + p_step, P))
        with _stage("cross"):
            if Q is None:
                H = [
                    _shifted_cross(tables[j], edges[j], yc[j], delays, shifts[ps, j], dtype)
                    for j in range(R)
                ]
            else:
                H = [
                    _projected_cross(
                        tables[j], yc[j], ops[j], delays, offsets, shifts[ps, j], buf
                    )  # fmt: skip
                    for j in range(R)
                ]
            H_tot = H[0].copy()
            for h in H[1:]:
                H_tot += h
        with _stage("refit"):
            acc = np.zeros((ps.stop - p0, C))
            n_folds = len(eeg.folds)
            for k in range(n_folds):
                if grid is None:
                    acc += _fold_r(folds[k], H, H_tot)
                else:
                    acc += _nested_fold_r(nested, k, H, H_tot)[0]
            null[ps] = acc / n_folds
    return null


def _translate_null(G, sx, tables, edges, eeg, delays, alpha_f, shifts, p_step, basis,
                    grid=None):  # fmt: skip
    """Refit null of one feature in a basis of translates (:mod:`._translate`), (P, C)."""
    R = len(tables)
    dtype = eeg.dtype
    P, C = shifts.shape[0], eeg.sy.shape[1]
    L = len(delays)
    G, sx = basis.T @ G @ basis, sx @ basis
    ops = [
        np.ascontiguousarray(_projected_operator(basis, _project_edges(basis, e), dtype)[:, L:])
        for e in edges
    ]
    with _stage("folds"):
        if grid is None:
            folds = _FeatureFolds(G, sx, eeg.sy, eeg.n, alpha_f, dtype, eeg.yy, eeg.folds).folds
        else:
            nested = _NestedFolds(G, sx, eeg.sy, eeg.n, grid, dtype, eeg.yy, eeg.folds)
    with _stage("cross"):  # every shift at once, channels first: (C, q, P) per run
        H_all = []
        for j in range(R):
            W = None if eeg.windows is None else eeg.windows[j]
            H_all.append(_translate_cross(tables[j], eeg.first_delays, ops[j], W, eeg.yc[j],
                                          eeg.offsets, shifts[:, j], eeg.dec[j]))  # fmt: skip
        H_sum = H_all[0].copy()
        for h in H_all[1:]:
            H_sum += h
    if grid is None:  # one operator per channel (its alpha), applied channel-batched
        ops_k = [_channel_operators(fold, C) for fold in folds]
    null = np.empty((P, C))
    for p0 in range(0, P, p_step):  # the refit in cache-sized blocks of shifts
        ps = slice(p0, min(p0 + p_step, P))
        with _stage("refit"):
            acc = np.zeros((C, ps.stop - p0))
            if grid is None:
                H = [h[:, :, ps] for h in H_all]
                for k in range(len(eeg.folds)):
                    acc += _fold_r_channels(folds[k], ops_k[k], H, H_sum[:, :, ps])
            else:  # the nested search works on (q, P, C) blocks
                H = [np.ascontiguousarray(h[:, :, ps].transpose(1, 2, 0)) for h in H_all]
                H_tot = np.ascontiguousarray(H_sum[:, :, ps].transpose(1, 2, 0))
                for k in range(len(eeg.folds)):
                    acc += _nested_fold_r(nested, k, H, H_tot)[0].T
            null[ps] = acc.T / len(eeg.folds)
    return null


def _channel_operators(fold, C):
    """The fold's ``K = [B; U]`` of every channel, (C, 2q, q), and its constants in
    channels-first layout."""
    K0 = fold["groups"][0][1]
    K = np.empty((C,) + K0.shape, K0.dtype)
    for chans, Kg in fold["groups"]:
        K[slice(None) if chans is None else chans] = Kg
    const = np.ascontiguousarray(fold["const"][:, 0, :].T[:, :, np.newaxis])  # (C, q, 1)
    const_k = None
    if fold["const_k"] is not None:
        const_k = np.ascontiguousarray(fold["const_k"][:, 0, :].T[:, :, np.newaxis])
    return K, const, const_k


def _fold_r_channels(fold, ops, H, H_tot):
    """Held-out r (C, P) of one refit fold from channels-first cross-products
    ``H`` (list of (C, q, P)) and their sum ``H_tot``; ``ops`` from
    :func:`_channel_operators`."""
    K, const, const_k = ops
    q = K.shape[2]
    e = H_tot - H[fold["out"][0]]
    for i in fold["out"][1:]:
        e -= H[i]
    e += const
    test = fold["test"]
    if len(test) == 1:
        h = H[test[0]]
    else:
        h = H[test[0]] + const_k
        for i in test[1:]:
            h += H[i]
    out = np.matmul(K, e)  # (C, 2q, P)
    num = np.einsum("cip,cip->cp", out[:, :q], h)
    den = np.einsum("cip,cip->cp", out[:, q:], out[:, q:])
    return _safe_r(num, den, fold["yy"][:, np.newaxis])


def _refit_null_iter(
    X_runs, Y_runs, sweep, shifts, chunk_size, max_bytes=1e6, n_workers=1, dtype=np.float32,
    rank_tol=None, ranks=None, nested=False, translates=True,
):  # fmt: skip
    """Yield ``(slice, null)`` per chunk of features; null (P, F_chunk, C), float64.

    ``shifts`` (P, R): the shift (samples, ``np.roll`` convention) of each run in each
    permutation; a row of zeros gives the observed statistic (``sweep.r``).
    Features are processed one per thread; chunks only group the yielded results.
    ``rank_tol``: rank-truncated refit (:mod:`._lowrank`); ``ranks`` (F, 2) int array
    filled per feature with the rank used and the number of channels that used it.
    ``nested``: choose the alphas in every permutation by the nested CV over
    ``sweep.alphas`` (as the sweep did on the observed data) instead of holding
    ``sweep.alpha``. ``translates``: use the translate route (:mod:`._translate`)
    when the sweep's basis allows it (``False`` forces the general basis route; the
    numbers are the same).
    """
    delays = np.asarray(sweep.delays)
    F, C, L = sweep.n_features, sweep.n_channels, len(delays)
    eeg = _EEG(Y_runs, dtype, sweep.folds)
    alpha = np.asarray(sweep.alpha, dtype=np.float64)  # (R, F, C)
    itemsize = np.dtype(dtype).itemsize
    # permutations per block: each of the R + 4 work arrays stays below max_bytes;
    # ~1 MB blocks stay in cache (measured 30 % faster than 16 MB blocks)
    p_step = max(1, int(max_bytes // (L * C * itemsize)))

    grids = np.asarray(sweep.alphas, dtype=np.float64)  # (F, A)
    basis = np.asarray(sweep.basis, dtype=np.float64) if sweep.basis.size else None
    trans = _translate_structure(basis) if translates else None
    if trans is not None:  # blocks of the same size in bytes, q rows instead of L
        p_step = max(1, int(max_bytes // (basis.shape[1] * C * itemsize)))
        eeg.use_translates(trans, delays, shifts)

    def one_feature(f):
        grid = grids[f] if nested and grids.shape[1] > 1 else None
        null, q = _feature_null(X_runs, eeg, f, delays, alpha[:, f], shifts, p_step, rank_tol,
                                grid, basis)  # fmt: skip
        if ranks is not None:
            ranks[f] = q
        return null

    starts = range(0, F, chunk_size)

    def collect(results, start):
        sl = slice(start, min(start + chunk_size, F))
        return sl, np.stack(results, axis=1)

    if n_workers == 1 or F == 1:
        for start in starts:
            sl = slice(start, min(start + chunk_size, F))
            yield collect([one_feature(f) for f in range(sl.start, sl.stop)], start)
        return
    # Threads over features with single-threaded BLAS: NumPy, FFT and BLAS release
    # the GIL, and unlike BLAS threads they do not spin when the cores are shared.
    with ThreadPoolExecutor(max_workers=n_workers) as pool:
        for start in starts:
            sl = slice(start, min(start + chunk_size, F))
            futs = [pool.submit(one_feature, f) for f in range(sl.start, sl.stop)]
            yield collect([fu.result() for fu in futs], start)


def _refit_null(
    X_runs, Y_runs, sweep, shifts, chunk_size=16, n_workers=1, dtype=np.float64,
    rank_tol=None, ranks=None, nested=False, translates=True,
):  # fmt: skip
    """The whole refit null, shape (P, F, C), float64 (for tests and small problems)."""
    out = np.empty((shifts.shape[0], sweep.n_features, sweep.n_channels))
    chunks = _refit_null_iter(
        X_runs,
        Y_runs,
        sweep,
        shifts,
        chunk_size,
        n_workers=n_workers,
        dtype=dtype,
        rank_tol=rank_tol,
        ranks=ranks,
        nested=nested,
        translates=translates,
    )
    for sl, null in chunks:
        out[:, sl] = null
    return out
