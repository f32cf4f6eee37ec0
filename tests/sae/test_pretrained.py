"""Pretrained SAEs by name, read offline from a huggingface_hub cache the test builds in the
hub's own layout (``models--<org>--<name>/refs/main``, ``snapshots/<commit>/...``)."""

import json

import numpy as np
import pytest
import torch

from neuro_sae.sae import PRETRAINED_SAES, load_pretrained_sae, load_sae, pretrained_sae_folder

D_IN, D_SAE, K = 10, 36, 4
COMMIT = "0123456789abcdef0123456789abcdef01234567"


def _state(seed):
    g = torch.Generator().manual_seed(seed)
    dec = torch.randn(D_IN, D_SAE, generator=g)
    dec /= dec.norm(dim=0, keepdim=True)
    return {
        "encoder.weight": dec.t() + 0.1 * torch.randn(D_SAE, D_IN, generator=g),
        "encoder.bias": 0.1 * torch.randn(D_SAE, generator=g),
        "decoder.weight": dec,
        "b_dec": 0.2 * torch.randn(D_IN, generator=g),
        "k": torch.tensor(K),
    }


def _hub_cache(root, repo_id, files):
    """A huggingface_hub cache holding one snapshot of ``repo_id`` with ``files``."""
    repo = root / ("models--" + repo_id.replace("/", "--"))
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(COMMIT)
    snap = repo / "snapshots" / COMMIT
    for rel, writer in files.items():
        (snap / rel).parent.mkdir(parents=True, exist_ok=True)
        writer(snap / rel)
    return root


def _trainer_cfg(layer):
    return {"trainer": {"dict_class": "BatchTopKSAE", "activation_dim": D_IN, "dict_size": D_SAE, "k": K,
                        "lm_name": "openai/whisper-small", "layer": layer}}  # fmt: skip


@pytest.fixture
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def test_audiosae_by_name_from_cache(tmp_path, offline):
    """load_sae('audiosae/whisper-small', layer=12) reads layer_12 of the cached snapshot:
    its weights are the ones planted there (not layer 3's)."""
    repo = PRETRAINED_SAES["audiosae/whisper-small"].repo_id
    states = {12: _state(1), 3: _state(2)}
    files = {}
    for layer, st in states.items():
        files[f"layer_{layer}/ae.pt"] = lambda f, st=st: torch.save(st, f)
        files[f"layer_{layer}/config.json"] = lambda f, layer=layer: f.write_text(json.dumps(_trainer_cfg(layer)))
    cache = _hub_cache(tmp_path / "hub", repo, files)
    folder = pretrained_sae_folder("audiosae/whisper-small", layer=12, cache_dir=cache)
    assert folder == cache / ("models--" + repo.replace("/", "--")) / "snapshots" / COMMIT
    sae = load_pretrained_sae("audiosae/whisper-small", layer=12, cache_dir=cache)
    assert (sae.cfg.d_in, sae.cfg.d_sae, sae.cfg.k, sae.cfg.layer) == (D_IN, D_SAE, K, 12)
    np.testing.assert_allclose(sae.W_dec.detach().numpy().T if sae.W_dec.shape[0] == D_IN
                               else sae.W_dec.detach().numpy(),
                               states[12]["decoder.weight"].numpy().T, atol=1e-6)  # fmt: skip
    assert sae.metadata["pretrained"] == dict(name="audiosae/whisper-small", layer=12, sae_id=None)


def test_load_sae_name_uses_hf_cache_env(tmp_path, offline, monkeypatch):
    """The plain load_sae(name, layer=) path, with the cache given by HF_HUB_CACHE."""
    import huggingface_hub.constants as hc

    repo = PRETRAINED_SAES["audiosae/hubert-base"].repo_id
    st = _state(5)
    cache = _hub_cache(tmp_path / "hub", repo, {"layer_7/ae.pt": lambda f: torch.save(st, f)})
    monkeypatch.setattr(hc, "HF_HUB_CACHE", str(cache))
    sae = load_sae("audiosae/hubert-base", layer=7)
    x = torch.randn(5, D_IN, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        codes = sae.encode(x, mode="batchtopk")
    assert int((codes > 0).sum()) == K * 5


def test_offline_missing_says_hf_hub_offline_and_local_alternative(tmp_path, offline):
    cache = tmp_path / "empty"
    cache.mkdir()
    with pytest.raises(OSError) as err:
        load_sae("audiosae/whisper-small", layer=12, cache_dir=cache)
    msg = str(err.value)
    assert "HF_HUB_OFFLINE" in msg and "Egorgij21/Audio-SAE-Whisper-small" in msg
    assert "sae.pretrained: {12: <folder>}" in msg and "load_sae('<folder>', layer=12)" in msg


def test_cached_snapshot_without_the_layer(tmp_path, offline):
    repo = PRETRAINED_SAES["audiosae/whisper-small"].repo_id
    cache = _hub_cache(tmp_path / "hub", repo, {"layer_3/ae.pt": lambda f: torch.save(_state(0), f)})
    with pytest.raises(OSError, match="has no layer_12/ae.pt"):
        pretrained_sae_folder("audiosae/whisper-small", layer=12, cache_dir=cache)


def test_unknown_name_and_layer():
    with pytest.raises(ValueError, match="Did you mean 'audiosae/whisper-small'"):
        pretrained_sae_folder("audiosae/whisper-smal", layer=1)
    with pytest.raises(ValueError, match=r"layer= one of its released layers \[1, 2"):
        pretrained_sae_folder("audiosae/whisper-small", layer=13)


def test_saelens_release_from_cache(tmp_path, offline):
    """'saelens:<release>' + sae_id: the folder SAELens's directory names, in the cache."""
    pytest.importorskip("sae_lens")
    from sae_lens.loading.pretrained_saes_directory import get_pretrained_saes_directory

    from neuro_sae.sae import SAEConfig, export_saelens, make_sae

    release, lookup = next(iter(get_pretrained_saes_directory().items()))
    sae_id, path = next(iter(lookup.saes_map.items()))
    sae = make_sae(SAEConfig(d_in=D_IN, d_sae=D_SAE, k=K, seed=3, architecture="topk"))
    tmp_sae = tmp_path / "export"
    export_saelens(sae, tmp_sae)

    def copier(rel):
        return lambda f: f.write_bytes((tmp_sae / rel).read_bytes())

    files = {f"{path}/{p.name}": copier(p.name) for p in tmp_sae.iterdir() if p.is_file()}
    cache = _hub_cache(tmp_path / "hub", lookup.repo_id, files)
    loaded = load_sae(f"saelens:{release}", sae_id=sae_id, cache_dir=cache)
    np.testing.assert_allclose(loaded.W_dec.detach().numpy(), sae.W_dec.detach().numpy(), atol=1e-6)
    with pytest.raises(ValueError, match="is not in the SAELens release"):
        load_sae(f"saelens:{release}", sae_id="no-such-id", cache_dir=cache)
