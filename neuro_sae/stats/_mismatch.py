"""Trial-mismatch null of a univariate sweep: stimulus of run i against EEG of run j.

For one permutation ``pi`` of the runs, run ``i``'s features are paired with the EEG
of run ``pi[i]``, and the outer folds (fold ``k`` holds out the features of run ``k``)
are refit with the alphas the observed nested CV chose (``sweep.alpha[k]``). Every
run is cropped to the shortest run first (its first ``n_min`` samples), so that any
stimulus fits any EEG; the observed statistic (identity pairing) is recomputed on the
same cropped runs, which keeps it exchangeable with the permuted ones. The lagged
grams of the cropped features (and their per-fold eigendecompositions) do not depend
on the pairing; the lagged cross-products of every stimulus x EEG pair are computed
once (one product per run), so a permutation costs three small products per fold.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ..encoding import eigh_psd as _eig
from ..encoding import lag_matrix as _lag_matrix
from ..encoding import safe_r as _safe_r
from ..encoding import univariate_run_stats as _univariate_run_stats


def _crop(X_runs, Y_runs):
    n_min = min(y.shape[0] for y in Y_runs)
    X = [x[:n_min] for x in X_runs]
    Y = [np.asarray(y[:n_min], dtype=np.float64) for y in Y_runs]
    return X, Y, n_min


def _mismatch_null(X_runs, Y_runs, sweep, perms, p_step=64):
    """Null of the mean held-out r over folds, shape (P, F, C), float64.

    ``perms`` (P, R): the EEG run paired with each stimulus run; an identity row gives
    the observed statistic on the cropped runs.
    """
    X, Y, n = _crop(X_runs, Y_runs)
    delays = np.asarray(sweep.delays)
    R, L, C, F = len(Y), len(delays), Y[0].shape[1], sweep.n_features
    P = perms.shape[0]
    Ycat = np.concatenate(Y, axis=1)  # (n, R * C)
    sy = np.stack([y.sum(0) for y in Y])  # (R, C)
    yy = np.stack([np.einsum("tc,tc->c", y, y) for y in Y])
    alpha = np.asarray(sweep.alpha, dtype=np.float64)
    out = np.empty((P, F, C))
    runs = np.arange(R)
    for f in range(F):
        G, sx, H = [], [], []
        for x in X:
            xf = x[:, [f]]
            xf = xf.toarray() if sp.issparse(xf) else np.asarray(xf, dtype=np.float64)
            G_i, _, sx_i = _univariate_run_stats(xf, Y[0][:, :0], delays)
            G.append(G_i[0])
            sx.append(sx_i[0])
            H.append((_lag_matrix(xf, delays).T @ Ycat).reshape(L, R, C))
        G, sx = np.stack(G), np.stack(sx)
        H = np.stack(H).transpose(0, 2, 1, 3)  # (R_stim, R_eeg, L, C)
        G_tot, sx_tot = G.sum(0), sx.sum(0)
        folds = []
        for k in range(R):
            sx_t = sx_tot - sx[k]
            n_t = (R - 1) * n
            s, V = _eig(G_tot - G[k] - np.outer(sx_t, sx_t) / n_t)
            G_k = G[k] - np.outer(sx[k], sx[k]) / n
            folds.append((s, V, V.T @ G_k @ V, sx_t, n_t))
        for p0 in range(0, P, p_step):
            pb = perms[p0 : p0 + p_step]  # (p, R)
            Hsel = H[runs[np.newaxis, :], pb]  # (p, R, L, C)
            H_tot = Hsel.sum(1)
            sy_sel = sy[pb]  # (p, R, C)
            sy_tot = sy_sel.sum(1)
            acc = np.zeros((pb.shape[0], C))
            for k, (s, V, M, sx_t, n_t) in enumerate(folds):
                sy_t = sy_tot - sy_sel[:, k]  # (p, C)
                h_t = H_tot - Hsel[:, k] - sx_t[:, np.newaxis] * sy_t[:, np.newaxis, :] / n_t
                h_k = Hsel[:, k] - sx[k][:, np.newaxis] * sy_sel[:, k, np.newaxis, :] / n
                z = np.einsum("lm,plc->pmc", V, h_t)
                a = np.einsum("lm,plc->pmc", V, h_k)
                z /= s[:, np.newaxis] + alpha[k, f][np.newaxis, :]
                num = np.einsum("pmc,pmc->pc", z, a)
                den = np.einsum("pmc,mn,pnc->pc", z, M, z, optimize=True)
                yy_k = yy[pb[:, k]] - sy_sel[:, k] ** 2 / n
                acc += _safe_r(num, den, yy_k)
            out[p0 : p0 + pb.shape[0], f] = acc / R
    return out
