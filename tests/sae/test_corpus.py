"""SAEs at corpus scale: packing, weighted shares, store subsets, resumable training,
held-out report, sparsity sweep and Pareto figure."""

import matplotlib
import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from neuro_sae.activations import (
    AudioMixer,
    build_activation_store,
    iter_store_batches,
    sampling_probabilities,
)
from neuro_sae.sae import (
    SAEConfig,
    TrainConfig,
    domain_weights,
    make_sae,
    pack_clips,
    plot_pareto,
    sparsity_sweep,
    store_sae_report,
    subset_store,
    train_store_saes,
)
from neuro_sae.simulation import make_sparse_dictionary_data
from tests.backbones._tiny import tiny_backbone

matplotlib.use("agg")


def _wav_clips(root, lengths_s=(0.3, 0.45, 0.7, 0.2, 1.3, 0.55, 0.35)):
    rng = np.random.default_rng(0)
    rows, audio = [], {}
    for i, sec in enumerate(lengths_s):
        x = (0.1 * rng.standard_normal(int(sec * 16000))).astype(np.float32)
        f = root / f"c{i}.wav"
        sf.write(f, x, 16000, subtype="FLOAT")
        corpus = "speech" if i % 3 else "music"
        rows.append(dict(clip_id=f"c{i}", path=str(f), corpus=corpus, domain=corpus))
        audio[f"c{i}"] = x
    return pd.DataFrame(rows), audio


def test_pack_clips(tmp_path):
    clips, audio = _wav_clips(tmp_path)
    packs, members = pack_clips(clips, max_seconds=1.0, random_state=3)
    assert sorted(members["clip_id"]) == sorted(audio)  # every clip exactly once
    for pack in packs:
        rows = members[members["pack_id"] == pack["clip_id"]].sort_values("onset_s")
        assert set(clips.set_index("clip_id").loc[rows["clip_id"], "corpus"]) == {pack["corpus"]}
        assert pack["domain"] == pack["corpus"] and pack["sfreq"] == 16000
        # the pack is its clips end to end, at the recorded onsets
        np.testing.assert_array_equal(pack["audio"], np.concatenate(
            [audio[c] for c in rows["clip_id"]]))
        np.testing.assert_allclose(rows["onset_s"], np.r_[0, np.cumsum(rows["duration_s"])[:-1]])
        if len(rows) > 1:  # only a clip longer than the limit makes a longer pack
            assert len(pack["audio"]) <= 16000
    assert len(packs[0]["audio"]) > 0 and {p["clip_id"] for p in packs} >= {"music-pack-00000"}
    # greedy: no two consecutive packs of one corpus could have been merged
    again, members2 = pack_clips(clips, max_seconds=1.0, random_state=3)
    assert members2.equals(members)  # deterministic
    # augmentation: every pack mixed (p = 1), recorded per clip
    noise = np.random.default_rng(1).standard_normal(8000).astype(np.float32)
    mixed, m3 = pack_clips(clips, max_seconds=1.0, random_state=3,
                           mixer=AudioMixer(noise=[noise], p_noise=1.0, p_music=0.0))
    assert m3["mixed"].str.startswith("noise:0@").all()
    assert not np.array_equal(mixed[0]["audio"], packs[0]["audio"])
    with pytest.raises(ValueError, match="lacks the column"):
        pack_clips(clips.drop(columns="domain"))


def test_domain_weights_give_target_shares():
    frames = {"speech": 9000, "music": 1000, "sounds": 250}
    target = {"speech": 0.4, "music": 0.45, "sounds": 0.15}
    probs = sampling_probabilities(frames, domain_weights(frames, target))
    assert probs == pytest.approx(target, rel=1e-12)
    with pytest.raises(ValueError, match="no share for the corpora"):
        domain_weights({"speech": 10, "noise": 3}, {"speech": 1.0})


@pytest.fixture(scope="module")
def tiny_store(tmp_path_factory):
    root = tmp_path_factory.mktemp("store")
    rng = np.random.default_rng(5)
    clips = [dict(clip_id=f"p{i}", audio=(0.1 * rng.standard_normal(6400 + 1600 * i)).astype(
        np.float32), corpus="speech" if i % 2 else "music", domain="speech" if i % 2 else "music")
        for i in range(8)]
    bb = tiny_backbone("hubert", seed=3)
    return build_activation_store(bb, clips, root / "st", layers=[2, 3], clips_per_shard=3,
                                  verbose=False)


def test_subset_store(tiny_store):
    view = subset_store(tiny_store, ["p1", "p4", "p6"])
    assert set(view.index["clip_id"]) == {"p1", "p4", "p6"}
    n = int(tiny_store.index["clip_id"].isin(["p1", "p4", "p6"]).sum())
    got = sum(len(b) for b in iter_store_batches(view, layers=2, batch_size=17, verbose=False))
    assert got == n < len(tiny_store.index)  # one epoch streams exactly those frames
    assert len(tiny_store.index) == tiny_store.meta["n_frames"]  # the store is untouched
    with pytest.raises(ValueError, match="not in the store"):
        subset_store(tiny_store, ["p1", "nope"])


def test_train_store_saes_resumable_and_report(tiny_store, tmp_path, monkeypatch):
    kw = dict(layers=[2, 3], seeds=[0, 1], clip_ids=["p0", "p1", "p2", "p3", "p4", "p5"],
              expansion=2, k=4, n_steps=6, batch_size=32, lr=1e-3, checkpoint_every=3,
              corpus_weights={"speech": 1.0, "music": 2.0}, buffer_batches=2)
    saes = train_store_saes(tiny_store, tmp_path / "run", **kw)
    assert sorted(saes) == [(2, 0), (2, 1), (3, 0), (3, 1)]
    assert saes[(3, 1)].cfg.d_sae == 72 and saes[(3, 1)].cfg.layer == 3
    assert (tmp_path / "run" / "history.parquet").is_file()
    # a second call reads the finished models back without training
    import neuro_sae.sae._train as tr

    def boom(*a, **k):
        raise AssertionError("retrained")

    monkeypatch.setattr(tr, "train_saes", boom)
    back = train_store_saes(tiny_store, tmp_path / "run", **kw)
    for key, sae in saes.items():
        assert np.array_equal(back[key].W_dec.detach().numpy(), sae.W_dec.detach().numpy())
    with pytest.raises(AssertionError, match="retrained"):  # other settings: trains again
        train_store_saes(tiny_store, tmp_path / "run", **dict(kw, n_steps=7))
    monkeypatch.undo()
    metrics, table = store_sae_report(saes, tiny_store, ["p6", "p7"])
    assert len(metrics) == 4 and set(metrics["layer"]) == {2, 3}
    n_eval = int(tiny_store.index["clip_id"].isin(["p6", "p7"]).sum())
    assert (metrics["n_frames"] == n_eval).all()
    assert {"explained_variance", "l0", "dead_fraction"} <= set(metrics.columns)
    assert set(table["b"].astype(str)) == {"0", "1", "random"}
    # planted: an SAE compared with itself covers all its alive features
    same = {(2, 0): saes[(2, 0)], (2, 1): saes[(2, 0)]}
    _, t_same = store_sae_report(same, tiny_store, ["p6", "p7"])
    seed_rows = t_same[t_same["b"] != "random"]
    assert (seed_rows["iou_covered"] == seed_rows["n_alive"]).all()
    assert (seed_rows["decoder_shared_0.9"] == 1.0).all()


def test_sparsity_sweep_and_pareto_figure():
    X, _, _ = make_sparse_dictionary_data(1200, 10, 24, 3, random_state=0)
    specs = [dict(architecture="topk", expansion=2, k=k) for k in (2, 6)]
    specs += [dict(architecture="relu", expansion=3, k=4, l1_coefficient=c) for c in (0.01, 0.3)]
    table = sparsity_sweep(X[:1000], X[1000:], specs,
                           TrainConfig(n_steps=40, batch_size=100, lr=3e-3, log_every=20))
    assert len(table) == 4 and list(table["architecture"]) == ["topk"] * 2 + ["relu"] * 2
    topk = table[table["architecture"] == "topk"]
    # TopK's L0 is k (less only where fewer than k pre-activations are positive)
    assert topk["l0"].tolist() == pytest.approx([2.0, 6.0], abs=0.05)
    assert (topk["l0"] <= topk["k"]).all()
    assert topk["fvu"].iloc[1] < topk["fvu"].iloc[0]  # more features, smaller error
    relu = table[table["architecture"] == "relu"]
    assert relu["l0"].iloc[1] < relu["l0"].iloc[0]  # a larger L1 weight, sparser codes
    assert table["l1_coefficient"].dropna().tolist() == [0.01, 0.3]
    fig = plot_pareto(table)
    axes = fig.axes
    assert len(axes) == 2 and [a.get_title() for a in axes] == ["expansion 2x", "expansion 3x"]
    assert all(a.get_xlabel().startswith("L0") for a in axes)
    assert axes[0].get_ylabel().startswith("normalised error")
    assert make_sae(SAEConfig(d_in=10, d_sae=20, k=2)) is not None
