"""Tests of the selection kernels and the hand-written sparse backward."""

import pytest
import torch

from neuro_sae.sae._kernels import (
    SparseEncodeDecode,
    csr_rows,
    select_batchtopk,
    select_threshold,
    select_topk,
)


def _dense(parts, shape):
    crow, col, val = parts
    out = torch.zeros(shape, dtype=val.dtype)
    out[csr_rows(crow), col] = val
    return out


def _pre(n, d, seed):
    gen = torch.Generator().manual_seed(seed)
    return torch.relu(torch.randn(n, d, generator=gen, dtype=torch.float64))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_batchtopk_matches_flat_topk(seed):
    n, d, k = 37, 53, 4
    pre = _pre(n, d, seed)
    ref = torch.zeros(n * d, dtype=pre.dtype)
    val, idx = pre.reshape(-1).topk(k * n)
    ref[idx] = val
    got = _dense(select_batchtopk(pre, k * n), (n, d))
    torch.testing.assert_close(got, ref.reshape(n, d), rtol=0, atol=0)
    assert int((got > 0).sum()) == k * n


def test_batchtopk_fallback_when_one_row_dominates():
    # row 0 holds more than 4k of the batch's top entries: the two-stage path
    # must detect it and fall back to the exact full selection
    n, d, k = 11, 90, 2
    pre = _pre(n, d, 3)
    pre[0] += 100.0
    got = _dense(select_batchtopk(pre, k * n), (n, d))
    assert int((got[0] > 0).sum()) == k * n  # all kept entries are in row 0
    assert int((got[1:] > 0).sum()) == 0


def test_batchtopk_fewer_positives_than_budget():
    n, d, k = 6, 10, 5
    pre = torch.zeros(n, d, dtype=torch.float64)
    pre[1, 3] = 2.0
    pre[4, 7] = 1.0
    crow, col, val = select_batchtopk(pre, k * n)
    assert val.tolist() == [2.0, 1.0]  # zeros are never stored
    assert col.tolist() == [3, 7]
    assert crow.tolist() == [0, 0, 1, 1, 1, 2, 2]


def test_topk_and_threshold():
    n, d, k = 19, 31, 3
    pre = _pre(n, d, 4)
    got = _dense(select_topk(pre, k), (n, d))
    assert ((got > 0).sum(1) == k).all()
    kth = pre.topk(k, dim=1).values[:, -1:]
    torch.testing.assert_close(got, pre * (pre >= kth))
    got = _dense(select_threshold(pre, 0.7), (n, d))
    torch.testing.assert_close(got, pre * (pre > 0.7))
    crow, col, _ = select_threshold(pre, 0.7)
    # columns sorted inside every row
    for i in range(n):
        c = col[crow[i] : crow[i + 1]]
        assert (c[1:] > c[:-1]).all()


def _random_problem(seed, n=13, d_in=7, d_sae=17, k=3):
    gen = torch.Generator().manual_seed(seed)
    opts = dict(generator=gen, dtype=torch.float64)
    x = torch.randn(n, d_in, **opts).requires_grad_()
    W_enc = torch.randn(d_in, d_sae, **opts).requires_grad_()
    b_enc = (0.1 * torch.randn(d_sae, **opts)).requires_grad_()
    W_dec = torch.randn(d_sae, d_in, **opts).requires_grad_()
    b_dec = (0.1 * torch.randn(d_in, **opts)).requires_grad_()
    return x, W_enc, b_enc, W_dec, b_dec, k


@pytest.mark.parametrize("seed", [0, 1])
def test_sparse_backward_matches_dense_autograd(seed):
    x, W_enc, b_enc, W_dec, b_dec, k = _random_problem(seed)
    params = (x, W_enc, b_enc, W_dec, b_dec)
    with torch.no_grad():
        pre = torch.relu((x - b_dec) @ W_enc + b_enc)
    crow, col, val = select_batchtopk(pre, k * x.shape[0])
    target = torch.randn(x.shape, dtype=x.dtype, generator=torch.Generator().manual_seed(9))

    recon = SparseEncodeDecode.apply(x, W_enc, b_enc, W_dec, b_dec, crow, col, val)
    loss = ((recon - target) ** 2).sum()
    grads = torch.autograd.grad(loss, params)

    # reference: dense autograd through ReLU and the same mask
    mask = torch.zeros_like(pre, dtype=torch.bool)
    mask[csr_rows(crow), col] = True
    pre_g = torch.relu((x - b_dec) @ W_enc + b_enc) * mask
    ref = pre_g @ W_dec + b_dec
    torch.testing.assert_close(recon, ref, rtol=1e-12, atol=1e-12)
    ref_grads = torch.autograd.grad(((ref - target) ** 2).sum(), params)
    for name, g, r in zip(("x", "W_enc", "b_enc", "W_dec", "b_dec"), grads, ref_grads):
        torch.testing.assert_close(g, r, rtol=1e-10, atol=1e-10, msg=name)


def test_sparse_backward_gradcheck():
    # finite differences of the full map (values recomputed from the parameters,
    # pattern fixed) against the Function's hand-written backward
    x, W_enc, b_enc, W_dec, b_dec, k = _random_problem(5, n=5, d_in=3, d_sae=6, k=2)
    with torch.no_grad():
        pre = torch.relu((x - b_dec) @ W_enc + b_enc)
    crow, col, _ = select_topk(pre, k)
    rows = csr_rows(crow)

    def fn(x, W_enc, b_enc, W_dec, b_dec):
        val = ((x - b_dec) @ W_enc + b_enc)[rows, col].detach()
        return SparseEncodeDecode.apply(x, W_enc, b_enc, W_dec, b_dec, crow, col, val)

    assert torch.autograd.gradcheck(fn, (x, W_enc, b_enc, W_dec, b_dec))


def test_batchtopk_threshold_path_is_exact():
    from neuro_sae.sae._kernels import _batchtopk_by_threshold

    n, d, k = 301, 1003, 20  # large enough for the sampled-threshold path
    g = torch.Generator().manual_seed(0)
    pre = (torch.randperm(n * d, generator=g).float() / (n * d)).reshape(n, d)  # no ties
    pre = torch.relu(pre - 0.3)
    parts = _batchtopk_by_threshold(pre, k * n)
    assert parts is not None  # the fast path was taken
    got = _dense(parts, (n, d))
    _, idx = pre.reshape(-1).topk(k * n)
    ref = torch.zeros(n * d)
    ref[idx] = pre.reshape(-1)[idx]
    assert torch.equal(got, ref.reshape(n, d))
    for a, b in zip(parts, select_batchtopk(pre, k * n)):
        assert torch.equal(a, b)
    # fewer positive entries than the budget: no fast path, the fallback keeps them all
    sparse_pre = torch.where(pre > 0.995, pre, torch.zeros(()))
    assert _batchtopk_by_threshold(sparse_pre, k * n) is None
    assert torch.equal(_dense(select_batchtopk(sparse_pre, k * n), (n, d)), sparse_pre)
