"""Sparse selection and decoding kernels of the SAEs (plain torch).

Codes travel as CSR parts ``(crow, col, val)``: ``crow`` has ``n + 1`` row
offsets, ``col`` the feature index of each kept activation (sorted inside each
row) and ``val`` its value (> 0). Only positive activations are kept, so a
selection never stores zeros.

The sparse training path computes the dense encoder product once without
autograd, selects the active entries, decodes them with a sparse-dense product
and back-propagates by hand through the fixed sparsity pattern
(:class:`SparseEncodeDecode`). On two CPU cores and the demo size (1024 frames,
d_in 512, d_sae 2048, k 32) this is about three times faster than dense
autograd.
"""

from __future__ import annotations

import contextlib
import warnings

import torch


@contextlib.contextmanager
def _quiet_sparse():
    # torch warns once that sparse CSR support is "in beta"; the operations used
    # here (construction, sparse @ dense, sampled_addmm) are stable for our use.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        # CUDA builds also warn that the (deliberately skipped) invariant checks are off:
        # the CSR parts built here are valid by construction.
        warnings.filterwarnings("ignore", message="Sparse invariant checks are implicitly")
        yield


def csr_tensor(crow, col, val, shape):
    """Build a torch sparse CSR tensor without the beta warning.

    Parameters
    ----------
    crow : Tensor of int64, shape (n + 1,)
        Row offsets.
    col : Tensor of int64, shape (nnz,)
        Column indices.
    val : Tensor, shape (nnz,)
        Values.
    shape : tuple of int
        ``(n, d_sae)``.

    Returns
    -------
    csr : Tensor
        The sparse tensor.
    """
    with _quiet_sparse():
        return torch.sparse_csr_tensor(crow, col, val, shape, check_invariants=False)


def _parts_from_flat(flat_idx, pre, n, d):
    """CSR parts of the entries ``flat_idx`` of ``pre`` (shape (n, d)) that are > 0.

    The entries are marked in a boolean mask and read back with ``nonzero``,
    which returns them in row-major order without a sort (``torch.sort`` is very
    slow with several CPU threads in some torch builds).
    """
    flat = pre.reshape(-1)
    mask = torch.zeros(n * d, dtype=torch.bool, device=pre.device)
    mask[flat_idx] = True
    return _parts_from_mask(mask & (flat > 0), flat, n, d)


def _parts_from_mask(mask, flat, n, d):
    return _parts_from_sorted(torch.nonzero(mask).reshape(-1), flat, n, d)


def _parts_from_sorted(idx, flat, n, d):
    """CSR parts of the entries at the ascending flat indices ``idx``."""
    val = flat[idx]
    row = torch.div(idx, d, rounding_mode="floor")
    col = idx - row * d
    crow = torch.zeros(n + 1, dtype=torch.int64, device=flat.device)
    torch.cumsum(torch.bincount(row, minlength=n), 0, out=crow[1:])
    return crow, col, val


def select_batchtopk(pre, n_keep):
    """Keep the ``n_keep`` largest entries of a whole batch (BatchTopK).

    Parameters
    ----------
    pre : Tensor, shape (n, d_sae)
        Non-negative pre-activations (after ReLU), without autograd.
    n_keep : int
        How many entries to keep over the batch (``k * n``).

    Returns
    -------
    crow, col, val : Tensor
        CSR parts of the kept positive entries.
    """
    n, d = pre.shape
    n_keep = min(int(n_keep), n * d)
    parts = _batchtopk_by_threshold(pre, n_keep)
    if parts is not None:
        return parts
    # Two stages: the top m of each row, then the top n_keep of those candidates.
    # Exact unless a row holds more than m of the batch's top entries, which is
    # checked; the full flat top-k is the fallback.
    m = min(d, max(1, 4 * -(-n_keep // n)))
    if m < d:
        row_val, row_idx = pre.topk(m, dim=1, sorted=False)
        cand_val, cand_pos = row_val.reshape(-1).topk(n_keep, sorted=False)
        thresh = cand_val.min()
        row_last = row_val.min(dim=1).values
        # a row is complete when its m-th value is below the batch threshold or
        # is zero (its remaining entries are zeros, which are never stored)
        if bool(((row_last < thresh) | (row_last <= 0)).all()):
            rows = torch.div(cand_pos, m, rounding_mode="floor")
            flat_idx = rows * d + row_idx.reshape(-1)[cand_pos]
            return _parts_from_flat(flat_idx, pre, n, d)
    _, flat_idx = pre.reshape(-1).topk(n_keep, sorted=False)
    return _parts_from_flat(flat_idx, pre, n, d)


#: Sample size of the threshold estimate of :func:`_batchtopk_by_threshold`.
_SAMPLE = 1 << 16


def _batchtopk_by_threshold(pre, n_keep):
    """Exact BatchTopK through a threshold estimated on a strided sample, or None.

    A deterministic strided sample of the pre-activations gives a value ``t``
    that about ``2 * n_keep`` entries exceed; one pass collects those
    candidates (row-major, from ``nonzero``) and a top-k among them picks the
    ``n_keep`` largest. The result is exact whenever at least ``n_keep``
    entries exceed ``t`` (every other entry is <= t); otherwise (or when
    the candidates are too many to gain anything) None is returned and the
    caller falls back to the two-stage row/batch top-k.
    """
    n, d = pre.shape
    total = n * d
    if total < 4 * _SAMPLE or 16 * n_keep > total:
        return None
    flat = pre.reshape(-1)
    stride = total // _SAMPLE
    stride += (d % stride == 0) + (stride % 2 == 0)  # avoid sampling a few columns only
    sample = flat[::stride]
    # sample rank at which about 2 * n_keep entries of the whole batch lie above
    above = min(sample.numel() - 1, max(1, int(2 * n_keep * sample.numel() / total)))
    t = sample.kthvalue(sample.numel() - above).values
    cand = torch.nonzero(flat > t).reshape(-1)
    if not n_keep <= cand.numel() <= 8 * n_keep:
        return None
    _, pos = flat[cand].topk(n_keep, sorted=False)
    keep = torch.zeros(cand.numel(), dtype=torch.bool, device=pre.device)
    keep[pos] = True
    return _parts_from_sorted(cand[keep], flat, n, d)


def select_topk(pre, k):
    """Keep the ``k`` largest entries of every row (TopK).

    Parameters
    ----------
    pre : Tensor, shape (n, d_sae)
        Non-negative pre-activations (after ReLU), without autograd.
    k : int
        Entries per row.

    Returns
    -------
    crow, col, val : Tensor
        CSR parts of the kept positive entries.
    """
    n, d = pre.shape
    _, idx = pre.topk(min(int(k), d), dim=1, sorted=False)
    rows = torch.arange(n, device=pre.device)[:, None]
    return _parts_from_flat((rows * d + idx).reshape(-1), pre, n, d)


def select_threshold(pre, threshold):
    """Keep the entries above a threshold (inference mode of BatchTopK).

    Parameters
    ----------
    pre : Tensor, shape (n, d_sae)
        Non-negative pre-activations (after ReLU), without autograd.
    threshold : float | Tensor, shape () or (d_sae,)
        Entries strictly greater than this (one threshold, or one per feature)
        are kept.

    Returns
    -------
    crow, col, val : Tensor
        CSR parts of the kept positive entries.
    """
    n, d = pre.shape
    flat = pre.reshape(-1)
    return _parts_from_mask(((pre > threshold) & (pre > 0)).reshape(-1), flat, n, d)


def csr_rows(crow):
    """Row index of every stored entry.

    Parameters
    ----------
    crow : Tensor of int64, shape (n + 1,)
        Row offsets.

    Returns
    -------
    row : Tensor of int64, shape (nnz,)
        Row indices.
    """
    n = crow.numel() - 1
    counts = crow[1:] - crow[:-1]
    return torch.repeat_interleave(torch.arange(n, device=crow.device), counts)


def _transpose_pattern(crow, col, n_cols):
    """CSR parts of the transpose: row offsets, column (= frame) indices, permutation.

    ``perm`` maps the transposed entries to the original ones (``val[perm]``).
    A stable ordering by feature keeps the frames ascending inside each row.
    On the CPU numpy's stable argsort is used: it is much faster than
    ``torch.sort`` on several threads.
    """
    row = csr_rows(crow)
    if col.device.type == "cpu":
        import numpy as np

        perm = torch.from_numpy(np.argsort(col.numpy(), kind="stable"))
    else:
        perm = torch.sort(col, stable=True).indices
    crow_t = torch.zeros(n_cols + 1, dtype=torch.int64, device=col.device)
    torch.cumsum(torch.bincount(col, minlength=n_cols), 0, out=crow_t[1:])
    return crow_t, row[perm], perm


class SparseEncodeDecode(torch.autograd.Function):
    """Reconstruction from a fixed sparsity pattern, with a hand-written backward.

    Forward: ``x_hat = S @ W_dec + b_dec`` where ``S`` holds the selected
    pre-activations ``((x - b_dec) @ W_enc + b_enc)[pattern]``. The backward
    gives the exact gradients of that expression for the fixed pattern (what
    dense autograd gives through ReLU and the top-k mask), using
    ``sampled_addmm`` and sparse-dense products only.
    """

    @staticmethod
    def forward(ctx, x, W_enc, b_enc, W_dec, b_dec, crow, col, val):  # noqa: D102
        n = x.shape[0]
        d_sae = W_dec.shape[0]
        codes = csr_tensor(crow, col, val, (n, d_sae))
        with _quiet_sparse():
            x_hat = torch.addmm(b_dec, codes, W_dec) if val.numel() else b_dec.expand(n, -1) + 0
        ctx.save_for_backward(x, W_enc, W_dec, b_dec, crow, col, val)
        return x_hat

    @staticmethod
    def backward(ctx, grad_out):  # noqa: D102
        x, W_enc, W_dec, b_dec, crow, col, val = ctx.saved_tensors
        n = x.shape[0]
        d_sae = W_dec.shape[0]
        shape = (n, d_sae)
        grad_out = grad_out.contiguous()
        g_x = g_W_enc = g_b_enc = g_W_dec = None
        g_b_dec = grad_out.sum(0)
        with _quiet_sparse():
            # the transposed pattern (features x frames), built once for both
            # weight gradients (transposing a torch CSR tensor sorts, slowly)
            crow_t, row_t, perm = _transpose_pattern(crow, col, d_sae)
            shape_t = (d_sae, n)
            if val.numel():
                g_W_dec = csr_tensor(crow_t, row_t, val[perm], shape_t) @ grad_out
            else:
                g_W_dec = torch.zeros_like(W_dec)
            # gradient of the selected pre-activations: (grad_out @ W_dec^T)[pattern]
            pattern = csr_tensor(crow, col, torch.zeros_like(val), shape)
            g_val = torch.sparse.sampled_addmm(pattern, grad_out, W_dec.t(), beta=0.0).values()
            g_b_enc = torch.zeros(d_sae, dtype=val.dtype, device=val.device)
            g_b_enc.index_add_(0, col, g_val)
            if ctx.needs_input_grad[1]:
                if val.numel():
                    x_c = x - b_dec
                    g_W_enc = (csr_tensor(crow_t, row_t, g_val[perm], shape_t) @ x_c).t()
                else:
                    g_W_enc = torch.zeros_like(W_enc)
            if ctx.needs_input_grad[0]:
                g_codes = csr_tensor(crow, col, g_val, shape)
                g_x = g_codes @ W_enc.t() if val.numel() else torch.zeros_like(x)
        g_b_dec = g_b_dec - W_enc @ g_b_enc
        return g_x, g_W_enc, g_b_enc, g_W_dec, g_b_dec, None, None, None
