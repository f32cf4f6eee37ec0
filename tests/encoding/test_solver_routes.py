"""The TRF's alpha-path routes against an explicit lagged-design ridge.

Every route (``eigh`` batched over folds below 96 predictors, ``eigh`` fold by fold with
triangular held-out products from 96 up, ``cholesky`` through LAPACK, the final fit by
Cholesky per distinct alpha) must give the held-out r of a ridge fitted on the explicit
zero-padded lag matrix of the training runs (built here, independently of the package)
and scored on the held-out runs, to 1e-8; planted kernels, distinct sizes on every axis.
"""

import numpy as np
import pytest

from neuro_sae.encoding import TRF

SFREQ = 100.0
# the chosen alpha may sit on the grid's edge in these small fits: not what is tested
pytestmark = pytest.mark.filterwarnings("ignore:The chosen alpha lies on the edge:UserWarning")


def _lags(x, delays):
    """Zero-padded lag matrix, feature-major columns (f * n_delays + l), by loops."""
    n, n_feat = x.shape
    Z = np.zeros((n, n_feat * len(delays)))
    for f in range(n_feat):
        for li, d in enumerate(delays):
            for t in range(n):
                if 0 <= t - d < n:
                    Z[t, f * len(delays) + li] = x[t - d, f]
    return Z


def _planted(rng, lengths, n_feat, n_ch, delays):
    """Runs with a planted kernel on the first channels (others noise)."""
    kernel = rng.standard_normal((n_feat * len(delays), n_ch))
    kernel[:, n_ch // 2 :] = 0.0
    X, Y = [], []
    for n in lengths:
        x = rng.standard_normal((n, n_feat))
        y = _lags(x, delays) @ kernel
        X.append(x)
        Y.append(y / max(y.std(), 1e-12) + 1.5 * rng.standard_normal((n, n_ch)))
    return X, Y


def _pearson(a, b):
    a, b = a - a.mean(0), b - b.mean(0)
    return np.einsum("tc,tc->c", a, b) / np.sqrt(np.einsum("tc,tc->c", a, a)
                                                 * np.einsum("tc,tc->c", b, b))  # fmt: skip


def _explicit_cv(X, Y, delays, alphas, folds, fit_intercept):
    """Held-out r (n_folds, n_alphas, n_ch) of an explicit ridge per fold and alpha."""
    Z = [_lags(x, delays) for x in X]
    out = np.empty((len(folds), len(alphas), Y[0].shape[1]))
    for j, (train, test) in enumerate(folds):
        Zt, Yt = np.concatenate([Z[i] for i in train]), np.concatenate([Y[i] for i in train])
        if fit_intercept:
            Zt, Yt = Zt - Zt.mean(0), Yt - Yt.mean(0)
        Zk, Yk = np.concatenate([Z[i] for i in test]), np.concatenate([Y[i] for i in test])
        for a, alpha in enumerate(alphas):
            W = np.linalg.solve(Zt.T @ Zt + alpha * np.eye(Zt.shape[1]), Zt.T @ Yt)
            out[j, a] = _pearson(Zk @ W, Yk)
    return out


def _explicit_fit(X, Y, delays, alpha, fit_intercept):
    """Weights (P, C) of an explicit ridge on all runs with ``alpha[c]`` per channel."""
    Z, Yc = np.concatenate([_lags(x, delays) for x in X]), np.concatenate(Y)
    if fit_intercept:
        Z, Yc = Z - Z.mean(0), Yc - Yc.mean(0)
    W = np.empty((Z.shape[1], Yc.shape[1]))
    for c, a in enumerate(alpha):
        W[:, c] = np.linalg.solve(Z.T @ Z + a * np.eye(Z.shape[1]), Z.T @ Yc[:, c])
    return W


@pytest.mark.parametrize(
    "n_feat, n_lags, solver, cv, fit_intercept, chunk_size",
    [(3, 7, "eigh", "leave-one-run-out", True, None),  # 21 predictors: batched folds
     (3, 7, "cholesky", 2, False, 2),
     (4, 25, "eigh", "leave-one-run-out", False, 3),  # 100 predictors: fold by fold
     (4, 25, "cholesky", "leave-one-run-out", True, None),
     (4, 25, "auto", 2, True, None)],
)  # fmt: skip
def test_routes_equal_explicit_ridge(n_feat, n_lags, solver, cv, fit_intercept, chunk_size):
    rng = np.random.default_rng(n_feat * 100 + n_lags)
    delays = np.arange(-2, n_lags - 2)
    lengths, n_ch = (311, 287, 329, 296, 303), 6
    X, Y = _planted(rng, lengths, n_feat, n_ch, delays)
    alphas = [3.0, 70.0, 1.1e3, 2.3e4]
    est = TRF(delays[0] / SFREQ, delays[-1] / SFREQ, SFREQ, alphas=alphas, cv=cv,
              fit_intercept=fit_intercept, solver=solver, chunk_size=chunk_size)  # fmt: skip
    est.fit(X, Y)
    runs = np.arange(len(X))
    k = len(X) if cv == "leave-one-run-out" else cv
    folds = [(np.setdiff1d(runs, t), t) for t in np.array_split(runs, k)]
    ref = _explicit_cv(X, Y, delays, alphas, folds, fit_intercept)
    np.testing.assert_allclose(est.cv_scores_, ref, rtol=0, atol=1e-8)
    best = np.asarray(alphas)[np.argmax(ref.mean(0), axis=0)]
    np.testing.assert_array_equal(est.alpha_, best)
    W = _explicit_fit(X, Y, delays, best, fit_intercept)
    coef = est.coef_.reshape(n_ch, -1).T
    np.testing.assert_allclose(coef, W, rtol=0, atol=1e-9 * np.abs(W).max())
    # planted: the kernel's channels are predicted, the noise channels are not
    assert ref.mean(0).max(0)[: n_ch // 2].min() > 0.3
    assert np.abs(ref.mean(0).max(0)[n_ch // 2 :]).max() < 0.2


def test_routes_equal_each_other_and_torch():
    """eigh (batched and fold by fold), cholesky and the torch eigh give the same fit."""
    rng = np.random.default_rng(7)
    delays = np.arange(0, 33)  # 3 x 33 = 99 predictors: the fold-by-fold eigh route
    X, Y = _planted(rng, (263, 241, 277, 255), 3, 5, delays)
    kw = dict(tmin=0.0, tmax=0.32, sfreq=SFREQ, alphas=list(np.logspace(0, 5, 7)),
              alpha_per_run=True, nested=True)  # fmt: skip
    ref = TRF(solver="eigh", **kw).fit(X, Y)
    others = [TRF(solver="cholesky", **kw).fit(X, Y), TRF(solver="auto", **kw).fit(X, Y)]
    try:
        import torch  # noqa: F401

        others.append(TRF(solver="eigh", device="torch-cpu", **kw).fit(X, Y))
    except ImportError:
        pass
    for est in others:
        np.testing.assert_allclose(est.cv_scores_, ref.cv_scores_, rtol=0, atol=1e-10)
        np.testing.assert_allclose(est.nested_scores_, ref.nested_scores_, rtol=0, atol=1e-10)
        np.testing.assert_array_equal(est.alpha_, ref.alpha_)
        atol = 1e-10 * np.abs(ref.coef_).max()
        np.testing.assert_allclose(est.coef_, ref.coef_, rtol=0, atol=atol)


@pytest.mark.parametrize("solver", ["eigh", "cholesky"])
def test_singular_held_out_gram(solver):
    """A held-out run shorter than the predictors (its gram singular) is still exact."""
    rng = np.random.default_rng(3)
    delays = np.arange(0, 30)  # 4 x 30 = 120 predictors; the 3rd run has 64 samples
    lengths = (340, 322, 64, 331)
    X, Y = _planted(rng, lengths, 4, 3, delays)
    alphas = [20.0, 900.0]
    est = TRF(0.0, 0.29, SFREQ, alphas=alphas, solver=solver).fit(X, Y)
    runs = np.arange(4)
    folds = [(np.setdiff1d(runs, [j]), np.array([j])) for j in runs]
    ref = _explicit_cv(X, Y, delays, alphas, folds, True)
    np.testing.assert_allclose(est.cv_scores_, ref, rtol=0, atol=1e-8)


@pytest.mark.parametrize("where", ["X", "Y"])
def test_non_finite_runs_are_named(where):
    """NaN or inf anywhere in a run is rejected with the run named, even a sample that no
    lagged row reads (the check runs on the run statistics)."""
    rng = np.random.default_rng(0)
    X = [rng.standard_normal((120 + 9 * i, 2)) for i in range(3)]
    Y = [rng.standard_normal((len(x), 4)) for x in X]
    if where == "X":
        X[1][-1, 0] = np.nan  # with delays 2..9 the last sample enters no lagged row
    else:
        Y[2][5, 3] = np.inf
    run = 1 if where == "X" else 2
    with pytest.raises(ValueError, match=rf"{where}\[{run}\] contains 1 non-finite value"):
        TRF(0.02, 0.09, SFREQ, alphas=[1.0, 10.0]).fit(X, Y)


@pytest.mark.parametrize("solver", ["eigh", "cholesky"])
def test_nested_equals_explicit(solver):
    """Nested CV: each outer training set's inner CV (explicit ridge) picks the alpha per
    channel; the outer held-out r of the explicit refit equals ``nested_scores_``."""
    rng = np.random.default_rng(11)
    delays = np.arange(-1, 5)
    X, Y = _planted(rng, (233, 251, 219, 244, 238), 2, 4, delays)
    alphas = [0.5, 40.0, 3e3]
    est = TRF(-0.01, 0.04, SFREQ, alphas=alphas, nested=True, solver=solver).fit(X, Y)
    runs = np.arange(len(X))
    for j in runs:
        train = np.setdiff1d(runs, [j])
        inner = [(np.setdiff1d(train, [k]), np.array([k])) for k in train]
        path = _explicit_cv(X, Y, delays, alphas, inner, True)
        best = np.asarray(alphas)[np.argmax(path.mean(0), axis=0)]
        np.testing.assert_array_equal(est.nested_alpha_[j], best)
        W = _explicit_fit([X[i] for i in train], [Y[i] for i in train], delays, best, True)
        r = _pearson(_lags(X[j], delays) @ W, Y[j])
        np.testing.assert_allclose(est.nested_scores_[j], r, rtol=0, atol=1e-8)


@pytest.mark.parametrize("delays", [[3], [-2], [0], list(range(-4, 9)), list(range(2, 43))])
def test_lagged_stats_equal_explicit(delays):
    """The block-Toeplitz statistics (strided view of the correlations, edges removed)
    equal the explicit lag matrix's, a single delay and long windows included; the
    gram is a writable array."""
    from neuro_sae.encoding._lagged import _lagged_run_stats

    rng = np.random.default_rng(len(delays))
    delays = np.array(delays)
    x, y = rng.standard_normal((157, 3)), rng.standard_normal((157, 2))
    st = _lagged_run_stats(x, y, delays)
    Z = _lags(x, delays)
    np.testing.assert_allclose(st["G"], Z.T @ Z, rtol=0, atol=1e-11)
    np.testing.assert_allclose(st["H"], Z.T @ y, rtol=0, atol=1e-11)
    np.testing.assert_allclose(st["sx"], Z.sum(0), rtol=0, atol=1e-11)
    st["G"] += 1.0  # writable (the TRF's edge='valid' subtracts in place)
