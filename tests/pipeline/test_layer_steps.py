"""Pieces of the across-layer step checked against independent references."""

import numpy as np
import pytest
import scipy.sparse as sp


def _lagged(x, delays):
    """x(t - d) for each delay d, zero outside the run (built here, independently)."""
    out = np.zeros((len(x), len(delays)))
    for j, d in enumerate(delays):
        if d >= 0:
            out[d:, j] = x[: len(x) - d]
        else:
            out[:d, j] = x[-d:]
    return out


def test_split_kernels_equal_sklearn_ridge_per_feature_and_channel():
    """Each feature's kernel on the given runs is scikit-learn's Ridge (with intercept) on
    that feature's lag matrix, with each feature x channel's own alpha; a planted kernel
    is recovered with a small alpha."""
    from sklearn.linear_model import Ridge

    from neuro_sae.pipeline._eeg_steps import split_kernels

    rng = np.random.default_rng(0)
    delays = np.arange(-2, 6)
    n_feat, n_ch, lens = 3, 4, (300, 410, 350)
    X = [rng.normal(size=(n, n_feat)) * (rng.random((n, n_feat)) < 0.4) for n in lens]
    planted = np.array([0.0, 0.0, 1.0, 0.5, -0.5, 0.0, 0.0, 0.0])
    Y = []
    for x in X:
        y = rng.normal(size=(len(x), n_ch)) * 0.1 + 3.0
        y[:, 2] += _lagged(x[:, 1], delays) @ planted
        Y.append(y)
    alpha = rng.choice([0.1, 10.0, 1000.0], size=(n_feat, n_ch))
    runs = [0, 2]  # a subset of the runs, as the dev or test split
    coef = split_kernels([sp.csr_array(X[i]) for i in runs], [Y[i] for i in runs], delays, alpha)
    assert coef.shape == (n_feat, n_ch, len(delays))
    for f in range(n_feat):
        lag = np.concatenate([_lagged(X[i][:, f], delays) for i in runs])
        yy = np.concatenate([Y[i] for i in runs])
        for c in range(n_ch):
            ref = Ridge(alpha=alpha[f, c], fit_intercept=True).fit(lag, yy[:, c]).coef_
            np.testing.assert_allclose(coef[f, c], ref, rtol=1e-9, atol=1e-12)
    small = split_kernels([X[i] for i in runs], [Y[i] for i in runs], delays, np.full((n_feat, n_ch), 1e-3))
    np.testing.assert_allclose(small[1, 2], planted, atol=0.02)
    assert np.abs(small[0, 2]).max() < 0.15  # another feature: no kernel beyond noise


def test_unit_labels_and_commands():
    from neuro_sae.pipeline._registry import Unit
    from neuro_sae.pipeline.steps import get_step

    fit = get_step("fit")
    assert fit.step_id(Unit("03", "hubert-base-random", 11)) == "04_fit_trf-model-hubert-base-random-layer-11-sub-03"
    assert fit.step_id(Unit("03", None, 2)) == "04_fit_trf-layer-02-sub-03"
    assert get_step("extract").step_id(Unit()) == "01_extract"
    assert fit.step_id("01") == "04_fit_trf-sub-01"


@pytest.mark.parametrize("spec", ["serial", "processes:2"])
def test_executor_map_keeps_order(spec):
    from neuro_sae.pipeline._executor import Executor

    with Executor(spec) as ex:
        out = ex.map([(pow, (i, 2)) for i in range(7)], label=str)
    assert out == [i**2 for i in range(7)]
