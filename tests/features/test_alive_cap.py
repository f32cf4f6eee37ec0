"""Alive-feature capping (``select_alive_features(max_features=)``): most active first."""

import numpy as np
import pytest

from neuro_sae.features import FeatureSeries, select_alive_features


def _series(counts, n_frames, ids, sfreq=50.0):
    data = np.zeros((n_frames, len(counts)), dtype=np.float32)
    for j, c in enumerate(counts):
        data[:c, j] = 1.0
    return FeatureSeries(data=data, times=np.arange(n_frames) / sfreq,
                         feature_ids=np.asarray(ids), sfreq=sfreq)


def test_max_features_keeps_most_active():
    # 10 s at 50 Hz; ids deliberately not in column order; rates = counts / 10 s
    ids = [40, 7, 13, 2, 99, 51]
    counts = [50, 300, 20, 120, 120, 5]  # rates 5, 30, 2, 12, 12, 0.5
    s = _series(counts, 500, ids)
    # min_rate=1 keeps 40, 7, 13, 2, 99 (51 is dead); the 3 most active: 7 (30/s),
    # then 2 and 99 (tie at 12/s)
    np.testing.assert_array_equal(select_alive_features(s, min_rate=1.0, max_features=3), [2, 7, 99])
    # a tie at the cut goes to the smaller feature id
    np.testing.assert_array_equal(select_alive_features(s, min_rate=1.0, max_features=2), [2, 7])
    kept, rates, n_alive = select_alive_features(s, min_rate=1.0, max_features=4, return_rates=True)
    np.testing.assert_array_equal(kept, [2, 7, 40, 99])
    np.testing.assert_allclose(rates, [12.0, 30.0, 5.0, 12.0])
    assert n_alive == 5
    # a cap above the number of alive features changes nothing
    np.testing.assert_array_equal(
        select_alive_features(s, min_rate=1.0, max_features=50), select_alive_features(s, min_rate=1.0)
    )
    with pytest.raises(ValueError, match="max_features"):
        select_alive_features(s, max_features=0)
