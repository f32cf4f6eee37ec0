"""Tests of the SAE models: parameters, encode modes, scale handling, save/load."""

import json

import numpy as np
import pytest
import torch

import neuro_sae
from neuro_sae.sae import (
    BatchTopKSAE,
    SAEConfig,
    TopKSAE,
    load_sae,
    make_sae,
    register_architecture,
)
from neuro_sae.sae._model import _REGISTRY

D_IN, D_SAE, K = 11, 29, 3


def _sae(architecture="batchtopk", seed=0, **kwargs):
    cfg = SAEConfig(d_in=D_IN, d_sae=D_SAE, k=K, architecture=architecture, **kwargs)
    return make_sae(cfg, random_state=seed)


def _x(n=23, seed=1):
    return np.random.default_rng(seed).standard_normal((n, D_IN)).astype(np.float32) * 3.0


def test_parameters_and_init():
    sae = _sae()
    assert isinstance(sae, BatchTopKSAE)
    assert isinstance(_sae("topk"), TopKSAE)
    shapes = {name: tuple(p.shape) for name, p in sae.named_parameters()}
    assert shapes == {
        "W_enc": (D_IN, D_SAE),
        "b_enc": (D_SAE,),
        "W_dec": (D_SAE, D_IN),
        "b_dec": (D_IN,),
    }
    assert sae.threshold.shape == () and not sae.has_threshold
    torch.testing.assert_close(sae.W_dec.norm(dim=1), torch.ones(D_SAE))
    torch.testing.assert_close(sae.W_enc, sae.W_dec.t())
    for p in sae.parameters():
        assert p.dtype == torch.float32
    # same random_state, same dictionary; different, different
    torch.testing.assert_close(_sae(seed=4).W_dec, _sae(seed=4).W_dec, rtol=0, atol=0)
    assert not torch.equal(_sae(seed=4).W_dec, _sae(seed=5).W_dec)
    assert "d_sae=29" in repr(sae)


def test_architecture_mismatch_and_registry():
    cfg = SAEConfig(d_in=D_IN, d_sae=D_SAE, k=K, architecture="topk")
    with pytest.raises(ValueError, match="make_sae"):
        BatchTopKSAE(cfg)
    assert set(_REGISTRY) == set(neuro_sae.sae.ARCHITECTURES)
    assert register_architecture  # public hook for new architectures


def test_encode_modes():
    sae = _sae()
    x = _x()
    n = x.shape[0]
    codes = sae.encode(x, mode="batchtopk")
    assert codes.shape == (n, D_SAE)
    assert int((codes > 0).sum()) == K * n  # exactly k * n non-zeros over the batch
    assert (codes >= 0).all()
    codes = sae.encode(x, mode="topk")
    assert ((codes > 0).sum(dim=1) == K).all()
    with pytest.raises(ValueError, match="needs a learned inference threshold"):
        sae.encode(x)  # default for BatchTopK is threshold mode
    with pytest.raises(ValueError, match="Allowed values are"):
        sae.encode(x, mode="top-k")
    with pytest.raises(ValueError, match=r"shape \(n_frames, d_in=11\)"):
        sae.encode(x[:, :5], mode="topk")
    with torch.no_grad():
        sae.threshold.fill_(0.2)
    pre = torch.relu((sae._prepare(x)[0] - sae.b_dec) @ sae.W_enc + sae.b_enc)
    torch.testing.assert_close(sae.encode(x), pre * (pre > 0.2))
    # the sparse encoder gives the same codes
    torch.testing.assert_close(sae.encode_sparse(x).to_dense(), sae.encode(x).detach())
    # TopK SAEs default to topk
    assert ((_sae("topk").encode(x) > 0).sum(dim=1) == K).all()


def test_normalisation_and_scale():
    sae = _sae()
    with torch.no_grad():
        sae.b_dec.copy_(torch.linspace(-0.1, 0.1, D_IN))
    x = _x()
    c = np.linspace(0.5, 4.0, x.shape[0])[:, None].astype(np.float32)
    # codes do not depend on each frame's norm; the reconstruction scales with it
    torch.testing.assert_close(sae.encode(x * c, "topk"), sae.encode(x, "topk"))
    torch.testing.assert_close(
        sae(x * c, "topk"), sae(x, "topk") * torch.from_numpy(c), rtol=1e-5, atol=1e-5
    )
    out = sae.encode_decode(x, "topk")
    torch.testing.assert_close(out.x_in.norm(dim=1), torch.ones(x.shape[0]))
    torch.testing.assert_close(out.scale[:, 0], torch.from_numpy(np.linalg.norm(x, axis=1)))
    torch.testing.assert_close(sae(x, "topk"), out.recon * out.scale)
    torch.testing.assert_close(
        sae.decode(sae.encode(x, "topk"), scale=out.scale[:, 0]), sae(x, "topk")
    )
    torch.testing.assert_close(
        sae.decode(sae.encode_sparse(x, "topk")), sae.decode(sae.encode(x, "topk"))
    )
    raw = _sae(normalize_input=False)
    out = raw.encode_decode(x, "topk")
    torch.testing.assert_close(out.x_in, torch.from_numpy(x))
    torch.testing.assert_close(out.scale, torch.ones(x.shape[0], 1))


@pytest.mark.parametrize("mode", ["batchtopk", "topk"])
def test_sparse_and_dense_paths_agree(mode):
    sae = _sae()
    x = _x()
    grads = []
    for sparse in (True, False):
        sae.zero_grad()
        out = sae.encode_decode(x, mode, sparse=sparse)
        ((out.recon - out.x_in) ** 2).sum(dim=1).mean().backward()
        grads.append([p.grad.clone() for p in sae.parameters()])
        if sparse:
            recon = out.recon.detach()
            codes = out.codes.to_dense()
        else:
            torch.testing.assert_close(out.recon.detach(), recon, rtol=1e-5, atol=1e-6)
            torch.testing.assert_close(out.codes.to_dense(), codes)
    for g_sparse, g_dense in zip(*grads):
        torch.testing.assert_close(g_sparse, g_dense, rtol=1e-4, atol=1e-6)


def test_decoder_constraint_helpers():
    sae = _sae()
    sae.W_dec.grad = torch.randn(D_SAE, D_IN, generator=torch.Generator().manual_seed(0))
    sae.remove_parallel_decoder_grad()
    dots = (sae.W_dec.grad * sae.W_dec).sum(dim=1)
    torch.testing.assert_close(dots, torch.zeros(D_SAE), rtol=0, atol=1e-6)
    with torch.no_grad():
        sae.W_dec.mul_(torch.linspace(0.5, 3.0, D_SAE)[:, None])
    sae.normalize_decoder()
    torch.testing.assert_close(sae.W_dec.norm(dim=1), torch.ones(D_SAE))


@pytest.mark.parametrize("architecture", ["batchtopk", "topk"])
def test_save_load_round_trip(tmp_path, architecture):
    sae = _sae(architecture, seed=3, backbone="whisper-base", layer=6)
    with torch.no_grad():
        sae.b_enc.normal_(generator=torch.Generator().manual_seed(2))
        sae.b_dec.uniform_(-0.1, 0.1, generator=torch.Generator().manual_seed(3))
        sae.threshold.fill_(0.15)
    sae.train_info = dict(train_config={"n_steps": 5}, data_hash="abc", final_metrics={"l0": 3.0})
    folder = sae.save(tmp_path / "sae_layer6", metadata={"note": "test"})
    assert sorted(p.name for p in folder.iterdir()) == ["cfg.json", "sae.safetensors"]
    cfg = json.loads((folder / "cfg.json").read_text())
    for key, value in dict(
        architecture=architecture,
        d_in=D_IN,
        d_sae=D_SAE,
        k=K,
        normalize_input=True,
        backbone="whisper-base",
        layer=6,
        frame_rate=50.0,
        padding_policy="masked",
        data_hash="abc",
        neuro_sae_version=neuro_sae.__version__,
        final_metrics={"l0": 3.0},
        train_config={"n_steps": 5},
        metadata={"note": "test"},
    ).items():
        assert cfg[key] == value, key
    loaded = load_sae(folder)
    assert type(loaded) is type(sae)
    assert loaded.cfg == sae.cfg
    assert loaded.train_info["data_hash"] == "abc"
    assert loaded.metadata == {"note": "test"}
    for name, t in sae.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[name], t, rtol=0, atol=0)
    x = _x()
    modes = ["batchtopk", "topk"] + (["threshold"] if architecture == "batchtopk" else [])
    for mode in modes:
        torch.testing.assert_close(loaded(x, mode), sae(x, mode), rtol=0, atol=0)
    # saving again replaces the folder atomically; no temporary folders remain
    sae.save(folder)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sae_layer6"]


def test_load_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_sae(tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="cfg.json"):
        load_sae(tmp_path / "empty")
    folder = _sae().save(tmp_path / "sae")
    cfg = json.loads((folder / "cfg.json").read_text())
    cfg["architecture"] = "gated"
    (folder / "cfg.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="Unknown SAE architecture 'gated'.*Known"):
        load_sae(folder)
    cfg["architecture"] = "batchtopk"
    cfg["format_version"] = 99
    (folder / "cfg.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="format_version 99"):
        load_sae(folder)


def test_per_clip_batchtopk_lengths():
    sae = _sae()
    x = torch.from_numpy(_x(n=23))
    lengths = [5, 11, 7]
    with torch.no_grad():
        got = sae.encode(x, mode="batchtopk", lengths=lengths)
        ref = torch.cat([sae.encode(c, mode="batchtopk") for c in torch.split(x, lengths)])
        torch.testing.assert_close(got, ref, rtol=0, atol=0)
        sparse = sae.encode_sparse(x, mode="batchtopk", lengths=lengths).to_dense()
        torch.testing.assert_close(sparse, ref, rtol=0, atol=0)
        # each clip keeps exactly k * n_i entries
        counts = [int((c > 0).sum()) for c in torch.split(got, lengths)]
        assert counts == [sae.cfg.k * n for n in lengths]
    with pytest.raises(ValueError, match="summing to the 23 frames"):
        sae.encode(x, mode="batchtopk", lengths=[5, 5])
