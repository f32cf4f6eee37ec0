"""Tests of the univariate sweep: nested CV against a brute-force reference."""

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.linear_model import Ridge

from neuro_sae.encoding import SweepResult, read_sweep_result, univariate_sweep
from neuro_sae.encoding._lagged import _lag_matrix, _times_to_delays

SFREQ = 50.0
TMIN, TMAX = -0.04, 0.1


def _data(rng, n_runs=4, n_times=(200, 215, 190, 205), n_feat=3, n_ch=5, gain=0.5):
    X = [rng.standard_normal((n_times[i], n_feat)) for i in range(n_runs)]
    Y = [rng.standard_normal((n_times[i], n_ch)) + gain * X[i][:, [0]] for i in range(n_runs)]
    return X, Y


def _ref_fit(X, Y, runs, f, c, alpha, delays):
    XL = np.concatenate([_lag_matrix(X[i][:, [f]], delays) for i in runs])
    return Ridge(alpha=alpha).fit(XL, np.concatenate([Y[i][:, c] for i in runs]))


def _ref_r(model, X, Y, i, f, c, delays):
    pred = model.predict(_lag_matrix(X[i][:, [f]], delays))
    return np.corrcoef(pred, Y[i][:, c])[0, 1]


def test_sweep_equals_bruteforce_nested_cv():
    """Nested LORO alpha choice, held-out r, fold weights and refit equal sklearn."""
    rng = np.random.default_rng(0)
    X, Y = _data(rng)
    alphas = [1.0, 10.0, 100.0]
    sw = univariate_sweep(X, Y, sfreq=SFREQ, tmin=TMIN, tmax=TMAX, alphas=alphas, chunk_size=2)
    d = sw.delays
    R, F, C = 4, 3, 5
    outer = np.zeros((len(alphas), F, C))
    for j in range(R):
        train = [i for i in range(R) if i != j]
        for f in range(F):
            for c in range(C):
                inner = [
                    np.mean(
                        [
                            _ref_r(_ref_fit(X, Y, [i for i in train if i != k], f, c, a, d),
                                   X, Y, k, f, c, d)  # fmt: skip
                            for k in train
                        ]
                    )
                    for a in alphas
                ]
                alpha = alphas[int(np.argmax(inner))]
                assert sw.alpha[j, f, c] == alpha
                model = _ref_fit(X, Y, train, f, c, alpha, d)
                np.testing.assert_allclose(sw.r_folds[j, f, c], _ref_r(model, X, Y, j, f, c, d), atol=1e-10)
                np.testing.assert_allclose(sw.weights[j, f, c], model.coef_, rtol=1e-5, atol=1e-7)
                np.testing.assert_allclose(sw.intercepts[j, f, c], model.intercept_, atol=1e-6)
                for ai, a in enumerate(alphas):
                    outer[ai, f, c] += _ref_r(_ref_fit(X, Y, train, f, c, a, d), X, Y, j, f, c, d)
    np.testing.assert_allclose(sw.r, sw.r_folds.mean(0))
    final = np.asarray(alphas)[np.argmax(outer, axis=0)]
    np.testing.assert_array_equal(sw.alpha_final, final)
    for f in range(F):
        for c in range(C):
            model = _ref_fit(X, Y, range(R), f, c, final[f, c], d)
            np.testing.assert_allclose(sw.coef[f, c], model.coef_, rtol=1e-8, atol=1e-12)
            np.testing.assert_allclose(sw.intercept[f, c], model.intercept_, atol=1e-10)


def test_sweep_sparse_equals_dense_and_chunking():
    """Sparse input and any chunk size give the dense, unchunked result."""
    rng = np.random.default_rng(1)
    X, Y = _data(rng, n_feat=7)
    Xs = [sp.csr_array(np.where(rng.random(x.shape) < 0.1, x, 0.0)) for x in X]
    kw = dict(sfreq=SFREQ, tmin=TMIN, tmax=TMAX, alphas=[0.3, 30.0])
    dense = univariate_sweep([x.toarray() for x in Xs], Y, chunk_size=64, **kw)
    sparse = univariate_sweep(Xs, Y, chunk_size=3, **kw)
    for key in ("r", "r_folds", "alpha", "coef", "intercept", "alpha_final"):
        np.testing.assert_allclose(getattr(sparse, key), getattr(dense, key), atol=1e-12)


def test_sweep_planted_effect_and_frame(tmp_path):
    """A planted kernel is found on the right feature x channel, at the right lag."""
    rng = np.random.default_rng(2)
    delays = _times_to_delays(TMIN, TMAX, SFREQ)
    X, Y = [], []
    for n in (300, 320, 310):
        x = rng.standard_normal((n, 4))
        y = 0.8 * rng.standard_normal((n, 6))
        y[:, 2] += np.roll(x[:, 1], 3)  # feature 1 drives channel 2 at lag +60 ms
        X.append(x)
        Y.append(y)
    sw = univariate_sweep(
        X, Y, sfreq=SFREQ, tmin=TMIN, tmax=TMAX, alphas=np.logspace(-1, 3, 5),
        feature_names=["a", "b", "c", "d"], ch_names=[f"E{i}" for i in range(6)],
    )  # fmt: skip
    assert isinstance(sw, SweepResult)
    assert np.unravel_index(np.argmax(sw.r), sw.r.shape) == (1, 2)
    assert sw.r[1, 2] > 0.6
    assert np.abs(np.delete(sw.r.ravel(), 1 * 6 + 2)).max() < 0.3
    assert sw.coef.shape == (4, 6, len(delays))
    np.testing.assert_allclose(sw.times, delays / SFREQ)
    df = sw.to_frame()
    assert len(df) == 24
    row = df[(df.feature == "b") & (df.channel == "E2")].iloc[0]
    assert row.peak_lag_s == pytest.approx(0.06)
    assert row.peak_amplitude > 0.5
    fname = tmp_path / "sub-01_sweep.npz"
    sw.save(fname)
    back = read_sweep_result(fname)
    for key in ("r", "r_folds", "alpha", "coef", "weights", "delays", "n_times", "alphas"):
        np.testing.assert_array_equal(getattr(back, key), getattr(sw, key))
    assert back.feature_names == sw.feature_names and back.ch_names == sw.ch_names
    assert back.sfreq == sw.sfreq and back.tmin == sw.tmin
    assert back.weights.dtype == np.float32
    with np.load(fname, allow_pickle=False) as npz:
        assert "metadata" in npz.files


def test_sweep_relative_alphas_and_silent_features():
    """alphas=None scales the grid per feature; all-zero features give r = 0."""
    rng = np.random.default_rng(3)
    X, Y = _data(rng)
    X = [np.column_stack([x, np.zeros(len(x))]) for x in X]
    X[0][:, 1] *= 1000.0
    sw = univariate_sweep(X, Y, sfreq=SFREQ, tmin=TMIN, tmax=TMAX)
    assert sw.alphas.shape == (4, 9)
    assert sw.alphas[1, 0] > 100 * sw.alphas[0, 0]
    np.testing.assert_array_equal(sw.r[3], 0.0)
    assert np.all(np.isfinite(sw.r))


def test_sweep_errors():
    """Teaching errors."""
    rng = np.random.default_rng(4)
    X, Y = _data(rng)
    kw = dict(sfreq=SFREQ, tmin=TMIN, tmax=TMAX)
    with pytest.raises(ValueError, match="at least 3 runs"):
        univariate_sweep(X[:2], Y[:2], alphas=[1.0, 2.0], **kw)
    univariate_sweep(X[:2], Y[:2], alphas=[1.0], **kw)
    with pytest.raises(ValueError, match="4 run"):
        univariate_sweep(X, Y[:3], **kw)
    with pytest.raises(ValueError, match="215 samples but Y_runs has 200"):
        univariate_sweep(X, [Y[0], Y[0], Y[2], Y[3]], **kw)
    with pytest.raises(ValueError, match="feature_names has 2 names"):
        univariate_sweep(X, Y, feature_names=["a", "b"], **kw)
    with pytest.raises(ValueError, match="too few"):
        univariate_sweep([x[:8] for x in X], [y[:8] for y in Y], **kw)
    with pytest.raises(ValueError, match="end with '.npz'"):
        univariate_sweep(X, Y, alphas=[1.0], **kw).save("x.h5")


def test_sweep_layers_dict_and_no_kernels(tmp_path):
    """A dict of layers is one sweep with a layer column; sparse and dense layers mix;
    without kernels the table (peak lag and amplitude) is unchanged."""
    rng = np.random.default_rng(5)
    X, Y = _data(rng)  # feature 0 drives every channel
    sparse = [sp.csc_array(np.where(rng.random((len(x), 2)) < 0.2, 1.0, 0.0)) for x in X]
    layers = {"L3": X, "L6": sparse}
    kw = dict(sfreq=SFREQ, tmin=TMIN, tmax=TMAX, alphas=[1.0, 10.0, 100.0])
    sw = univariate_sweep(layers, Y, feature_names={"L6": ["u", "v"]}, **kw)
    assert sw.layers == ["L3"] * 3 + ["L6"] * 2
    assert sw.feature_names == ["f0", "f1", "f2", "u", "v"]
    ref = univariate_sweep([np.column_stack([x, s.toarray()]) for x, s in zip(X, sparse)], Y,
                           **kw)  # fmt: skip
    np.testing.assert_allclose(sw.r, ref.r, atol=1e-12)
    np.testing.assert_allclose(sw.coef, ref.coef, atol=1e-12)
    df = sw.to_frame()
    assert list(df.columns) == ["feature", "layer", "channel", "r", "alpha", "peak_lag_s",
                                "peak_amplitude"]  # fmt: skip
    assert (df.layer == "L6").sum() == 2 * 5
    assert df[df.layer == "L3"].groupby("feature").r.mean().idxmax() == "f0"
    lean = univariate_sweep(layers, Y, return_kernels=False, **kw)
    assert not lean.has_kernels and sw.has_kernels
    assert lean.coef.shape == (5, 5, 0) and lean.weights.shape == (4, 5, 5, 0)
    np.testing.assert_array_equal(lean.r, sw.r)
    lean_df = lean.to_frame()
    np.testing.assert_array_equal(lean_df.peak_lag_s, df.peak_lag_s)
    np.testing.assert_array_equal(lean_df.peak_amplitude, df.peak_amplitude)
    back = read_sweep_result(lean.save(tmp_path / "lean.npz"))
    assert back.layers == lean.layers
    np.testing.assert_array_equal(back.peak_amplitude, lean.peak_amplitude)
    with pytest.raises(ValueError, match="same number of runs"):
        univariate_sweep({"a": X, "b": X[:3]}, Y, **kw)
