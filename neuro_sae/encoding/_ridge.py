"""Ridge from sufficient statistics: one eigendecomposition serves every alpha.

All functions work on a batch ``B`` of independent designs with ``P`` predictors and
``C`` outputs: ``G`` (B, P, P), ``H`` (B, P, C). Alphas are raw (added to the diagonal of
the centred lagged covariance) and may differ per design: ``alphas`` (B, A).

The solver runs on numpy arrays by default; :func:`_backend` returns a namespace that
runs the same code on torch tensors (float64, CPU or CUDA). torch is imported lazily.
"""

from __future__ import annotations

import numpy as np

# Relative grid used when alphas=None: multiples of the mean eigenvalue of X^T X
DEFAULT_ALPHA_GRID = np.logspace(-4, 4, 9)


class _NumpyBackend:
    """The array operations the solver needs, on numpy (float64)."""

    name = "numpy"

    @staticmethod
    def asarray(a):
        return np.asarray(a, dtype=np.float64)

    @staticmethod
    def to_numpy(a):
        return np.asarray(a)

    @staticmethod
    def eigh(G):
        s, V = np.linalg.eigh(G)
        return np.maximum(s, 0.0), V

    einsum = staticmethod(np.einsum)
    where = staticmethod(np.where)
    sqrt = staticmethod(np.sqrt)

    @staticmethod
    def empty(shape):
        return np.empty(shape)


class _TorchBackend:
    """The same operations on torch tensors (float64) on one device."""

    name = "torch"

    def __init__(self, device):
        import torch

        from ..utils import torch_device

        self.torch = torch
        self.device = torch_device(device)

    def asarray(self, a):
        return self.torch.as_tensor(np.asarray(a), dtype=self.torch.float64, device=self.device)

    @staticmethod
    def to_numpy(a):
        return a.detach().cpu().numpy()

    def eigh(self, G):
        s, V = self.torch.linalg.eigh(G)
        return self.torch.clamp(s, min=0.0), V

    def einsum(self, spec, *ops):
        return self.torch.einsum(spec, *ops)

    def where(self, cond, a, b):
        t = self.torch
        a = a if t.is_tensor(a) else t.tensor(a, dtype=t.float64, device=self.device)
        b = b if t.is_tensor(b) else t.tensor(b, dtype=t.float64, device=self.device)
        return t.where(cond, a, b)

    def sqrt(self, a):
        return self.torch.sqrt(a)

    def empty(self, shape):
        return self.torch.empty(shape, dtype=self.torch.float64, device=self.device)


NUMPY = _NumpyBackend()


def _backend(device):
    """numpy for ``"cpu"``; torch for ``"cuda"``, ``"cuda:N"`` or ``"torch-cpu"``."""
    if device == "cpu":
        return NUMPY
    return _TorchBackend(device)


def _eig(G):
    """Batched eigendecomposition of symmetric PSD matrices (negative roundoff clipped)."""
    return NUMPY.eigh(G)


def _safe_r(num, den, yy, xp=NUMPY):
    """Pearson r = num / sqrt(den * yy), 0 where a variance vanishes."""
    prod = den * yy
    ok = prod > 0
    return xp.where(ok, num / xp.sqrt(xp.where(ok, prod, 1.0)), 0.0)


def _chunks(n, chunk_size):
    """Slices of at most ``chunk_size`` (all when None) covering ``range(n)``."""
    step = n if not chunk_size else int(chunk_size)
    return [slice(i, min(i + step, n)) for i in range(0, max(n, 1), max(step, 1))]


# up to this many weights (alphas x designs x predictors x outputs) r_path scores
# every alpha in one vectorised pass
_VECTOR_ALPHAS = 1 << 16


class _Fold:
    """A training fit in the eigenbasis, scoring held-out statistics for any alpha.

    ``chunk_size`` bounds the temporaries of scoring to (B, P, chunk_size) outputs.
    """

    def __init__(self, G_train, H_train, xp=NUMPY, chunk_size=None):
        self.xp = xp
        self.chunk_size = chunk_size
        self.s, self.V = xp.eigh(G_train)
        self.Q = self.V.swapaxes(-1, -2) @ H_train  # (B, P, C)

    def held_out(self, G_test, H_test):
        """Project centred held-out statistics into the training eigenbasis."""
        Vt = self.V.swapaxes(-1, -2)
        return Vt @ G_test @ self.V, Vt @ H_test

    def r_path(self, G_test, H_test, yy_test, alphas):
        """Held-out Pearson r for every alpha, shape (A, B, C), without predicting."""
        xp = self.xp
        M, a = self.held_out(G_test, H_test)
        C = self.Q.shape[2]
        A, (B, P, _) = alphas.shape[1], self.Q.shape
        out = xp.empty((A, B, C))
        if self.chunk_size is None and A * B * P * C <= _VECTOR_ALPHAS:
            # small problems: every alpha at once (fewer calls, same arithmetic)
            Wt = self.Q / (self.s + alphas.T[:, :, None])[..., None]  # (A, B, P, C)
            num = xp.einsum("abpc,bpc->abc", Wt, a)
            den = xp.einsum("abpc,abpc->abc", Wt, M @ Wt)
            return _safe_r(num, den, yy_test, xp)
        for sl in _chunks(C, self.chunk_size):
            Q, ac, yc = self.Q[:, :, sl], a[:, :, sl], yy_test[..., sl]
            for ai in range(alphas.shape[1]):
                Wt = Q / (self.s + alphas[:, ai : ai + 1])[:, :, None]
                num = xp.einsum("bpc,bpc->bc", Wt, ac)
                den = xp.einsum("bpc,bpc->bc", Wt, M @ Wt)
                out[ai, :, sl] = _safe_r(num, den, yc, xp)
        return out

    def weights_eig(self, alpha_bc):
        """Weights in the eigenbasis for one alpha per (design, output): (B, P, C)."""
        return self.Q / (self.s[:, :, None] + alpha_bc[:, None, :])

    def weights(self, alpha_bc):
        """Weights (B, P, C) for one alpha per (design, output)."""
        return self.V @ self.weights_eig(alpha_bc)

    def r_at(self, G_test, H_test, yy_test, alpha_bc):
        """Held-out r (B, C) with one alpha per (design, output)."""
        xp = self.xp
        M, a = self.held_out(G_test, H_test)
        Wt = self.weights_eig(alpha_bc)
        num = xp.einsum("bpc,bpc->bc", Wt, a)
        den = xp.einsum("bpc,bpc->bc", Wt, M @ Wt)
        return _safe_r(num, den, yy_test, xp)


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
