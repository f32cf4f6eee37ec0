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
from neuro_sae.stats._refit import _refit_null

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


@pytest.mark.filterwarnings("ignore:n_permutations=.* is too small:UserWarning")
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
    # the public fixed null (float32) is the mean over folds of rolled r
    with pytest.warns(UserWarning, match="anti-conservative"):
        res = sweep_permutation_test(
            X, Y, sw, n_permutations=5, random_state=1, return_null=True, null="fixed"
        )
    k = 3
    ref = np.zeros((4, 5))
    for jj, (x, yy) in enumerate(zip(X, Y)):
        rolled = np.roll(yy, res.shifts[k, jj], axis=0)
        for f in range(4):
            pred = _lag_matrix(x[:, [f]], sw.delays) @ sw.weights[jj, f].astype(float).T
            ref[f] += [np.corrcoef(pred[:, c], rolled[:, c])[0, 1] for c in range(5)]
    np.testing.assert_allclose(res.null[k], ref / 3, atol=1e-6)
    np.testing.assert_allclose(res.r, sw.r, atol=1e-5)  # float32 fold weights


def _refit_by_hand(X, Y, sw, shifts):
    """Mean held-out r after rolling every run and refitting each fold from lag matrices."""
    Ys = [np.roll(y, s, axis=0) for y, s in zip(Y, shifts)]
    R, F, C = len(X), X[0].shape[1], Y[0].shape[1]
    out = np.zeros((F, C))
    for k in range(R):
        train = [j for j in range(R) if j != k]
        for f in range(F):
            Xt = np.concatenate([_lag_matrix(X[j][:, [f]], sw.delays) for j in train])
            Yt = np.concatenate([Ys[j] for j in train])
            mx, my = Xt.mean(0), Yt.mean(0)
            Xh = _lag_matrix(X[k][:, [f]], sw.delays)
            for c in range(C):
                A = (Xt - mx).T @ (Xt - mx) + sw.alpha[k, f, c] * np.eye(Xt.shape[1])
                w = np.linalg.solve(A, (Xt - mx).T @ (Yt[:, c] - my[c]))
                pred = Xh @ w + my[c] - mx @ w
                out[f, c] += np.corrcoef(pred, Ys[k][:, c])[0, 1]
    return out / R


@pytest.mark.filterwarnings("ignore:n_permutations=.* is too small:UserWarning")
def test_refit_null_equals_rolling_and_refitting():
    """The FFT refit null equals rolling every run's EEG and refitting every fold."""
    rng = np.random.default_rng(6)
    n_times = (61, 67, 73, 59)
    X, Y = _data(rng, n_times=n_times, n_feat=3, n_ch=4, gain=0.7)
    # delays -3 ... 5: both zero-padded edges matter
    sw = univariate_sweep(X, Y, sfreq=SFREQ, tmin=-0.06, tmax=0.1, alphas=[0.5, 20.0, 300.0])
    assert len(np.unique(sw.alpha)) > 1  # several chosen alphas are exercised
    shifts = np.array([[0, 0, 0, 0], [5, 17, 60, 3], [1, 66, 2, 30], [58, 33, 72, 1]])
    null = _refit_null(X, Y, sw, shifts, chunk_size=2)
    np.testing.assert_allclose(null[0], sw.r, rtol=1e-8, atol=1e-14)  # no shift: sweep.r
    for p in range(1, len(shifts)):
        np.testing.assert_allclose(null[p], _refit_by_hand(X, Y, sw, shifts[p]), rtol=1e-8)
    # threads over feature chunks and tiny permutation blocks change nothing
    threaded = _refit_null(X, Y, sw, shifts, chunk_size=1, n_workers=2)
    np.testing.assert_allclose(threaded, null, rtol=1e-12, atol=1e-15)
    # the public test (float32 null) uses the same shifts convention
    res = sweep_permutation_test(
        X, Y, sw, n_permutations=3, min_shift_s=0.1, random_state=7, return_null=True,
        alpha_selection="observed",
    )
    assert res.provenance["null_type"] == "refit" and "refit" in res.null_type
    np.testing.assert_allclose(res.r, sw.r, rtol=1e-5, atol=1e-6)  # float32 products
    for p in range(3):
        ref = _refit_by_hand(X, Y, sw, res.shifts[p])
        np.testing.assert_allclose(res.null[p], ref, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("seed", [2, 17])
def test_planted_effect_detected(tmp_path, seed):
    """A planted effect survives max-T; nothing else does; results round-trip."""
    rng = np.random.default_rng(seed)
    X, Y = _data(rng, gain=1.0)
    Xs = [sp.csr_array(np.where(np.abs(x) > 1.0, x, 0.0)) for x in X]
    sw = univariate_sweep(Xs, Y, sfreq=SFREQ, tmin=TMIN, tmax=TMAX, alphas=[1.0, 100.0])
    res = sweep_permutation_test(
        Xs, Y, sw, n_permutations=199, min_shift_s=0.5, random_state=seed, chunk_size=3
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
    assert back.null is None and back.random_state == seed and back.min_shift_s == 0.5
    assert back.n_permutations == 199 and "refit" in back.null_type
    assert back.provenance["null_type"] == "refit"
    # same random_state, same result; chunking does not matter
    again = sweep_permutation_test(
        Xs, Y, sw, n_permutations=199, min_shift_s=0.5, random_state=seed
    )
    np.testing.assert_allclose(again.p_fwe, res.p_fwe)
    np.testing.assert_allclose(again.max_null, res.max_null, atol=1e-12)


def _fwer_on_null_data(null, n_sim=200, seed=3):
    """Family-wise error of max-T at 0.05 (independent stimulus, AR(1) EEG)."""
    rng = np.random.default_rng(seed)
    hits = 0
    for _ in range(n_sim):
        X, Y = _data(rng, n_times=(180, 190, 200), n_feat=3, n_ch=4)
        sw = univariate_sweep(X, Y, sfreq=SFREQ, tmin=0.0, tmax=0.06, alphas=[10.0])
        res = sweep_permutation_test(
            X, Y, sw, n_permutations=99, min_shift_s=0.5, random_state=rng, null=null
        )
        hits += bool(np.any(res.p_fwe <= 0.05))
    return hits / n_sim


@pytest.mark.filterwarnings("ignore:null=.fixed. is anti-conservative:UserWarning")
@pytest.mark.xfail(
    strict=True,
    reason=(
        "Known flaw of the fixed-model null: fold j's model is trained on the unshifted "
        "EEG of the other runs, so the fold r's share terms a_j.K.a_k and the observed "
        "mean over folds has twice the null variance; FWE ~0.23 instead of 0.05. "
        "The refit null (default) shifts training and held-out EEG consistently."
    ),
)
def test_fixed_null_max_t_calibrated_on_null_data():
    """Documents that the fixed-model null is anti-conservative (strict xfail)."""
    fwer = _fwer_on_null_data("fixed")
    assert 0.01 <= fwer <= 0.10, fwer


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
    with pytest.raises(ValueError, match="null"):
        sweep_permutation_test(X, Y, sw, null="shuffle")
    with pytest.raises(TypeError, match="sweep must be an instance of SweepResult"):
        sweep_permutation_test(X, Y, sw.r)


def test_mismatch_null_equals_pairing_and_refitting(tmp_path):
    """Trial-mismatch null: runs cropped to the shortest, stimulus i against EEG pi[i],
    refit with the observed alphas, equals doing that by hand; provenance round-trips."""
    import pandas as pd

    from neuro_sae.stats._mismatch import _mismatch_null

    rng = np.random.default_rng(8)
    n_times = (61, 67, 73, 59, 64)
    X, Y = _data(rng, n_times=n_times, n_feat=3, n_ch=4, gain=0.7)
    sw = univariate_sweep(X, Y, sfreq=SFREQ, tmin=-0.06, tmax=0.1, alphas=[0.5, 20.0, 300.0])
    perms = np.array([[0, 1, 2, 3, 4], [1, 0, 3, 4, 2], [4, 3, 1, 0, 2]])
    null = _mismatch_null(X, Y, sw, perms)
    n = min(n_times)
    for p, pi in enumerate(perms):
        ref = _refit_by_hand([x[:n] for x in X], [Y[j][:n] for j in pi], sw, [0] * 5)
        np.testing.assert_allclose(null[p], ref, rtol=1e-9, atol=1e-13)
    res = sweep_permutation_test(
        X, Y, sw, n_permutations=30, null="mismatch", random_state=0, return_null=True,
        alpha_selection="observed",
    )
    assert res.provenance["null_type"] == "mismatch"
    assert res.provenance["n_times_cropped"] == n
    np.testing.assert_allclose(res.r, null[0], rtol=1e-12)
    assert res.shifts.shape == (30, 5)
    assert all(sorted(row) == list(range(5)) for row in res.shifts)
    p_fwe = (1 + (res.max_null[:, None, None] >= res.r).sum(0)) / 31
    np.testing.assert_allclose(res.p_fwe, p_fwe)
    res.save(tmp_path / "mm.npz")
    back = read_permutation_result(tmp_path / "mm.npz")
    assert back.provenance == res.provenance and "config_hash" in back.provenance
    res.save_table(tmp_path / "mm.parquet")
    df = pd.read_parquet(tmp_path / "mm.parquet")
    assert len(df) == 12 and set(df.columns) >= {"p_fwe", "p_fdr", "p_uncorrected"}
    with pytest.warns(UserWarning, match="only 6 pairings"):
        sweep_permutation_test(
            X[:3], Y[:3], univariate_sweep(X[:3], Y[:3], sfreq=SFREQ, tmin=0, tmax=0.1,
                                           alphas=[1.0]),
            n_permutations=40, null="mismatch", random_state=0,
        )  # fmt: skip
    # a different setting gives a different config hash
    other = sweep_permutation_test(X, Y, sw, n_permutations=31, null="mismatch", random_state=0,
                                   alpha_selection="observed")  # fmt: skip
    assert other.provenance["config_hash"] != res.provenance["config_hash"]
