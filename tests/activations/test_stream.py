"""Streaming batches: epochs visit every frame once, weighted sampling, determinism,
noise/music mixing at a requested SNR, extraction on the fly."""

from pathlib import Path

import numpy as np
import pytest
import torch

from neuro_sae.activations import (
    PAPER_CORPUS_WEIGHTS,
    AudioMixer,
    build_activation_store,
    iter_store_batches,
    mix_audio,
    read_corpus_weights,
    sampling_probabilities,
    stream_activations,
)
from tests.backbones._tiny import tiny_backbone


@pytest.fixture(scope="module")
def bb():
    return tiny_backbone("hubert", seed=31)


def _clips(sizes, corpus, seed):
    rng = np.random.default_rng(seed)
    return [dict(clip_id=f"{corpus}{i}", corpus=corpus,
                 audio=(0.1 * rng.standard_normal(n)).astype(np.float32))
            for i, n in enumerate(sizes)]


@pytest.fixture(scope="module")
def store(bb, tmp_path_factory):
    """Two corpora: 'LibriSpeech' (4 clips) and 'MUSAN' (3 clips), 3 shards."""
    clips = _clips([8000, 9600, 11200, 6400], "LibriSpeech", 0)
    clips += _clips([12800, 4800, 7200], "MUSAN", 1)
    return build_activation_store(bb, clips, tmp_path_factory.mktemp("st") / "s",
                                  layers=[0, 2], clips_per_shard=3, dtype="float32")


def _all_rows(store, layer):
    return np.concatenate([store.layer_array(layer, s) for s in range(3)])


def _sorted_rows(x):
    return x[np.lexsort(x.T[::-1])]


def test_epoch_visits_every_frame_once(store):
    """Unweighted: one epoch returns each frame exactly once, shuffled across shards;
    layers stay paired; torch output is float32."""
    batches = list(iter_store_batches(store, layers=[0, 2], batch_size=50, buffer_batches=2,
                                      random_state=0))
    n = len(store)
    assert [len(b[0]) for b in batches] == [50] * (n // 50) + ([n % 50] if n % 50 else [])
    got0 = np.concatenate([b[0] for b in batches])
    got2 = np.concatenate([b[2] for b in batches])
    ref0, ref2 = _all_rows(store, 0), _all_rows(store, 2)
    np.testing.assert_array_equal(_sorted_rows(got0), _sorted_rows(ref0))
    # rows of layers 0 and 2 come from the same frames
    pos = {r.tobytes(): i for i, r in enumerate(ref0)}
    order = np.array([pos[r.tobytes()] for r in got0])
    np.testing.assert_array_equal(got2, ref2[order])
    # shuffled: the first batch mixes shards, and order is far from the stored one
    shard_of = store.index["shard"].to_numpy()
    assert len(set(shard_of[order[:50]])) >= 2
    assert np.corrcoef(order, np.arange(n))[0, 1] < 0.5
    # drop_last, single layer, torch
    tb = list(iter_store_batches(store, layers=2, batch_size=50, drop_last=True,
                                 output="torch", random_state=1))
    assert len(tb) == n // 50
    assert all(t.dtype == torch.float32 and t.shape == (50, 36) for t in tb)


def test_determinism(store):
    """The same random_state gives the same batches; another gives other batches."""
    def run(seed, **kw):
        return np.concatenate(list(iter_store_batches(store, layers=0, batch_size=40,
                                                      buffer_batches=3, random_state=seed,
                                                      **kw)))
    np.testing.assert_array_equal(run(7), run(7))
    assert not np.array_equal(run(7), run(8))
    w = dict(corpus_weights={"LibriSpeech": 1, "MUSAN": 2}, n_batches=5)
    np.testing.assert_array_equal(run(3, **w), run(3, **w))
    a = iter_store_batches(store, layers=0, batch_size=40, random_state=np.random.default_rng(5))
    b = iter_store_batches(store, layers=0, batch_size=40, random_state=np.random.default_rng(5))
    np.testing.assert_array_equal(next(a), next(b))


@pytest.mark.parametrize("weights", [{"LibriSpeech": 1.0, "MUSAN": 4.0}, "paper"])
def test_weighted_sampling_proportions(store, weights):
    """Frames come from corpus c with probability w_c n_c / sum_j w_j n_j."""
    sizes = store.corpus_frames
    w = read_corpus_weights(weights)
    expected = sampling_probabilities(sizes, w)
    ref = _all_rows(store, 0)
    corpus = store.index["corpus"].to_numpy()
    lookup = {r.tobytes(): corpus[i] for i, r in enumerate(ref)}
    n_batches, bs = 30, 200
    batches = list(iter_store_batches(store, layers=0, batch_size=bs, buffer_batches=2,
                                      corpus_weights=weights, n_batches=n_batches,
                                      random_state=11))
    assert len(batches) == n_batches and all(len(b) == bs for b in batches)
    drawn = [lookup[r.tobytes()] for b in batches for r in b]
    frac = np.mean(np.array(drawn) == "MUSAN")
    p = expected["MUSAN"]
    naive = sizes["MUSAN"] / sum(sizes.values())
    assert abs(p - naive) > 0.2  # the weights matter
    # 6000 independent draws: standard error < 0.0065; allow 6 of them
    assert abs(frac - p) < 0.04, (frac, p)
    manual = w["MUSAN"] * sizes["MUSAN"] / (w["MUSAN"] * sizes["MUSAN"]
                                            + w["LibriSpeech"] * sizes["LibriSpeech"])
    assert p == pytest.approx(manual)


def test_corpus_weights_preset_and_errors(store, tmp_path):
    """The YAML preset holds the paper's Table 3 weights; bad weights are refused."""
    yaml_file = Path(__file__).parents[2] / "data_manifests" / "corpus_weights_paper.yaml"
    assert read_corpus_weights(yaml_file) == PAPER_CORPUS_WEIGHTS == read_corpus_weights("paper")
    assert len(PAPER_CORPUS_WEIGHTS) == 14 and PAPER_CORPUS_WEIGHTS["ESD"] == 6.0
    with pytest.raises(ValueError, match="no weight for the corpora \\['MUSAN'\\]"):
        next(iter_store_batches(store, corpus_weights={"LibriSpeech": 1}))
    with pytest.raises(ValueError, match="corpus_weights\\['a'\\] must be .*>= 0.*-1"):
        read_corpus_weights({"a": -1})
    with pytest.raises(FileNotFoundError, match="preset 'paper'"):
        read_corpus_weights("papr")
    (tmp_path / "w.yaml").write_text("LibriSpeech: 1\n")
    with pytest.raises(ValueError, match="weights: "):
        read_corpus_weights(tmp_path / "w.yaml")
    with pytest.raises(ValueError, match="'output'"):
        iter_store_batches(store, output="jax")


def test_mix_audio_snr_measured_back():
    """The added noise sits at the requested SNR; long noise is cut, short noise tiled."""
    rng = np.random.default_rng(0)
    s = np.sin(2 * np.pi * 220 * np.arange(16000) / 16000) * 0.3
    for noise_len, snr in [(40000, 0.0), (5000, 7.5), (16000, 20.0)]:
        noise = rng.standard_normal(noise_len)
        mixed = mix_audio(s, noise, snr, random_state=1)
        added = mixed.astype(np.float64) - s
        measured = 10 * np.log10(np.mean(s**2) / np.mean(added**2))
        assert measured == pytest.approx(snr, abs=1e-4)
        # the added part is a scaled contiguous piece of the (tiled) noise
        tiled = np.tile(noise, 4)
        corr = np.correlate(tiled[: noise_len + len(s)], added[:200], mode="valid")
        off = int(np.argmax(corr))
        g = np.dot(added, tiled[off : off + len(s)]) / np.dot(tiled[off : off + len(s)],
                                                              tiled[off : off + len(s)])
        np.testing.assert_allclose(added, g * tiled[off : off + len(s)], atol=1e-6)
    silent = mix_audio(np.zeros(100), rng.standard_normal(50), 5.0)
    np.testing.assert_array_equal(silent, 0)
    with pytest.raises(ValueError, match="noise is empty or silent"):
        mix_audio(s, np.zeros(10), 5.0)


def test_audio_mixer_probabilities_and_snr():
    """Mixing happens with p_noise and p_music; SNRs are uniform in the range."""
    rng = np.random.default_rng(3)
    pool = [rng.standard_normal(3000).astype(np.float32) for _ in range(3)]
    mixer = AudioMixer(noise=pool, music=pool[:1], p_noise=0.3, p_music=0.1, snr_db=(0, 20))
    assert "noise: 3 clips" in repr(mixer)
    x = np.ones(1000, np.float32)
    gen = np.random.default_rng(4)
    events = [mixer.apply(x, gen)[1] for _ in range(3000)]
    kinds = [k for ev in events for k, _, _ in ev]
    assert abs(kinds.count("noise") / 3000 - 0.3) < 0.05
    assert abs(kinds.count("music") / 3000 - 0.1) < 0.04
    snrs = np.array([s for ev in events for _, _, s in ev])
    assert snrs.min() >= 0 and snrs.max() <= 20 and abs(snrs.mean() - 10) < 1.0
    paper = AudioMixer(noise=pool, music=pool)
    assert [p for _, p in paper.pools.values()] == [0.05, 0.025] and paper.snr_db == (0, 20)
    with pytest.raises(ValueError, match="p_music=0.025 but the music pool is empty"):
        AudioMixer(noise=pool)
    with pytest.raises(ValueError, match="p_noise must be in \\[0, 1\\]"):
        AudioMixer(noise=pool, p_noise=2, p_music=0)


def test_stream_on_the_fly(bb, store):
    """Extraction on the fly: one epoch equals the store's frames; weighted and mixed
    streams run; a mixer with p=1 changes the frames, its random_state fixes them."""
    clips = _clips([8000, 9600, 11200, 6400], "LibriSpeech", 0)
    clips += _clips([12800, 4800, 7200], "MUSAN", 1)
    got = np.concatenate(list(stream_activations(bb, clips, layers=2, batch_size=64,
                                                 buffer_batches=2, random_state=0)))
    np.testing.assert_allclose(_sorted_rows(got), _sorted_rows(_all_rows(store, 2)),
                               rtol=1e-5, atol=1e-6)
    noise = [np.random.default_rng(9).standard_normal(5000).astype(np.float32)]
    mixer = AudioMixer(noise=noise, music=noise, p_noise=1.0, p_music=0.0, snr_db=(5, 5))
    kw = dict(layers=[0, 2], batch_size=64, buffer_batches=2, mixer=mixer,
              corpus_weights={"LibriSpeech": 1, "MUSAN": 1}, n_batches=4)
    a = list(stream_activations(bb, clips, random_state=2, **kw))
    b = list(stream_activations(bb, clips, random_state=2, **kw))
    assert len(a) == 4 and a[0][2].shape == (64, 36)
    np.testing.assert_array_equal(a[3][2], b[3][2])
    ref = {r.tobytes() for r in _all_rows(store, 2)}
    assert not any(r.tobytes() in ref for r in a[0][2])  # every clip was mixed


def test_stream_skips_empty_clips(bb):
    """On the fly, clips without frames are skipped; a weighted corpus with only such
    clips raises instead of looping forever."""
    clips = _clips([8000, 6400], "LibriSpeech", 0)
    clips.append(dict(clip_id="tiny", corpus="MUSAN", audio=np.zeros(100, np.float32)))
    got = np.concatenate(list(stream_activations(bb, clips, layers=1, batch_size=16,
                                                 random_state=0)))
    assert len(got) == 24 + 19
    with pytest.raises(ValueError, match="no frame in a whole pass"):
        list(stream_activations(bb, clips, layers=1, batch_size=16, n_batches=3,
                                corpus_weights={"LibriSpeech": 1, "MUSAN": 1e6},
                                random_state=0))
