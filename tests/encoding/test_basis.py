"""The lag basis: kernels tiling the window; a sweep in the basis equals ridge on the
explicit design ``X_lag @ basis``; its refit null refits in the basis."""

import numpy as np
import pytest

from neuro_sae.encoding import lag_basis, lag_matrix, univariate_sweep

from .test_split import GRID, SFREQ, _data, _r, _ridge


def test_lag_basis_tiles_the_window():
    B = lag_basis(100.0, -0.05, 0.31, 0.04)  # delays -5 ... 31, width 4 samples
    assert B.shape == (37, 19)
    np.testing.assert_allclose(B.sum(1), 1.0, atol=1e-12)  # Hann at half-width spacing
    assert np.all(B >= 0) and np.array_equal(np.argmax(B, axis=0), np.arange(0, 37, 2))
    assert np.count_nonzero(B[:, 5]) == 3  # delays 8, 9 (peak), 10 ... : width 4 samples
    B2 = lag_basis(100.0, -0.05, 0.3, 0.04)  # span 35: 19 kernels spaced 35 / 18 < 2
    assert B2.shape == (36, 19) and np.all(B2.sum(1) >= 1.0 - 1e-12)
    H = lag_basis(100.0, -0.05, 0.3, 0.04, kind="hamming")
    assert H.max() == pytest.approx(1.0) and H[H > 0].min() >= 0.08 - 1e-12
    with pytest.raises(ValueError, match=r"width=0\.01 s is 1 samples.*width >= 0\.02"):
        lag_basis(100.0, 0.0, 0.3, 0.01)


def _hand_loro(X, Y, delays, basis, grid):
    """Nested leave-one-run-out on the explicit design X_lag @ basis, by hand."""
    R, F, C = len(X), X[0].shape[1], Y[0].shape[1]
    r = np.zeros((F, C))
    for f in range(F):
        Z = [lag_matrix(x[:, [f]], delays) @ basis for x in X]
        for c in range(C):
            for j in range(R):
                train = [i for i in range(R) if i != j]
                score = np.zeros(len(grid))
                for k in train:
                    tr = [i for i in train if i != k]
                    for ai, a in enumerate(grid):
                        w, b = _ridge([Z[i] for i in tr], [Y[i][:, c] for i in tr], a)
                        score[ai] += _r(Z[k] @ w + b, Y[k][:, c])
                a = grid[int(np.argmax(score))]
                w, b = _ridge([Z[i] for i in train], [Y[i][:, c] for i in train], a)
                r[f, c] += _r(Z[j] @ w + b, Y[j][:, c]) / R
    return r


def test_sweep_in_basis_equals_explicit_design():
    X, Y = _data(seed=2)
    X, Y = [x[:, :2] for x in X[:4]], [y[:, 1:4] for y in Y[:4]]
    sw = univariate_sweep(X, Y, sfreq=SFREQ, tmin=-0.04, tmax=0.2, alphas=GRID, basis=0.08)
    basis = lag_basis(SFREQ, -0.04, 0.2, 0.08)
    assert basis.shape == (13, 7)
    np.testing.assert_array_equal(sw.basis, basis)
    np.testing.assert_allclose(sw.r, _hand_loro(X, Y, sw.delays, basis, GRID), atol=1e-10)
    # kernels over the delays lie in the span of the basis: basis @ beta
    beta, *_ = np.linalg.lstsq(basis, sw.coef.reshape(-1, 13).T, rcond=None)
    np.testing.assert_allclose(basis @ beta, sw.coef.reshape(-1, 13).T, atol=1e-10)
    assert sw.coef.shape == (2, 3, 13) and sw.weights.shape == (4, 2, 3, 13)
    # an explicit matrix gives the same sweep; the basis changes the result
    same = univariate_sweep(X, Y, sfreq=SFREQ, tmin=-0.04, tmax=0.2, alphas=GRID, basis=basis)
    np.testing.assert_array_equal(same.r, sw.r)
    plain = univariate_sweep(X, Y, sfreq=SFREQ, tmin=-0.04, tmax=0.2, alphas=GRID)
    assert np.max(np.abs(plain.r - sw.r)) > 1e-3


@pytest.mark.parametrize("basis", ["hann", np.ones((13, 2)), np.ones((12, 3)), np.eye(13)[:, :0]])
def test_bad_basis_names_the_fix(basis):
    X, Y = _data()
    with pytest.raises(ValueError, match="basis .*lag_basis"):
        univariate_sweep(X, Y, sfreq=SFREQ, tmin=-0.04, tmax=0.2, alphas=GRID, basis=basis)


def test_lag_basis_inside_is_whole_sample_translates():
    B = lag_basis(100.0, -0.05, 0.31, 0.04, placement="inside")  # 37 delays, kernel 3 taps
    assert B.shape == (37, 18)
    k = B[:3, 0]
    np.testing.assert_allclose(k, [0.5, 1.0, 0.5])
    for b in range(18):  # same kernel, 2 samples apart, inside the window
        np.testing.assert_array_equal(B[2 * b : 2 * b + 3, b], k)
        assert np.count_nonzero(B[:, b]) == 3
    np.testing.assert_allclose(B.sum(1)[1:-1], 1.0)  # Hann at half-width spacing
    assert B.sum(1)[0] == 0.5 and B.sum(1)[-1] == 0.5  # the TRF goes to zero at the ends
    C = lag_basis(128.0, -0.1, 0.5, 0.1, placement="inside")  # 78 delays, 13-tap kernel
    assert C.shape == (78, 11)
    first = [np.nonzero(C[:, b])[0][0] for b in range(11)]
    assert np.all(np.diff(first) == 6) and first[0] == 76 - 13 - first[-1] + 1
    with pytest.raises(ValueError, match="longer than the window's 5.*placement='tile'"):
        lag_basis(100.0, 0.0, 0.04, 0.1, placement="inside")
    with pytest.raises(ValueError, match="placement"):
        lag_basis(100.0, 0.0, 0.3, 0.04, placement="centre")
