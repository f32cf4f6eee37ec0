"""Parity of the TRF with mTRFpy (``mtrf``) after the documented lambda conversion.

mTRFpy solves ``(mean_i X_i^T X_i + lambda * fs * I) w = mean_i X_i^T y_i`` over the
``m`` training trials with an unpenalised ones column, i.e. our centred ridge with a
raw ``alpha = lambda * fs * m`` (``alpha = lambda * fs`` with ``alpha_per_run=True``).
"""

import numpy as np
import pytest

from neuro_sae.encoding import TRF
from neuro_sae.encoding._lagged import _lag_matrix, _times_to_delays

mtrf = pytest.importorskip("mtrf")

# Binary fractions of 1/FS so that mTRFpy's floor/ceil lags equal MNE's rounded ones
FS = 64
TMIN, TMAX = -3 / 64, 10 / 64
LAMBDAS = np.logspace(-1, 3, 5)
EDGE = "ignore:The chosen alpha lies on the edge of the grid"  # grid edges are allowed here


def _planted(seed, n_times=(310, 287, 333, 301, 296), n_feat=3, n_ch=4, noise=10.0):
    """Runs of different lengths with a planted kernel and strong noise."""
    rng = np.random.default_rng(seed)
    delays = _times_to_delays(TMIN, TMAX, FS)
    kernel = rng.standard_normal((n_ch, n_feat, len(delays)))
    X, Y = [], []
    for n in n_times:
        x = rng.standard_normal((n, n_feat))
        y = _lag_matrix(x, delays) @ kernel.reshape(n_ch, -1).T
        X.append(x)
        Y.append(y + noise * rng.standard_normal((n, n_ch)) + 0.7)
    return X, Y


@pytest.mark.filterwarnings(EDGE)
def test_cv_and_fit_equal_mtrfpy_per_run_alpha():
    """alpha_per_run=True, alpha = lambda * fs: CV r, chosen lambdas, kernels identical."""
    X, Y = _planted(0)
    ours = TRF(TMIN, TMAX, FS, alphas=LAMBDAS * FS, alpha_per_run=True).fit(X, Y)
    ref = mtrf.TRF(direction=1, zeropad=True, method="ridge")
    metric = ref.train(
        [x.copy() for x in X], [y.copy() for y in Y], FS, TMIN, TMAX, list(LAMBDAS),
        k=-1, verbose=False, reg_per_y_channel=True,
    )
    # Leave-one-trial-out r per lambda and channel, averaged over folds
    np.testing.assert_allclose(ours.cv_scores_.mean(0), metric, rtol=0, atol=1e-6)
    np.testing.assert_allclose(ours.alpha_, np.asarray(ref.regularization) * FS, rtol=1e-12)
    assert len(np.unique(ours.alpha_)) > 1  # a per-channel choice actually happened
    # Final fit on all trials (m = n_runs, exactly compensated by alpha_per_run)
    w = np.transpose(ref.weights, (2, 0, 1)) / FS  # (n_ch, n_feat, n_lags)
    np.testing.assert_allclose(ours.coef_, w, rtol=1e-6, atol=1e-10 * np.abs(w).max())
    np.testing.assert_allclose(ours.intercept_, ref.bias[0] / FS, rtol=1e-6, atol=1e-10)
    np.testing.assert_allclose(ours.times_, ref.times)


@pytest.mark.filterwarnings(EDGE)
def test_cv_folds_equal_mtrfpy_raw_alpha():
    """Raw alpha = lambda * fs * (n_runs - 1): every held-out fold's r equals mTRFpy's."""
    X, Y = _planted(1)
    n_runs = len(X)
    lambdas = LAMBDAS[::2]
    ours = TRF(TMIN, TMAX, FS, alphas=lambdas * FS * (n_runs - 1)).fit(X, Y)
    assert ours.cv_scores_.shape == (n_runs, len(lambdas), 4)
    for j in range(n_runs):
        train = [i for i in range(n_runs) if i != j]
        for ai, lam in enumerate(lambdas):
            ref = mtrf.TRF(direction=1, zeropad=True)
            ref.train([X[i] for i in train], [Y[i] for i in train], FS, TMIN, TMAX, lam,
                      verbose=False)
            _, r = ref.predict(X[j], Y[j], average=False)
            np.testing.assert_allclose(ours.cv_scores_[j, ai], r, rtol=0, atol=1e-6)


def test_alpha_per_run_is_a_rescaling():
    """alpha_per_run=True with alpha equals raw alpha * n_runs on the final fit."""
    X, Y = _planted(2)
    a = TRF(TMIN, TMAX, FS, alphas=[30.0], alpha_per_run=True).fit(X, Y)
    b = TRF(TMIN, TMAX, FS, alphas=[30.0 * len(X)]).fit(X, Y)
    np.testing.assert_allclose(a.coef_, b.coef_, rtol=1e-10)
    c = TRF(TMIN, TMAX, FS, alphas=[30.0 * (len(X) - 1)]).fit(X, Y)
    np.testing.assert_allclose(a.cv_scores_, c.cv_scores_, rtol=0, atol=1e-12)


def test_to_evoked_matches_mne_receptive_field():
    """to_evoked: one EvokedArray per feature holding MNE's kernel, times = lags."""
    import mne
    from mne.decoding import ReceptiveField

    X, Y = _planted(3, n_times=(300,) * 5)
    ours = TRF(TMIN, TMAX, FS, alphas=[40.0], fit_intercept=False).fit(X, Y)
    rf = ReceptiveField(TMIN, TMAX, FS, estimator=40.0, fit_intercept=False)
    rf.fit(np.stack(X, 1), np.stack(Y, 1))
    info = mne.create_info([f"EEG{i:03d}" for i in range(4)], FS, "eeg")
    evokeds = ours.to_evoked(info)
    assert len(evokeds) == 3
    for f, ev in enumerate(evokeds):
        assert isinstance(ev, mne.EvokedArray)
        np.testing.assert_allclose(ev.data, rf.coef_[:, f], rtol=1e-6, atol=1e-12)
        np.testing.assert_allclose(ev.times, rf.delays_ / FS, atol=1e-9)
    one = ours.to_evoked(info, feature=2)
    np.testing.assert_array_equal(one.data, evokeds[2].data)
    assert one.comment == "TRF feature 2"
    with pytest.raises(ValueError, match="feature must be an int in \\[0, 2\\]"):
        ours.to_evoked(info, feature=3)
    with pytest.raises(ValueError, match="info has 3 channels but the TRF was fitted on 4"):
        ours.to_evoked(mne.pick_info(info, [0, 1, 2]))
    with pytest.raises(ValueError, match="sfreq"):
        ours.to_evoked(mne.create_info(4, 128.0, "eeg"))


@pytest.mark.parametrize("lags", [(-3, 5), (2, 7), (-6, -1), (0, 0), (-4, 30)])
def test_toeplitz_stats_equal_explicit_lag_matrix(lags):
    """The block-Toeplitz statistics equal those of the explicit zero-padded lag matrix."""
    from neuro_sae.encoding._lagged import _lagged_run_stats

    rng = np.random.default_rng(4)
    delays = np.arange(lags[0], lags[1] + 1)
    x, y = rng.standard_normal((61, 3)), rng.standard_normal((61, 2))
    st = _lagged_run_stats(x, y, delays)
    xl = _lag_matrix(x, delays)
    for key, ref in [("G", xl.T @ xl), ("H", xl.T @ y), ("sx", xl.sum(0))]:
        np.testing.assert_allclose(st[key], ref, rtol=1e-12, atol=1e-12, err_msg=key)
    assert st["n"] == 61
