"""Run-wise cross-validation of lagged ridge models from per-run sufficient statistics.

A *candidate* is one penalty per band of predictors. Candidates sharing the ratios of
their band penalties share one eigendecomposition per fold: the bands are rescaled by
``d = sqrt(alpha_0 / alpha_k)`` and a plain ridge with ``alpha_0`` is solved (banded
ridge by rescaling, exact). With a single band every candidate shares one
eigendecomposition per fold.
"""

from __future__ import annotations

import itertools

import numpy as np
import scipy.linalg as sla

from ._ridge import NUMPY, _Fold, _safe_r

SOLVERS = ("auto", "eigh", "cholesky")


def _solver_costs(n_pred, n_out, n_alphas):
    """Flop estimates of one fold's alpha path: ``(eigh, cholesky)``.

    ``"eigh"``: one eigendecomposition (~10 P^3) and the held-out gram in its basis
    (4 P^3), projections of the cross-products (4 P^2 C), per alpha the held-out
    quadratic form (2 P^2 C). ``"cholesky"``: the held-out gram's Cholesky factor
    (P^3 / 3), then per alpha a factorisation (P^3 / 3), the solve (2 P^2 C) and the
    held-out quadratic form as a triangular product (P^2 C).
    """
    P, C, A = float(n_pred), float(n_out), float(n_alphas)
    eig = 14 * P**3 + 4 * P**2 * C + 2 * A * P**2 * C
    chol = P**3 / 3 + A * (P**3 / 3 + 3 * P**2 * C)
    return eig, chol


def _choose_solver(solver, n_pred, n_out, n_alphas, xp=NUMPY):
    """The exact route of a fold's alpha path: ``"eigh"`` or ``"cholesky"``."""
    if solver != "auto":
        return solver
    if xp is not NUMPY:  # the torch backend runs the eigendecomposition route
        return "eigh"
    eig, chol = _solver_costs(n_pred, n_out, n_alphas)
    return "cholesky" if chol < eig else "eigh"


class _CholFold:
    """A training fit solved per alpha by Cholesky (same interface as ``_Fold.r_path``).

    Cheaper than one eigendecomposition serving every alpha when the alphas are few
    and the predictors many; the same numbers up to rounding.
    """

    def __init__(self, G_train, H_train, xp=NUMPY, chunk_size=None):
        self.G, self.H = G_train, H_train

    def r_path(self, G_test, H_test, yy_test, alphas):
        B, P = self.G.shape[:2]
        out = np.empty((alphas.shape[1], B, self.H.shape[2]))
        eye = np.eye(P)
        for b in range(B):
            # held-out sum of squares w^T G_k w = ||L_k^T w||^2 with G_k = L_k L_k^T:
            # a triangular product (P^2 C) per alpha instead of a full one (2 P^2 C)
            try:
                L_k = sla.cholesky(G_test[b], lower=True, check_finite=False)
            except np.linalg.LinAlgError:  # a singular held-out gram: full products
                L_k = None
            for ai in range(alphas.shape[1]):
                fac = sla.cho_factor(self.G[b] + alphas[b, ai] * eye, check_finite=False)
                W = sla.cho_solve(fac, self.H[b], check_finite=False)
                num = np.einsum("pc,pc->c", W, H_test[b])
                if L_k is None:
                    den = np.einsum("pc,pc->c", W, G_test[b] @ W)
                else:
                    U = _trmm(L_k, W)
                    den = np.einsum("pc,pc->c", U, U)
                out[ai, b] = _safe_r(num, den, yy_test[b] if np.ndim(yy_test) > 1 else yy_test)
        return out


def _trmm(L, W):
    """``L^T @ W`` for a lower-triangular ``L`` (BLAS trmm, half the flops of a GEMM)."""
    trmm = sla.get_blas_funcs("trmm", (L, W))
    return trmm(1.0, L, W, lower=1, trans_a=1)


def _cv_folds(cv, runs):
    """(train, test) run indices: leave-one-run-out or ``cv`` contiguous groups of runs."""
    runs = np.asarray(runs, dtype=int)
    k = len(runs) if cv == "leave-one-run-out" else int(cv)
    if k > len(runs) or k < 2:
        raise ValueError(
            f"cv={cv!r} needs at least {max(k, 2)} runs to split into folds, got "
            f"{len(runs)} run(s). Pass more runs (e.g. split a long recording into "
            "segments) or fewer folds."
        )
    tests = np.array_split(runs, k)
    return [(np.setdiff1d(runs, t), t) for t in tests]


class _Candidates:
    """Penalty candidates grouped by the ratios of their band penalties.

    Parameters
    ----------
    grids : ndarray, shape (n_bands, n_alphas)
        Raw alpha grid of each band (per training run when ``per_run``).
    pred_band : ndarray of int, shape (n_predictors,)
        Band of each lagged predictor.
    """

    def __init__(self, grids, pred_band):
        grids = np.atleast_2d(grids)
        self.n_bands, n_alphas = grids.shape
        combos = np.array(list(itertools.product(range(n_alphas), repeat=self.n_bands)))
        self.index = combos  # (n_cand, n_bands) grid index of each band
        self.band_alphas = grids[np.arange(self.n_bands), combos]  # (n_cand, n_bands)
        keys = np.round(np.log(self.band_alphas / self.band_alphas[:, :1]), 9)
        _, inverse = np.unique(keys, axis=0, return_inverse=True)
        self.groups = []  # (candidate ids, predictor scale or None, base alphas)
        for g in range(inverse.max() + 1):
            ids = np.flatnonzero(inverse == g)
            a = self.band_alphas[ids]
            d = None
            if self.n_bands > 1:
                d = np.sqrt(a[0, 0] / a[0])[pred_band]
            self.groups.append((ids, d, a[:, 0]))
        self.n = len(combos)


def _scale(d, G, H):
    """Rescale predictors: ``G -> d G d`` (.., P, P) and ``H -> d H`` (.., P, C)."""
    if d is None:
        return G, H
    return G * d[:, None] * d[None, :], H * d[:, None]


def _path(stats, folds, cands, fit_intercept, mult, xp=NUMPY, chunk_size=None,
          solver="eigh"):  # fmt: skip
    """Held-out Pearson r of every fold and candidate: (n_folds, n_cand, n_channels).

    ``solver``: ``"eigh"`` (one eigendecomposition per fold and group of candidates)
    or ``"cholesky"`` (one factorisation per candidate), see :func:`_choose_solver`.
    """
    C = stats.H.shape[-1]
    out = np.empty((len(folds), cands.n, C))
    Fold = _CholFold if solver == "cholesky" else _Fold
    for j, (train, test) in enumerate(folds):
        Gt, Ht = stats.centred(train, fit_intercept)[:2]
        Gj, Hj, _, _, yyj, _ = stats.centred(test, True)  # r: centred held-out
        yyj = xp.asarray(yyj)
        for ids, d, base in cands.groups:
            Gt_, Ht_, Gj_, Hj_ = (
                xp.asarray(m) for m in (*_scale(d, Gt, Ht), *_scale(d, Gj, Hj))
            )
            fold = Fold(Gt_, Ht_, xp, chunk_size)
            alphas = xp.asarray(base[np.newaxis] * mult(len(train)))
            out[j, ids] = xp.to_numpy(fold.r_path(Gj_, Hj_, yyj, alphas)[:, 0])
    return out


def _solve(stats, runs, cands, best, fit_intercept, mult, xp=NUMPY, chunk_size=None):
    """Weights (P, C) and intercepts (C,) on ``runs``, candidate ``best[c]`` per channel."""
    G, H, sx, sy, _, n = stats.centred(runs, fit_intercept)
    P, C = G.shape[-1], H.shape[-1]
    W = np.empty((P, C))
    for ids, d, base in cands.groups:
        pos = np.full(cands.n, -1)
        pos[ids] = np.arange(len(ids))
        chans = np.flatnonzero(pos[best] >= 0)
        if not len(chans):
            continue
        Gs, Hs = _scale(d, G, H[..., chans])
        fold = _Fold(xp.asarray(Gs), xp.asarray(Hs), xp, chunk_size)
        alpha = base[pos[best[chans]]] * mult(len(np.atleast_1d(runs)))
        w = xp.to_numpy(fold.weights(xp.asarray(alpha[np.newaxis])))[0]
        W[:, chans] = w if d is None else w * d[:, np.newaxis]
    b = (sy - sx[0] @ W) / n if fit_intercept else np.zeros(C)
    return W, b


def _held_out_r(stats, test, W):
    """Pearson r (C,) of the predictions ``X_test W`` on the held-out runs."""
    Gj, Hj, _, _, yyj, _ = stats.centred(test, True)
    num = np.einsum("pc,pc->c", W, Hj[0])
    den = np.einsum("pc,pc->c", W, Gj[0] @ W)
    return _safe_r(num, den, yyj)


def _nested(stats, outer, cv, cands, fit_intercept, mult, xp=NUMPY, chunk_size=None,
            solver="eigh"):  # fmt: skip
    """Nested CV: inner folds of each outer training set pick the candidate per channel.

    Returns the outer held-out r (n_outer, C) and the chosen candidates (n_outer, C).
    """
    C = stats.H.shape[-1]
    r = np.empty((len(outer), C))
    chosen = np.empty((len(outer), C), int)
    for j, (train, test) in enumerate(outer):
        inner = _cv_folds(cv, train)
        path = _path(stats, inner, cands, fit_intercept, mult, xp, chunk_size, solver)
        chosen[j] = np.argmax(path.mean(0), axis=0)
        W, _ = _solve(stats, train, cands, chosen[j], fit_intercept, mult, xp, chunk_size)
        r[j] = _held_out_r(stats, test, W)
    return r, chosen
