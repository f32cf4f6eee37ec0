"""load_backbone: short names, encoder-only loading, wav2vec2, offline messages, and
that blocks above the deepest requested layer never run."""

import numpy as np
import pytest
import torch

from neuro_sae.activations import extract_activations
from neuro_sae.backbones import Backbone, load_backbone
from neuro_sae.backbones._backbone import HUB_NAMES
from tests.backbones._tiny import tiny_backbone, tiny_whisper


def test_hub_names_cover_every_size():
    """Every Whisper size, HuBERT base/large and wav2vec2 map to hub ids."""
    for size in ("tiny", "base", "small", "medium", "large-v2", "large-v3", "large-v3-turbo"):
        assert HUB_NAMES[f"whisper-{size}"] == f"openai/whisper-{size}"
    assert HUB_NAMES["whisper-turbo"] == "openai/whisper-large-v3-turbo"
    assert HUB_NAMES["hubert-base"] == "facebook/hubert-base-ls960"
    assert HUB_NAMES["hubert-large"] == "facebook/hubert-large-ll60k"
    assert HUB_NAMES["wav2vec2-base"] == "facebook/wav2vec2-base"


@pytest.mark.parametrize("name", ["whisper-small", "hubert-large", "whisper-large-v3-turbo"])
def test_offline_names_give_clear_error(name, monkeypatch):
    """Offline and not cached: the message names the hub id, HF_HUB_OFFLINE and the
    local alternatives."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    for encoder_only in (False, True):
        with pytest.raises(RuntimeError) as err:
            load_backbone(name, encoder_only=encoder_only)
        msg = str(err.value)
        assert HUB_NAMES[name] in msg and "HF_HUB_OFFLINE" in msg
        assert "local folder" in msg and "whisper-base" in msg


def test_unknown_spec_suggests():
    """A misspelt name lists the known names and suggests the closest."""
    with pytest.raises(ValueError, match=r"Unknown backbone 'whisper-smal' \(the manifest's backbone\.name.*Did you mean 'whisper-small'"):
        load_backbone("whisper-smal")
    with pytest.raises(ValueError, match="Known names:.*hubert-base-random"):
        load_backbone("bert")
    with pytest.raises(TypeError, match="encoder_only"):
        load_backbone("hubert-base-random", encoder_only="yes")


def test_whisper_encoder_only_from_folder(tmp_path):
    """encoder_only reads only encoder tensors and gives the full model's activations."""
    from transformers.models.whisper.modeling_whisper import WhisperEncoder

    full = tiny_whisper(seed=8, full=True, max_source_positions=200)
    full.save_pretrained(tmp_path / "w")
    a = load_backbone(tmp_path / "w")
    b = load_backbone(tmp_path / "w", encoder_only=True)
    assert isinstance(b.model, WhisperEncoder) and b.encoder is b.model
    assert not any("decoder" in k for k in b.model.state_dict())
    n_full = sum(p.numel() for p in a.model.parameters())
    n_enc = sum(p.numel() for p in b.model.parameters())
    assert n_enc == sum(p.numel() for p in a.encoder.parameters()) < n_full
    assert not any(p.is_meta for p in b.model.parameters())
    x = np.random.default_rng(0).standard_normal(20000).astype(np.float32) * 0.1
    ea = extract_activations(a, x, layers=[0, 2, 3])
    eb = extract_activations(b, x, layers=[0, 2, 3])
    for layer in (0, 2, 3):
        np.testing.assert_array_equal(ea.data[layer], eb.data[layer])


def test_wav2vec2_backbone(tmp_path):
    """A wav2vec2 model (layer-norm stem, stable layer norm) loads from a folder and gives
    HuBERT frame timing."""
    from transformers import Wav2Vec2Config, Wav2Vec2Model

    from neuro_sae.backbones._backbone import _random_init_

    cfg = Wav2Vec2Config(hidden_size=28, num_hidden_layers=2, num_attention_heads=4,
                         intermediate_size=44, conv_dim=(20,) * 7, num_conv_pos_embeddings=16,
                         num_conv_pos_embedding_groups=4, feat_extract_norm="layer",
                         do_stable_layer_norm=True)
    model = _random_init_(Wav2Vec2Model(cfg), 3).eval()
    model.save_pretrained(tmp_path / "w2v")
    bb = load_backbone(tmp_path / "w2v")
    assert (bb.kind, bb.n_layers, bb.d_model) == ("wav2vec2", 2, 28)
    x = np.random.default_rng(1).standard_normal(16000).astype(np.float32)
    acts = extract_activations(bb, x)
    assert acts.n_frames == 49 and acts.layers == [1, 2]
    np.testing.assert_allclose(acts.times[:2], [0.0125, 0.0325])
    with torch.inference_mode():
        ref = model(torch.from_numpy(x)[None], output_hidden_states=True)
    np.testing.assert_allclose(acts.data[2], ref.last_hidden_state[0].numpy(), atol=1e-5)
    np.testing.assert_allclose(acts.data[1], ref.hidden_states[1][0].numpy(), atol=1e-5)


@pytest.mark.parametrize("kind", ["whisper", "hubert"])
def test_blocks_above_deepest_layer_never_run(kind):
    """Counting block calls: asking for layer 1 of 3 runs block 1 only; asking for
    layer 0 runs no block; the last layer runs them all."""
    bb = tiny_backbone(kind, seed=2)
    blocks = bb.encoder.layers if kind == "whisper" else bb.encoder.encoder.layers
    calls = [0] * len(blocks)
    handles = [b.register_forward_hook(lambda m, a, o, i=i: calls.__setitem__(i, calls[i] + 1))
               for i, b in enumerate(blocks)]
    x = np.random.default_rng(0).standard_normal(16000 * 2).astype(np.float32) * 0.1
    try:
        for layers, expected in [([1], [1, 0, 0]), ([0], [0, 0, 0]), ([0, 2], [1, 1, 0]),
                                 (None, [1, 1, 1])]:
            calls[:] = [0, 0, 0]
            extract_activations(bb, x, layers=layers)
            assert calls == expected, (layers, calls)
    finally:
        for h in handles:
            h.remove()
    assert isinstance(bb, Backbone)
