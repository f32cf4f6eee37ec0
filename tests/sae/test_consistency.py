"""Seed consistency: IoU coverage, duplicates, Hungarian matching, baseline, table."""

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from neuro_sae.sae import SAEConfig, consistency, make_sae
from neuro_sae.sae.consistency import (
    activation_iou_coverage,
    duplicates,
    encode_clips,
    hungarian_match,
    random_baseline,
)


def _codes(rng, n_frames, d, density, dead=()):
    c = rng.random((n_frames, d)) * (rng.random((n_frames, d)) < density)
    c[:, list(dead)] = 0
    return c


def _brute_iou(a, b):
    a, b = a != 0, b != 0
    iou = np.zeros((a.shape[1], b.shape[1]))
    for i in range(a.shape[1]):
        for j in range(b.shape[1]):
            union = np.sum(a[:, i] | b[:, j])
            iou[i, j] = np.sum(a[:, i] & b[:, j]) / union if union else 0.0
    return iou


@pytest.mark.parametrize("block", [None, 3])
def test_iou_matches_brute_force(monkeypatch, block):
    if block is not None:  # force the blockwise path through several blocks
        monkeypatch.setattr(consistency, "_BLOCK_ENTRIES", block * 9)
    rng = np.random.default_rng(0)
    a = _codes(rng, 60, 7, 0.3, dead=[2])
    b = _codes(rng, 60, 9, 0.3)
    b[:, 4] = a[:, 0] * 2.0  # exact match for feature 0
    b[:, 5] = a[:, 1] * (rng.random(60) < 0.8)  # a near match for feature 1
    ref = _brute_iou(a, b)
    for ca, cb in ((a, b), (sp.csr_matrix(a), sp.csc_matrix(b)), (torch.tensor(a), b)):
        cov = activation_iou_coverage(ca, cb, theta=0.5)
        np.testing.assert_allclose(cov.best_iou, ref.max(axis=1), rtol=1e-12)
        alive = ref.max(axis=1) > 0
        np.testing.assert_array_equal(cov.best_match[alive], ref.argmax(axis=1)[alive])
        assert cov.best_match[2] == -1 and cov.best_iou[2] == 0
        assert cov.n_covered == int(np.sum(ref.max(axis=1) > 0.5))
        assert cov.n_covered >= 2 and cov.best_match[0] == 4
        assert cov.n_alive == 6 and cov.n_features == 7
        assert cov.fraction == pytest.approx(cov.n_covered / 7)


def test_permuted_codes_cover_all_alive_features():
    rng = np.random.default_rng(1)
    d, dead = 30, [3, 11, 17, 29]
    a = _codes(rng, 200, d, 0.1, dead=dead)
    perm = rng.permutation(d)
    b = a[:, perm] * 3.0  # same patterns, other order and scale
    cov = activation_iou_coverage(sp.csr_matrix(a), b, theta=0.5)
    assert cov.n_covered == cov.n_alive == d - len(dead)
    alive = np.setdiff1d(np.arange(d), dead)
    np.testing.assert_allclose(cov.best_iou[alive], 1.0)
    inv = np.argsort(perm)
    np.testing.assert_array_equal(cov.best_match[alive], inv[alive])
    assert not cov.best_iou[dead].any()


def test_duplicates_planted():
    rng = np.random.default_rng(2)
    c = _codes(rng, 400, 25, 0.05, dead=[20])
    c[:, 7] = c[:, 3]  # planted duplicate pair
    c[:, 12] = c[:, 5] * (rng.random(400) < 0.9)  # IoU ~0.9
    dup = duplicates(c, theta=0.5)
    ref = _brute_iou(c, c)
    np.fill_diagonal(ref, 0)
    np.testing.assert_allclose(dup.best_iou, ref.max(axis=1), rtol=1e-12)
    assert set(np.flatnonzero(dup.duplicate)) == {3, 5, 7, 12}
    assert dup.best_match[3] == 7 and dup.best_match[7] == 3
    assert dup.n_duplicates == 4 and dup.fraction == pytest.approx(4 / 25)


def test_hungarian_permuted_decoders():
    rng = np.random.default_rng(3)
    W = rng.standard_normal((48, 20))
    perm = rng.permutation(48)
    W_b = 2.0 * W[perm] + 0.01 * rng.standard_normal((48, 20))
    m = hungarian_match(W, torch.tensor(W_b), thresholds=(0.5, 0.7, 0.9))
    assert m.shared == {0.5: 1.0, 0.7: 1.0, 0.9: 1.0}
    assert m.cosines.min() > 0.99 and m.mean_cosine > 0.99
    np.testing.assert_array_equal(perm[m.cols], m.rows)
    with pytest.raises(ValueError, match="same width"):
        hungarian_match(W, W[:, :5])


def test_hungarian_random_directions():
    rng = np.random.default_rng(4)
    m = hungarian_match(rng.standard_normal((64, 512)), rng.standard_normal((80, 512)))
    assert m.rows.size == 64 and m.shared[0.7] == 0.0 and m.shared[0.9] == 0.0
    assert m.mean_cosine < 0.3


def _sae(d_in=64, d_sae=96, k=4, seed=0):
    return make_sae(SAEConfig(d_in=d_in, d_sae=d_sae, k=k, normalize_input=False), random_state=seed).eval()


def _permuted(sae, perm):
    twin = make_sae(sae.cfg, random_state=123).eval()
    with torch.no_grad():
        twin.W_enc.copy_(sae.W_enc[:, perm])
        twin.b_enc.copy_(sae.b_enc[perm])
        twin.W_dec.copy_(sae.W_dec[perm])
        twin.b_dec.copy_(sae.b_dec)
    return twin


def _numpy_per_clip_batchtopk(sae, clips):
    """Independent reference: ReLU(W_enc^T (x - b_dec) + b_enc), then per clip the
    ``k * n_frames`` largest entries over the whole clip (numpy, float64)."""
    W_enc = sae.W_enc.detach().double().numpy()
    b_enc = sae.b_enc.detach().double().numpy()
    b_dec = sae.b_dec.detach().double().numpy()
    out = []
    for x in clips:
        x = np.asarray(x, np.float64)
        if sae.cfg.normalize_input:
            x = x / np.linalg.norm(x, axis=1, keepdims=True)
        pre = np.maximum((x - b_dec) @ W_enc + b_enc, 0)
        n_keep = sae.cfg.k * len(x)
        flat = pre.ravel()
        keep = np.argsort(-flat, kind="stable")[:n_keep]
        codes = np.zeros_like(flat)
        codes[keep] = flat[keep]
        out.append(codes.reshape(pre.shape))
    return np.concatenate(out)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_encode_clips_per_clip_batchtopk_against_numpy(seed):
    sae = _sae(seed=seed)
    g = torch.Generator().manual_seed(seed)
    # clips with very different scales: pooled BatchTopK would give the loud clip nearly
    # every slot; per clip, each clip keeps k * n_frames_i
    clips = [torch.randn(n, 64, generator=g) * s for n, s in ((13, 0.2), (21, 5.0), (8, 1.0))]
    codes = encode_clips(sae, clips)
    assert sp.issparse(codes) and codes.shape == (42, 96)
    ref = _numpy_per_clip_batchtopk(sae, [c.numpy() for c in clips])
    np.testing.assert_allclose(codes.toarray(), ref, rtol=1e-4, atol=1e-5)
    assert codes[:13].nnz == 4 * 13 and codes[13:34].nnz == 4 * 21 and codes[34:].nnz == 4 * 8
    # the pooled encoding (all clips as one batch) is a different quantity
    with torch.no_grad():
        pooled = sae.encode(torch.cat(clips), mode="batchtopk").numpy()
    assert (pooled[:13] != 0).sum() < 4 * 13 // 2
    # one array of consecutive clips with lengths= is the same as the list
    flat = torch.cat(clips)
    np.testing.assert_array_equal(encode_clips(sae, flat, lengths=[13, 21, 8]).toarray(),
                                  codes.toarray())
    # one bare array is refused: it would silently be one clip
    with pytest.raises(ValueError, match="lengths="):
        encode_clips(sae, flat)
    with pytest.raises(ValueError, match="summing to the 42 frames"):
        encode_clips(sae, flat, lengths=[13, 21])
    with pytest.raises(ValueError, match="already a list"):
        encode_clips(sae, clips, lengths=[13, 21, 8])


def test_coverage_with_lengths_differs_from_one_clip():
    """The IoU coverage of a seed pair on per-clip codes is computed on those codes: passing
    the clips' lengths (per-clip BatchTopK) and treating them as one clip give different
    frame patterns, so the table must know the boundaries."""
    sae = _sae(d_in=48, d_sae=64, k=3, seed=5)
    twin = _permuted(sae, np.random.default_rng(2).permutation(64))
    g = torch.Generator().manual_seed(5)
    clips = [torch.randn(n, 48, generator=g) * s for n, s in ((30, 0.1), (25, 10.0))]
    flat = torch.cat(clips)
    t_list = consistency.consistency_table({1: [sae, twin]}, {1: clips})
    t_len = consistency.consistency_table({1: [sae, twin]}, {1: flat}, lengths={1: [30, 25]})
    pd_cols = ["n_alive", "iou_covered", "duplicates"]
    np.testing.assert_array_equal(t_list[pd_cols].to_numpy(), t_len[pd_cols].to_numpy())
    with pytest.raises(ValueError, match="lengths="):
        consistency.consistency_table({1: [sae, twin]}, {1: flat})
    with pytest.raises(ValueError, match="lengths="):
        random_baseline(sae, flat, random_state=0)
    base = random_baseline(sae, flat, lengths=[30, 25], random_state=0)
    assert base["coverage"].n_features == 64


def test_table_and_random_baseline():
    sae = _sae(d_in=128, d_sae=160, k=6, seed=1)
    perm = np.random.default_rng(5).permutation(160)
    twin = _permuted(sae, torch.as_tensor(perm))
    g = torch.Generator().manual_seed(1)
    clips = [torch.randn(n, 128, generator=g) for n in (40, 55)]
    table = consistency.consistency_table(
        {3: [sae, twin]}, {3: clips}, baseline=True, random_state=0
    )
    assert list(table["b"]) == ["1", "random", "0", "random"]
    seeds = table[table["b"] != "random"]
    alive = seeds["n_alive"].to_numpy()
    assert (alive > 50).all()
    np.testing.assert_array_equal(seeds["iou_covered"].to_numpy(), alive)
    np.testing.assert_allclose(seeds[["decoder_shared_0.7", "encoder_shared_0.9"]], 1.0)
    rand = table[table["b"] == "random"]
    assert (rand["decoder_shared_0.7"] == 0).all() and (rand["decoder_shared_0.5"] == 0).all()
    assert (rand["iou_coverage"] < seeds["iou_coverage"].min()).all()
    assert (table["layer"] == 3).all()
    # direct call of the baseline, and codes instead of SAEs
    base = random_baseline(sae, random_state=0)
    assert base["coverage"] is None and base["decoder"].shared[0.7] == 0.0
    codes = [encode_clips(m, clips) for m in (sae, twin)]
    t2 = consistency.consistency_table({3: codes})
    np.testing.assert_array_equal(t2["iou_covered"], seeds["iou_covered"])
    assert "decoder_shared_0.7" not in t2


def test_errors():
    with pytest.raises(ValueError, match="theta"):
        activation_iou_coverage(np.eye(3), np.eye(3), theta=1.5)
    with pytest.raises(ValueError, match="same frames"):
        activation_iou_coverage(np.eye(3), np.eye(4))
    with pytest.raises(ValueError, match="mixes"):
        consistency.consistency_table({1: [_sae(), np.eye(3)]})


def test_cross_layer_and_cross_model_coverage_table():
    from neuro_sae.sae.consistency import coverage_table

    g = torch.Generator().manual_seed(3)
    sae = _sae(d_in=48, d_sae=64, k=3, seed=2)
    twin = _permuted(sae, np.random.default_rng(1).permutation(64))
    other = _sae(d_in=20, d_sae=30, k=3, seed=9)  # another "model": other width and input
    clips = [torch.randn(n, 48, generator=g) for n in (17, 26)]
    # the other model's frames: one extra frame per clip (cut to the shorter length)
    clips_o = [torch.randn(n + 1, 20, generator=g) for n in (17, 26)]
    table = coverage_table(
        {"whisper": sae, "whisper-perm": twin, "hubert": other},
        {"whisper": clips, "whisper-perm": clips, "hubert": clips_o},
    )
    assert len(table) == 6 and set(table["n_frames"]) == {43}
    t = table.set_index(["a", "b"])
    # a permutation of the same SAE covers every alive feature
    alive = t.loc[("whisper", "whisper-perm"), "n_alive"]
    assert t.loc[("whisper", "whisper-perm"), "iou_covered"] == alive > 0
    # unrelated random SAEs on independent frames: far less coverage (large effect)
    assert t.loc[("whisper", "hubert"), "iou_covered"] < alive / 2
    assert t.loc[("hubert", "whisper"), "n_features"] == 30
    # precomputed codes and chosen pairs give the same numbers
    codes_a = encode_clips(sae, clips)
    codes_b = encode_clips(twin, clips)
    sub = coverage_table({"a": codes_a, "b": codes_b}, pairs=[("a", "b")])
    assert sub["iou_covered"].iloc[0] == alive
    with pytest.raises(ValueError, match="pass its clips"):
        coverage_table({"a": sae, "b": twin}, {"a": clips})
    with pytest.raises(ValueError, match="not in models"):
        coverage_table({"a": codes_a}, pairs=[("a", "z")])
