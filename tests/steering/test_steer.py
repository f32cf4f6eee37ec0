"""Steering exactness: cached-layer runs equal hooked forwards, alpha = 0 with the
error term is the unsteered model, a planted feature moves a logit by a hand-computed
amount; feature ranking, F1 and the S-vector recover planted truth."""

import numpy as np
import pytest
import torch

from neuro_sae.backbones import splice
from neuro_sae.steering import (
    SteeringVector,
    decode_clips,
    encoder_states,
    feature_f1,
    rank_features,
    run_from_layer,
    s_vector,
    sae_vector,
    steering_fn,
)
from neuro_sae.steering._encode import n_valid
from tests.steering._fixtures import D_MODEL, D_SAE, TOKENS, tiny_full, tiny_sae, waves


def _hooked_output(bb, ws, layer, fn):
    """Encoder output of a full forward with the valid frames of ``layer`` replaced."""
    n_all = int(bb.encoder.config.max_source_positions)
    mask = np.zeros((len(ws), n_all), bool)
    for i, w in enumerate(ws):
        mask[i, : n_valid(bb, w)] = True
    with torch.inference_mode(), splice(bb, layer, fn, mask=mask):
        return bb.encoder(bb.prepare(ws)).last_hidden_state


@pytest.mark.parametrize("layer", [0, 1, 2, 3])
def test_run_from_layer_equals_hooked_forward(layer):
    bb = tiny_full()
    ws = waves()
    states, _ = encoder_states(bb, ws, [layer])
    vec = SteeringVector("svector", layer, direction=tuple(np.linspace(-1, 1, D_MODEL) / 3.7))
    fn = steering_fn(vec, 0.8)
    ours = run_from_layer(bb, states[layer], layer, fn, [n_valid(bb, w) for w in ws])
    ref = _hooked_output(bb, ws, layer, fn)
    np.testing.assert_allclose(ours.numpy(), ref.numpy(), atol=2e-5, rtol=1e-5)
    plain = run_from_layer(bb, states[layer], layer, None, None)
    assert np.abs(plain.numpy() - ref.numpy()).max() > 1e-3  # the steering did something


@pytest.mark.parametrize("layer", [1, 3])
def test_alpha_zero_with_error_term_is_unsteered(layer):
    bb = tiny_full()
    ws = waves()
    sae = tiny_sae(layer)
    states, enc = encoder_states(bb, ws, [layer])
    beta = np.random.default_rng(1).standard_normal(D_SAE)
    vec = sae_vector(beta, np.argsort(-np.abs(beta)), 9, sae, layer=layer)
    valid = [n_valid(bb, w) for w in ws]
    fn0 = steering_fn(vec, 0.0, sae=sae, keep_error=True)
    x = states[layer][0, :50]
    assert torch.equal(fn0(x), x)  # exactly, not only to tolerance
    out0 = run_from_layer(bb, states[layer], layer, fn0, valid)
    np.testing.assert_allclose(out0.numpy(), enc.numpy(), atol=1e-5, rtol=1e-5)
    nsp0, _, _ = decode_clips(bb, out0, TOKENS)
    nsp, _, _ = decode_clips(bb, enc, TOKENS)
    np.testing.assert_allclose(nsp0, nsp, rtol=1e-5)
    with torch.inference_mode():  # logits of the whole prompt through the hooked model
        ids = torch.tensor([list(TOKENS.prompt)] * len(ws))
        feats = bb.prepare(ws)
        clean = bb.model(input_features=feats, decoder_input_ids=ids).logits
        n_all = int(bb.encoder.config.max_source_positions)
        mask = np.zeros((len(ws), n_all), bool)
        for i, v in enumerate(valid):
            mask[i, :v] = True
        with splice(bb, layer, fn0, mask=mask):
            steered = bb.model(input_features=feats, decoder_input_ids=ids).logits
        with splice(bb, layer, steering_fn(vec, 0.0, sae=sae, keep_error=False), mask=mask):
            recon = bb.model(input_features=feats, decoder_input_ids=ids).logits
    np.testing.assert_allclose(steered.numpy(), clean.numpy(), atol=1e-5, rtol=1e-5)
    # the paper's form (no error term) replaces the layer by the SAE's reconstruction
    assert np.abs(recon.numpy() - clean.numpy()).max() > 1e-3


def test_steering_fn_matches_hand_computation():
    sae = tiny_sae(2)
    rng = np.random.default_rng(5)
    x = torch.from_numpy(rng.standard_normal((13, D_MODEL)).astype(np.float32) * 4)
    vec = SteeringVector("sae", 2, features=(4, 17, 60), signs=(-1.0, 1.0, -1.0))
    alpha = 0.7
    W, b = sae.W_dec.detach().double().numpy(), sae.b_dec.detach().double().numpy()
    norms = np.linalg.norm(x.numpy().astype(float), axis=1, keepdims=True)
    codes = sae.encode(x, "topk").detach().double().numpy()
    s = np.zeros(D_SAE)
    s[[4, 17, 60]] = [-1, 1, -1]
    no_err = ((codes + alpha * s) @ W + b) * norms
    got = steering_fn(vec, alpha, sae=sae, keep_error=False, mode="topk")(x).numpy()
    np.testing.assert_allclose(got, no_err, rtol=1e-4, atol=1e-4)
    with_err = x.numpy() + alpha * norms * (s @ W)
    got = steering_fn(vec, alpha, sae=sae, keep_error=True, mode="topk")(x).numpy()
    np.testing.assert_allclose(got, with_err, rtol=1e-4, atol=1e-4)
    u = rng.standard_normal(D_MODEL)
    u /= np.linalg.norm(u)
    sv = SteeringVector("svector", 2, direction=tuple(u))
    np.testing.assert_allclose(steering_fn(sv, 0.3)(x).numpy(), x.numpy() + 0.3 * norms * u,
                               rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(steering_fn(sv, 0.3, scale="absolute")(x).numpy(),
                               x.numpy() + 0.3 * u, rtol=1e-5, atol=1e-5)


def _linear_decoder(bb):
    """Make the decoder linear in the encoder output: keys zero (uniform cross-attention),
    no self-attention output, no feed-forward, no final layer norm."""
    dec = bb.model.model.decoder
    with torch.no_grad():
        for blk in dec.layers:
            blk.encoder_attn.k_proj.weight.zero_()
            blk.self_attn.out_proj.weight.zero_()
            blk.self_attn.out_proj.bias.zero_()
            blk.fc2.weight.zero_()
            blk.fc2.bias.zero_()
    dec.layer_norm = torch.nn.Identity()
    return dec


@pytest.mark.parametrize("method", ["sae", "svector"])
def test_planted_direction_moves_logit_by_hand_computed_amount(method):
    bb = tiny_full(seed=4)
    dec = _linear_decoder(bb)
    layer, alpha, feat = 3, 0.45, 11
    ws = waves((1.5, 2.2))
    sae = tiny_sae(layer)
    target = TOKENS.no_speech
    # plant feature `feat`: its atom is the unit direction that raises the no-speech logit
    E = bb.model.proj_out.weight.detach().double().numpy()
    M = sum(blk.encoder_attn.out_proj.weight.detach().double().numpy()
            @ blk.encoder_attn.v_proj.weight.detach().double().numpy() for blk in dec.layers)
    g = E[target] @ M  # d logit_target / d (mean encoder frame)
    atom = g / np.linalg.norm(g)
    with torch.no_grad():
        sae.W_dec[feat] = torch.from_numpy(atom.astype(np.float32))
    if method == "sae":
        vec = SteeringVector("sae", layer, features=(feat,), signs=(1.0,))
    else:
        vec = SteeringVector("svector", layer, direction=tuple(atom))
    states, enc = encoder_states(bb, ws, [layer])
    valid = [n_valid(bb, w) for w in ws]
    out = run_from_layer(bb, states[layer], layer,
                         steering_fn(vec, alpha, sae=sae, keep_error=True), valid)
    ids = torch.tensor([[TOKENS.sot]] * len(ws))
    with torch.inference_mode():
        before = bb.model(encoder_outputs=(enc,), decoder_input_ids=ids).logits[:, 0]
        after = bb.model(encoder_outputs=(out,), decoder_input_ids=ids).logits[:, 0]
    delta = (after - before).double().numpy()
    # hand computation: each valid frame t moves by alpha * ||x_t|| * atom; the decoder
    # averages the 1500 frames uniformly, so logit_i moves by E_i M atom * alpha *
    # sum_t ||x_t|| / 1500
    n_all = states[layer].shape[1]
    for i, v in enumerate(valid):
        norm_sum = np.linalg.norm(states[layer][i, :v].double().numpy(), axis=1).sum()
        pred = (E @ M @ atom) * alpha * norm_sum / n_all
        np.testing.assert_allclose(delta[i], pred, rtol=2e-3, atol=2e-5)
        assert delta[i, target] > 0 and delta[i, target] == pytest.approx(
            np.linalg.norm(g) * alpha * norm_sum / n_all, rel=2e-3)


def test_rank_features_and_f1_recover_planted_features():
    rng = np.random.default_rng(3)
    n, d = 160, 90
    X = np.abs(rng.standard_normal((n, d))) * (rng.random((n, d)) < 0.3)
    X[:, 41] = 0.0  # a dead feature
    X[:, [7, 23]] = 2 * rng.random((n, 2))  # the two planted features are always active
    y = 3.0 * X[:, 7] - 3.0 * X[:, 23] + 0.3 * rng.standard_normal(n) > 0
    beta, order = rank_features(X, y, C=0.5, random_state=0)
    assert set(order[:2]) == {7, 23}
    assert beta[41] == 0.0
    sae = tiny_sae(1, d_sae=d)
    vec = sae_vector(beta, order, 2, sae, layer=1)
    assert dict(zip(vec.features, vec.signs)) == {7: -1.0, 23: 1.0}  # s = -sign(beta)
    f1 = feature_f1(X, y, [1, 2, 60], C=0.5, random_state=0).set_index("k")["f1"]
    assert f1[2] > 0.85 and f1[2] > f1[1] and f1[2] >= f1[60] - 0.05


def test_s_vector_recovers_planted_difference():
    rng = np.random.default_rng(8)
    d = 33
    u = rng.standard_normal(d)
    u /= np.linalg.norm(u)
    y = np.arange(71) % 3 == 0
    A = rng.standard_normal((71, d)) * 0.01 + np.outer(y, 2.5 * u)
    vec = s_vector(A, y, layer=2, source="music")
    assert vec.method == "svector" and vec.k is None
    np.testing.assert_allclose(vec.direction, -u, atol=0.02)
    with pytest.raises(ValueError, match="at least 2 falsely detected"):
        s_vector(A[:5], np.array([1, 0, 0, 0, 0], bool), layer=2)
