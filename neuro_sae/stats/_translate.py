"""Refit null in a lag basis of whole-sample translates of one kernel.

When every column of the basis ``B`` (n_delays, q) is the same kernel ``k`` (K taps)
placed at rows ``a_b ... a_b + K - 1`` (as ``lag_basis(..., placement="inside")``
builds it), the basis design of a run is a filter of the feature: column ``b`` of
``X_lag @ B`` is ``x_k(t - d_{a_b})`` with ``x_k = k * x`` (zero-padded at the run's
start). Its zero-padded cross-product with the EEG rolled by ``s`` is then

``H_b(s) = f[(d_{a_b} - s) mod n] - sum_m E[b, m] y[(m - s) mod n]``

with ``f`` the circular cross-correlation of the *filtered* feature with the EEG (one
FFT per run, the kernel's spectrum multiplied into the feature's) and ``E = B^T T``
the basis-projected edge design of :func:`._refit._edge_design` (the products that
the zero-padded lags drop at the run's edges). So a shift costs ``q`` table reads
per channel instead of ``n_delays`` plus a ``q x n_delays`` projection, and the EEG
windows of the edge terms do not depend on the feature: they are gathered once per
run for all features and applied by one matrix product per feature.
"""

from __future__ import annotations

import numpy as np
import scipy.fft as sfft

# EEG edge windows shared by all features are kept when they fit in this many bytes;
# otherwise every feature gathers its own (the same numbers, more memory traffic).
WINDOW_BYTES = 768e6


def _translate_structure(basis, rtol=1e-12):
    """``(kernel, starts)`` when every column of ``basis`` is the same kernel at a
    different whole-sample position, else ``None``.

    ``kernel`` (K,) the taps from the first to the last non-zero row of column 0;
    ``starts`` (q,) the row of each column's first tap.
    """
    if basis is None or basis.size == 0:
        return None
    L, q = basis.shape
    scale = np.max(np.abs(basis))
    if scale == 0:
        return None
    nz = np.nonzero(np.abs(basis[:, 0]) > rtol * scale)[0]
    kernel = basis[nz[0] : nz[-1] + 1, 0]
    K = kernel.size
    starts = np.empty(q, dtype=np.intp)
    for b in range(q):
        nzb = np.nonzero(np.abs(basis[:, b]) > rtol * scale)[0]
        if nzb.size == 0:
            return None
        a = nzb[0]
        if a + K > L or nzb[-1] >= a + K:
            return None
        col = np.zeros(L)
        col[a : a + K] = kernel
        if np.max(np.abs(col - basis[:, b])) > rtol * scale:
            return None
        starts[b] = a
    return kernel, starts


def _kernel_spacing(starts):
    """The common spacing (samples) of the kernels' first rows, or 0 when uneven or
    a single kernel."""
    spacing = np.unique(np.diff(starts))
    return int(spacing[0]) if len(spacing) == 1 else 0


def _kernel_spectrum(kernel, n):
    """rfft of the kernel zero-padded to ``n`` samples (circular convolution)."""
    return sfft.rfft(kernel, n=n)


def _filtered_table(x, spec_T, n, khat):
    """Circular cross-correlation of the kernel-filtered feature with the centred EEG.

    ``x`` (n,) float64, ``spec_T`` (C, n // 2 + 1) the EEG spectrum (channels first),
    ``khat`` the kernel's spectrum; returns ``f`` (C, n) in the EEG spectrum's real
    dtype with ``f[c, m] = sum_v x_k[v] y[(v + m) mod n, c]``.
    """
    xs = np.conj(sfft.rfft(x) * khat).astype(spec_T.dtype)
    return sfft.irfft(spec_T * xs[np.newaxis, :], n=n, axis=-1)


class _Decimated:
    """Every ``step``-th entry of the filtered table, from a spectrum folded ``step``
    times: an inverse FFT of ``n / step`` points instead of ``n``.

    When every shift of a run is a multiple of the kernels' spacing ``step`` (and
    ``step`` divides the run's length), every table entry the basis reads,
    ``(d_b - s) mod n`` with ``d_b = d_0 + b * step``, lies on the residue class
    ``rho = d_0 mod step``: ``f[rho + step * m]`` is the inverse FFT over ``N = n /
    step`` points of ``A[k] = (1 / step) sum_j F[k + j N] w^((k + j N) rho)``
    (``F`` the table's full spectrum, ``w = exp(2 pi i / n)``). The EEG side of the
    fold is computed once per run; per feature it costs one pass over the spectrum.
    """

    def __init__(self, spec_T, n, step, rho):
        # spec_T (C, n // 2 + 1) EEG spectrum; full-spectrum index and conjugation of
        # every folded bin k + j N (k = 0 ... N / 2, j = 0 ... step - 1)
        N = n // step
        f = np.arange(N // 2 + 1)[np.newaxis, :] + N * np.arange(step)[:, np.newaxis]
        self.upper = f > n // 2
        self.idx = np.where(self.upper, n - f, f)  # (step, K)
        phase = np.exp(2j * np.pi * f * rho / n) / step
        full = spec_T[:, self.idx]  # (C, step, K)
        full = np.where(self.upper[np.newaxis], np.conj(full), full)
        self.sy = np.ascontiguousarray((full * phase[np.newaxis]).transpose(1, 0, 2)).astype(
            spec_T.dtype
        )  # (step, C, K)
        self.n, self.N, self.step, self.rho = n, N, step, rho

    def table(self, xk_spec):
        """Decimated table (C, N) (column ``m`` = position ``rho + step * m``) from the
        filtered feature's rfft ``xk_spec`` (n // 2 + 1,)."""
        xs = xk_spec[self.idx]
        xs = np.where(self.upper, xs, np.conj(xs)).astype(self.sy.dtype)  # conj(X_full)
        A = self.sy[0] * xs[0]
        for j in range(1, self.step):
            A += self.sy[j] * xs[j]
        return sfft.irfft(A, n=self.N, axis=-1)


def _edge_windows(y, offsets, shifts):
    """EEG samples ``(m - s) mod n`` for ``m`` in ``offsets``, per shift: (C, M, P)."""
    n = y.shape[0]
    idx = (offsets[:, np.newaxis] - shifts[np.newaxis, :]) % n  # (M, P)
    return np.take(np.ascontiguousarray(y.T), idx, axis=1)


def _translate_cross(table, first_delays, E, W, y, offsets, shifts, dec=None,
                     max_bytes=64e6):  # fmt: skip
    """Basis cross-products of every shift, shape (C, q, P).

    ``table``: the filtered table (C, n) from :func:`_filtered_table`, or with ``dec``
    (a :class:`_Decimated`) its decimated columns (C, n / step); ``first_delays``
    (q,) the delay of each column's first tap; ``E`` (q, M) the projected edge
    operator (``-B^T T``); ``W`` (C, M, P) the EEG edge windows from
    :func:`_edge_windows` or ``None`` (gathered here from the centred EEG ``y`` in
    blocks of at most ``max_bytes``); ``offsets`` (M,) the offsets of the edge terms.
    """
    q, P = len(first_delays), len(shifts)
    if dec is not None:
        m0 = ((first_delays[0] - shifts) % dec.n - dec.rho) // dec.step  # (P,)
        cols = (m0[np.newaxis, :] + np.arange(q)[:, np.newaxis]) % dec.N  # (q, P)
    else:
        cols = (first_delays[:, np.newaxis] - shifts[np.newaxis, :]) % table.shape[1]
    out = np.take(table, cols, axis=1)  # (C, q, P)
    M = len(offsets)
    if not M:
        return out
    step = P if W is not None else max(1, int(max_bytes // (M * out.shape[0] * out.itemsize)))
    for p0 in range(0, P, step):
        ps = slice(p0, min(p0 + step, P))
        Wb = W if W is not None else _edge_windows(y, offsets, shifts[ps])
        out[:, :, ps] += np.matmul(E, Wb)  # one (q x M) @ (M x P) product per channel
    return out
