"""Backward models and patterns, torch solver, chunking, nested CV, edges, bad input."""

import inspect

import numpy as np
import pytest
from sklearn.linear_model import Ridge

from neuro_sae.encoding import TRF
from neuro_sae.encoding._lagged import _lag_matrix, _times_to_delays

FS = 64.0
TMIN, TMAX = -3 / 64, 10 / 64  # integer lags, so mTRFpy's floor/ceil lags agree
EDGE = "ignore:The chosen alpha lies on the edge of the grid"


def _forward_data(seed, n_times=(300, 280, 310, 295, 305), n_feat=2, n_ch=6, noise=2.0):
    """Stimulus runs and EEG with a planted kernel (EEG follows the stimulus)."""
    rng = np.random.default_rng(seed)
    delays = _times_to_delays(TMIN, TMAX, FS)
    kernel = rng.standard_normal((n_ch, n_feat, len(delays))) * np.hanning(len(delays))
    S, E = [], []
    for n in n_times:
        s = rng.standard_normal((n, n_feat))
        e = _lag_matrix(s, delays) @ kernel.reshape(n_ch, -1).T
        S.append(s)
        E.append(e + noise * rng.standard_normal((n, n_ch)) + 0.4)
    return S, E


def test_constructor_signature():
    """The documented parameters, in order, with their defaults."""
    params = list(inspect.signature(TRF).parameters.items())
    names = [k for k, _ in params]
    assert names[:9] == ["tmin", "tmax", "sfreq", "alphas", "fit_intercept", "edge", "cv",
                         "scoring", "device"]  # fmt: skip
    defaults = {k: v.default for k, v in params}
    assert defaults["edge"] == "zeropad" and defaults["cv"] == "leave-one-run-out"
    assert defaults["scoring"] == "pearson" and defaults["device"] == "cpu"


def test_backward_equals_mne_with_patterns():
    """direction=-1: coef_ and patterns_ equal ReceptiveField(-tmax, -tmin, patterns=True).

    For one output MNE divides the patterns by n - 1 instead of var(y) (documented).
    """
    from mne.decoding import ReceptiveField

    S, E = _forward_data(0, n_times=(300,) * 4, n_feat=1)
    ours = TRF(TMIN, TMAX, FS, alphas=[30.0], fit_intercept=False, direction=-1,
               patterns=True).fit(E, S)  # fmt: skip
    rf = ReceptiveField(-TMAX, -TMIN, FS, estimator=30.0, fit_intercept=False, patterns=True)
    rf.fit(np.stack(E, 1), np.stack(S, 1))
    np.testing.assert_array_equal(ours.delays_, rf.delays_)
    assert ours.coef_.shape == (1, 6, 14)
    np.testing.assert_allclose(ours.coef_, rf.coef_, rtol=1e-6, atol=1e-12)
    n, yy = 1200, sum(float((s**2).sum()) for s in S)
    np.testing.assert_allclose(ours.patterns_, rf.patterns_ * (n - 1) ** 2 / yy, rtol=1e-6)


@pytest.mark.parametrize("fit_intercept", [True, False])
def test_patterns_equal_haufe_formula_multioutput(fit_intercept):
    """patterns_ = cov(lagged X) W inv(cov(y)) on the explicit lag matrix (3 outputs)."""
    S, E = _forward_data(1, n_feat=3)
    ours = TRF(TMIN, TMAX, FS, alphas=[20.0], fit_intercept=fit_intercept, direction=-1,
               patterns=True).fit(E, S)  # fmt: skip
    XL = np.concatenate([_lag_matrix(e, ours.delays_) for e in E])
    Y = np.concatenate(S)
    if fit_intercept:
        XL, Y = XL - XL.mean(0), Y - Y.mean(0)
    W = ours.coef_.reshape(3, -1).T
    ref = (XL.T @ XL) @ W @ np.linalg.inv(Y.T @ Y)  # the (n - 1) factors cancel
    np.testing.assert_allclose(ours.patterns_, ref.T.reshape(ours.patterns_.shape), rtol=1e-8)


@pytest.mark.filterwarnings(EDGE)
def test_backward_cv_equals_mtrfpy():
    """Backward leave-one-run-out r, chosen lambdas and decoders equal mTRFpy direction=-1."""
    mtrf = pytest.importorskip("mtrf")
    S, E = _forward_data(2, n_feat=1)
    lambdas = [0.1, 10.0, 1000.0]
    ours = TRF(TMIN, TMAX, FS, alphas=np.array(lambdas) * FS, alpha_per_run=True,
               direction=-1).fit(E, S)  # fmt: skip
    ref = mtrf.TRF(direction=-1)
    metric = ref.train([s.copy() for s in S], [e.copy() for e in E], int(FS), TMIN, TMAX,
                       lambdas, k=-1, verbose=False)  # fmt: skip
    np.testing.assert_allclose(ours.cv_scores_.mean(0)[:, 0], metric, rtol=0, atol=1e-6)
    w = np.transpose(ref.weights, (2, 0, 1)) / FS
    np.testing.assert_allclose(ours.coef_, w, rtol=1e-6, atol=1e-10 * np.abs(w).max())
    np.testing.assert_allclose(ours.times_, ref.times)
    assert ours.cv_scores_.mean(0).max() > 0.5  # the decoder reconstructs the stimulus


def test_valid_edge_equals_ridge_on_trimmed_lag_matrix():
    """edge='valid' (mTRFpy's zeropad=False) drops samples whose lags leave the run.

    (mTRFpy 2.1's own zeropad=False training path fails, so sklearn is the reference.)
    """
    S, E = _forward_data(3, n_times=(300, 280, 310, 295))
    ours = TRF(TMIN, TMAX, FS, alphas=[40.0], edge="valid").fit(S[:3], E[:3])
    d = ours.delays_
    keep = slice(int(d[-1]), -int(-d[0]))  # 10 samples at the start, 3 at the end

    def trimmed(i):
        return _lag_matrix(S[i], d)[keep], E[i][keep]

    XL = np.concatenate([trimmed(i)[0] for i in range(3)])
    ridge = Ridge(alpha=40.0).fit(XL, np.concatenate([trimmed(i)[1] for i in range(3)]))
    np.testing.assert_allclose(ours.coef_.reshape(6, -1), ridge.coef_, rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(ours.intercept_, ridge.intercept_, rtol=1e-8)
    x3, y3 = trimmed(3)
    r = [np.corrcoef(ridge.predict(x3)[:, c], y3[:, c])[0, 1] for c in range(6)]
    np.testing.assert_allclose(ours.score_per_channel(S[3], E[3]), r, atol=1e-10)
    assert len(ours.predict(S[3])) == 295  # predict still returns every sample
    cv = TRF(TMIN, TMAX, FS, alphas=[40.0], edge="valid").fit(S, E)
    np.testing.assert_allclose(cv.cv_scores_[3, 0], r, atol=1e-10)


@pytest.mark.filterwarnings(EDGE)
def test_torch_and_chunks_equal_numpy():
    """The torch solver (on CPU) and channel chunking give the numpy results."""
    pytest.importorskip("torch")
    S, E = _forward_data(4)
    kw = dict(alphas=np.logspace(0, 4, 5), nested=True)
    ref = TRF(TMIN, TMAX, FS, **kw).fit(S, E)
    for other in (TRF(TMIN, TMAX, FS, device="torch-cpu", **kw),
                  TRF(TMIN, TMAX, FS, chunk_size=4, **kw)):  # fmt: skip
        other.fit(S, E)
        np.testing.assert_allclose(other.cv_scores_, ref.cv_scores_, rtol=0, atol=1e-10)
        np.testing.assert_allclose(other.coef_, ref.coef_, rtol=1e-10, atol=1e-14)
        np.testing.assert_array_equal(other.alpha_, ref.alpha_)
        np.testing.assert_allclose(other.nested_scores_, ref.nested_scores_, atol=1e-10)


@pytest.mark.filterwarnings(EDGE)
def test_nested_cv_equals_explicit_sklearn_loop():
    """Nested CV: inner leave-one-run-out picks alpha per channel, outer run gives r."""
    S, E = _forward_data(5, n_times=(150, 140, 160, 155), n_ch=3, noise=4.0)
    alphas = [1.0, 30.0, 1000.0]
    trf = TRF(TMIN, TMAX, FS, alphas=alphas, nested=True).fit(S, E)
    d = trf.delays_
    R = len(S)
    assert trf.nested_scores_.shape == (R, 3) and trf.nested_alpha_.shape == (R, 3)

    def fit(runs, c, a):
        XL = np.concatenate([_lag_matrix(S[i], d) for i in runs])
        return Ridge(alpha=a).fit(XL, np.concatenate([E[i][:, c] for i in runs]))

    def r(model, i, c):
        return np.corrcoef(model.predict(_lag_matrix(S[i], d)), E[i][:, c])[0, 1]

    for j in range(R):
        train = [i for i in range(R) if i != j]
        for c in range(3):
            inner = [np.mean([r(fit([i for i in train if i != k], c, a), k, c)
                              for k in train]) for a in alphas]  # fmt: skip
            alpha = alphas[int(np.argmax(inner))]
            assert trf.nested_alpha_[j, c] == alpha
            np.testing.assert_allclose(trf.nested_scores_[j, c], r(fit(train, c, alpha), j, c),
                                       atol=1e-10)  # fmt: skip


@pytest.mark.filterwarnings(EDGE)
def test_kfold_cv_and_scale_free_alpha():
    """cv=k pools held-out runs per fold; alpha_relative_ is alpha / mean eigenvalue."""
    S, E = _forward_data(6)
    trf = TRF(TMIN, TMAX, FS, alphas=[5.0], cv=2).fit(S, E)
    assert trf.cv_scores_.shape == (2, 1, 6)
    fold = TRF(TMIN, TMAX, FS, alphas=[5.0]).fit(S[3:], E[3:])
    np.testing.assert_allclose(trf.cv_scores_[0, 0], fold.score_per_channel(S[:3], E[:3]),
                               atol=1e-10)  # fmt: skip
    XL = np.concatenate([_lag_matrix(s, trf.delays_) for s in S])
    XL -= XL.mean(0)
    np.testing.assert_allclose(trf.alpha_relative_, 5.0 / np.trace(XL.T @ XL) * XL.shape[1])
    default = TRF(TMIN, TMAX, FS).fit(S, E)
    np.testing.assert_allclose(default.alphas_ / default.alphas_[0], np.logspace(0, 8, 9))
    assert set(np.round(np.log10(default.alpha_relative_), 9)) <= set(range(-4, 5))


def test_bad_input_errors():
    """NaN/inf, unequal runs, too few runs for the folds, long lags, nested + 1 alpha."""
    S, E = _forward_data(7, n_times=(120, 130, 125))
    bad = [s.copy() for s in S]
    bad[1][5, 0] = np.nan
    with pytest.raises(ValueError, match="NaN|nan|finite"):
        TRF(TMIN, TMAX, FS, alphas=[1.0]).fit(bad, E)
    bad[1][5, 0] = np.inf
    with pytest.raises(ValueError, match="inf|finite"):
        TRF(TMIN, TMAX, FS, alphas=[1.0]).fit(E, bad)
    with pytest.raises(ValueError, match="Run 2: X has 125 samples but Y has 124"):
        TRF(TMIN, TMAX, FS, alphas=[1.0]).fit(S, E[:2] + [E[2][:-1]])
    with pytest.raises(ValueError, match="cv=5 needs at least 5 runs"):
        TRF(TMIN, TMAX, FS, alphas=[1.0], cv=5).fit(S, E)
    with pytest.raises(ValueError, match="too few for"):
        TRF(-1.0, 2.0, FS, alphas=[1.0]).fit(S, E)
    with pytest.raises(ValueError, match="single alpha"):
        TRF(TMIN, TMAX, FS, alphas=[1.0], nested=True).fit(S, E)
    with pytest.raises(ValueError, match="leave 1 for training but 2"):
        TRF(TMIN, TMAX, FS, alphas=[1.0, 2.0], nested=True).fit(S[:2], E[:2])
    with pytest.raises(ValueError, match="'direction' parameter"):
        TRF(TMIN, TMAX, FS, direction=0).fit(S, E)
    with pytest.raises(ValueError, match="device must be"):
        TRF(TMIN, TMAX, FS, device="gpu").fit(S, E)
    with pytest.raises(ValueError, match="'edge' parameter"):
        TRF(TMIN, TMAX, FS, edge="mean").fit(S, E)


def test_cuda_equals_numpy():
    """device='cuda' (torch on the GPU, float64) gives the numpy results."""
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    S, E = _forward_data(8)
    kw = dict(alphas=np.logspace(0, 4, 5), bands=[1, 1])
    with pytest.warns(UserWarning, match="edge of the grid"):
        ref = TRF(TMIN, TMAX, FS, **kw).fit(S, E)
    with pytest.warns(UserWarning, match="edge of the grid"):
        gpu = TRF(TMIN, TMAX, FS, device="cuda", **kw).fit(S, E)
    np.testing.assert_allclose(gpu.cv_scores_, ref.cv_scores_, atol=1e-10)
    np.testing.assert_allclose(gpu.coef_, ref.coef_, rtol=1e-9, atol=1e-13)


def test_grid_search_cv():
    """score() is a scalar, so scikit-learn's GridSearchCV can tune TRF parameters."""
    from sklearn.model_selection import GridSearchCV, KFold

    S, E = _forward_data(9, n_times=(900,), noise=1.0)
    search = GridSearchCV(TRF(TMIN, TMAX, FS), {"alphas": [[1e-2], [1e2], [1e7]]},
                          cv=KFold(3))  # fmt: skip
    search.fit(S[0], E[0])
    assert search.best_params_["alphas"] != [1e7]  # an alpha that kills the kernel loses
    assert isinstance(search.best_estimator_.score(S[0], E[0]), float)


def test_backward_to_evoked_gives_patterns_at_forward_lags():
    """to_evoked of a decoder: its Haufe patterns per stimulus feature, forward lags."""
    import mne

    S, E = _forward_data(10, n_feat=2)
    info = mne.create_info(6, FS, "eeg")
    dec = TRF(TMIN, TMAX, FS, alphas=[10.0], direction=-1, patterns=True).fit(E, S)
    evs = dec.to_evoked(info)
    assert len(evs) == 2
    np.testing.assert_allclose(evs[1].times, _times_to_delays(TMIN, TMAX, FS) / FS, atol=1e-9)
    np.testing.assert_array_equal(evs[1].data, dec.patterns_[1][:, ::-1])
    with pytest.raises(ValueError, match="patterns=True"):
        TRF(TMIN, TMAX, FS, alphas=[10.0], direction=-1).fit(E, S).to_evoked(info)
