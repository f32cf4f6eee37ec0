"""Tests of the group-level permutation tests."""

import numpy as np
import pytest
from scipy import stats

from neuro_sae.stats import GroupResult, group_permutation_test, read_group_result


def test_sign_flip_exact_matches_ttest_and_bruteforce():
    """All flips enumerated: t equals scipy's ttest_1samp; p equals brute force."""
    rng = np.random.default_rng(0)
    r = rng.standard_normal((7, 3, 4)) + 0.3
    res = group_permutation_test(r, method="sign-flip", n_permutations=10_000, tail=0)
    assert res.exact and res.n_permutations == 2**7
    np.testing.assert_allclose(res.statistic, stats.ttest_1samp(r, 0.0, axis=0).statistic)
    # brute force max-|t| over all 128 sign patterns
    maxima = []
    for k in range(2**7):
        signs = 1.0 - 2.0 * ((k >> np.arange(7)) & 1)
        maxima.append(
            np.abs(stats.ttest_1samp(signs[:, None, None] * r, 0.0, axis=0).statistic).max()
        )
    maxima = np.array(maxima)
    ref = (maxima[:, None, None] >= np.abs(res.statistic) - 1e-10).mean(0)
    np.testing.assert_allclose(res.p_fwe, ref)
    np.testing.assert_allclose(np.sort(res.max_null), np.sort(maxima), rtol=1e-10)


def test_sign_flip_detects_effect_and_roundtrip(tmp_path):
    """A large effect in one cell survives; results round-trip to disk."""
    rng = np.random.default_rng(1)
    r = 0.05 * rng.standard_normal((12, 5, 3))
    r[:, 2, 1] += 0.5
    res = group_permutation_test(r, method="sign-flip", n_permutations=500, random_state=0,
                                 feature_names=list("abcde"), ch_names=["Cz", "Pz", "Oz"])  # fmt: skip
    assert isinstance(res, GroupResult)
    assert res.significant[2, 1] and res.significant.sum() <= 2
    df = res.to_frame()
    assert df.loc[(df.feature == "c") & (df.channel == "Pz"), "significant"].item()
    res.save(tmp_path / "group.npz")
    back = read_group_result(tmp_path / "group.npz")
    np.testing.assert_array_equal(back.p_fwe, res.p_fwe)
    assert back.method == "sign-flip" and back.random_state == 0 and back.n_subjects == 12


def test_pooled_null_three_subjects():
    """Pooled subject nulls: works with 3 subjects; planted effect found."""
    rng = np.random.default_rng(2)
    S, F, C = 3, 6, 4
    nulls = [0.02 * rng.standard_normal((300 + 10 * s, F, C)) for s in range(S)]
    r = 0.02 * rng.standard_normal((S, F, C))
    r[:, 4, 0] += 0.2
    res = group_permutation_test(r, nulls, n_permutations=400, random_state=0)
    np.testing.assert_allclose(res.statistic, r.mean(0))
    assert res.p_fwe[4, 0] == pytest.approx(1 / 401)
    assert np.all(res.p_fwe >= res.p_uncorrected - 1e-12)
    assert res.significant.sum() <= 2


def test_pooled_null_calibrated():
    """Observed drawn from the same distribution as the nulls: FWE near alpha."""
    rng = np.random.default_rng(3)
    hits = 0
    for _ in range(200):
        nulls = [rng.standard_normal((100, 3, 2)) for _ in range(3)]
        r = rng.standard_normal((3, 3, 2))
        res = group_permutation_test(r, nulls, n_permutations=99, random_state=rng)
        hits += bool(np.any(res.p_fwe <= 0.05))
    assert 0.01 <= hits / 200 <= 0.10, hits


def test_group_errors():
    """Teaching errors."""
    rng = np.random.default_rng(4)
    r = rng.standard_normal((3, 2, 2))
    with pytest.raises(ValueError, match=r"best p = 0.125"):
        group_permutation_test(r, method="sign-flip")
    with pytest.raises(ValueError, match="at least 2 subjects"):
        group_permutation_test(r[:1], method="sign-flip")
    with pytest.raises(ValueError, match="needs one null per subject"):
        group_permutation_test(r, None)
    with pytest.raises(ValueError, match=r"null_subjects\[1\] has shape"):
        group_permutation_test(r, [np.zeros((5, 2, 2)), np.zeros((5, 3, 2)), np.zeros((5, 2, 2))])
    with pytest.raises(ValueError, match="'method' parameter"):
        group_permutation_test(r, method="cluster")
    with pytest.raises(ValueError, match="'statistic' parameter"):
        group_permutation_test(r, [np.zeros((5, 2, 2))] * 3, statistic="t")


def test_group_too_few_permutations_warns(tmp_path):
    """Random sign flips or pooled draws below 1/alpha warn with the smallest p."""
    import pandas as pd

    rng = np.random.default_rng(5)
    r = rng.standard_normal((12, 2, 3))
    with pytest.warns(UserWarning, match=r"smallest attainable p-value is 1/\(15 \+ 1\)"):
        res = group_permutation_test(r, method="sign-flip", n_permutations=15, random_state=0)
    assert "config_hash" in res.provenance
    res.save_table(tmp_path / "g.parquet")
    assert len(pd.read_parquet(tmp_path / "g.parquet")) == 6
