"""Tests of the lagged statistics and the TRF estimator against MNE and scikit-learn."""

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.base import clone
from sklearn.linear_model import Ridge

from neuro_sae.encoding import TRF
from neuro_sae.encoding._lagged import (
    _lag_matrix,
    _lagged_run_stats,
    _times_to_delays,
    _univariate_run_stats,
)

SFREQ = 50.0


def _runs(rng, n_runs=4, n_times=(230, 260, 245, 251), n_feat=3, n_ch=5):
    X = [rng.standard_normal((n_times[i], n_feat)) for i in range(n_runs)]
    Y = [rng.standard_normal((n_times[i], n_ch)) for i in range(n_runs)]
    return X, Y


def test_delays_match_mne():
    """Delays are computed exactly as MNE computes them."""
    from mne.decoding.receptive_field import _times_to_delays as mne_delays

    for tmin, tmax, sfreq in [(-0.1, 0.5, 128.0), (0.013, 0.2, 64.0), (-0.3, -0.05, 100.0)]:
        np.testing.assert_array_equal(
            _times_to_delays(tmin, tmax, sfreq), mne_delays(tmin, tmax, sfreq)
        )


def test_lag_matrix_convention():
    """Positive delay: EEG at t predicted from the stimulus at t - delay, zero padded."""
    x = np.arange(1.0, 8.0)[:, np.newaxis]
    xl = _lag_matrix(x, np.array([-1, 0, 2]))
    assert xl[0].tolist() == [2.0, 1.0, 0.0]
    assert xl[3].tolist() == [5.0, 4.0, 2.0]
    assert xl[-1].tolist() == [0.0, 7.0, 5.0]


@pytest.mark.parametrize("lags", [(-3, 5), (2, 7), (-6, -1), (0, 4)])
@pytest.mark.parametrize("sparse", [False, True])
def test_univariate_stats_equal_explicit(lags, sparse):
    """Per-feature statistics from correlations equal the explicit lag matrix."""
    rng = np.random.default_rng(0)
    delays = np.arange(lags[0], lags[1] + 1)
    x = rng.standard_normal((57, 3))
    if sparse:
        x = np.where(rng.random(x.shape) < 0.15, x, 0.0)
    y = rng.standard_normal((57, 4))
    G, H, sx = _univariate_run_stats(sp.csc_array(x) if sparse else x, y, delays)
    for f in range(3):
        xl = _lag_matrix(x[:, [f]], delays)
        np.testing.assert_allclose(G[f], xl.T @ xl, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(H[f], xl.T @ y, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(sx[f], xl.sum(0), rtol=1e-12, atol=1e-12)
    st = _lagged_run_stats(x, y, delays)
    xl = _lag_matrix(x, delays)
    np.testing.assert_allclose(st["G"], xl.T @ xl, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("fit_intercept", [True, False])
def test_trf_equals_sklearn_ridge(fit_intercept):
    """(b) Fixed alpha: identical to sklearn Ridge on the concatenated lag matrices."""
    rng = np.random.default_rng(1)
    X, Y = _runs(rng)
    trf = TRF(-0.06, 0.14, SFREQ, alphas=[7.0], fit_intercept=fit_intercept).fit(X, Y)
    XL = np.concatenate([_lag_matrix(x, trf.delays_) for x in X])
    ridge = Ridge(alpha=7.0, fit_intercept=fit_intercept, solver="svd").fit(XL, np.concatenate(Y))
    np.testing.assert_allclose(trf.coef_, ridge.coef_.reshape(trf.coef_.shape), rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(trf.intercept_, ridge.intercept_, rtol=1e-8, atol=1e-12)
    pred = trf.predict(X)
    np.testing.assert_allclose(np.concatenate(pred), ridge.predict(XL), rtol=1e-8, atol=1e-10)


def test_trf_equals_mne_receptive_field():
    """(a) fit_intercept=False equals MNE ReceptiveField (TimeDelayingRidge and Ridge).

    MNE needs equal-length epochs; its intercept handling differs (mean fill or
    centring before lagging), so the comparison is without intercept.
    """
    from mne.decoding import ReceptiveField

    rng = np.random.default_rng(2)
    X, Y = _runs(rng, n_times=(240,) * 4)
    X3, Y3 = np.stack(X, 1), np.stack(Y, 1)
    ours = TRF(-0.06, 0.14, SFREQ, alphas=[7.0], fit_intercept=False).fit(X, Y)
    tdr = ReceptiveField(-0.06, 0.14, SFREQ, estimator=7.0, fit_intercept=False)
    tdr.fit(X3, Y3)
    np.testing.assert_allclose(ours.coef_, tdr.coef_, rtol=1e-6, atol=1e-12)
    rf = ReceptiveField(
        -0.06, 0.14, SFREQ, estimator=Ridge(7.0, fit_intercept=False), fit_intercept=False
    ).fit(X3, Y3)
    np.testing.assert_allclose(ours.coef_, rf.coef_, rtol=1e-6, atol=1e-12)
    np.testing.assert_array_equal(ours.delays_, rf.delays_)


def test_trf_recovers_planted_kernel():
    """(c) A planted kernel is recovered and scores well on held-out data."""
    rng = np.random.default_rng(3)
    delays = _times_to_delays(-0.04, 0.2, SFREQ)
    kernel = np.zeros((2, 2, len(delays)))  # (channels, features, delays)
    kernel[0, 0] = np.sin(np.linspace(0, np.pi, len(delays)))
    kernel[1, 1] = -np.exp(-np.arange(len(delays)) / 3.0)
    X, Y = [], []
    for n in (900, 950, 870, 910):
        x = rng.standard_normal((n, 2))
        y = _lag_matrix(x, delays) @ kernel.reshape(2, -1).T + 0.3 * rng.standard_normal((n, 2))
        X.append(x)
        Y.append(y + 1.5)
    trf = TRF(-0.04, 0.2, SFREQ, alphas=[1.0]).fit(X, Y)
    np.testing.assert_allclose(trf.coef_, kernel, atol=0.05)
    np.testing.assert_allclose(trf.intercept_, 1.5, atol=0.05)
    assert trf.cv_scores_.shape == (4, 1, 2)
    assert np.all(trf.cv_scores_ > 0.9)
    assert trf.score(X, Y) > 0.9
    assert trf.score_per_channel(X, Y).shape == (2,)
    np.testing.assert_allclose(trf.times_, delays / SFREQ)


def test_cv_scores_equal_explicit_predictions():
    """Held-out r from sufficient statistics equals r of actual predictions."""
    rng = np.random.default_rng(4)
    X, Y = _runs(rng)
    alphas = [0.5, 50.0]
    with pytest.warns(UserWarning, match="edge of the grid"):
        trf = TRF(-0.02, 0.06, SFREQ, alphas=alphas).fit(X, Y)
    np.testing.assert_array_equal(
        trf.alpha_, np.asarray(alphas)[np.argmax(trf.cv_scores_.mean(0), axis=0)]
    )
    for j in range(len(X)):
        train = [i for i in range(len(X)) if i != j]
        for ai, alpha in enumerate(alphas):
            fold = TRF(-0.02, 0.06, SFREQ, alphas=[alpha]).fit(
                [X[i] for i in train], [Y[i] for i in train]
            )
            np.testing.assert_allclose(
                trf.cv_scores_[j, ai], fold.score_per_channel(X[j], Y[j]), atol=1e-10
            )


def test_trf_api_and_errors():
    """sklearn contract basics and teaching errors."""
    rng = np.random.default_rng(5)
    X, Y = _runs(rng)
    est = TRF(tmin=0.0, tmax=0.1, sfreq=SFREQ, alphas=[1.0])
    assert clone(est).get_params()["tmax"] == 0.1
    assert not hasattr(est, "coef_")
    single = est.fit(X[0], Y[0])
    assert single.coef_.shape == (5, 3, 6)
    assert isinstance(single.score(X[0], Y[0]), float)
    assert single.predict(X[0]).shape == (230, 5)
    assert single.cv_scores_.shape == (0, 1, 5)
    with pytest.raises(ValueError, match="single run"):
        TRF(0.0, 0.1, SFREQ, alphas=[1.0, 10.0]).fit(X[0], Y[0])
    with pytest.raises(ValueError, match="230 samples but Y has 229"):
        est.fit(X[0], Y[0][:-1])
    with pytest.raises(ValueError, match="sfreq must be given"):
        TRF(0.0, 0.1).fit(X, Y)
    with pytest.raises(ValueError, match="'cv' parameter"):
        TRF(0.0, 0.1, SFREQ, cv="kfold").fit(X, Y)
    with pytest.raises(ValueError, match="positive numbers"):
        TRF(0.0, 0.1, SFREQ, alphas=[0.0]).fit(X, Y)
    with pytest.raises(ValueError, match="tmin must be <= tmax"):
        TRF(0.2, 0.1, SFREQ).fit(X, Y)
    with pytest.raises(RuntimeError, match="not fitted"):
        TRF(0.0, 0.1, SFREQ).predict(X)
