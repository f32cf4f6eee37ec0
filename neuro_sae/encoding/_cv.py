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

from ._ridge import NUMPY, _chunks, _Fold, _safe_r

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


_FOLD_BYTES = 1 << 25  # stacked per-fold grams are built for ~32 MB of folds at a time


def _fold_stats(stats, folds, fit_intercept):
    """Centred statistics of several folds at once, stacked over the folds.

    Training sums are the sums over the folds' runs minus the held-out sums (no sum over
    the training runs per fold). Returns ``Gt`` (F, P, P), ``Ht`` (F, P, C) (centred if
    ``fit_intercept``) and the always-centred held-out ``Gk`` (F, P, P), ``Hk`` (F, P,
    C), ``yyk`` (F, C), for a batch of one design (``stats.G`` of shape (R, 1, P, P)).
    """
    arrays = (stats.G[:, 0], stats.H[:, 0], stats.sx[:, 0], stats.sy, stats.yy, stats.n)
    tests = [np.atleast_1d(te) for _, te in folds]
    if all(len(te) == 1 for te in tests):  # leave-one-run-out: one run held out per fold
        idx = np.array([te[0] for te in tests])
        Gk, Hk, sxk, syk, yyk, nk = (a[idx] for a in arrays)
    else:
        Gk, Hk, sxk, syk, yyk, nk = (
            np.stack([a[te].sum(0) for te in tests]) for a in arrays
        )
    used = np.union1d(*folds[0])  # the runs split by the folds (all, or an outer train)
    G, H, sx, sy, _, n = stats._tot if len(used) == stats.n_runs else stats.raw(used)
    G, H, sx = G[0], H[0], sx[0]
    Gt, Ht, sxt = G - Gk, H - Hk, sx - sxk
    if fit_intercept:
        syt, nt = sy - syk, n - nk
        Gt -= sxt[:, :, None] * (sxt / nt[:, None])[:, None, :]
        Ht -= sxt[:, :, None] * (syt / nt[:, None])[:, None, :]
    Gk = Gk - sxk[:, :, None] * (sxk / nk[:, None])[:, None, :]
    Hk = Hk - sxk[:, :, None] * (syk / nk[:, None])[:, None, :]
    yyk = yyk - syk**2 / nk[:, None]
    return Gt, Ht, Gk, Hk, yyk


def _chol_path(Gt, Ht, Gk, Hk, yyk, alphas, chunk_size=None):
    """Held-out r (F, A, C) of folds solved per alpha by Cholesky (LAPACK potrf/potrs).

    Per fold: the held-out gram's factor ``Gk = Lk Lk^T`` (once), then per alpha one
    factorisation and solve; the held-out sum of squares ``w^T Gk w = ||Lk^T w||^2`` of
    every alpha's weights in one triangular product (BLAS trmm, half a GEMM's flops).
    Cheaper than one eigendecomposition serving every alpha when the alphas are few and
    the predictors many; the same numbers up to rounding.
    """
    F, P, C = Ht.shape
    A = alphas.shape[1]
    potrf, potrs = sla.lapack.get_lapack_funcs(("potrf", "potrs"), (Gt,))
    trmm = sla.blas.get_blas_funcs("trmm", (Gt,))
    out = np.empty((F, A, C))
    diag = np.arange(P) * (P + 1)
    for j in range(F):
        Lk, info = potrf(Gk[j], lower=1, clean=0)
        for sl in _chunks(C, chunk_size):
            c = sl.stop - sl.start
            Hf = np.asfortranarray(Ht[j, :, sl])
            W = np.empty((P, A * c), order="F")  # column a * c + i: alpha a, channel i
            for a in range(A):
                S = Gt[j].copy()  # symmetric: the C-ordered copy is its own F-order
                S.ravel()[diag] += alphas[j, a]
                fac, info_a = potrf(S.T, lower=1, overwrite_a=1, clean=0)
                if info_a:
                    raise np.linalg.LinAlgError(
                        f"The training covariance plus alpha={alphas[j, a]:.3g} is not "
                        "positive definite (rounding with a tiny alpha); use "
                        "solver='eigh' or larger alphas."
                    )
                W[:, a * c : (a + 1) * c] = potrs(fac, Hf, lower=1)[0]
            W3 = W.reshape((P, c, A), order="F")  # [p, i, a] = W[p, a * c + i]
            num = np.einsum("pia,pi->ai", W3, Hk[j, :, sl])
            if info == 0:  # held-out sum of squares through the held-out factor
                U = trmm(1.0, Lk, W, lower=1, trans_a=1, overwrite_b=1)
                den = np.einsum("pk,pk->k", U, U).reshape(A, c)
            else:  # a singular held-out gram: full products
                GW = np.tensordot(Gk[j], W3, axes=(1, 0))
                den = np.einsum("pia,pia->ai", W3, GW)
            out[j, :, sl] = _safe_r(num, den, yyk[j, sl])
    return out


def _cv_folds(cv, runs):
    """(train, test) run indices: leave-one-run-out or ``cv`` contiguous groups of runs."""
    runs = np.sort(np.asarray(runs, dtype=int))
    k = len(runs) if cv == "leave-one-run-out" else int(cv)
    if k > len(runs) or k < 2:
        raise ValueError(
            f"cv={cv!r} needs at least {max(k, 2)} runs to split into folds, got "
            f"{len(runs)} run(s). Pass more runs (e.g. split a long recording into "
            "segments) or fewer folds."
        )
    bounds = np.cumsum([0] + [len(t) for t in np.array_split(runs, k)])
    return [(np.concatenate((runs[:a], runs[b:])), runs[a:b])
            for a, b in zip(bounds[:-1], bounds[1:])]  # fmt: skip


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
        self.n = len(combos)
        if self.n_bands == 1:  # one group: every candidate shares the eigendecomposition
            self.groups = [(np.arange(self.n), None, self.band_alphas[:, 0])]
            return
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


def _scale(d, G, H):
    """Rescale predictors: ``G -> d G d`` (.., P, P) and ``H -> d H`` (.., P, C)."""
    if d is None:
        return G, H
    return G * d[:, None] * d[None, :], H * d[:, None]


def _path(stats, folds, cands, fit_intercept, mult, xp=NUMPY, chunk_size=None,
          solver="eigh"):  # fmt: skip
    """Held-out Pearson r of every fold and candidate: (n_folds, n_cand, n_channels).

    ``solver``: ``"eigh"`` (one eigendecomposition per fold and group of candidates,
    folds stacked in one batched call) or ``"cholesky"`` (one factorisation per fold and
    candidate), see :func:`_choose_solver`. Folds are processed in batches of ~32 MB of
    stacked grams.
    """
    C, P = stats.H.shape[-1], stats.G.shape[-1]
    out = np.empty((len(folds), cands.n, C))
    step = max(1, _FOLD_BYTES // (8 * P * P))
    for f0 in range(0, len(folds), step):
        batch = folds[f0 : f0 + step]
        Gt, Ht, Gk, Hk, yyk = _fold_stats(stats, batch, fit_intercept)
        mults = np.array([mult(len(tr)) for tr, _ in batch])
        fs = slice(f0, f0 + len(batch))
        for ids, d, base in cands.groups:
            Gt_, Ht_ = _scale(d, Gt, Ht)
            Gk_, Hk_ = _scale(d, Gk, Hk)
            alphas = mults[:, np.newaxis] * base[np.newaxis]  # (F, A)
            if solver == "cholesky":
                r = _chol_path(Gt_, Ht_, Gk_, Hk_, yyk, alphas, chunk_size)
            else:  # the folds as a batch of designs: one batched eigendecomposition
                fold = _Fold(xp.asarray(Gt_), xp.asarray(Ht_), xp, chunk_size)
                r = xp.to_numpy(fold.r_path(xp.asarray(Gk_), xp.asarray(Hk_),
                                            xp.asarray(yyk), xp.asarray(alphas)))  # fmt: skip
                r = r.transpose(1, 0, 2)
            out[fs, ids] = r
    return out


def _solve(stats, runs, cands, best, fit_intercept, mult, xp=NUMPY, chunk_size=None,
           solver="eigh"):  # fmt: skip
    """Weights (P, C) and intercepts (C,) on ``runs``, candidate ``best[c]`` per channel.

    ``solver="eigh"``: one eigendecomposition per group of candidates serves every
    channel's alpha. Otherwise (numpy only) one Cholesky factorisation per distinct
    chosen alpha when that costs fewer flops (:func:`_final_costs`).
    """
    G, H, sx, sy, _, n = stats.centred(runs, fit_intercept)
    G, H = G[0], H[0]
    P, C = G.shape[-1], H.shape[-1]
    W = np.empty((P, C))
    m = mult(len(np.atleast_1d(runs)))
    for ids, d, base in cands.groups:
        pos = np.full(cands.n, -1)
        pos[ids] = np.arange(len(ids))
        chans = np.flatnonzero(pos[best] >= 0)
        if not len(chans):
            continue
        Gs, Hs = _scale(d, G, H[:, chans])
        alpha = base[pos[best[chans]]] * m
        n_distinct = len(np.unique(alpha))
        eig, chol = _final_costs(P, len(chans), n_distinct)
        if solver != "eigh" and xp is NUMPY and chol < eig:
            w = _chol_weights(Gs, Hs, alpha)
        else:
            fold = _Fold(xp.asarray(Gs[np.newaxis]), xp.asarray(Hs[np.newaxis]), xp,
                         chunk_size)  # fmt: skip
            w = xp.to_numpy(fold.weights(xp.asarray(alpha[np.newaxis])))[0]
        W[:, chans] = w if d is None else w * d[:, np.newaxis]
    b = (sy - sx[0] @ W) / n if fit_intercept else np.zeros(C)
    return W, b


def _final_costs(n_pred, n_out, n_distinct):
    """Flop estimates of the final fit: ``(eigh, cholesky)``.

    ``"eigh"``: one eigendecomposition (~14 P^3 with the eigenvectors) and two
    projections (4 P^2 C). ``"cholesky"``: one factorisation per distinct alpha (P^3 / 3)
    and the solves (2 P^2 C).
    """
    P, C = float(n_pred), float(n_out)
    return 14 * P**3 + 4 * P**2 * C, n_distinct * P**3 / 3 + 2 * P**2 * C


def _chol_weights(G, H, alpha):
    """Ridge weights (P, C) with ``alpha[c]`` per channel: one Cholesky per distinct alpha."""
    P = G.shape[0]
    potrf, potrs = sla.lapack.get_lapack_funcs(("potrf", "potrs"), (G,))
    W = np.empty(H.shape)
    diag = np.arange(P) * (P + 1)
    for value in np.unique(alpha):
        chans = np.flatnonzero(alpha == value)
        S = np.array(G)  # symmetric: the C-ordered copy is its own F-order
        S.ravel()[diag] += value
        fac, info = potrf(S.T, lower=1, overwrite_a=1, clean=0)
        if info:
            raise np.linalg.LinAlgError(
                f"The covariance plus alpha={value:.3g} is not positive definite "
                "(rounding with a tiny alpha); use solver='eigh' or larger alphas."
            )
        W[:, chans] = potrs(fac, np.asfortranarray(H[:, chans]), lower=1)[0]
    return W


def _held_out_r(stats, test, W):
    """Pearson r (C,) of the predictions ``X_test W`` on the held-out runs."""
    Gj, Hj, _, _, yyj, _ = stats.centred(test, True)
    num = np.einsum("pc,pc->c", W, Hj[0])
    den = np.einsum("pc,pc->c", W, Gj[0] @ W)
    return _safe_r(num, den, yyj)


def _nested(stats, outer, cv, cands, fit_intercept, mult, xp=NUMPY, chunk_size=None,
            solver="eigh", final="eigh"):  # fmt: skip
    """Nested CV: inner folds of each outer training set pick the candidate per channel.

    ``solver``: the route of the inner alpha paths; ``final``: of the outer fits (see
    :func:`_solve`).

    Returns the outer held-out r (n_outer, C) and the chosen candidates (n_outer, C).
    """
    C = stats.H.shape[-1]
    r = np.empty((len(outer), C))
    chosen = np.empty((len(outer), C), int)
    for j, (train, test) in enumerate(outer):
        inner = _cv_folds(cv, train)
        path = _path(stats, inner, cands, fit_intercept, mult, xp, chunk_size, solver)
        chosen[j] = np.argmax(path.mean(0), axis=0)
        W, _ = _solve(stats, train, cands, chosen[j], fit_intercept, mult, xp, chunk_size,
                      final)  # fmt: skip
        r[j] = _held_out_r(stats, test, W)
    return r, chosen
