"""Rank-truncated refit null: each feature's lag space reduced to a common basis.

A band-limited feature (SAE features on the EEG clock are band-passed like the EEG)
has a lag covariance ``X^T X`` of low effective rank: about twice the bandwidth times
the lag span, plus a few. The refit null of such a feature can run in the span of
the top ``q`` eigenvectors ``Q`` (n_lags x q) of its globally centred total lag
covariance ``M = sum_t (x_t - mean)(x_t - mean)^T`` (all runs): every fold's ridge
is solved within ``span(Q)``, i.e. the weights are restricted to ``w = Q w_q``.

Error bound (used to choose ``q``). Every fold's training gram ``G_t`` and held-out
gram ``G_k`` are scatter matrices of a subset of the samples about that subset's
own mean, so ``G_t <= M`` and ``G_k <= M`` (Loewner order): for ``P_perp`` the
projector onto the discarded eigenvectors, ``||X_t P_perp||^2`` and
``||X_k P_perp||^2`` are at most ``lam_perp``, the discarded eigenvalue mass. From
the normal equations ``P_perp (G_t + a I) w = P_perp X_t^T y_t`` the exact weights
have ``||P_perp w|| <= sqrt(lam_perp) ||y_t|| / a``, so the part of the held-out
prediction that lies outside ``span(Q)`` is at most ``lam_perp ||y_t|| / a``; its
coupling back into ``span(Q)`` changes the retained weights' prediction by at most
``sqrt(lam_1 / (4 a)) lam_perp ||y_t|| / a``. Hence
``||X_k w - X_k Q w_q|| <= (1 + sqrt(lam_1 / (4 a))) (lam_perp / a) ||y_t||``:
``O(lam_perp / a)`` of the training EEG's norm. ``q`` is the smallest rank with
``lam_perp <= rank_tol * min(a_min, lam_1)`` (``a_min`` the smallest alpha any fold
uses for the feature, ``lam_1`` the top eigenvalue; the ``lam_1`` term keeps the
truncation relative to the feature's own scale when the alphas are large and the
ridge tends to the cross-correlation itself). When nothing can be dropped ``q`` is
``n_lags`` and the exact path runs.
"""

from __future__ import annotations

import numbers

import numpy as np

from ..encoding import eigh_psd as _eig


def _check_rank_tol(rank_tol):
    """None or a float in (0, 1)."""
    if rank_tol is None:
        return None
    if (
        isinstance(rank_tol, bool)
        or not isinstance(rank_tol, (numbers.Real, np.floating, np.integer))
        or not np.isfinite(rank_tol)
        or not 0 < rank_tol < 1
    ):
        raise ValueError(
            f"rank_tol must be None (exact refit) or a float in (0, 1), e.g. 1e-6 (the "
            f"discarded lag-covariance mass relative to the smallest alpha), got "
            f"{rank_tol!r}."
        )
    return float(rank_tol)


def _lowrank_basis(G_runs, sx_runs, n_runs, alpha_f, rank_tol):
    """Common lag basis ``Q`` (L, q) of one feature and the channels that use it.

    ``G_runs`` (R, L, L) uncentred lagged grams, ``sx_runs`` (R, L) lagged sums,
    ``alpha_f`` (R, C) the alphas the folds use. A channel may use rank ``q`` when
    the discarded mass is at most ``rank_tol * min(a_c, lam_1)``, ``a_c`` its
    smallest alpha over the folds; ``q`` minimises the estimated work relative to
    the exact path, ``n_low * (0.25 + 0.75 q / L) + (C - n_low)`` plus ``0.1 C`` for
    splitting the channels (measured: the gathers of the shifted windows cost about
    a quarter of the exact path whatever ``q``), and the exact path runs unless this
    is below ``0.9 C``. Returns ``(Q, low)`` with ``low`` a boolean mask (C,), or
    ``(None, None)``.
    """
    n_tot = float(np.sum(n_runs))
    sx_tot = sx_runs.sum(0)
    M = G_runs.sum(0) - np.outer(sx_tot, sx_tot) / n_tot
    lam, V = _eig(M)  # ascending
    lam = np.clip(lam, 0.0, None)
    L = lam.size
    a_c = np.min(alpha_f, axis=0)  # (C,)
    C = a_c.size
    if lam[-1] <= 0:  # an all-zero feature: nothing to fit, any basis is exact
        return V[:, -1:], np.ones(C, bool)
    limit = rank_tol * np.minimum(a_c, lam[-1])  # (C,)
    tail = np.cumsum(lam)[:-1]  # tail[i]: mass of the i + 1 smallest eigenvalues
    n_low = np.sum(limit[np.newaxis, :] >= tail[:, np.newaxis], axis=1)  # (L - 1,)
    q = L - 1 - np.arange(L - 1)  # rank after dropping i + 1
    cost = n_low * (0.25 + 0.75 * q / L) + (C - n_low) + 0.1 * C * (n_low < C)
    best = int(np.argmin(cost))
    if n_low[best] == 0 or cost[best] >= 0.9 * C:
        return None, None
    low = limit >= tail[best]
    return V[:, best + 1 :][:, ::-1], low  # (L, q), descending eigenvalues


def _project_edges(Q, edges):
    """Projected edge designs: ``(Q^T T_pos, Q^T T_neg)``, shapes (q, n_pos), (q, n_neg)."""
    return Q.T @ edges[0], Q.T @ edges[1]


def _projected_operator(Q, edges_q, dtype):
    """One operator ``[Q^T, -Q^T T_neg, -Q^T T_pos]`` of shape (q, L + n_neg + n_pos).

    Applied to the stacked windows ``[table rows (d - s) mod n; EEG rows (m - s) mod
    n for m = -n_neg ... n_pos - 1]`` it gives the projected zero-padded
    cross-products of every shift (see :func:`._refit._shifted_cross`).
    """
    return np.ascontiguousarray(
        np.concatenate([Q.T, -edges_q[1], -edges_q[0]], axis=1), dtype=dtype
    )


def _projected_cross(table, y, op, delays, offsets, shifts, buf):
    """Projected cross-products of each shift, shape (q, P, C).

    ``offsets`` = ``-n_neg ... n_pos - 1``; ``buf`` a flat work array of at least
    ``(L + len(offsets)) * P * C`` elements in the tables' dtype.
    """
    n_times = y.shape[0]
    L = len(delays)
    P = shifts.shape[0]
    C = y.shape[1]
    B = buf[: (L + len(offsets)) * P * C].reshape(L + len(offsets), P, C)
    np.take(table, (delays[:, np.newaxis] - shifts[np.newaxis, :]) % n_times, axis=0,
            out=B[:L])  # fmt: skip
    if len(offsets):
        np.take(y, (offsets[:, np.newaxis] - shifts[np.newaxis, :]) % n_times, axis=0,
                out=B[L:])  # fmt: skip
    return (op @ B.reshape(B.shape[0], -1)).reshape(op.shape[0], P, C)
