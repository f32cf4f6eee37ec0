"""Tests of the rank-truncated refit null (``sweep_permutation_test(rank_tol=...)``)."""

import mne
import numpy as np
import pytest
from scipy.signal import lfilter

from neuro_sae.encoding import univariate_sweep
from neuro_sae.stats import sweep_permutation_test
from neuro_sae.stats._lowrank import _lowrank_basis
from neuro_sae.stats._refit import _refit_null

SFREQ = 64.0
TMIN, TMAX = -0.1, 0.5  # delays -6 ... 32: 39 lags
N_TIMES = (1100, 1230, 1170)
ALPHAS = [1e2, 1e3, 1e4]  # top lag-covariance eigenvalue ~400
TOL = 1e-4  # rank_tol: measured agreement ~2e-6 in r on these data
TOL_R = 1e-5  # absolute agreement in r asked of rank_tol=TOL


def _sparse(rng, n, n_feat, band):
    """Sparse nonnegative features (5 % active), band-passed 1-8 Hz if ``band``."""
    x = np.where(rng.random((n, n_feat)) < 0.05, rng.exponential(1.0, (n, n_feat)), 0.0)
    if band:
        x = mne.filter.filter_data(x.T, SFREQ, 1.0, 8.0, verbose=False).T
    return x


def _data(seed, band, n_feat=3, n_ch=4):
    rng = np.random.default_rng(seed)
    X = [_sparse(rng, n, n_feat, band) for n in N_TIMES]
    Y = [lfilter([1.0], [1.0, -0.8], rng.standard_normal((n, n_ch)), axis=0) for n in N_TIMES]
    for x, y in zip(X, Y):  # one planted effect: feature 1 -> channel 2, 4 samples later
        y[:, 2] += 3.0 * np.roll(x[:, 1], 4)
    sw = univariate_sweep(X, Y, sfreq=SFREQ, tmin=TMIN, tmax=TMAX, alphas=ALPHAS)
    return X, Y, sw


def _shifts(seed, n_perm):
    rng = np.random.default_rng(seed)
    cols = [rng.integers(40, n - 40, n_perm) for n in N_TIMES]
    return np.concatenate([np.zeros((1, len(N_TIMES)), int), np.stack(cols, 1)])


@pytest.mark.parametrize("seed", [0, 1])
def test_lowrank_equals_exact_on_band_passed_features(seed):
    """Band-passed features: reduced rank, null equal to the exact refit within TOL_R."""
    X, Y, sw = _data(seed, band=True)
    L = len(sw.delays)
    shifts = _shifts(seed + 10, 40)
    exact = _refit_null(X, Y, sw, shifts)
    ranks = np.zeros((sw.n_features, 2), int)
    low = _refit_null(X, Y, sw, shifts, rank_tol=TOL, ranks=ranks)
    assert np.all(ranks[:, 0] < 0.8 * L), ranks  # the rank is actually reduced
    np.testing.assert_array_equal(ranks[:, 1], sw.n_channels)  # on every channel
    np.testing.assert_allclose(low, exact, rtol=0, atol=TOL_R)
    np.testing.assert_allclose(low[0], sw.r, rtol=0, atol=TOL_R)  # observed statistic
    # a looser tolerance drops more and stays close (O(lam_perp / alpha))
    ranks_loose = np.zeros((sw.n_features, 2), int)
    loose = _refit_null(X, Y, sw, shifts, rank_tol=1e-2, ranks=ranks_loose)
    assert np.all(ranks_loose[:, 0] <= ranks[:, 0])
    assert np.max(np.abs(loose - exact)) < 1e-3
    # a stricter one keeps more lags and is closer still
    strict = _refit_null(X, Y, sw, shifts, rank_tol=1e-6)
    assert np.max(np.abs(strict - exact)) < 1e-7


def test_lowrank_split_channels():
    """Channels whose alpha is too small for the basis run the exact refit."""
    X, Y, sw = _data(2, band=True, n_ch=12)
    sw.alpha[:, :, 0] = 1e-6  # channel 0: (almost) no ridge, nothing can be dropped
    shifts = _shifts(12, 30)
    exact = _refit_null(X, Y, sw, shifts)
    ranks = np.zeros((sw.n_features, 2), int)
    low = _refit_null(X, Y, sw, shifts, rank_tol=1e-3, ranks=ranks)
    np.testing.assert_array_equal(ranks[:, 1], sw.n_channels - 1)
    assert np.all(ranks[:, 0] < 0.6 * len(sw.delays))
    np.testing.assert_allclose(low[:, :, 0], exact[:, :, 0], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(low, exact, rtol=0, atol=1e-4)  # rank_tol=1e-3: ~2e-5


def test_lowrank_public_p_values():
    """The public test with rank_tol gives the exact test's p-values."""
    X, Y, sw = _data(3, band=True)
    kw = dict(n_permutations=99, random_state=5, return_null=True, alpha=0.05,
              alpha_selection="observed")  # fmt: skip
    exact = sweep_permutation_test(X, Y, sw, **kw)
    low = sweep_permutation_test(X, Y, sw, rank_tol=TOL, **kw)
    np.testing.assert_array_equal(low.shifts, exact.shifts)
    np.testing.assert_allclose(low.null, exact.null, rtol=0, atol=TOL_R)
    np.testing.assert_allclose(low.r, exact.r, rtol=0, atol=TOL_R)
    # p-values equal wherever no null value lies within the tolerance of r
    margin = np.min(np.abs(exact.null - exact.r), axis=0)
    clear = margin > 2 * TOL_R
    assert clear.mean() > 0.9
    np.testing.assert_array_equal(low.p_uncorrected[clear], exact.p_uncorrected[clear])
    assert low.p_fwe[1, 2] == exact.p_fwe[1, 2] == 1 / 100  # the planted effect
    fwe_margin = np.min(np.abs(exact.max_null[:, None, None] - exact.r), axis=0)
    sel = fwe_margin > 2 * TOL_R
    np.testing.assert_array_equal(low.p_fwe[sel], exact.p_fwe[sel])
    assert low.provenance["rank_tol"] == TOL
    assert max(low.provenance["ranks"]) < len(sw.delays)
    assert low.provenance["lowrank_channels"] == [sw.n_channels] * sw.n_features
    assert "rank_tol" not in exact.provenance
    assert low.provenance["config_hash"] != exact.provenance["config_hash"]


def test_white_features_full_rank_identical():
    """White (unfiltered) features: nothing can be dropped, results are identical."""
    X, Y, sw = _data(4, band=False)
    L = len(sw.delays)
    shifts = _shifts(14, 20)
    ranks = np.zeros((sw.n_features, 2), int)
    low = _refit_null(X, Y, sw, shifts, rank_tol=TOL, ranks=ranks)
    np.testing.assert_array_equal(ranks, [[L, 0]] * sw.n_features)
    np.testing.assert_array_equal(low, _refit_null(X, Y, sw, shifts))
    kw = dict(n_permutations=19, random_state=2, alpha=0.1, alpha_selection="observed")
    a = sweep_permutation_test(X, Y, sw, rank_tol=TOL, **kw)
    b = sweep_permutation_test(X, Y, sw, **kw)
    np.testing.assert_array_equal(a.p_fwe, b.p_fwe)
    np.testing.assert_array_equal(a.r, b.r)
    assert a.provenance["ranks"] == [L] * sw.n_features


def test_lowrank_basis_rule():
    """Channels use the basis when the discarded mass is within their bound."""
    rng = np.random.default_rng(8)
    L = 9
    V = np.linalg.qr(rng.standard_normal((L, L)))[0]
    lam = np.array([100.0, 30.0, 5.0, 1.0, 1e-3, 1e-5, 1e-7, 1e-8, 1e-9])
    G = (V * lam) @ V.T
    alpha = np.array([[10.0, 20.0, 30.0, 1e-12]])  # (folds, channels)
    # limits 1e-3 * min(a_c, lam_1) = 1e-2, 2e-2, 3e-2, 1e-15: channels 0-2 may drop
    # the five smallest (mass 1.01e-3, q = 4), channel 3 nothing and runs exact
    Q, low = _lowrank_basis(G[None], np.zeros((1, L)), [50], alpha, 1e-3)
    assert Q.shape == (L, 4)
    np.testing.assert_array_equal(low, [True, True, True, False])
    np.testing.assert_allclose(np.abs(Q.T @ V[:, :4]), np.eye(4), atol=1e-8)
    # when few channels could use a basis the exact path is kept
    few = np.array([[10.0, 1e-12, 1e-12, 1e-12]])
    assert _lowrank_basis(G[None], np.zeros((1, L)), [50], few, 1e-3) == (None, None)
    assert _lowrank_basis(G[None], np.zeros((1, L)), [50], alpha, 1e-13) == (None, None)


@pytest.mark.parametrize("bad", [0, 0.0, -1e-6, 1, 1.5, np.nan, "1e-6", True])
def test_bad_rank_tol(bad):
    """rank_tol must be None or a float in (0, 1), and refit only."""
    X, Y, sw = _data(5, band=False, n_feat=2, n_ch=3)
    with pytest.raises(ValueError, match=r"rank_tol must be None .* in \(0, 1\)"):
        sweep_permutation_test(X, Y, sw, n_permutations=19, alpha=0.1, rank_tol=bad)


def test_rank_tol_refit_only():
    """rank_tol with another null is an error naming the fix."""
    X, Y, sw = _data(6, band=False, n_feat=2, n_ch=3)
    with pytest.raises(ValueError, match='rank_tol applies to null="refit" only'):
        sweep_permutation_test(X, Y, sw, null="mismatch", rank_tol=TOL)
