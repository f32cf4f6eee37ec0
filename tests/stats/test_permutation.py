"""Tests of the circular-shift sweep permutation test."""

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.signal import lfilter

from neuro_sae.encoding import univariate_sweep
from neuro_sae.encoding._lagged import _lag_matrix
from neuro_sae.stats import (
    PermutationResult,
    fdr_correction,
    read_permutation_result,
    sweep_permutation_test,
)
from neuro_sae.stats._permutation import _shift_r

SFREQ = 50.0
TMIN, TMAX = -0.04, 0.1


def _ar1(rng, n, n_ch, phi=0.8):
    """Autocorrelated noise (AR(1)), like band-limited EEG."""
    return lfilter([1.0], [1.0, -phi], rng.standard_normal((n, n_ch)), axis=0)


def _data(rng, n_times=(310, 330, 320), n_feat=4, n_ch=5, gain=0.0):
    X = [rng.standard_normal((n, n_feat)) for n in n_times]
    Y = [_ar1(rng, n, n_ch) for n in n_times]
    if gain:
        for x, y in zip(X, Y):
            y[:, 2] += gain * np.roll(x[:, 1], 2)
    return X, Y


def test_fft_shortcut_equals_rolling():
    """r for every shift from the FFT equals r after physically rolling the EEG."""
    rng = np.random.default_rng(0)
    X, Y = _data(rng, gain=1.0)
    sw = univariate_sweep(X, Y, sfreq=SFREQ, tmin=TMIN, tmax=TMAX, alphas=[1.0, 50.0])
    j = 1
    y = Y[j]
    yc = y - y.mean(0)
    spec = np.conj(np.fft.rfft(yc.T, axis=-1))
    norm = np.sqrt((yc**2).sum(0))
    w = sw.weights[j].astype(np.float64)
    r_all = _shift_r(X[j], w, sw.delays, spec, norm)
    for shift in (0, 1, 57, 200, len(y) - 3):
        rolled = np.roll(y, shift, axis=0)
        for f in range(4):
            pred = _lag_matrix(X[j][:, [f]], sw.delays) @ w[f].T  # (T, C)
            for c in range(5):
                ref = np.corrcoef(pred[:, c], rolled[:, c])[0, 1]
                assert abs(r_all[f, c, shift] - ref) < 1e-10
    # the public null (float32) is the mean over folds of rolled r
    res = sweep_permutation_test(X, Y, sw, n_permutations=5, random_state=1, return_null=True)
    k = 3
    ref = np.zeros((4, 5))
    for jj, (x, yy) in enumerate(zip(X, Y)):
        rolled = np.roll(yy, res.shifts[k, jj], axis=0)
        for f in range(4):
            pred = _lag_matrix(x[:, [f]], sw.delays) @ sw.weights[jj, f].astype(float).T
            ref[f] += [np.corrcoef(pred[:, c], rolled[:, c])[0, 1] for c in range(5)]
    np.testing.assert_allclose(res.null[k], ref / 3, atol=1e-6)
    np.testing.assert_allclose(res.r, sw.r, atol=1e-5)  # float32 fold weights


def test_planted_effect_detected(tmp_path):
    """A planted effect survives max-T; nothing else does; results round-trip."""
    rng = np.random.default_rng(2)
    X, Y = _data(rng, gain=1.0)
    Xs = [sp.csr_array(np.where(np.abs(x) > 1.0, x, 0.0)) for x in X]
    sw = univariate_sweep(Xs, Y, sfreq=SFREQ, tmin=TMIN, tmax=TMAX, alphas=[1.0, 100.0])
    res = sweep_permutation_test(
        Xs, Y, sw, n_permutations=199, min_shift_s=0.5, random_state=0, chunk_size=3
    )
    assert isinstance(res, PermutationResult)
    assert res.p_fwe[1, 2] == pytest.approx(1 / 200)
    assert np.sum(res.p_fwe < 0.05) <= 2  # only the planted test (rarely one false positive)
    assert np.all(res.p_fwe >= res.p_uncorrected - 1e-12)
    assert np.all(np.abs(res.shifts - 0) >= 25)
    assert np.all(res.shifts <= np.array([310, 330, 320]) - 25)
    df = res.to_frame()
    assert df.loc[(df.feature == "f1") & (df.channel == "ch2"), "significant"].item()
    fname = tmp_path / "perm.npz"
    res.save(fname)
    back = read_permutation_result(fname)
    np.testing.assert_array_equal(back.p_fwe, res.p_fwe)
    np.testing.assert_array_equal(back.shifts, res.shifts)
    assert back.null is None and back.random_state == 0 and back.min_shift_s == 0.5
    assert back.n_permutations == 199 and "circular" in back.null_type
    # same random_state, same result; chunking does not matter
    again = sweep_permutation_test(Xs, Y, sw, n_permutations=199, min_shift_s=0.5, random_state=0)
    np.testing.assert_allclose(again.p_fwe, res.p_fwe)
    np.testing.assert_allclose(again.max_null, res.max_null, atol=1e-12)


@pytest.mark.xfail(
    strict=True,
    reason=(
        "Known flaw of the fixed-model null: fold j's model is trained on the unshifted "
        "EEG of the other runs, so the fold r's share terms a_j.K.a_k and the observed "
        "mean over folds has twice the null variance; FWE ~0.23 instead of 0.05. "
        "A valid null refits the folds on consistently shifted EEG (see the notes)."
    ),
)
def test_max_t_calibrated_on_null_data():
    """Family-wise error of max-T under the null (independent stimulus, AR(1) EEG)."""
    rng = np.random.default_rng(3)
    n_sim, hits = 200, 0
    for _ in range(n_sim):
        X, Y = _data(rng, n_times=(180, 190, 200), n_feat=3, n_ch=4)
        sw = univariate_sweep(X, Y, sfreq=SFREQ, tmin=0.0, tmax=0.06, alphas=[10.0])
        res = sweep_permutation_test(
            X, Y, sw, n_permutations=99, min_shift_s=0.5, random_state=rng
        )
        hits += bool(np.any(res.p_fwe <= 0.05))
    assert 0.01 <= hits / n_sim <= 0.10, hits


def test_fdr_equals_statsmodels():
    """BH adjusted p-values equal statsmodels' fdr_bh."""
    from statsmodels.stats.multitest import multipletests

    rng = np.random.default_rng(4)
    p = rng.random((7, 3)) ** 3
    np.testing.assert_allclose(
        fdr_correction(p, method="bh"), multipletests(p.ravel(), method="fdr_bh")[1].reshape(7, 3)
    )
    with pytest.raises(ValueError, match="'method' parameter"):
        fdr_correction(p, method="by")


def test_permutation_errors():
    """Teaching errors on mismatched data and impossible shifts."""
    rng = np.random.default_rng(5)
    X, Y = _data(rng)
    sw = univariate_sweep(X, Y, sfreq=SFREQ, tmin=TMIN, tmax=TMAX, alphas=[1.0])
    with pytest.raises(ValueError, match="sweep was fitted on runs"):
        sweep_permutation_test(X[:2], Y[:2], sw)
    with pytest.raises(ValueError, match="leaves no allowed shift"):
        sweep_permutation_test(X, Y, sw, min_shift_s=4.0)
    with pytest.raises(TypeError, match="sweep must be an instance of SweepResult"):
        sweep_permutation_test(X, Y, sw.r)
