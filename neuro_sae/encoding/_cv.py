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


# flop-equivalent of one call from Python into LAPACK (~10 us at ~25 GFLOP/s)
_CALL = 2.5e5


def _solver_costs(n_pred, n_out, n_alphas, n_folds=1):
    """Estimated costs of one fold's alpha path in flops: ``(eigh, cholesky)``.

    Calibrated on the measured rates (one BLAS thread): an eigendecomposition with its
    vectors takes about the time of ``3 P^3 + 400 P^2`` GEMM flops (``_eigh_cost``).
    ``"eigh"``, fold by fold (``P >= _EIG_LOOP_MIN``): the eigendecomposition, the
    held-out factor in its basis (``8 P^3 / 3``), the projections (``4 P^2 C``) and per
    alpha one triangular product (``P^2 C``); with fewer predictors all folds in one
    batched call (the held-out gram in the basis ``4 P^3``, per alpha ``2 P^2 C`` and
    one call per alpha for all folds). ``"cholesky"``: the held-out factor (``P^3 /
    3``), per alpha a factorisation (``P^3 / 3``), the solve (``2 P^2 C``), the
    triangular product (``P^2 C``) and the calls into LAPACK.
    """
    P, C, A = float(n_pred), float(n_out), float(n_alphas)
    if n_pred >= _EIG_LOOP_MIN:
        eig = _eigh_cost(P) + 8 * P**3 / 3 + 4 * P**2 * C + A * P**2 * C
    else:
        eig = _eigh_cost(P) + 4 * P**3 + 4 * P**2 * C + 2 * A * P**2 * C + A * _CALL / n_folds
    chol = P**3 / 3 + A * (P**3 / 3 + 3 * P**2 * C + _CALL)
    return eig, chol


def _eigh_cost(P):
    """An eigendecomposition with vectors in GEMM-flop time (measured: 3.0 P^3 at P = 656,
    6 P^3 at P = 128 on one OpenBLAS thread)."""
    return 3 * P**3 + 400 * P**2


def _choose_solver(solver, n_pred, n_out, n_alphas, xp=NUMPY, n_folds=1):
    """The exact route of a fold's alpha path: ``"eigh"`` or ``"cholesky"``."""
    if solver != "auto":
        return solver
    if xp is not NUMPY:  # the torch backend runs the eigendecomposition route
        return "eigh"
    eig, chol = _solver_costs(n_pred, n_out, n_alphas, n_folds)
    return "cholesky" if chol < eig else "eigh"


_FOLD_BYTES = 1 << 25  # stacked per-fold grams are built for ~32 MB of folds at a time
# From this many predictors the eigh route runs fold by fold with triangular held-out
# products (_eig_path); below, all folds in one batched call (_Fold: fewer calls)
_EIG_LOOP_MIN = 96


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
        Gk, Hk, sxk, syk, yyk, nk = (a[idx] for a in arrays)  # copies
    else:
        Gk, Hk, sxk, syk, yyk, nk = (
            np.stack([a[te].sum(0) for te in tests]) for a in arrays
        )
    train, test = folds[0]  # the runs split by the folds: all, or an outer train
    if len(train) + len(test) == stats.n_runs:
        G, H, sx, sy, _, n = stats._tot
    else:
        G, H, sx, sy, _, n = stats.raw(np.concatenate((train, test)))
    G, H, sx = G[0], H[0], sx[0]
    Gt, Ht, sxt = G - Gk, H - Hk, sx - sxk
    P = G.shape[-1]
    if P < _EIG_LOOP_MIN:  # small grams: one broadcast operation
        if fit_intercept:
            Gt -= sxt[:, :, None] * (sxt / (n - nk)[:, None])[:, None, :]
        Gk -= sxk[:, :, None] * (sxk / nk[:, None])[:, None, :]
    else:  # rank-one updates in place (BLAS ger on the symmetric grams, whose
        # C-ordered memory is their own Fortran order; Gk is a copy of the run sums)
        ger = sla.blas.get_blas_funcs("ger", (Gt,))
        for j in range(len(folds)):
            if fit_intercept:
                ger(-1.0 / (n - nk[j]), sxt[j], sxt[j], a=Gt[j].T, overwrite_a=1)
            ger(-1.0 / nk[j], sxk[j], sxk[j], a=Gk[j].T, overwrite_a=1)
    if fit_intercept:
        Ht -= sxt[:, :, None] * ((sy - syk) / (n - nk)[:, None])[:, None, :]
    Hk = Hk - sxk[:, :, None] * (syk / nk[:, None])[:, None, :]
    yyk = yyk - syk**2 / nk[:, None]
    return Gt, Ht, Gk, Hk, yyk


def _lapack(G):
    """LAPACK/BLAS routines of the routes, for ``G``'s dtype (all from SciPy's library:
    alternating with NumPy's, a second OpenBLAS whose idle threads spin, made each call
    10x slower on two threads)."""
    potrf, potrs = sla.lapack.get_lapack_funcs(("potrf", "potrs"), (G,))
    trmm, syrk, gemm = sla.blas.get_blas_funcs(("trmm", "syrk", "gemm"), (G,))
    return potrf, potrs, trmm, syrk, gemm


def _ridge_factor(potrf, G, alpha, S):
    """Lower Cholesky factor of ``G + alpha I``, built in the buffer ``S`` (P, P)."""
    np.copyto(S, G)  # symmetric: the C-ordered copy is its own F-order
    S.ravel()[:: S.shape[0] + 1] += alpha
    fac, info = potrf(S.T, lower=1, overwrite_a=1, clean=0)
    if info:
        raise np.linalg.LinAlgError(
            f"The covariance plus alpha={alpha:.3g} is not positive definite (rounding "
            "with a tiny alpha); use solver='eigh' or larger alphas."
        )
    return fac


def _chol_path(Gt, Ht, Gk, Hk, yyk, alphas, chunk_size=None):
    """Held-out r (F, A, C) of folds solved per alpha by Cholesky (LAPACK potrf/potrs).

    Per fold: the held-out gram's factor ``Gk = Lk Lk^T`` (once), then per alpha one
    factorisation and solve, and the held-out sum of squares ``w^T Gk w = ||Lk^T w||^2``
    as a triangular product (BLAS trmm, half a GEMM's flops). Cheaper than one
    eigendecomposition serving every alpha when the alphas are few and the predictors
    many; the same numbers up to rounding.
    """
    F, P, C = Ht.shape
    A = alphas.shape[1]
    potrf, potrs, trmm, _, _ = _lapack(Gt)
    out = np.empty((F, A, C))
    chunks = _chunks(C, chunk_size)
    S = np.empty((P, P))  # reused buffers (no fresh pages per alpha)
    Wbuf = np.empty((P, max(sl.stop - sl.start for sl in chunks)), order="F")
    for j in range(F):
        Lk, info = potrf(Gk[j], lower=1, clean=0)
        Hf = np.asfortranarray(Ht[j])
        for a in range(A):
            fac = _ridge_factor(potrf, Gt[j], alphas[j, a], S)
            for sl in chunks:
                W = Wbuf[:, : sl.stop - sl.start]
                np.copyto(W, Hf[:, sl])
                W = potrs(fac, W, lower=1, overwrite_b=1)[0]
                num = np.einsum("pc,pc->c", W, Hk[j, :, sl])
                out[j, a, sl] = _safe_r(num, _held_out_ss(W, Lk, info, Gk[j], trmm),
                                        yyk[j, sl])  # fmt: skip
    return out


def _held_out_ss(W, Lk, info, Gk, trmm, lower=1):
    """Sums of squares ``w^T Gk w`` (C,) of the columns of ``W`` (P, C).

    Through the triangular factor (``Gk = Lk Lk^T`` for ``lower``, ``Lk^T Lk`` otherwise)
    when it exists (``info == 0``): ``||Lk^T w||^2`` by BLAS trmm (``W`` overwritten when
    Fortran-ordered); else the full product.
    """
    if info == 0:
        U = trmm(1.0, Lk, W, lower=lower, trans_a=lower, overwrite_b=1)
        return np.einsum("pc,pc->c", U, U)
    return np.einsum("pc,pc->c", W, Gk @ W)  # a singular held-out gram


def _eig_path(Gt, Ht, Gk, Hk, yyk, alphas, chunk_size=None):
    """Held-out r (F, A, C) of folds from one eigendecomposition per fold (numpy).

    ``Gt = V diag(s) V^T``; per alpha the weights in the eigenbasis are ``Q / (s +
    alpha)`` with ``Q = V^T Ht`` (no solve). The held-out sum of squares ``wt^T M wt``
    with ``M = V^T Gk V = R^T R``: ``R`` is the Cholesky factor of ``B^T B`` with ``B =
    Lk^T V`` (``Gk = Lk Lk^T``; BLAS trmm and syrk), so every alpha costs one
    triangular product (trmm, ``P^2 C``) instead of a full one. Falls back to ``M``
    itself when ``Gk`` is singular.
    """
    F, P, C = Ht.shape
    A = alphas.shape[1]
    potrf, _, trmm, syrk, gemm = _lapack(Gt)  # no NumPy BLAS call in the loop
    out = np.empty((F, A, C))
    chunks = _chunks(C, chunk_size)
    buf = np.empty(A * max(sl.stop - sl.start for sl in chunks) * P)  # reused
    for j in range(F):
        s, V = sla.eigh(Gt[j], driver="evd", check_finite=False)
        np.maximum(s, 0.0, out=s)
        Q, a_k = gemm(1.0, V, Ht[j], trans_a=1), gemm(1.0, V, Hk[j], trans_a=1)
        Lk, info = potrf(Gk[j], lower=1, clean=0)
        M = None
        if info == 0:  # B^T = V^T Lk (V's C order is V^T's Fortran order: no copy)
            Bt = trmm(1.0, Lk, V.T, side=1, lower=1)
            R, info = potrf(syrk(1.0, Bt, lower=0), lower=0, overwrite_a=1, clean=0)
        if info:
            M = gemm(1.0, V, gemm(1.0, Gk[j], V), trans_a=1)
        for sl in chunks:  # every alpha at once: columns a * c + i of (P, A * c)
            c = sl.stop - sl.start
            Wt = buf[: A * c * P].reshape(A, c, P)
            np.divide(Q[:, sl].T[np.newaxis], (s + alphas[j][:, np.newaxis])[:, np.newaxis],
                      out=Wt)  # fmt: skip
            num = np.einsum("aip,pi->ai", Wt, a_k[:, sl])
            W = Wt.reshape(A * c, P).T  # Fortran-ordered view
            den = _held_out_ss(W, R if M is None else None, info, M, trmm, lower=0)
            out[j, :, sl] = _safe_r(num, den.reshape(A, c), yyk[j, sl])
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
    if k == len(runs):  # leave-one-run-out
        return [(runs[keep], runs[i : i + 1])
                for i, keep in enumerate(~np.eye(k, dtype=bool))]  # fmt: skip
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
    step = 1 if P >= _EIG_LOOP_MIN else max(1, _FOLD_BYTES // (8 * P * P))
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
            elif xp is NUMPY and P >= _EIG_LOOP_MIN:
                r = _eig_path(Gt_, Ht_, Gk_, Hk_, yyk, alphas, chunk_size)
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
    """Estimated costs of the final fit in flops (see :func:`_solver_costs`).

    ``"eigh"``: one eigendecomposition (``_eigh_cost``) and two projections (``4 P^2 C``).
    ``"cholesky"``: one factorisation and call per distinct alpha and the solves.
    """
    P, C = float(n_pred), float(n_out)
    return _eigh_cost(P) + 4 * P**2 * C, n_distinct * (P**3 / 3 + _CALL) + 2 * P**2 * C


def _chol_weights(G, H, alpha):
    """Ridge weights (P, C) with ``alpha[c]`` per channel: one Cholesky per distinct alpha."""
    potrf, potrs = _lapack(G)[:2]
    W = np.empty(H.shape)
    S = np.empty(G.shape)
    for value in np.unique(alpha):
        chans = np.flatnonzero(alpha == value)
        fac = _ridge_factor(potrf, G, value, S)
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
