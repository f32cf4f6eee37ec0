"""Planted-truth recovery scoring (``score_recovery``, ``feature_correlations``)."""

import numpy as np
import pytest

from neuro_sae.simulation import feature_correlations, score_recovery


def test_feature_correlations_match_numpy():
    rng = np.random.default_rng(0)
    runs = [rng.standard_normal((300, 4)), rng.standard_normal((220, 4))]
    runs[1][:, 3] = 0.0
    runs[0][:, 3] = 0.0  # a constant feature: correlation 0 with everything
    corr = feature_correlations(runs, sfreq=64.0)
    x = np.concatenate(runs)
    ref = np.corrcoef(x[:, :3].T)
    np.testing.assert_allclose(corr[:3, :3], ref, atol=1e-12)
    np.testing.assert_array_equal(corr[3], 0.0)
    # band-passed: each run filtered separately, as mne.filter.filter_data does it
    import mne

    bp = feature_correlations(runs, sfreq=64.0, l_freq=1.0, h_freq=8.0)
    xf = np.concatenate([mne.filter.filter_data(r.T, 64.0, 1.0, 8.0, verbose=False).T for r in runs])
    np.testing.assert_allclose(bp[:3, :3], np.corrcoef(xf[:, :3].T), atol=1e-12)
    with pytest.raises(ValueError, match=r"runs\[1\] has 3 features but runs\[0\] has 4"):
        feature_correlations([runs[0], runs[1][:, :3]], sfreq=64.0)


def test_score_recovery_planted_truth():
    ids = [11, 22, 33, 44, 55, 66]
    corr = np.eye(6)
    # 55 follows planted 22 (r = -0.6), 66 weakly follows 11 (0.2 < 0.3), 44 nothing
    corr[4, 1] = corr[1, 4] = -0.6
    corr[5, 0] = corr[0, 5] = 0.2
    rec = score_recovery([11, 22, 33], [22, 33, 44, 55, 66], corr, ids)
    assert rec["hits"] == [22, 33]
    assert rec["misses"] == [11]
    assert rec["false_positives"] == [44, 66]
    assert rec["explained_by_planted"] == {"55": {"planted_feature": 22, "r": -0.6}}
    assert rec["recovered_fraction"] == pytest.approx(2 / 3)
    # a lower threshold explains 66 by 11
    rec = score_recovery([11, 22, 33], [66], corr, ids, threshold=0.2)
    assert rec["explained_by_planted"] == {"66": {"planted_feature": 11, "r": 0.2}}
    with pytest.raises(ValueError, match=r"Features \[77\] are not among"):
        score_recovery([11], [77], corr, ids)
    with pytest.raises(ValueError, match="corr has shape"):
        score_recovery([11], [22], corr[:5, :5], ids)
