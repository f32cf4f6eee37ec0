"""Tests of the SAE metrics against closed forms and scikit-learn."""

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from scipy.optimize import minimize_scalar
from scipy.spatial.distance import cdist
from sklearn.metrics import r2_score

from neuro_sae.sae import SAEConfig, make_sae
from neuro_sae.sae.metrics import (
    cosine_similarity,
    dead_fraction,
    dense_fraction,
    evaluate_sae,
    explained_variance,
    firing_frequency,
    fvu,
    l0,
    l0_histogram,
    relative_bias,
)


def _pair(n=157, d=9, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d)) * np.arange(1, d + 1) + 3.0
    x_hat = x + 0.4 * rng.standard_normal((n, d))
    return x, x_hat


def test_explained_variance_closed_form():
    x, x_hat = _pair()
    num = np.mean(np.sum((x - x_hat) ** 2, axis=1))
    den = np.mean(np.sum(x**2, axis=1)) - np.sum(x.mean(0) ** 2)
    assert explained_variance(x, x_hat) == pytest.approx(1 - num / den, rel=1e-12)
    # independent reference: R^2 pooled over outputs, weighted by their variance
    assert explained_variance(x, x_hat) == pytest.approx(
        r2_score(x, x_hat, multioutput="variance_weighted"), rel=1e-10
    )
    assert fvu(x, x_hat) == pytest.approx(num / den, rel=1e-12)
    assert explained_variance(x, x) == 1.0
    assert explained_variance(x, np.tile(x.mean(0), (len(x), 1))) == pytest.approx(0.0, abs=1e-12)
    # float32 and torch inputs accumulate in float64
    assert explained_variance(torch.from_numpy(x), torch.from_numpy(x_hat)) == pytest.approx(
        1 - num / den, rel=1e-12
    )


def test_metrics_ignore_padding():
    x, x_hat = _pair()
    mask = np.ones(len(x), dtype=bool)
    mask[::4] = False
    x_pad = x.copy()
    x_pad[~mask] = 1e6  # garbage in padding frames
    assert explained_variance(x_pad, x_hat, mask) == pytest.approx(
        explained_variance(x[mask], x_hat[mask]), rel=1e-12
    )
    with pytest.raises(ValueError, match=r"mask must be a boolean array of shape \(157,\)"):
        explained_variance(x, x_hat, mask[:-1])
    with pytest.raises(ValueError, match="must match"):
        explained_variance(x, x_hat[:, :-1])


def test_sparsity_metrics():
    n, d = 40, 13
    codes = np.zeros((n, d))
    codes[:, 0] = 1.0  # fires always: dense
    codes[:5, 1] = 2.0  # 12.5% of frames: dense (> 10%)
    codes[:4, 2] = 0.5  # 10% exactly: not dense
    codes[7, 3] = 0.1  # rare
    # features 4..12 never fire: dead
    expected_l0 = (n + 5 + 4 + 1) / n
    for c in (codes, sp.csr_array(codes), torch.from_numpy(codes)):
        assert l0(c) == pytest.approx(expected_l0)
        freq = firing_frequency(c)
        np.testing.assert_allclose(freq[:4], [1.0, 5 / n, 4 / n, 1 / n])
        assert dead_fraction(c) == pytest.approx(9 / d)
        assert dense_fraction(c) == pytest.approx(2 / d)
    mask = np.arange(n) >= 5  # drop the frames where features 1-2 fire
    assert dead_fraction(codes, mask) == pytest.approx(11 / d)
    assert l0(codes, mask) == pytest.approx((n - 5 + 1) / (n - 5))


def test_evaluate_sae_matches_direct_computation():
    sae = make_sae(SAEConfig(d_in=9, d_sae=31, k=4, architecture="topk"), random_state=0)
    x, _ = _pair(n=157, d=9, seed=1)
    mask = np.ones(len(x), dtype=bool)
    mask[-20:] = False
    got = evaluate_sae(sae, x, mask=mask, batch_size=50)
    with torch.no_grad():
        x_hat = sae(x[mask].astype(np.float32)).numpy()
        codes = sae.encode(x[mask].astype(np.float32)).numpy()
    assert got["n_frames"] == mask.sum()
    assert got["explained_variance"] == pytest.approx(
        explained_variance(x[mask].astype(np.float32), x_hat), rel=1e-5
    )
    assert got["fvu"] == pytest.approx(1 - got["explained_variance"])
    assert got["l0"] == pytest.approx(4.0)
    assert got["dead_fraction"] == pytest.approx(dead_fraction(codes))
    assert got["dense_fraction"] == pytest.approx(dense_fraction(codes))


def test_cosine_and_relative_bias_closed_forms():
    x, x_hat = _pair()
    ref_cos = np.mean(1 - np.diag(cdist(x, x_hat, metric="cosine")))
    assert cosine_similarity(x, x_hat) == pytest.approx(ref_cos, rel=1e-12)
    assert cosine_similarity(x, 3.0 * x) == pytest.approx(1.0, rel=1e-12)
    # gamma minimises E||x_hat / gamma - x||^2 (checked numerically)
    res = minimize_scalar(lambda g: np.mean(np.sum((x_hat / g - x) ** 2, 1)),
                          bounds=(0.1, 10), method="bounded", options=dict(xatol=1e-10))
    assert relative_bias(x, x_hat) == pytest.approx(res.x, rel=1e-6)
    # planted shrinkage: x_hat = 0.7 x gives gamma = 0.7
    assert relative_bias(x, 0.7 * x) == pytest.approx(0.7, rel=1e-12)
    mask = np.arange(len(x)) % 3 > 0
    assert relative_bias(x, x_hat, mask) == pytest.approx(relative_bias(x[mask], x_hat[mask]))


def test_l0_histogram():
    codes = np.zeros((11, 7))
    codes[0, :3] = 1  # 3 active
    codes[1, :3] = 2
    codes[2, 5] = 1  # 1 active
    # eight frames with none active
    hist = l0_histogram(codes)
    np.testing.assert_array_equal(hist, [8, 1, 0, 2])
    assert (hist * np.arange(len(hist))).sum() / hist.sum() == pytest.approx(l0(codes))
    np.testing.assert_array_equal(l0_histogram(codes, np.arange(11) != 2), [8, 0, 0, 2])
    sae = make_sae(SAEConfig(d_in=9, d_sae=31, k=4, architecture="topk"), random_state=0)
    x, _ = _pair(n=57, d=9, seed=1)
    got = evaluate_sae(sae, x)
    with torch.no_grad():
        x_hat = sae(x.astype(np.float32)).numpy()
    assert got["cosine"] == pytest.approx(cosine_similarity(x.astype(np.float32), x_hat), rel=1e-6)
    assert got["relative_bias"] == pytest.approx(
        relative_bias(x.astype(np.float32), x_hat), rel=1e-6
    )
