"""Ridge from sufficient statistics: one eigendecomposition serves every alpha.

All functions work on a batch ``B`` of independent designs with ``P`` predictors and
``C`` outputs: ``G`` (B, P, P), ``H`` (B, P, C). Alphas are raw (added to the diagonal of
the centred lagged covariance) and may differ per design: ``alphas`` (B, A).
"""

from __future__ import annotations

import numpy as np

# Relative grid used when alphas=None: multiples of the mean eigenvalue of X^T X
DEFAULT_ALPHA_GRID = np.logspace(-4, 4, 9)


def _eig(G):
    """Batched eigendecomposition of symmetric PSD matrices (negative roundoff clipped)."""
    s, V = np.linalg.eigh(G)
    return np.maximum(s, 0.0), V


def _safe_r(num, den, yy):
    """Pearson r = num / sqrt(den * yy), 0 where a variance vanishes."""
    prod = den * yy
    ok = prod > 0
    return np.where(ok, num / np.sqrt(np.where(ok, prod, 1.0)), 0.0)


class _Fold:
    """A training fit in the eigenbasis, scoring held-out statistics for any alpha."""

    def __init__(self, G_train, H_train):
        self.s, self.V = _eig(G_train)
        self.Q = self.V.transpose(0, 2, 1) @ H_train  # (B, P, C)

    def held_out(self, G_test, H_test):
        """Project centred held-out statistics into the training eigenbasis."""
        Vt = self.V.transpose(0, 2, 1)
        return Vt @ G_test @ self.V, Vt @ H_test

    def r_path(self, G_test, H_test, yy_test, alphas):
        """Held-out Pearson r for every alpha, shape (A, B, C), without predicting."""
        M, a = self.held_out(G_test, H_test)
        out = np.empty((alphas.shape[1],) + self.Q.shape[::2])
        for ai in range(alphas.shape[1]):
            Wt = self.Q / (self.s + alphas[:, ai : ai + 1])[:, :, np.newaxis]
            num = np.einsum("bpc,bpc->bc", Wt, a)
            den = np.einsum("bpc,bpc->bc", Wt, M @ Wt)
            out[ai] = _safe_r(num, den, yy_test)
        return out

    def weights_eig(self, alpha_bc):
        """Weights in the eigenbasis for one alpha per (design, output): (B, P, C)."""
        return self.Q / (self.s[:, :, np.newaxis] + alpha_bc[:, np.newaxis, :])

    def weights(self, alpha_bc):
        """Weights (B, P, C) for one alpha per (design, output)."""
        return self.V @ self.weights_eig(alpha_bc)

    def r_at(self, G_test, H_test, yy_test, alpha_bc):
        """Held-out r (B, C) with one alpha per (design, output)."""
        M, a = self.held_out(G_test, H_test)
        Wt = self.weights_eig(alpha_bc)
        num = np.einsum("bpc,bpc->bc", Wt, a)
        den = np.einsum("bpc,bpc->bc", Wt, M @ Wt)
        return _safe_r(num, den, yy_test)


def _default_alphas(G_total, grid=DEFAULT_ALPHA_GRID):
    """Per-design raw alphas: the relative grid times the mean eigenvalue of X^T X."""
    scale = np.trace(G_total, axis1=-2, axis2=-1) / G_total.shape[-1]
    scale = np.where(scale > 0, scale, 1.0)
    return scale[:, np.newaxis] * grid[np.newaxis, :]


def _check_alphas(alphas):
    from ..utils import check_array

    arr = check_array(alphas, "alphas", ndim=(0, 1))
    arr = np.atleast_1d(arr)
    if arr.size == 0 or np.any(arr <= 0):
        raise ValueError(
            f"alphas must be one or more positive numbers, got {alphas!r}; use e.g. "
            "alphas=np.logspace(-1, 5, 13) (raw, added to the diagonal of X^T X) or None."
        )
    return arr
