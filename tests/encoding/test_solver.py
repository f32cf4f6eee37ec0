"""Solver selection: the Cholesky route equals the eigendecomposition route (held-out r
to 1e-8) on every shape; ``"auto"`` picks by the flop estimate and logs its choice."""

import logging

import numpy as np
import pytest

from neuro_sae.encoding import TRF
from neuro_sae.encoding._cv import _choose_solver, _solver_costs

SFREQ = 64.0
# the chosen alpha may sit on the grid's edge in these small fits: not what is tested
pytestmark = pytest.mark.filterwarnings("ignore:The chosen alpha lies on the edge:UserWarning")


def _runs(rng, n_runs, n_times, n_feat, n_ch):
    X = [rng.standard_normal((n_times + 7 * i, n_feat)) for i in range(n_runs)]
    W = rng.standard_normal((n_feat, n_ch))
    Y = [np.roll(x, 3, axis=0) @ W + 2.0 * rng.standard_normal((len(x), n_ch)) for x in X]
    return X, Y


@pytest.mark.parametrize(
    "n_feat, n_ch, alphas, bands",
    [(1, 3, [1.0, 30.0, 900.0, 2.7e4], None),  # few predictors
     (12, 2, [5.0, 5e3], None),  # 12 x 17 = 204 predictors, few alphas
     (4, 9, list(np.logspace(-2, 5, 13)), None),  # many alphas, tiny ones included
     (5, 4, [10.0, 1e3], [2, 3])],  # banded: candidates in groups
)  # fmt: skip
def test_cholesky_equals_eigh(n_feat, n_ch, alphas, bands):
    rng = np.random.default_rng(n_feat * 10 + n_ch)
    X, Y = _runs(rng, 4, 160, n_feat, n_ch)
    kw = dict(tmin=-0.05, tmax=0.2, sfreq=SFREQ, alphas=alphas, bands=bands, nested=True)
    eig = TRF(solver="eigh", **kw).fit(X, Y)
    chol = TRF(solver="cholesky", **kw).fit(X, Y)
    assert eig.solver_ == "eigh" and chol.solver_ == "cholesky"
    np.testing.assert_allclose(chol.cv_scores_, eig.cv_scores_, rtol=0, atol=1e-8)
    np.testing.assert_allclose(chol.nested_scores_, eig.nested_scores_, rtol=0, atol=1e-8)
    np.testing.assert_array_equal(chol.alpha_, eig.alpha_)
    np.testing.assert_allclose(chol.coef_, eig.coef_, rtol=1e-9, atol=1e-12)


def test_auto_picks_the_cheaper_route(caplog):
    # many predictors, few alphas and outputs: one factorisation per alpha is cheaper
    assert _choose_solver("auto", 656, 10, 4) == "cholesky"
    # few predictors, many outputs and alphas: one eigendecomposition serves all
    assert _choose_solver("auto", 32, 128, 13) == "eigh"
    assert _choose_solver("eigh", 656, 10, 4) == "eigh"
    eig, chol = _solver_costs(656, 10, 4)
    assert chol < eig / 3  # measured on one thread: 0.54 s against 1.53 s (20 runs)
    # many predictors, outputs and alphas: one eigendecomposition per fold serves the 13
    # alphas with triangular held-out products (measured 0.56 s against 0.65 s)
    assert _choose_solver("auto", 656, 128, 13, n_folds=5) == "eigh"
    assert _choose_solver("auto", 656, 128, 4, n_folds=5) == "cholesky"
    rng = np.random.default_rng(1)
    X, Y = _runs(rng, 3, 200, 16, 2)
    with caplog.at_level(logging.INFO, logger="neuro_sae"):
        est = TRF(tmin=0.0, tmax=0.3, sfreq=SFREQ, alphas=[1.0, 1e3]).fit(X, Y, verbose=True)
    assert est.solver_ == "cholesky"  # 16 x 20 = 320 predictors, 2 alphas, 2 outputs
    assert "Solver 'cholesky' for 320 predictors, 2 output(s), 2 alpha(s) per fold (auto)" in (
        caplog.text
    )
    ref = TRF(tmin=0.0, tmax=0.3, sfreq=SFREQ, alphas=[1.0, 1e3], solver="eigh").fit(X, Y)
    np.testing.assert_allclose(est.cv_scores_, ref.cv_scores_, rtol=0, atol=1e-8)


def test_bad_solver_names_the_options():
    X, Y = _runs(np.random.default_rng(0), 3, 100, 1, 1)
    with pytest.raises(ValueError, match="solver"):
        TRF(tmin=0.0, tmax=0.1, sfreq=SFREQ, solver="qr").fit(X, Y)
    with pytest.raises(ValueError, match="solver='cholesky' runs on device='cpu' only"):
        TRF(tmin=0.0, tmax=0.1, sfreq=SFREQ, solver="cholesky", device="torch-cpu").fit(X, Y)
