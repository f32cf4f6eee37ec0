"""Tests of the spatio-temporal cluster tests and the feature screen."""

import mne
import numpy as np
import pytest

from neuro_sae.stats import channel_adjacency, cluster_test, screen_features


def _info():
    montage = mne.channels.make_standard_montage("biosemi32")
    info = mne.create_info(montage.ch_names, 64.0, "eeg")
    info.set_montage(montage)
    return info


def _kernels(rng, S=10, L=13, C=32, effect=None, gain=3.0):
    k = rng.standard_normal((S, L, C))
    if effect is not None:
        lags, chans = effect
        k[:, lags[:, None], chans[None, :]] += gain
    return k


def test_cluster_test_equals_mne():
    """The wrapper equals mne.stats.spatio_temporal_cluster_1samp_test with the montage."""
    from mne.stats import spatio_temporal_cluster_1samp_test

    info = _info()
    adj, names = channel_adjacency(info)
    assert adj.shape == (32, 32) and names == info.ch_names
    rng = np.random.default_rng(0)
    pz = [names.index(c) for c in ("Pz", "P3", "P4", "CP1", "CP2", "PO3")]
    k = _kernels(rng, effect=(np.arange(4, 8), np.array(pz)))
    res = cluster_test(k, adj, ch_names=names, n_permutations=256, random_state=1)
    ref_adj, _ = mne.channels.find_ch_adjacency(info, "eeg")
    t, clusters, p, _ = spatio_temporal_cluster_1samp_test(
        k, n_permutations=256, adjacency=ref_adj, seed=1, out_type="mask", tail=0,
        verbose=False,
    )  # fmt: skip
    np.testing.assert_allclose(res.t_obs, t)
    np.testing.assert_allclose(res.cluster_p, p)
    mask = res.significant_mask(0.05)
    assert mask[4:8][:, pz].all()
    assert mask.sum() < 60
    df = res.to_frame()
    assert df.significant.sum() >= 1 and "Pz" in df.loc[df.p.idxmin(), "channels"]


def test_cluster_result_round_trip(tmp_path):
    """save -> read_cluster_result keeps every array, cluster mask and the provenance."""
    from neuro_sae.stats import read_cluster_result

    info = _info()
    adj, names = channel_adjacency(info)
    rng = np.random.default_rng(3)
    k = _kernels(rng, effect=(np.arange(2, 6), np.array([names.index("Cz")])))
    res = cluster_test(k, adj, ch_names=names, feature="f7", n_permutations=64, random_state=0)
    back = read_cluster_result(res.save(tmp_path / "f7_clusters.npz"))
    np.testing.assert_array_equal(back.t_obs, res.t_obs)
    np.testing.assert_array_equal(back.cluster_p, res.cluster_p)
    np.testing.assert_array_equal(back.times, res.times)
    assert len(back.clusters) == len(res.clusters) > 0
    for a, b in zip(back.clusters, res.clusters):
        np.testing.assert_array_equal(a, b)
    assert back.ch_names == names and back.feature == "f7"
    assert back.provenance == res.provenance
    np.testing.assert_array_equal(back.significant_mask(), res.significant_mask())
    with pytest.raises(ValueError, match="holds a ClusterResult, not a PermutationResult.*read_cluster_result"):
        from neuro_sae.stats import read_permutation_result

        read_permutation_result(tmp_path / "f7_clusters.npz")


def test_cluster_bad_input():
    """Adjacency not matching the channels; fewer than 2 subjects."""
    info = _info()
    adj, _ = channel_adjacency(info)
    rng = np.random.default_rng(1)
    with pytest.raises(ValueError, match="adjacency has shape \\(32, 32\\) but the data have 30"):
        cluster_test(rng.standard_normal((5, 4, 30)), adj)
    with pytest.raises(ValueError, match="at least 2 subjects"):
        cluster_test(rng.standard_normal((1, 4, 32)), adj)
    with pytest.raises(ValueError, match="without adjacency"):
        channel_adjacency(info, ["Pz", "XYZ"])
    sub, names = channel_adjacency(info, ["Pz", "Cz", "Fz"])
    assert sub.shape == (3, 3) and names == ["Pz", "Cz", "Fz"]


def test_screen_clusters_only_survivors(tmp_path):
    """Max-T screen on r, clusters only for the features that survive (memmap kernels)."""
    info = _info()
    adj, names = channel_adjacency(info)
    rng = np.random.default_rng(2)
    S, F, L, C = 10, 7, 9, 32
    r = 0.01 * rng.standard_normal((S, F, C))
    r[:, 2, 10:14] += 0.08
    kern = np.lib.format.open_memmap(tmp_path / "k.npy", mode="w+", shape=(S, F, L, C))
    kern[:] = rng.standard_normal((S, F, L, C))
    kern[:, 2, 3:6, 10:14] += 3.0
    screen, clusters = screen_features(
        r, kern, adj, ch_names=names, n_permutations=500, n_cluster_permutations=128,
        random_state=0,
    )  # fmt: skip
    assert list(clusters) == ["f2"]
    assert clusters["f2"].cluster_p.min() < 0.05
    with pytest.raises(ValueError, match="kernels has shape"):
        screen_features(r, kern[:, :3], adj)


def test_cluster_tfce():
    """TFCE variant: one p-value per lag x channel; the planted block is significant."""
    info = _info()
    adj, names = channel_adjacency(info)
    rng = np.random.default_rng(3)
    k = _kernels(rng, S=8, L=6, effect=(np.arange(2, 4), np.arange(5, 9)), gain=4.0)
    res = cluster_test(k, adj, tfce=True, n_permutations=128, random_state=0)
    assert res.cluster_p.shape == (6 * 32,) and res.provenance["tfce"]
    mask = res.significant_mask(0.05)
    assert mask[2:4, 5:9].mean() > 0.5 and mask.sum() < 30
