"""The refit null of a sweep fitted in a lag basis refits in the same basis."""

import numpy as np
import pytest

from neuro_sae.encoding import univariate_sweep
from neuro_sae.stats import sweep_permutation_test
from neuro_sae.stats._refit import _refit_null

from ..encoding.test_split import GRID, SFREQ, _data

KW = dict(sfreq=SFREQ, tmin=-0.06, tmax=0.2, alphas=GRID, basis=0.06)
SHIFTS = np.array([[0, 0, 0, 0, 0], [11, 40, 77, 3, 150], [60, 101, 5, 170, 22]])


@pytest.mark.parametrize("test_runs", [None, [0, 4]])
def test_basis_null_is_the_basis_sweep_on_shifted_eeg(test_runs):
    X, Y = _data(seed=5)
    kw = dict(KW, test_runs=test_runs)
    sw = univariate_sweep(X, Y, **kw)
    assert sw.basis.shape == (14, 10)
    null = _refit_null(X, Y, sw, SHIFTS, nested=True)
    np.testing.assert_allclose(null[0], sw.r, rtol=0, atol=1e-11)
    for p, s in enumerate(SHIFTS[1:], start=1):
        ref = univariate_sweep(X, [np.roll(y, k, axis=0) for y, k in zip(Y, s)], **kw)
        np.testing.assert_allclose(null[p], ref.r, rtol=0, atol=1e-11)


def test_basis_null_public_torch_cpu():
    pytest.importorskip("torch")
    X, Y = _data(seed=6)
    sw = univariate_sweep(X, Y, **KW)
    kw = dict(n_permutations=19, min_shift_s=0.5, random_state=2, return_null=True, alpha=0.1,
              alpha_selection="observed")  # fmt: skip
    res = sweep_permutation_test(X, Y, sw, **kw)
    tch = sweep_permutation_test(X, Y, sw, device="torch-cpu", **kw)
    ref = _refit_null(X, Y, sw, np.concatenate([SHIFTS[:1], res.shifts]))
    np.testing.assert_allclose(res.null, ref[1:], atol=1e-5)
    np.testing.assert_allclose(tch.null, ref[1:], atol=1e-5)
    np.testing.assert_allclose(res.r, sw.r, atol=1e-5)
    np.testing.assert_allclose(tch.r, sw.r, atol=1e-5)
    assert res.p_fwe[0, 1] == pytest.approx(1 / 20)
    with pytest.raises(ValueError, match="lag basis of 10 kernels"):
        sweep_permutation_test(X, Y, sw, rank_tol=1e-4, **kw)
