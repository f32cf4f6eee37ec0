"""Calibration of the permutation nulls on null data and FDR control on mixtures."""

import numpy as np
import pytest
from scipy.signal import lfilter

from neuro_sae.encoding import univariate_sweep
from neuro_sae.stats import fdr_correction, sweep_permutation_test

SFREQ = 50.0


def _null_subject(rng, n_times=(150, 160, 170), n_feat=3, n_ch=4):
    """Independent stimulus and EEG, both autocorrelated (AR(1), phi 0.7 and 0.85)."""
    X = [lfilter([1.0], [1.0, -0.7], rng.standard_normal((n, n_feat)), axis=0) for n in n_times]
    Y = [lfilter([1.0], [1.0, -0.85], rng.standard_normal((n, n_ch)), axis=0) for n in n_times]
    return X, Y


def _fwer(n_sim, seed, alphas, null="refit", n_permutations=99):
    rng = np.random.default_rng(seed)
    hits = 0
    for _ in range(n_sim):
        X, Y = _null_subject(rng)
        sw = univariate_sweep(X, Y, sfreq=SFREQ, tmin=0.0, tmax=0.06, alphas=alphas)
        res = sweep_permutation_test(
            X, Y, sw, n_permutations=n_permutations, min_shift_s=0.5, random_state=rng,
            null=null,
        )  # fmt: skip
        hits += bool(np.any(res.p_fwe <= 0.05))
    return hits / n_sim


@pytest.mark.slow
def test_max_t_fwer_in_nominal_band():
    """FWER of max-T at 0.05 over 500 null simulations lies in [0.03, 0.07].

    The seed is fixed on purpose: with 500 simulations the binomial sd at 0.05 is
    ~0.0097, so [0.03, 0.07] is a ~2 sd band that a valid test leaves about 5% of
    the time; a fixed seed makes the check deterministic (the looser any-seed check
    with 200 simulations is in test_permutation.py).
    """
    fwer = _fwer(500, seed=20261125, alphas=[10.0])
    assert 0.03 <= fwer <= 0.07, fwer


def test_fdr_controls_on_mixture():
    """BH at q=0.1 on null p-values mixed with planted effects: FDP averages <= q."""
    rng = np.random.default_rng(11)
    fdp, power = [], []
    for _ in range(300):
        m, m1 = 200, 40
        z = rng.standard_normal(m)
        z[:m1] += 4.0  # planted effects, large enough for any seed
        from scipy.stats import norm

        p = norm.sf(z)
        rej = fdr_correction(p, method="bh") <= 0.1
        n_rej = rej.sum()
        fdp.append(rej[m1:].sum() / max(n_rej, 1))
        power.append(rej[:m1].mean())
    # BH controls FDR at q * m0 / m = 0.08; 300 repetitions: se of the mean FDP ~0.004
    assert np.mean(fdp) <= 0.1
    assert np.mean(power) > 0.9


def test_permutation_fdr_on_planted_sweep():
    """Permutation p-values + BH: planted feature x channel pairs found, nulls mostly not."""
    rng = np.random.default_rng(5)
    X, Y = _null_subject(rng, n_times=(300, 310, 320), n_feat=5, n_ch=4)
    planted = [(1, 2), (3, 0)]
    for x, y in zip(X, Y):
        for f, c in planted:
            y[:, c] += 2.0 * np.roll(x[:, f], 2)
    sw = univariate_sweep(X, Y, sfreq=SFREQ, tmin=0.0, tmax=0.08, alphas=[1.0, 100.0])
    res = sweep_permutation_test(X, Y, sw, n_permutations=199, min_shift_s=0.5, random_state=0)
    sig = res.p_fdr <= 0.05
    for f, c in planted:
        assert sig[f, c] and res.p_fwe[f, c] <= 0.01
    assert sig.sum() <= len(planted) + 2
    np.testing.assert_allclose(res.p_fdr, fdr_correction(res.p_uncorrected, method="bh"))
    assert res.fdr_method == "fdr_bh"


def test_too_few_permutations_warns():
    """A warning names the smallest attainable p-value."""
    rng = np.random.default_rng(3)
    X, Y = _null_subject(rng)
    sw = univariate_sweep(X, Y, sfreq=SFREQ, tmin=0.0, tmax=0.06, alphas=[10.0])
    with pytest.warns(UserWarning, match=r"smallest attainable p-value is 1/\(9 \+ 1\) = 0.1"):
        sweep_permutation_test(X, Y, sw, n_permutations=9, min_shift_s=0.5, random_state=0)


def test_max_t_across_layers():
    """Joint max-T over two 'layers' (same shifts): p_fwe >= each layer's own."""
    from neuro_sae.stats import max_t_across

    rng = np.random.default_rng(9)
    X, Y = _null_subject(rng, n_times=(200, 210, 220))
    X2 = [x[:, ::-1] + 0.5 * rng.standard_normal(x.shape) for x in X]
    for x, y in zip(X, Y):
        y[:, 1] += 2.0 * np.roll(x[:, 0], 1)
    kw = dict(sfreq=SFREQ, tmin=0.0, tmax=0.06, alphas=[10.0])
    res = [
        sweep_permutation_test(
            x, Y, univariate_sweep(x, Y, **kw), n_permutations=99, min_shift_s=0.5, random_state=4
        )  # fmt: skip
        for x in (X, X2)
    ]
    p, joint = max_t_across(res)
    np.testing.assert_allclose(joint, np.maximum(res[0].max_null, res[1].max_null))
    for pj, r in zip(p, res):
        assert np.all(pj >= r.p_fwe - 1e-12)
    assert p[0][0, 1] == pytest.approx(0.01)
    other = sweep_permutation_test(X, Y, univariate_sweep(X, Y, **kw), n_permutations=99,
                                   min_shift_s=0.5, random_state=5)  # fmt: skip
    with pytest.raises(ValueError, match="same shifts"):
        max_t_across([res[0], other])
