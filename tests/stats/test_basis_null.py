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


@pytest.mark.parametrize("nested", [False, True])
def test_translate_route_equals_general_route_and_shifted_sweep(nested):
    # whole-sample translates of one kernel, each inside the window: the null filters each
    # feature once per run; it must equal the general basis route and the sweep refitted
    # on physically rolled EEG
    from neuro_sae.encoding import lag_basis
    from neuro_sae.stats._translate import _translate_structure

    X, Y = _data(seed=7)
    basis = lag_basis(SFREQ, -0.06, 0.2, 0.05, placement="inside")
    kernel, starts = _translate_structure(basis)
    assert basis.shape[1] >= 3 and len(set(np.diff(starts))) == 1
    assert _translate_structure(lag_basis(SFREQ, -0.06, 0.2, 0.05)) is None  # cut-off ends
    kw = dict(KW, basis=basis)
    sw = univariate_sweep(X, Y, **kw)
    fast = _refit_null(X, Y, sw, SHIFTS, nested=nested)
    slow = _refit_null(X, Y, sw, SHIFTS, nested=nested, translates=False)
    np.testing.assert_allclose(fast, slow, rtol=0, atol=1e-12)
    np.testing.assert_allclose(fast[0], sw.r, rtol=0, atol=1e-11)
    if nested:  # alphas chosen per permutation as the sweep chooses them
        for p, s in enumerate(SHIFTS[1:], start=1):
            ref = univariate_sweep(X, [np.roll(y, k, axis=0) for y, k in zip(Y, s)], **kw)
            np.testing.assert_allclose(fast[p], ref.r, rtol=0, atol=1e-11)


def test_translate_route_float32_and_edge_windows_on_the_fly(monkeypatch):
    import neuro_sae.stats._refit as refit
    from neuro_sae.encoding import lag_basis

    X, Y = _data(seed=8)
    kw = dict(KW, basis=lag_basis(SFREQ, -0.06, 0.2, 0.05, placement="inside"))
    sw = univariate_sweep(X, Y, **kw)
    ref = _refit_null(X, Y, sw, SHIFTS, nested=True, translates=False)
    f32 = _refit_null(X, Y, sw, SHIFTS, nested=True, dtype=np.float32, n_workers=2)
    np.testing.assert_allclose(f32, ref, rtol=0, atol=1e-4)
    monkeypatch.setattr(refit, "WINDOW_BYTES", 0)  # too big to share: gathered per feature
    again = _refit_null(X, Y, sw, SHIFTS, nested=True)
    np.testing.assert_allclose(again, ref, rtol=0, atol=1e-12)


def test_translate_route_decimated_table_on_shifts_of_the_kernel_spacing():
    # shifts that are multiples of the kernels' spacing read every step-th table entry
    # from a folded spectrum; runs of odd length (step does not divide them) fall back
    # to the full table; both equal the general route and physically rolled EEG
    from neuro_sae.encoding import lag_basis
    from neuro_sae.stats._refit import _EEG
    from neuro_sae.stats._translate import _translate_structure

    X, Y = _data(seed=9)
    basis = lag_basis(SFREQ, -0.06, 0.2, 0.1, placement="inside")  # 5-tap kernels, 2 apart
    kernel, starts = _translate_structure(basis)
    assert len(kernel) == 5 and np.all(np.diff(starts) == 2)
    shifts = np.array([[0, 0, 0, 0, 0], [12, 40, 76, 4, 150], [60, 100, 6, 170, 22]])
    eeg = _EEG(Y, np.float64)
    eeg.use_translates((kernel, starts), np.arange(-3, 11), shifts)
    n_even = [len(y) % 2 == 0 for y in Y]
    assert [d is not None for d in eeg.dec] == n_even and any(n_even)
    kw = dict(KW, basis=basis)
    sw = univariate_sweep(X, Y, **kw)
    fast = _refit_null(X, Y, sw, shifts, nested=True)
    slow = _refit_null(X, Y, sw, shifts, nested=True, translates=False)
    np.testing.assert_allclose(fast, slow, rtol=0, atol=1e-12)
    for p, s in enumerate(shifts[1:], start=1):
        ref = univariate_sweep(X, [np.roll(y, k, axis=0) for y, k in zip(Y, s)], **kw)
        np.testing.assert_allclose(fast[p], ref.r, rtol=0, atol=1e-11)


def test_public_null_draws_shifts_on_the_kernel_spacing():
    from neuro_sae.encoding import lag_basis

    X, Y = _data(seed=10)
    X, Y = [x[:, :2] for x in X[::2]], [y[:, :3] for y in Y[::2]]  # runs of 140, 170, 200
    kw = dict(KW, basis=lag_basis(SFREQ, -0.06, 0.2, 0.1, placement="inside"))
    sw = univariate_sweep(X, Y, **kw)
    args = dict(n_permutations=29, min_shift_s=0.5, random_state=3, return_null=True,
                alpha=0.1)  # fmt: skip
    res = sweep_permutation_test(X, Y, sw, **args)
    assert res.shifts.shape == (29, 3) and np.all(res.shifts % 2 == 0)
    assert len(np.unique(res.shifts[:, 2])) > 10 and res.provenance["shift_step"] == 2
    assert np.all(res.shifts >= 25) and np.all(res.shifts <= np.array([115, 145, 175]))
    ref = _refit_null(X, Y, sw, np.concatenate([SHIFTS[:1, :3], res.shifts]), nested=True,
                      translates=False)  # fmt: skip
    np.testing.assert_allclose(res.null, ref[1:], atol=1e-5)
    one = sweep_permutation_test(X, Y, sw, shift_step=1, **args)
    assert np.any(one.shifts % 2 == 1) and "shift_step" not in one.provenance
    assert one.provenance["config_hash"] != res.provenance["config_hash"]
    # odd run lengths: "auto" keeps every sample
    odd = [y[:-1] for y in Y]
    sw_odd = univariate_sweep([x[:-1] for x in X], odd, **kw)
    res_odd = sweep_permutation_test([x[:-1] for x in X], odd, sw_odd, **args)
    assert "shift_step" not in res_odd.provenance
    with pytest.raises(ValueError, match=r'shift_step must be "auto" or a positive int'):
        sweep_permutation_test(X, Y, sw, shift_step=0, **args)
    with pytest.raises(ValueError, match="shift_step=120 leaves no allowed shift"):
        sweep_permutation_test(X, Y, sw, shift_step=120, **args)
