"""A predefined dev/test split in the univariate sweep equals a hand computation."""

import numpy as np
import pytest
from scipy.signal import lfilter

from neuro_sae.encoding import lag_matrix, read_sweep_result, univariate_sweep

SFREQ = 50.0
N_TIMES = (140, 155, 170, 185, 200)  # distinct lengths
GRID = [0.3, 5.0, 80.0, 1500.0]
TEST = [1, 3]  # 3 dev + 2 test runs


def _data(seed=0, n_feat=3, n_ch=4):
    rng = np.random.default_rng(seed)
    X = [lfilter([1.0], [1.0, -0.6], rng.standard_normal((n, n_feat)), axis=0) for n in N_TIMES]
    Y = [rng.standard_normal((n, n_ch)) + 3.0 for n in N_TIMES]
    for x, y in zip(X, Y):  # planted effects: f0 -> ch1 at lag 2, f2 -> ch3 at lag -1
        y[:, 1] += 0.6 * np.roll(x[:, 0], 2)
        y[:, 3] += 0.3 * np.roll(x[:, 2], -1)
    return X, Y


def _ridge(Xs, ys, alpha):
    """Ridge with intercept on the concatenated runs: centred lag matrix, solve."""
    Xc, yc = np.concatenate(Xs), np.concatenate(ys)
    mx, my = Xc.mean(0), yc.mean(0)
    A = (Xc - mx).T @ (Xc - mx) + alpha * np.eye(Xc.shape[1])
    w = np.linalg.solve(A, (Xc - mx).T @ (yc - my))
    return w, my - mx @ w


def _r(pred, y):
    return np.corrcoef(pred, y)[0, 1]


def _hand(X, Y, delays, test, grid):
    """Alpha by leave-one-dev-run-out (sum of r), ridge on all dev runs, Pearson r on the
    concatenated test runs; per feature and channel."""
    dev = [i for i in range(len(X)) if i not in test]
    F, C = X[0].shape[1], Y[0].shape[1]
    r, alpha, coef = np.empty((F, C)), np.empty((F, C)), np.empty((F, C, len(delays)))
    for f in range(F):
        lag = [lag_matrix(x[:, [f]], delays) for x in X]
        for c in range(C):
            score = np.zeros(len(grid))
            for k in dev if len(grid) > 1 else []:
                tr = [i for i in dev if i != k]
                for ai, a in enumerate(grid):
                    w, b = _ridge([lag[i] for i in tr], [Y[i][:, c] for i in tr], a)
                    score[ai] += _r(lag[k] @ w + b, Y[k][:, c])
            a = grid[int(np.argmax(score))]
            w, b = _ridge([lag[i] for i in dev], [Y[i][:, c] for i in dev], a)
            pred = np.concatenate([lag[i] @ w + b for i in test])
            r[f, c] = _r(pred, np.concatenate([Y[i][:, c] for i in test]))
            alpha[f, c], coef[f, c] = a, w
    return r, alpha, coef


def test_split_sweep_equals_hand_computation(tmp_path):
    X, Y = _data()
    sw = univariate_sweep(X, Y, sfreq=SFREQ, tmin=-0.04, tmax=0.1, alphas=GRID, test_runs=TEST)
    r, alpha, coef = _hand(X, Y, sw.delays, TEST, GRID)
    assert len(np.unique(alpha)) > 1  # the inner CV picks different alphas
    np.testing.assert_allclose(sw.r, r, rtol=0, atol=1e-10)
    np.testing.assert_allclose(sw.r_folds[0], r, rtol=0, atol=1e-10)
    np.testing.assert_array_equal(sw.alpha[0], alpha)
    np.testing.assert_array_equal(sw.alpha_final, alpha)
    np.testing.assert_allclose(sw.coef, coef, rtol=1e-9, atol=1e-12)
    assert sw.r[0, 1] > 0.4 and sw.r[2, 3] > 0.15  # planted effects found
    np.testing.assert_array_equal(sw.test_runs, TEST)
    assert [t.tolist() for _, t in sw.folds] == [TEST]
    assert "test runs [1, 3]" in sw.provenance["cv"]
    # the split is not the leave-one-run-out sweep
    loro = univariate_sweep(X, Y, sfreq=SFREQ, tmin=-0.04, tmax=0.1, alphas=GRID)
    assert loro.test_runs.size == 0 and len(loro.folds) == 5
    assert np.max(np.abs(loro.r - sw.r)) > 1e-3
    # saved and read back with its split
    sw.save(tmp_path / "split_sweep.npz")
    back = read_sweep_result(tmp_path / "split_sweep.npz")
    np.testing.assert_array_equal(back.test_runs, TEST)
    np.testing.assert_array_equal(back.r, sw.r)


def test_split_single_alpha_one_dev_run():
    """One alpha needs no inner CV: a single dev run is enough."""
    X, Y = _data(seed=1)
    sw = univariate_sweep(X[:2], Y[:2], sfreq=SFREQ, tmin=0.0, tmax=0.06, alphas=[7.0],
                          test_runs=[0])  # fmt: skip
    r, _, _ = _hand(X[:2], Y[:2], sw.delays, [0], [7.0])
    np.testing.assert_allclose(sw.r, r, rtol=0, atol=1e-10)


@pytest.mark.parametrize(
    "test_runs, alphas",
    [([5], GRID), ([0, 0], GRID), ([0, 1, 2, 3], GRID), ([], GRID), ([0.5], GRID),
     ([0, 1, 2, 3, 4], [1.0])],
)  # fmt: skip
def test_split_bad_test_runs_name_the_fix(test_runs, alphas):
    X, Y = _data()
    with pytest.raises(ValueError, match=r"test_runs must be distinct run indices in 0 \.\.\. 4"):
        univariate_sweep(X, Y, sfreq=SFREQ, tmin=0.0, tmax=0.06, alphas=alphas,
                         test_runs=test_runs)  # fmt: skip
