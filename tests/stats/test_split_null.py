"""The refit null of a sweep with a predefined dev/test split refits that split."""

import numpy as np
import pytest

from neuro_sae.encoding import univariate_sweep
from neuro_sae.stats import sweep_permutation_test
from neuro_sae.stats._refit import _refit_null

from ..encoding.test_split import GRID, SFREQ, TEST, _data

KW = dict(sfreq=SFREQ, tmin=-0.04, tmax=0.1, alphas=GRID, test_runs=TEST)
SHIFTS = np.array([[0, 0, 0, 0, 0], [11, 40, 77, 3, 150], [60, 101, 5, 170, 22]])


@pytest.mark.parametrize("nested", [True, False])
def test_split_null_is_the_split_sweep_on_shifted_eeg(nested):
    """Every permutation equals the split sweep refitted on the shifted EEG (alphas
    re-chosen on the dev runs with ``nested``; held at the observed ones otherwise)."""
    X, Y = _data()
    sw = univariate_sweep(X, Y, **KW)
    null = _refit_null(X, Y, sw, SHIFTS, nested=nested)
    np.testing.assert_allclose(null[0], sw.r, rtol=0, atol=1e-11)
    for p, s in enumerate(SHIFTS[1:], start=1):
        Ys = [np.roll(y, k, axis=0) for y, k in zip(Y, s)]
        if nested:
            ref = univariate_sweep(X, Ys, **KW).r
        else:
            ref = np.empty_like(sw.r)
            for a in np.unique(sw.alpha):  # one alpha per fit: refit at the observed ones
                one = univariate_sweep(X, Ys, **{**KW, "alphas": [a]})
                mask = sw.alpha[0] == a
                ref[mask] = one.r[mask]
        np.testing.assert_allclose(null[p], ref, rtol=0, atol=1e-11)


def test_split_null_public_and_torch_cpu():
    """The public test (nested and observed) and the torch backend use the split."""
    pytest.importorskip("torch")
    X, Y = _data(seed=3)
    sw = univariate_sweep(X, Y, **KW)
    kw = dict(n_permutations=19, min_shift_s=0.5, random_state=4, return_null=True, alpha=0.1)
    res = sweep_permutation_test(X, Y, sw, **kw)
    np.testing.assert_allclose(res.r, sw.r, atol=1e-5)
    ref = _refit_null(X, Y, sw, np.concatenate([SHIFTS[:1], res.shifts]), nested=True)
    np.testing.assert_allclose(res.null, ref[1:], atol=1e-5)
    obs = sweep_permutation_test(X, Y, sw, alpha_selection="observed", **kw)
    tch = sweep_permutation_test(X, Y, sw, alpha_selection="observed", device="torch-cpu", **kw)
    ref = _refit_null(X, Y, sw, np.concatenate([SHIFTS[:1], obs.shifts]), nested=False)
    np.testing.assert_allclose(obs.null, ref[1:], atol=1e-5)
    np.testing.assert_allclose(tch.null, ref[1:], atol=1e-5)
    np.testing.assert_allclose(tch.r, sw.r, atol=1e-5)
    assert res.p_fwe[0, 1] == pytest.approx(1 / 20)  # the planted effect


@pytest.mark.parametrize("null", ["fixed", "mismatch"])
def test_split_other_nulls_refused(null):
    X, Y = _data()
    sw = univariate_sweep(X, Y, **KW)
    with pytest.raises(ValueError, match=r"test_runs=\[1, 3\].*null=\"refit\""):
        sweep_permutation_test(X, Y, sw, null=null, n_permutations=19, alpha=0.1)
