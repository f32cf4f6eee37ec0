"""Intervention hooks: identity splices, ablations, steering, cleanup, nesting."""

import numpy as np
import pytest
import torch

from neuro_sae.backbones import Backbone, intervene, splice, steer
from tests.backbones._tiny import tiny_backbone, tiny_hubert, tiny_whisper

N_POS = 150  # tiny Whisper with a 3 s input (150 frames) keeps the tests fast


def _make(kind):
    if kind == "whisper":
        return tiny_backbone("whisper", seed=3, max_source_positions=N_POS)
    if kind == "hubert":
        return tiny_backbone("hubert", seed=4)
    # stable layer norm: the last layer is the output of the final encoder layer norm
    model = tiny_hubert(4, do_stable_layer_norm=True, feat_extract_norm="layer")
    return Backbone.from_model(model, kind="hubert", name="tiny-hubert-stable")


@pytest.fixture(scope="module", params=["whisper", "hubert", "hubert-stable"])
def bb_inputs(request):
    bb = _make(request.param)
    x = np.random.default_rng(7).standard_normal(int(16000 * 1.3)).astype(np.float32) * 0.1
    return bb, bb.prepare([x, 0.5 * x[::-1].copy()])


def _all_layers(bb, inputs):
    return bb.forward_layers(inputs, list(range(bb.n_layers + 1)))


def _n_hooks(model):
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


def _block(bb, n, hidden):
    """Independent reference: run block n (1-based) on hidden, plus the final norm."""
    blocks = bb.encoder.layers if bb.kind == "whisper" else bb.encoder.encoder.layers
    with torch.inference_mode():
        out = blocks[n - 1](hidden, None)
        out = out[0] if isinstance(out, tuple) else out
        if n == bb.n_layers:
            if bb.kind == "whisper":
                out = bb.encoder.layer_norm(out)
            elif bb.encoder.config.do_stable_layer_norm:
                out = bb.encoder.encoder.layer_norm(out)
    return out


def test_identity_splice_and_zero_ablation(bb_inputs):
    """Identity leaves every layer unchanged; zeroing layer n changes only layers >= n."""
    bb, inputs = bb_inputs
    base = _all_layers(bb, inputs)
    n_hooks = _n_hooks(bb.model)
    for layer in range(bb.n_layers + 1):
        with splice(bb, layer, lambda x: x):
            out = _all_layers(bb, inputs)
        for n in base:
            torch.testing.assert_close(out[n], base[n], rtol=0, atol=1e-6)
        with intervene(bb, layer, torch.zeros_like) as same:
            assert same is bb
            out = _all_layers(bb, inputs)
        for n in base:
            if n < layer:
                torch.testing.assert_close(out[n], base[n], rtol=0, atol=0)
            elif n == layer:
                assert not out[n].any()
            else:
                assert (out[n] - base[n]).abs().max() > 1e-3, (layer, n)
        assert _n_hooks(bb.model) == n_hooks


def test_steer_exact_and_downstream(bb_inputs):
    """Layer n moves by exactly alpha * v; layer n + 1 is block n + 1 of the steered input."""
    bb, inputs = bb_inputs
    base = _all_layers(bb, inputs)
    v = torch.from_numpy(np.random.default_rng(1).standard_normal(bb.d_model))
    for layer, alpha in [(1, 2.5), (0, -1.0)]:
        with steer(bb, layer, v.numpy(), alpha=alpha):
            out = _all_layers(bb, inputs)
        shift = (alpha * v).to(torch.float32)
        torch.testing.assert_close(out[layer], base[layer] + shift, rtol=0, atol=1e-6)
        for n in range(layer):
            torch.testing.assert_close(out[n], base[n], rtol=0, atol=0)
        ref = _block(bb, layer + 1, base[layer] + shift)
        torch.testing.assert_close(out[layer + 1], ref, rtol=1e-5, atol=1e-5)
        assert (out[layer + 1] - base[layer + 1]).abs().max() > 1e-3


def test_nested_and_masked(bb_inputs):
    """Two nested hooks compose; a frame mask leaves the other frames untouched."""
    bb, inputs = bb_inputs
    base = _all_layers(bb, inputs)
    rng = np.random.default_rng(2)
    v, w = rng.standard_normal((2, bb.d_model))
    with steer(bb, 1, v), steer(bb, 2, w, alpha=0.5):
        out = _all_layers(bb, inputs)
    h1 = base[1] + torch.from_numpy(v).float()
    torch.testing.assert_close(out[1], h1, rtol=0, atol=1e-6)
    h2 = _block(bb, 2, h1) + 0.5 * torch.from_numpy(w).float()
    torch.testing.assert_close(out[2], h2, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(out[3], _block(bb, 3, h2), rtol=1e-5, atol=1e-5)
    # mask: only frames 5..11 of the second sequence are steered
    n_frames = base[2].shape[1]
    mask = np.zeros((2, n_frames), bool)
    mask[1, 5:12] = True
    with steer(bb, 2, w, alpha=3.0, mask=mask):
        out = _all_layers(bb, inputs)
    delta = (out[2] - base[2]).numpy()
    np.testing.assert_array_equal(delta[~mask], 0)
    np.testing.assert_allclose(delta[mask], np.tile(3.0 * w, (7, 1)), rtol=0, atol=1e-5)
    # splice with a 1-D mask: reconstruct only sees the selected frames
    seen = []

    def recon(x):
        seen.append(tuple(x.shape))
        return 2 * x

    mask1 = np.zeros(n_frames, bool)
    mask1[:9] = True
    with splice(bb, 2, recon, mask=mask1):
        out = _all_layers(bb, inputs)
    assert seen == [(18, bb.d_model)]
    torch.testing.assert_close(out[2][:, :9], 2 * base[2][:, :9], rtol=0, atol=0)
    torch.testing.assert_close(out[2][:, 9:], base[2][:, 9:], rtol=0, atol=0)


def test_hook_removed_after_exception():
    """The hook is gone after the block, also when the block raises."""
    bb = _make("hubert")
    x = np.random.default_rng(3).standard_normal(9000).astype(np.float32)
    inputs = bb.prepare([x])
    base = bb.forward_layers(inputs, [3])[3]
    n_hooks = _n_hooks(bb.model)
    with pytest.raises(RuntimeError, match="boom"):
        with intervene(bb, 2, torch.zeros_like):
            assert _n_hooks(bb.model) == n_hooks + 1
            raise RuntimeError("boom")
    assert _n_hooks(bb.model) == n_hooks
    # an error raised by fn inside the forward also removes the hook
    with pytest.raises(ValueError, match="fn must return a tensor of the layer's shape"):
        with intervene(bb, 1, lambda h: h[:, :3]):
            bb.forward_layers(inputs, [3])
    assert _n_hooks(bb.model) == n_hooks
    torch.testing.assert_close(bb.forward_layers(inputs, [3])[3], base, rtol=0, atol=0)


def test_whisper_decoder_logits():
    """Identity splices leave the decoder logits unchanged; an ablation changes them."""
    model = tiny_whisper(5, full=True, max_source_positions=N_POS)
    bb = Backbone.from_model(model, kind="whisper", name="tiny-whisper-full")
    x = np.random.default_rng(4).standard_normal(16000 * 2).astype(np.float32) * 0.1
    feats = bb.prepare([x])
    dec = torch.tensor([[2, 5, 17, 40, 3]])

    def logits():
        with torch.inference_mode():
            return model(input_features=feats, decoder_input_ids=dec).logits

    base = logits()
    n_hooks = _n_hooks(model)
    for layer in range(bb.n_layers + 1):
        with splice(bb, layer, lambda h: h * 1.0):
            torch.testing.assert_close(logits(), base, rtol=0, atol=1e-6)
    for layer, fn in [(1, torch.zeros_like), (3, lambda h: 3.0 * h + 1.0)]:
        with intervene(bb, layer, fn):
            assert (logits() - base).abs().max() > 1e-4
    # cross-attention has no positions: reversing the encoder output in time changes nothing
    with intervene(bb, 3, lambda h: h.flip(1)):
        torch.testing.assert_close(logits(), base, rtol=1e-5, atol=1e-5)
    assert _n_hooks(model) == n_hooks


def test_splice_sae():
    """Splicing an SAE's forward passes (n_frames, d_model) frames in the layer's scale."""
    from neuro_sae.sae import SAEConfig, make_sae

    bb = _make("whisper")
    x = np.random.default_rng(6).standard_normal(16000).astype(np.float32) * 0.1
    inputs = bb.prepare([x])
    base = bb.forward_layers(inputs, [2, 3])
    cfg = SAEConfig(d_in=bb.d_model, d_sae=3 * bb.d_model, k=5, architecture="topk")
    sae = make_sae(cfg, random_state=0)
    with torch.inference_mode():
        ref = sae(base[2][0])
    with splice(bb, 2, sae):
        out = bb.forward_layers(inputs, [2, 3])
    torch.testing.assert_close(out[2][0], ref, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(out[3], _block(bb, 3, ref[None]), rtol=1e-5, atol=1e-5)


def test_errors():
    """Bad arguments name the parameter and the allowed values."""
    bb = _make("hubert")
    with pytest.raises(ValueError, match="'layer'.*layers 0 .* to 3.*got 4"):
        intervene(bb, 4, torch.zeros_like)
    with pytest.raises(TypeError, match="fn must be callable"):
        intervene(bb, 1, None)
    with pytest.raises(ValueError, match="vector must be finite with shape .*d_model = 36"):
        steer(bb, 1, np.ones(5))
    with pytest.raises(ValueError, match="mask must be a boolean array"):
        steer(bb, 1, np.ones(36), mask=np.ones(4))
    with pytest.raises(TypeError, match="backbone must be"):
        intervene("whisper-base", 1, torch.zeros_like)
    inputs = bb.prepare([np.zeros(8000, np.float32)])
    with pytest.raises(ValueError, match="mask has shape \\(4,\\).*pass a mask of shape"):
        with steer(bb, 1, np.ones(36), mask=np.ones(4, bool)):
            bb.forward_layers(inputs, [1])
