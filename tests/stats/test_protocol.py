"""Tests of the paper's protocol (lags on development runs, t-tests, Holm)."""

import numpy as np
import pytest

from neuro_sae.stats import paper_protocol


def test_paper_protocol_planted():
    """Planted kernels (peak at 200 ms on Pz) are found; Holm equals statsmodels."""
    from scipy import stats
    from statsmodels.stats.multitest import multipletests

    rng = np.random.default_rng(0)
    S, F, C = 12, 20, 3
    times = np.arange(-6, 33) / 64
    shape = np.exp(-0.5 * ((times - 0.2) / 0.03) ** 2)
    dev = 0.3 * rng.standard_normal((S, F, C, len(times)))
    test = 0.3 * rng.standard_normal((S, F, C, len(times)))
    for f in (3, 11):
        dev[:, f, 1] += 2.0 * shape
        test[:, f, 1] += 2.0 * shape
    table = paper_protocol(dev, test, times, ch_names=["Fz", "Pz", "Oz"])
    assert set(table.channel) == {"Pz"} and len(table) == 2 * F
    sig = table.groupby("feature").significant.any()
    assert set(sig[sig].index) == {"f3", "f11"}
    row = table[(table.feature == "f3") & (table.extremum == "max")].iloc[0]
    assert row.lag == pytest.approx(0.2, abs=1 / 64)
    # the t and p at the chosen lag, and Holm over all tests, from scipy/statsmodels
    k = np.argmin(np.abs(times - row.lag))
    ref = stats.ttest_1samp(test[:, 3, 1, k], 0.0, alternative="greater")
    assert row.t == pytest.approx(ref.statistic) and row.p == pytest.approx(ref.pvalue)
    np.testing.assert_allclose(table.p_holm, multipletests(table.p, method="holm")[1])
    assert table.attrs["fraction_significant"] == pytest.approx(2 / F)
    # all channels
    every = paper_protocol(dev, test, times, channel=None)
    assert len(every) == 2 * F * C


def test_paper_protocol_bad_input():
    rng = np.random.default_rng(1)
    dev = rng.standard_normal((4, 2, 3, 5))
    with pytest.raises(ValueError, match="channel='Pz' is not among"):
        paper_protocol(dev, dev, np.arange(5) / 10)
    with pytest.raises(ValueError, match="at least 2 subjects"):
        paper_protocol(dev[:1], dev[:1], np.arange(5) / 10, channel=None)
    with pytest.raises(ValueError, match="times has 4 lags"):
        paper_protocol(dev, dev, np.arange(4) / 10, channel=None)


# ---------------------------------------------------------------- protocol_kernels (issue 22, item 4)
def _lagged(x, delays):
    """x(t - d) for each delay d, zero outside the run (built here, independently)."""
    out = np.zeros((len(x), len(delays)))
    for j, d in enumerate(delays):
        if d >= 0:
            out[d:, j] = x[: len(x) - d]
        else:
            out[:d, j] = x[-d:]
    return out


SFREQ, TMIN, TMAX = 64.0, -0.05, 0.3
DELAYS = np.arange(round(TMIN * SFREQ), round(TMAX * SFREQ) + 1)
ALPHAS = [10.0**e for e in range(-1, 6)]


def _planted_runs(seed, n_runs=5, n=900, n_feat=4, n_ch=3, gain=1.0):
    """Runs with a planted kernel (feature 1 -> channel 2) in microvolt-scale EEG."""
    rng = np.random.default_rng(seed)
    kern = gain * np.exp(-0.5 * ((DELAYS / SFREQ - 0.12) / 0.03) ** 2)
    X, Y = [], []
    for _ in range(n_runs):
        x = rng.normal(size=(n, n_feat)) * (rng.random((n, n_feat)) < 0.3)
        y = rng.normal(size=(n, n_ch))
        y[:, 2] += _lagged(x[:, 1], DELAYS) @ kern
        X.append(x)
        Y.append(1e-6 * y + 3e-6)
    return X, Y


def _alter(Y, runs, seed):
    """Replace the EEG of ``runs`` by arbitrary data (heavy-tailed, other scale and offset)."""
    rng = np.random.default_rng(seed)
    out = [y.copy() for y in Y]
    for i in runs:
        out[i] = 1e-3 * rng.standard_cauchy(size=Y[i].shape) - 0.5
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("scaling_runs", ["dev", "each"])
def test_protocol_kernels_dev_decisions_ignore_test_eeg(seed, scaling_runs):
    """The leak detector: replacing the test runs' EEG by arbitrary data leaves every
    development-side decision (alpha, EEG and feature scaling, dev kernels, the chosen
    lags) unchanged; only the test kernels move."""
    from neuro_sae.stats import protocol_kernels

    X, Y = _planted_runs(seed)
    dev, test = [0, 1], [2, 3, 4]
    kw = dict(sfreq=SFREQ, tmin=TMIN, tmax=TMAX, alphas=ALPHAS, scaling_runs=scaling_runs)
    a = protocol_kernels(X, Y, dev, test, **kw)
    b = protocol_kernels(X, _alter(Y, test, seed + 10), dev, test, **kw)
    np.testing.assert_array_equal(a["alpha"], b["alpha"])
    np.testing.assert_array_equal(a["coef_dev"], b["coef_dev"])
    np.testing.assert_array_equal(a["feature_scale"], b["feature_scale"])
    rows = slice(None) if scaling_runs == "dev" else dev  # "each": the dev runs' own rows
    np.testing.assert_array_equal(a["eeg_center"][rows], b["eeg_center"][rows])
    np.testing.assert_array_equal(a["eeg_scale"][rows], b["eeg_scale"][rows])
    assert not np.allclose(a["coef_test"], b["coef_test"])
    # the lags paper_protocol picks on the dev kernels (a second subject beside this one)
    X2, Y2 = _planted_runs(seed + 100)
    other = protocol_kernels(X2, Y2, dev, test, **kw)
    times = DELAYS / SFREQ
    pa, pb = (paper_protocol(np.stack([k["coef_dev"], other["coef_dev"]]),
                             np.stack([k["coef_test"], other["coef_test"]]), times, channel=None)
              for k in (a, b))  # fmt: skip
    np.testing.assert_array_equal(pa["lag"], pb["lag"])
    # the planted kernel is found on the dev runs
    peak = times[np.argmax(a["coef_dev"][1, 2])]
    assert peak == pytest.approx(0.12, abs=1.5 / SFREQ)


def test_all_run_tuning_leaks_and_the_protocol_does_not():
    """Planted data where the test runs alone move the alpha and the scaling: tuned over
    all runs (what the pipeline did with ``eeg.split: null``) both change when only the
    test runs' EEG changes; the protocol's do not."""
    from neuro_sae.encoding import univariate_sweep
    from neuro_sae.stats import protocol_kernels

    X, Y = _planted_runs(3, gain=0.6)
    dev, test = [0, 1], [2, 3, 4]
    Y2 = _alter(Y, test, 4)
    old = [univariate_sweep(X, y, sfreq=SFREQ, tmin=TMIN, tmax=TMAX, alphas=ALPHAS).alpha_final
           for y in (Y, Y2)]  # fmt: skip
    assert np.mean(old[0] != old[1]) > 0.2  # all-run alphas follow the test runs
    old_scale = [np.subtract(*np.percentile(np.concatenate(y), [75, 25], axis=0)) for y in (Y, Y2)]
    assert not np.allclose(*old_scale)  # all-run IQR too
    new = [protocol_kernels(X, y, dev, test, sfreq=SFREQ, tmin=TMIN, tmax=TMAX, alphas=ALPHAS)
           for y in (Y, Y2)]  # fmt: skip
    np.testing.assert_array_equal(new[0]["alpha"], new[1]["alpha"])
    np.testing.assert_array_equal(new[0]["eeg_scale"], new[1]["eeg_scale"])


def test_protocol_kernels_tune_alpha_in_their_own_model():
    """With a lag basis the alpha is the one tuned in the basis (the sweep's dev-run
    choice with that basis) and the kernels are that basis model's; without one, the
    per-lag model's. The two alphas differ, so applying one to the other's fit (the old
    code) is wrong."""
    from neuro_sae.encoding import lag_basis, univariate_sweep
    from neuro_sae.stats import protocol_kernels

    X, Y = _planted_runs(5, n_feat=6)
    dev, test = [0, 1], [2, 3, 4]
    basis = lag_basis(SFREQ, TMIN, TMAX, 0.1)
    kw = dict(sfreq=SFREQ, tmin=TMIN, tmax=TMAX, alphas=ALPHAS, eeg_scaling=None, feature_scale=None)
    raw = protocol_kernels(X, Y, dev, test, **kw)
    bas = protocol_kernels(X, Y, dev, test, basis=basis, **kw)
    runs = [X[i] for i in dev + test], [Y[i] for i in dev + test]
    ref_raw = univariate_sweep(*runs, test_runs=[2, 3, 4], **{k: kw[k] for k in ("sfreq", "tmin", "tmax", "alphas")})
    ref_bas = univariate_sweep(*runs, test_runs=[2, 3, 4], basis=basis,
                               **{k: kw[k] for k in ("sfreq", "tmin", "tmax", "alphas")})  # fmt: skip
    np.testing.assert_array_equal(raw["alpha"], ref_raw.alpha_final)
    np.testing.assert_array_equal(bas["alpha"], ref_bas.alpha_final)
    assert np.any(raw["alpha"] != bas["alpha"])
    np.testing.assert_allclose(raw["coef_dev"], ref_raw.coef, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(bas["coef_dev"], ref_bas.coef, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(bas["r_test"], ref_bas.r, rtol=1e-9)
    # basis kernels lie in the span of the basis, on dev and on test
    proj = basis @ np.linalg.pinv(basis)
    for key in ("coef_dev", "coef_test"):
        np.testing.assert_allclose(bas[key] @ proj.T, bas[key], atol=1e-9)
    assert raw["settings"]["model"] == "one coefficient per lag"
    assert bas["settings"]["model"] == "lag basis"


def test_ridge_kernels_equal_sklearn_ridge_with_and_without_basis():
    """Each feature's kernel is scikit-learn's Ridge (with intercept) on that feature's lag
    matrix (times the basis), with each feature x channel's own alpha."""
    import scipy.sparse as sp
    from sklearn.linear_model import Ridge

    from neuro_sae.encoding import lag_basis
    from neuro_sae.stats._protocol import _ridge_kernels

    rng = np.random.default_rng(0)
    delays = np.arange(-2, 9)
    n_feat, n_ch, lens = 3, 4, (300, 410, 350)
    X = [rng.normal(size=(n, n_feat)) * (rng.random((n, n_feat)) < 0.4) for n in lens]
    Y = [rng.normal(size=(n, n_ch)) + 3.0 for n in lens]
    alpha = rng.choice([0.1, 10.0, 1000.0], size=(n_feat, n_ch))
    runs = [0, 2]
    B = lag_basis(10.0, -0.2, 0.8, 0.4)
    for basis in (None, B):
        coef = _ridge_kernels([sp.csr_array(X[i]) for i in runs], [Y[i] for i in runs], delays, alpha, basis)
        assert coef.shape == (n_feat, n_ch, len(delays))
        for f in range(n_feat):
            lag = np.concatenate([_lagged(X[i][:, f], delays) for i in runs])
            design = lag if basis is None else lag @ basis
            yy = np.concatenate([Y[i] for i in runs])
            for c in range(n_ch):
                beta = Ridge(alpha=alpha[f, c], fit_intercept=True).fit(design, yy[:, c]).coef_
                ref = beta if basis is None else basis @ beta
                np.testing.assert_allclose(coef[f, c], ref, rtol=1e-8, atol=1e-12)


def test_protocol_kernels_scaling():
    """EEG scaling from the dev runs' good samples (median/IQR), or each run's own; input
    already scaled with other runs' statistics gives the same result (equivariance);
    features scaled by their dev-run maximum."""
    from neuro_sae.stats import protocol_kernels

    X, Y = _planted_runs(7)
    masks = [np.ones(len(y), bool) for y in Y]
    masks[0][:100] = False
    dev, test = [0, 1], [2, 3, 4]
    kw = dict(sfreq=SFREQ, tmin=TMIN, tmax=TMAX, alphas=ALPHAS, masks=masks)
    k = protocol_kernels(X, Y, dev, test, **kw)
    good = np.concatenate([Y[0][100:], Y[1]])
    np.testing.assert_allclose(k["eeg_center"][0], np.median(good, axis=0))
    np.testing.assert_allclose(k["eeg_scale"][0], np.subtract(*np.percentile(good, [75, 25], axis=0)))
    np.testing.assert_allclose(k["feature_scale"], np.max([np.abs(X[i]).max(0) for i in dev], axis=0))
    # pre-scaled with all runs' statistics (what align_subject does without a split)
    cat = np.concatenate(Y)
    c_all, s_all = np.median(cat, axis=0), np.subtract(*np.percentile(cat, [75, 25], axis=0))
    m_all = np.max([np.abs(x).max(0) for x in X], axis=0)
    pre = protocol_kernels([x / m_all for x in X], [(y - c_all) / s_all for y in Y], dev, test, **kw)
    np.testing.assert_array_equal(pre["alpha"], k["alpha"])
    np.testing.assert_allclose(pre["coef_dev"], k["coef_dev"], rtol=1e-6, atol=1e-10)
    np.testing.assert_allclose(pre["coef_test"], k["coef_test"], rtol=1e-6, atol=1e-10)
    each = protocol_kernels(X, Y, dev, test, scaling_runs="each", **kw)
    assert each["eeg_scale"].shape == (5, 3)
    np.testing.assert_allclose(each["eeg_center"][3], np.median(Y[3], axis=0))
    # one development run: its halves are the CV folds
    one = protocol_kernels(X, Y, [0], test, **kw)
    assert "two halves" in one["settings"]["alpha_tuning"]


def test_protocol_kernels_bad_input():
    from neuro_sae.stats import protocol_kernels

    X, Y = _planted_runs(0, n_runs=3, n=300)
    kw = dict(sfreq=SFREQ, tmin=TMIN, tmax=TMAX)
    with pytest.raises(ValueError, match="share run"):
        protocol_kernels(X, Y, [0, 1], [1, 2], **kw)
    with pytest.raises(ValueError, match=r"test_runs must be a non-empty list .* 0 \.\.\. 2"):
        protocol_kernels(X, Y, [0, 1], [5], **kw)
    with pytest.raises(ValueError, match="scaling_runs"):
        protocol_kernels(X, Y, [0, 1], [2], scaling_runs="all", **kw)
