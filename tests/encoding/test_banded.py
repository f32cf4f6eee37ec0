"""Banded ridge (one penalty per feature set) and variance partitioning."""

import numpy as np
import pytest
from sklearn.linear_model import Ridge

from neuro_sae.encoding import TRF, variance_partitioning
from neuro_sae.encoding._lagged import _lag_matrix, _times_to_delays

FS = 50.0
TMIN, TMAX = -0.04, 0.1
EDGE = "ignore:The chosen alpha lies on the edge of the grid"


def _two_sets(seed, n_times=(400, 380, 420, 390), noise=1.0):
    """Set A (3 features) drives channels 0-1, set B (2) drives 2-3; B's first feature
    copies A's first, which alone drives channel 4 (shared); channel 5 is noise."""
    rng = np.random.default_rng(seed)
    delays = _times_to_delays(TMIN, TMAX, FS)
    k = np.hanning(len(delays) + 2)[1:-1]
    A, B, Y = [], [], []
    for n in n_times:
        a = rng.standard_normal((n, 3))
        b = np.column_stack([a[:, 0] + 0.05 * rng.standard_normal(n), rng.standard_normal(n)])
        y = noise * rng.standard_normal((n, 6))
        y[:, 0] += _lag_matrix(a[:, [1]], delays) @ k
        y[:, 1] += _lag_matrix(a[:, [2]], delays) @ -k
        y[:, 2] += _lag_matrix(b[:, [1]], delays) @ k
        y[:, 3] += _lag_matrix(b[:, [1]], delays) @ (0.7 * k)
        y[:, 4] += _lag_matrix(a[:, [0]], delays) @ k
        A.append(a)
        B.append(b)
        Y.append(y)
    return A, B, Y


def test_banded_equal_alphas_is_plain_ridge():
    """bands with one shared alpha give exactly the plain ridge TRF."""
    A, B, Y = _two_sets(0)
    X = [np.column_stack([a, b]) for a, b in zip(A, B)]
    plain = TRF(TMIN, TMAX, FS, alphas=[30.0]).fit(X, Y)
    banded = TRF(TMIN, TMAX, FS, alphas=[30.0], bands=[3, 2]).fit(X, Y)
    np.testing.assert_allclose(banded.coef_, plain.coef_, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(banded.cv_scores_, plain.cv_scores_, atol=1e-12)
    assert banded.alpha_.shape == (6, 2)


@pytest.mark.filterwarnings(EDGE)
def test_banded_equals_sklearn_on_scaled_columns():
    """Per-band penalties: Ridge(1) on columns divided by sqrt(alpha_band), rescaled."""
    A, B, Y = _two_sets(1)
    X = [np.column_stack([a, b]) for a, b in zip(A, B)]
    trf = TRF(TMIN, TMAX, FS, alphas=[[3.0], [300.0]], bands=[3, 2]).fit(X, Y)
    L = len(trf.delays_)
    d = np.repeat(1 / np.sqrt([3.0, 3.0, 3.0, 300.0, 300.0]), L)
    XL = np.concatenate([_lag_matrix(x, trf.delays_) for x in X])
    ridge = Ridge(alpha=1.0).fit(XL * d, np.concatenate(Y))
    np.testing.assert_allclose(trf.coef_.reshape(6, -1), ridge.coef_ * d, rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(trf.alpha_, np.tile([3.0, 300.0], (6, 1)))
    # A grid search over band alphas picks, per channel, the candidate with the best CV r
    grid = TRF(TMIN, TMAX, FS, alphas=[1.0, 1e2, 1e4], bands=[3, 2]).fit(X, Y)
    assert grid.alphas_.shape == (9, 2) and grid.cv_scores_.shape == (4, 9, 6)
    best = np.argmax(grid.cv_scores_.mean(0), axis=0)
    np.testing.assert_array_equal(grid.alpha_, grid.alphas_[best])
    # The band of the irrelevant set is penalised hardest on the A-only channels
    assert np.all(grid.alpha_[:2, 1] >= grid.alpha_[:2, 0])
    one = TRF(TMIN, TMAX, FS, alphas=np.array(grid.alpha_[0])[:, None], bands=[3, 2])
    one.fit(X, Y)
    np.testing.assert_allclose(one.coef_[0], grid.coef_[0], rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(one.cv_scores_[:, 0, 0], grid.cv_scores_[:, best[0], 0],
                               atol=1e-12)  # fmt: skip


def test_variance_partitioning_planted():
    """Unique variance goes to the driving set on the right channels; a feature
    present in both sets gives shared variance; noise channels get none."""
    A, B, Y = _two_sets(2)
    vp = variance_partitioning({"A": A, "B": B}, Y, sfreq=FS, tmin=TMIN, tmax=TMAX)
    assert vp.subsets == [("A",), ("B",), ("A", "B")]
    uA, uB = vp.unique
    assert np.all(uA[:2] > 0.2) and np.all(np.abs(uB[:2]) < 0.03)
    assert np.all(uB[2:4] > 0.1) and np.all(np.abs(uA[2:4]) < 0.03)
    assert vp.shared[4] > 0.2 and abs(uA[4]) < 0.05 and abs(uB[4]) < 0.05
    assert np.all(np.abs(vp.r2[:, 5]) < 0.03) and np.all(np.abs(vp.shared[:4]) < 0.03)
    np.testing.assert_allclose(vp.shared, vp.r2_of("A") + vp.r2_of("B") - vp.r2_of("A", "B"))
    df = vp.to_frame()
    assert list(df.columns) == ["channel", "r2_A", "r2_B", "r2_A+B", "unique_A", "unique_B",
                                "shared"]  # fmt: skip
    # R^2 from statistics equals R^2 of explicit held-out predictions (A alone)
    best = vp.alpha[0][:, 0]
    ref = []
    for j in range(4):
        tr = [i for i in range(4) if i != j]
        m = TRF(TMIN, TMAX, FS, alphas=[1.0]).fit([A[i] for i in tr], [Y[i] for i in tr])
        preds = []
        for c in range(6):
            mc = TRF(TMIN, TMAX, FS, alphas=[best[c]]).fit(
                [A[i] for i in tr], [Y[i][:, c] for i in tr])
            preds.append(mc.predict(A[j]))
        p = np.column_stack(preds)
        p, y = p - p.mean(0), Y[j] - Y[j].mean(0)  # held-out run centred
        ref.append(1 - ((y - p) ** 2).sum(0) / (y**2).sum(0))
        del m
    np.testing.assert_allclose(vp.r2_of("A"), np.mean(ref, axis=0), atol=1e-10)


def test_variance_partitioning_errors():
    A, B, Y = _two_sets(3, n_times=(200, 210, 190))
    with pytest.raises(ValueError, match="at least 2 feature sets"):
        variance_partitioning({"A": A}, Y, sfreq=FS, tmin=TMIN, tmax=TMAX)
    with pytest.raises(ValueError, match="same number of runs"):
        variance_partitioning({"A": A, "B": B[:2]}, Y, sfreq=FS, tmin=TMIN, tmax=TMAX)
    with pytest.raises(ValueError, match="bands must be"):
        TRF(TMIN, TMAX, FS, bands=[3, 3]).fit(A, Y)
