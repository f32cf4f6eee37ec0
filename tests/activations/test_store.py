"""Activation store: layout, index, resuming after a kill, content hashes."""

import json

import numpy as np
import pandas as pd
import pytest

import neuro_sae.activations._store as store_mod
from neuro_sae.activations import (
    ActivationStore,
    build_activation_store,
    extract_activations,
    read_activation_store,
)
from tests.backbones._tiny import tiny_backbone


@pytest.fixture(scope="module")
def hubert_bb():
    return tiny_backbone("hubert", seed=21)


@pytest.fixture(scope="module")
def whisper_bb():
    return tiny_backbone("whisper", seed=22, max_source_positions=100)  # 2 s windows


def _clips(n=7, seed=0):
    """Clips of distinct lengths (0.3-1.5 s) in two corpora."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        n_samp = 4800 + 2650 * i
        out.append(dict(clip_id=f"c{i}", audio=(0.1 * rng.standard_normal(n_samp)).astype(
            np.float32), corpus="speechy" if i % 3 else "musicy",
            domain="speech" if i % 3 else "music"))
    return out


def _n_frames(n):
    return (n - 400) // 320 + 1


def test_store_layout_and_values(hubert_bb, tmp_path):
    """The index has one row per frame; arrays equal per-clip extraction (float32 store)."""
    clips = _clips()
    st = build_activation_store(hubert_bb, clips, tmp_path / "st", layers=[0, 2, 3],
                                clips_per_shard=3, dtype="float32")
    assert isinstance(st, ActivationStore) and "3 shard(s)" in repr(st)
    idx = st.index
    assert list(idx.columns) == ["clip_id", "corpus", "domain", "frame", "time", "padding",
                                 "shard", "row"]
    sizes = [_n_frames(len(c["audio"])) for c in clips]
    assert len(idx) == len(st) == sum(sizes) == st.meta["n_frames"]
    assert st.layers == [0, 2, 3] and st.d_model == 36
    assert not idx["padding"].any()
    assert st.corpus_frames == {"musicy": sizes[0] + sizes[3] + sizes[6],
                                "speechy": sum(sizes) - sizes[0] - sizes[3] - sizes[6]}
    for clip in (clips[0], clips[4], clips[6]):
        ref = extract_activations(hubert_bb, clip["audio"], layers=[0, 2, 3])
        got = st.get_clip(clip["clip_id"])
        np.testing.assert_allclose(got.times, ref.times)
        rows = idx[idx["clip_id"] == clip["clip_id"]]
        assert rows["domain"].iloc[0] == clip["domain"]
        np.testing.assert_array_equal(rows["frame"], np.arange(ref.n_frames))
        for layer in (0, 2, 3):
            np.testing.assert_allclose(got.data[layer], ref.data[layer], rtol=1e-5, atol=1e-6)
    # memmapped shards, reopened from disk
    again = read_activation_store(tmp_path / "st")
    assert again.key == st.key
    assert isinstance(again.layer_array(2, 1), np.memmap)
    with pytest.raises(ValueError, match="holds layers \\[0, 2, 3\\].*got \\[1\\]"):
        again.check_layers([1])
    with pytest.raises(KeyError, match="nope"):
        again.get_clip("nope")


def test_whisper_short_clips_batched(whisper_bb, tmp_path):
    """Whisper clips batched into shared forward passes equal per-clip extraction;
    a clip longer than one window is stitched; float16 storage within 1e-3."""
    rng = np.random.default_rng(3)
    clips = [dict(clip_id=f"w{i}", audio=(0.1 * rng.standard_normal(n)).astype(np.float32))
             for i, n in enumerate([7000, 20000, 31999, 50000])]  # last one > 2 s window
    st = build_activation_store(whisper_bb, clips, tmp_path / "w", layers=[1, 3],
                                window_s=2.0, context_s=0.4, batch_size=3)
    for clip in clips:
        ref = extract_activations(whisper_bb, clip["audio"], layers=[1, 3], window_s=2.0,
                                  context_s=0.4)
        got = st.get_clip(clip["clip_id"])
        assert got.n_frames == int(np.ceil(len(clip["audio"]) / 320))
        for layer in (1, 3):
            scale = np.abs(ref.data[layer]).max()
            np.testing.assert_allclose(got.data[layer], ref.data[layer], atol=2e-3 * scale)


def _snapshot(path):
    """Every file of a store (bytes), temporary files excluded."""
    return {p.relative_to(path).as_posix(): p.read_bytes()
            for p in sorted(path.rglob("*")) if p.is_file()}


def test_killed_build_resumes_to_the_same_store(hubert_bb, tmp_path, monkeypatch):
    """A build killed after 2 of 4 shards (plus a half-written shard left behind) and
    rerun gives byte-identical files to an uninterrupted build; a second rerun does
    no work; changing one clip redoes only its shard."""
    clips = _clips(n=8, seed=1)
    kw = dict(layers=[1, 3], clips_per_shard=2)
    ref = build_activation_store(hubert_bb, clips, tmp_path / "ref", **kw)

    real_write = store_mod._write_shard
    calls = []

    def dying_write(shard_dir, *args):
        if len(calls) == 2:
            # what a SIGKILL mid-write leaves: a temporary folder with a partial shard
            tmp = shard_dir.parent / f".{shard_dir.name}.abc.tmp"
            tmp.mkdir()
            (tmp / "layer_001.npy").write_bytes(b"partial")
            raise KeyboardInterrupt("killed")
        calls.append(shard_dir.name)
        return real_write(shard_dir, *args)

    monkeypatch.setattr(store_mod, "_write_shard", dying_write)
    with pytest.raises(KeyboardInterrupt):
        build_activation_store(hubert_bb, clips, tmp_path / "run", **kw)
    monkeypatch.setattr(store_mod, "_write_shard", real_write)
    done = sorted(p.name for p in (tmp_path / "run" / "shards").iterdir())
    assert done == [".shard-00002.abc.tmp", "shard-00000", "shard-00001"]
    assert not (tmp_path / "run" / "store.json").exists()
    with pytest.raises(FileNotFoundError, match="not a complete activation store"):
        read_activation_store(tmp_path / "run")

    extracted = []
    real_extract = store_mod._extract_clip_batch

    def counting(bb, shard_clips, *a, **k):
        extracted.extend(c["clip_id"] for c in shard_clips)
        return real_extract(bb, shard_clips, *a, **k)

    monkeypatch.setattr(store_mod, "_extract_clip_batch", counting)
    st = build_activation_store(hubert_bb, clips, tmp_path / "run", **kw)
    assert extracted == ["c4", "c5", "c6", "c7"]  # only the two missing shards
    assert _snapshot(tmp_path / "run") == _snapshot(tmp_path / "ref")
    assert st.key == ref.key
    pd.testing.assert_frame_equal(st.index, ref.index)
    for s in range(4):
        np.testing.assert_array_equal(st.layer_array(3, s), ref.layer_array(3, s))

    extracted.clear()  # a rerun is a no-op
    build_activation_store(hubert_bb, clips, tmp_path / "run", **kw)
    assert extracted == []
    clips[5] = dict(clips[5], audio=clips[5]["audio"] * 0.5)  # edit one clip
    st2 = build_activation_store(hubert_bb, clips, tmp_path / "run", **kw)
    assert extracted == ["c4", "c5"] and st2.key != ref.key
    meta = json.loads((tmp_path / "run" / "store.json").read_text())
    assert [s["hash"] for s in meta["shards"]][:2] == [s["hash"] for s in ref.meta["shards"]][:2]
    extracted.clear()  # other layers: another content hash, every shard redone
    build_activation_store(hubert_bb, clips, tmp_path / "run", layers=[2], clips_per_shard=2)
    assert len(extracted) == 8


def test_bad_clips(hubert_bb, tmp_path):
    """Empty clips are skipped with a warning; non-finite ones raise naming the clip."""
    clips = _clips(n=3)
    clips.append(dict(clip_id="empty", audio=np.zeros(0, np.float32)))
    with pytest.warns(UserWarning, match="1 clip\\(s\\) gave no frame.*empty"):
        st = build_activation_store(hubert_bb, clips, tmp_path / "a", layers=[1])
    assert st.meta["skipped"] == ["empty"] and "empty" not in set(st.index["clip_id"])
    bad = _clips(n=2)
    bad[1]["audio"] = bad[1]["audio"].copy()
    bad[1]["audio"][10] = np.nan
    with pytest.raises(ValueError, match="clip 'c1'.*non-finite"):
        build_activation_store(hubert_bb, bad, tmp_path / "b", layers=[1])
    with pytest.raises(ValueError, match="'c0' appears more than once"):
        build_activation_store(hubert_bb, [bad[0], bad[0]], tmp_path / "c")
    with pytest.raises(ValueError, match="exactly one of 'path'.*neither"):
        build_activation_store(hubert_bb, [dict(clip_id="x")], tmp_path / "c")
    with pytest.raises(ValueError, match="unknown key.*'sfrq'"):
        build_activation_store(hubert_bb, [dict(audio=np.zeros(999), sfrq=8000)], tmp_path / "c")
    with pytest.raises(ValueError, match="'dtype'"):
        build_activation_store(hubert_bb, bad[:1], tmp_path / "c", dtype="int8")


def test_store_from_files(hubert_bb, tmp_path):
    """Clips given as audio files (8 kHz stereo here) are read, mixed down and resampled."""
    import soundfile as sf

    rng = np.random.default_rng(4)
    x = 0.1 * rng.standard_normal((12000, 2))
    sf.write(tmp_path / "stereo8k.wav", x, 8000, subtype="FLOAT")
    st = build_activation_store(hubert_bb, [tmp_path / "stereo8k.wav"], tmp_path / "f",
                                layers=[1], dtype="float32")
    from neuro_sae.io import read_audio

    audio, sr = read_audio(tmp_path / "stereo8k.wav")
    ref = extract_activations(hubert_bb, audio, sfreq=sr, layers=[1])
    got = st.get_clip("stereo8k")
    assert got.n_frames == _n_frames(24000)
    np.testing.assert_allclose(got.data[1], ref.data[1], rtol=1e-5, atol=1e-6)
