"""Torch backend of the refit circular-shift null (GPU, or torch on the CPU for tests).

The same algorithm as :mod:`._refit` (read its docstring first): per feature, one
circular cross-correlation table per run (``torch.fft.rfft`` / ``irfft``), the
zero-padded lagged cross-products of every shift gathered from it with the exact
edge correction, and per fold one batched matrix product of the (2L x L) operator
``K = [B; U]`` with the cross-products of all permutations of a block. The
shift-invariant per-fold operators (eigendecompositions of 78 x 78 grams) are built
in float64 on the CPU by :class:`._refit._FeatureFolds` and gathered per (feature,
channel) on the device. Several features run per call (a leading batch axis), so
the device sees large batched products.

torch is imported inside the functions: ``neuro_sae.stats`` does not import torch (and
this module's name avoids "torch", which tests/test_structure.py looks for in imports).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ..encoding import univariate_run_stats as _univariate_run_stats
from ..utils import torch_device
from ._refit import _edge_design, _FeatureFolds, _loro


def _dense(x):
    return x.toarray() if sp.issparse(x) else np.asarray(x, dtype=np.float64)


class _TorchEEG:
    """Shift-invariant EEG quantities on the device (channels first)."""

    def __init__(self, Y_runs, torch, dev, tdt, np_dtype, folds=None):
        self.folds = _loro(len(Y_runs)) if folds is None else folds
        self.n = [y.shape[0] for y in Y_runs]
        self.sy = np.stack([y.sum(0) for y in Y_runs])
        yc = [np.asarray(y - y.mean(0), dtype=np_dtype) for y in Y_runs]
        self.yy = np.stack([np.einsum("tc,tc->c", y, y, dtype=np.float64) for y in yc])
        self.yc = [torch.as_tensor(np.ascontiguousarray(y.T), device=dev) for y in yc]  # (C, n)
        self.spec = [torch.fft.rfft(y, dim=-1) for y in self.yc]  # (C, n_freq)
        self.yy_t = torch.as_tensor(self.yy, device=dev)  # (R, C) float64
        self.tdt = tdt


def _batch_tables(torch, X_runs, eeg, fs, delays, dev):
    """Per run: table (B, C, n), edges (T_pos (B, L, n_pos), T_neg (B, L, n_neg)); G, sx."""
    G, sx, tables, edges = [], [], [], []
    for j, x_run in enumerate(X_runs):
        x = _dense(x_run[:, fs])  # (n, B)
        G_j, _, sx_j = _univariate_run_stats(x, np.zeros((x.shape[0], 0)), delays)
        G.append(G_j)
        sx.append(sx_j)
        xt = torch.as_tensor(np.ascontiguousarray(x.T), device=dev, dtype=eeg.tdt)
        xspec = torch.conj(torch.fft.rfft(xt, dim=-1))  # (B, n_freq)
        prod = eeg.spec[j][None] * xspec[:, None]  # (B, C, n_freq)
        tables.append(torch.fft.irfft(prod, n=eeg.n[j], dim=-1))
        ed = [_edge_design(x[:, b], delays) for b in range(x.shape[1])]
        edges.append(
            tuple(
                torch.as_tensor(np.stack([e[i] for e in ed]), device=dev, dtype=eeg.tdt)
                for i in (0, 1)
            )
        )
    return np.stack(G, 1), np.stack(sx, 1), tables, edges  # G (B, R, L, L), sx (B, R, L)


def _batch_folds(torch, G, sx, eeg, alpha_b, dev, np_dtype):
    """Per fold: K per (feature, channel) (B, C, 2L, L), const (B, C, L, 1), the
    held-out constant (B, C, L, 1) or None, the held-out sum of squares (C,) and the
    fold's held-out and left-out runs."""
    B = G.shape[0]
    C = eeg.sy.shape[1]
    per_feature = [
        _FeatureFolds(G[b], sx[b], eeg.sy, eeg.n, alpha_b[:, b], np_dtype, eeg.yy,
                      eeg.folds).folds
        for b in range(B)
    ]  # fmt: skip
    out = []
    for k in range(len(eeg.folds)):
        Ks, index = [], np.empty((B, C), np.int64)
        for b in range(B):
            for chans, K in per_feature[b][k]["groups"]:
                index[b, slice(None) if chans is None else chans] = len(Ks)
                Ks.append(K)
        K_all = torch.as_tensor(np.stack(Ks), device=dev)  # (n_groups, 2L, L)
        K_bc = K_all[torch.as_tensor(index, device=dev)]  # (B, C, 2L, L)
        const = np.stack([per_feature[b][k]["const"][:, 0, :].T for b in range(B)])  # (B, C, L)
        f0 = per_feature[0][k]
        const_k = None
        if f0["const_k"] is not None:
            const_k = np.stack([per_feature[b][k]["const_k"][:, 0, :].T for b in range(B)])
            const_k = torch.as_tensor(const_k, device=dev)[..., None]
        yy = torch.as_tensor(f0["yy"], device=dev)  # the same for every feature
        out.append((K_bc, torch.as_tensor(const, device=dev)[..., None], const_k, yy,
                    [int(i) for i in f0["test"]], [int(i) for i in f0["out"]]))  # fmt: skip
    return out


def _shifted_cross_t(torch, table, edges, yc, delays_t, edge_n, s):
    """Zero-padded lagged cross-products for the shifts ``s`` (P,), shape (B, C, L, P)."""
    n_times = table.shape[-1]
    L = delays_t.shape[0]
    n_neg, n_pos = edge_n
    idx = torch.remainder(delays_t[:, None] - s[None, :], n_times)  # (L, P)
    H = table[:, :, idx]  # (B, C, L, P)
    for T, sel, m0, M in ((edges[0], slice(L - n_pos, L), 0, n_pos),
                          (edges[1], slice(0, n_neg), -n_neg, n_neg)):  # fmt: skip
        if not M:
            continue
        m = torch.arange(m0, m0 + M, device=s.device)
        yblk = yc[:, torch.remainder(m[:, None] - s[None, :], n_times)]  # (C, M, P)
        corr = torch.matmul(T[:, None, sel, :], yblk[None])  # (B, C, L_sel, P)
        H[:, :, sel] -= corr
    return H


def _refit_null_iter_torch(
    X_runs, Y_runs, sweep, shifts, chunk_size, device, dtype=np.float32, max_bytes=None,
):  # fmt: skip
    """Like :func:`._refit._refit_null_iter` on a torch device: ``(slice, null)`` per
    chunk of ``chunk_size`` features (one batched call each), null (P, F_chunk, C)
    float64.
    """
    import torch

    dev = torch_device(device)
    tdt = torch.float32 if np.dtype(dtype) == np.float32 else torch.float64
    delays = np.asarray(sweep.delays)
    F, C, L, R = sweep.n_features, sweep.n_channels, len(delays), len(Y_runs)
    P = shifts.shape[0]
    edge_n = max(0, -int(delays[0])), max(0, int(delays[-1]))  # (n_neg, n_pos)
    alpha = np.asarray(sweep.alpha, dtype=np.float64)  # (R, F, C)
    basis = np.asarray(sweep.basis, dtype=np.float64) if sweep.basis.size else None
    Lq = L if basis is None else basis.shape[1]  # the fitted dimension
    if max_bytes is None:  # per work array (R + ~6 of them live at once)
        max_bytes = 256e6 if dev.type == "cuda" else 4e6
    itemsize = np.dtype(dtype).itemsize
    with torch.no_grad():
        eeg = _TorchEEG(Y_runs, torch, dev, tdt, dtype, sweep.folds)
        delays_t = torch.as_tensor(delays, device=dev, dtype=torch.int64)
        shifts_t = torch.as_tensor(np.asarray(shifts), device=dev, dtype=torch.int64)
        if basis is not None:
            basis_t = torch.as_tensor(np.ascontiguousarray(basis.T), device=dev, dtype=tdt)
        for start in range(0, F, chunk_size):
            fs = slice(start, min(start + chunk_size, F))
            B = fs.stop - fs.start
            G, sx, tables, edges = _batch_tables(torch, X_runs, eeg, fs, delays, dev)
            if basis is not None:  # folds fitted on the design X_lag @ basis
                G = np.einsum("lq,brlm,mk->brqk", basis, G, basis, optimize=True)
                sx = sx @ basis
            folds = _batch_folds(torch, G, sx, eeg, alpha[:, fs], dev, dtype)
            p_step = max(1, int(max_bytes // (B * C * L * itemsize)))
            null = np.empty((P, B, C))
            for p0 in range(0, P, p_step):
                ps = slice(p0, min(p0 + p_step, P))
                H = [
                    _shifted_cross_t(
                        torch, tables[j], edges[j], eeg.yc[j], delays_t, edge_n, shifts_t[ps, j]
                    )
                    for j in range(R)
                ]
                if basis is not None:  # (B, C, L, P) -> (B, C, q, P)
                    H = [torch.matmul(basis_t, h) for h in H]
                H_tot = H[0].clone()
                for h in H[1:]:
                    H_tot += h
                acc = torch.zeros((B, C, ps.stop - p0), dtype=torch.float64, device=dev)
                for K_bc, const, const_k, yy, test, left_out in folds:
                    e = H_tot.clone()
                    for i in left_out:
                        e -= H[i]
                    e += const
                    h = H[test[0]]
                    if len(test) > 1:
                        h = h + const_k
                        for i in test[1:]:
                            h += H[i]
                    out = torch.matmul(K_bc, e)  # (B, C, 2L, P)
                    num = (out[:, :, :Lq] * h).sum(-2).double()
                    den = out[:, :, Lq:].square().sum(-2).double()
                    prod = den * yy[None, :, None]
                    ok = prod > 0
                    acc += torch.where(ok, num / torch.sqrt(torch.where(ok, prod, 1.0)), 0.0)
                null[ps] = (acc / len(folds)).permute(2, 0, 1).cpu().numpy()
            yield fs, null


def _refit_null_torch(X_runs, Y_runs, sweep, shifts, device, chunk_size=16, dtype=np.float32,
                      max_bytes=None):  # fmt: skip
    """The whole refit null on a torch device, shape (P, F, C), float64 (for tests)."""
    out = np.empty((shifts.shape[0], sweep.n_features, sweep.n_channels))
    for sl, null in _refit_null_iter_torch(
        X_runs, Y_runs, sweep, shifts, chunk_size, device, dtype=dtype, max_bytes=max_bytes
    ):
        out[:, sl] = null
    return out
