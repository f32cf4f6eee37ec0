"""Readers/writers of dictionary_learning (AudioSAE) and SAELens checkpoints.

Each format is checked against a plain-torch reference forward written here from
the format's documented formulas, and by round trip.
"""

import json
import math
import os

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from neuro_sae.sae import (
    BatchTopKSAE,
    JumpReLUSAE,
    SAEConfig,
    TopKSAE,
    export_saelens,
    load_any_sae,
    load_sae,
    make_sae,
    read_dictionary_learning,
    read_saelens,
)

D_IN, D_SAE, K, N = 12, 40, 3, 17
ATOL = 1e-6


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def _x(seed=1, n=N):
    g = _gen(seed)
    return torch.randn(n, D_IN, generator=g) * 3.0 + torch.randn(D_IN, generator=g)


# ------------------------------------------------ dictionary_learning reference
def _dl_state(seed=0, threshold=None, k=K):
    g = _gen(seed)
    dec = torch.randn(D_IN, D_SAE, generator=g)
    dec /= dec.norm(dim=0, keepdim=True)
    state = {
        "encoder.weight": dec.t() + 0.1 * torch.randn(D_SAE, D_IN, generator=g),
        "encoder.bias": 0.1 * torch.randn(D_SAE, generator=g),
        "decoder.weight": dec,
        "b_dec": 0.2 * torch.randn(D_IN, generator=g),
        "k": torch.tensor(k),
    }
    if threshold is not None:
        state["threshold"] = torch.tensor(float(threshold))
    return state


def _dl_encode(state, x, use_threshold=False):
    """dictionary_learning BatchTopK encode, from its formulas."""
    post = torch.relu((x - state["b_dec"]) @ state["encoder.weight"].t() + state["encoder.bias"])
    if use_threshold:
        return post * (post > state["threshold"])
    n_keep = int(state["k"]) * x.shape[0]
    flat = post.reshape(-1)
    out = torch.zeros_like(flat)
    idx = flat.topk(n_keep).indices
    out[idx] = flat[idx]
    return out.reshape(post.shape)


def _dl_decode(state, f):
    return f @ state["decoder.weight"].t() + state["b_dec"]


def _write_dl(folder, state, config=None):
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(state, folder / "ae.pt")
    if config is not None:
        (folder / "config.json").write_text(json.dumps(config))
    return folder


def _dl_config(**over):
    trainer = dict(
        dict_class="BatchTopKSAE", activation_dim=D_IN, dict_size=D_SAE, k=K,
        lm_name="openai/whisper-base", layer=99,
    )
    trainer.update(over)
    return {"trainer": trainer, "buffer": {"d_submodule": D_IN}}


def test_dictionary_learning_matches_reference(tmp_path):
    """batchtopk and threshold modes equal the reference formulas on raw inputs."""
    x = _x()
    pre = torch.relu((x - _dl_state()["b_dec"]) @ _dl_state()["encoder.weight"].t())
    thr = float(pre[pre > 0].median())
    state = _dl_state(threshold=thr)
    _write_dl(tmp_path / "release" / "layer_4", state, _dl_config())
    _write_dl(tmp_path / "release" / "layer_7", _dl_state(seed=3), _dl_config())
    sae = read_dictionary_learning(tmp_path / "release", layer=4, normalize_input=False)
    assert isinstance(sae, BatchTopKSAE)
    assert (sae.cfg.d_in, sae.cfg.d_sae, sae.cfg.k) == (D_IN, D_SAE, K)
    assert sae.cfg.layer == 4  # from the folder name, not the config's "layer"
    assert sae.cfg.backbone == "openai/whisper-base"
    assert not sae.cfg.normalize_input
    assert float(sae.threshold) == pytest.approx(thr)
    with torch.no_grad():
        for mode, use_thr in (("batchtopk", False), ("threshold", True)):
            ref = _dl_encode(state, x, use_thr)
            assert int((ref > 0).sum()) > 0
            codes = sae.encode(x, mode=mode)
            torch.testing.assert_close(codes, ref, atol=ATOL, rtol=0)
            # reconstructions reach |x| ~ 20: float32 rounding needs a relative term
            torch.testing.assert_close(
                sae.decode(codes), _dl_decode(state, ref), atol=ATOL, rtol=ATOL
            )
            torch.testing.assert_close(
                sae(x, mode=mode), _dl_decode(state, ref), atol=ATOL, rtol=ATOL
            )
        # batchtopk keeps exactly k * n entries
        assert int((sae.encode(x, mode="batchtopk") > 0).sum()) == K * N


def test_dictionary_learning_audiosae_normalisation(tmp_path):
    """normalize_input=True: the reference applied to unit-norm frames (AudioSAE)."""
    state = _dl_state(seed=5)
    folder = _write_dl(tmp_path / "layer_2", state)  # no config.json: defaults
    sae = read_dictionary_learning(folder)
    assert sae.cfg.normalize_input and sae.cfg.layer == 2 and not sae.has_threshold
    x = _x(seed=2)
    norm = x.norm(dim=1, keepdim=True)
    ref = _dl_encode(state, x / norm)
    with torch.no_grad():
        torch.testing.assert_close(sae.encode(x, mode="batchtopk"), ref, atol=ATOL, rtol=0)
        torch.testing.assert_close(
            sae(x, mode="batchtopk"), _dl_decode(state, ref) * norm, atol=1e-5, rtol=0
        )
    with pytest.raises(ValueError, match="threshold"):
        sae.encode(x)  # inference threshold absent from this checkpoint


def test_dictionary_learning_topk_class(tmp_path):
    state = _dl_state(seed=6)
    folder = _write_dl(tmp_path / "topk", state, _dl_config(dict_class="AutoEncoderTopK"))
    sae = read_dictionary_learning(folder, normalize_input=False)
    assert isinstance(sae, TopKSAE)
    x = _x()
    post = torch.relu((x - state["b_dec"]) @ state["encoder.weight"].t() + state["encoder.bias"])
    val, idx = post.topk(K, dim=1)
    ref = torch.zeros_like(post).scatter_(1, idx, val)
    with torch.no_grad():
        torch.testing.assert_close(sae.encode(x), ref, atol=ATOL, rtol=0)


class _Payload:
    def __reduce__(self):
        return (os.getcwd, ())


def test_dictionary_learning_refusals(tmp_path):
    # config contradicts the tensor shapes
    folder = _write_dl(tmp_path / "a", _dl_state(), _dl_config(dict_size=D_SAE + 1))
    with pytest.raises(ValueError, match="contradict"):
        read_dictionary_learning(folder)
    folder = _write_dl(tmp_path / "b", _dl_state(), _dl_config(k=K + 1))
    with pytest.raises(ValueError, match="contradict"):
        read_dictionary_learning(folder)
    # a tensor whose shape contradicts the others
    bad = _dl_state()
    bad["b_dec"] = torch.zeros(D_IN + 2)
    with pytest.raises(ValueError, match="b_dec.*shape"):
        read_dictionary_learning(_write_dl(tmp_path / "c", bad))
    # truncated file
    folder = _write_dl(tmp_path / "d", _dl_state())
    data = (folder / "ae.pt").read_bytes()
    (folder / "ae.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="truncated"):
        read_dictionary_learning(folder)
    # a pickle with executable content is refused by weights_only loading
    evil = _dl_state()
    evil["payload"] = _Payload()
    folder = _write_dl(tmp_path / "e", evil)
    with pytest.raises(ValueError, match="executable"):
        read_dictionary_learning(folder)
    # missing key, several layers without layer=, absent layer
    miss = _dl_state()
    del miss["encoder.bias"]
    with pytest.raises(ValueError, match="encoder.bias"):
        read_dictionary_learning(_write_dl(tmp_path / "f", miss))
    _write_dl(tmp_path / "rel" / "layer_1", _dl_state())
    _write_dl(tmp_path / "rel" / "layer_3", _dl_state())
    with pytest.raises(ValueError, match=r"layers \[1, 3\]"):
        read_dictionary_learning(tmp_path / "rel")
    with pytest.raises(FileNotFoundError, match="layer=2"):
        read_dictionary_learning(tmp_path / "rel", layer=2)


# ------------------------------------------------------------------- SAELens
def _our_sae(architecture="batchtopk", normalize_input=True, seed=0):
    cfg = SAEConfig(
        d_in=D_IN, d_sae=D_SAE, k=K, architecture=architecture,
        normalize_input=normalize_input, layer=5, backbone="openai/whisper-base",
        frame_rate=50.0, seed=seed,
    )
    sae = make_sae(cfg)
    g = _gen(seed + 100)
    with torch.no_grad():
        sae.W_enc.add_(0.1 * torch.randn(D_IN, D_SAE, generator=g))
        sae.b_enc.copy_(0.05 * torch.randn(D_SAE, generator=g))
        sae.b_dec.copy_(0.1 * torch.randn(D_IN, generator=g))
        x_in, _ = sae._prepare(_x())
        pre = sae._pre(x_in)
        if architecture in ("batchtopk", "matryoshka_batchtopk"):
            sae.threshold.fill_(float(pre[pre > 0].median()))
        elif architecture == "jumprelu":  # per-feature thresholds, all different
            sae.threshold.copy_(pre.quantile(0.6, dim=0) + torch.linspace(0, 1e-3, D_SAE))
    return sae.eval()


def _saelens_forward(folder, x):
    """SAELens forward from cfg.json + safetensors, per its documented formulas."""
    from safetensors.torch import load_file

    cfg = json.loads((folder / "cfg.json").read_text())
    w = load_file(str(folder / "sae_weights.safetensors"))
    coeff = torch.ones(x.shape[0], 1)
    if cfg["normalize_activations"] == "constant_norm_rescale":
        coeff = math.sqrt(cfg["d_in"]) / x.norm(dim=1, keepdim=True)
    xs = x * coeff
    if cfg.get("apply_b_dec_to_input", True):
        xs = xs - w["b_dec"]
    pre = xs @ w["W_enc"] + w["b_enc"]
    if cfg["architecture"] == "jumprelu":
        f = torch.relu(pre) * (pre > w["threshold"])
    elif cfg["architecture"] == "standard":
        f = torch.relu(pre)
    else:
        val, idx = pre.topk(cfg["k"], dim=1)
        f = torch.zeros_like(pre).scatter_(1, idx, torch.relu(val))
    out = f @ w["W_dec"] + w["b_dec"]
    return f, out / coeff


_SL_ARCH = dict(batchtopk="jumprelu", topk="topk", relu="standard", jumprelu="jumprelu",
                matryoshka_batchtopk="jumprelu")


@pytest.mark.parametrize("normalize_input", [True, False])
@pytest.mark.parametrize("architecture", list(_SL_ARCH))
def test_saelens_export_read(tmp_path, architecture, normalize_input):
    sae = _our_sae(architecture, normalize_input)
    folder = export_saelens(sae, tmp_path / "sl")
    cfg = json.loads((folder / "cfg.json").read_text())
    assert cfg["architecture"] == _SL_ARCH[architecture]
    assert cfg["metadata"]["hook_layer"] == 5 and cfg["hook_name"] == "layer_5"
    x = _x(seed=4)
    mode = "topk" if architecture == "topk" else "threshold"
    f_ref, out_ref = _saelens_forward(folder, x)
    scale = math.sqrt(D_IN) if normalize_input else 1.0
    back = read_saelens(folder)
    assert type(back) is type(sae)
    assert back.cfg == sae.cfg  # the neuro_sae configuration is restored
    with torch.no_grad():
        assert int((f_ref > 0).sum()) > 0
        # known outputs: the SAELens formulas on the written tensors
        torch.testing.assert_close(sae(x, mode=mode), out_ref, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(sae.encode(x, mode=mode) * scale, f_ref, atol=1e-5, rtol=1e-5)
        # round trip: identical outputs in every mode
        for m in ("batchtopk", "topk", mode):
            torch.testing.assert_close(back.encode(x, mode=m), sae.encode(x, mode=m), atol=ATOL, rtol=0)
            torch.testing.assert_close(back(x, mode=m), sae(x, mode=m), atol=1e-5, rtol=0)


@pytest.mark.parametrize("normalize_input", [True, False])
@pytest.mark.parametrize("architecture", list(_SL_ARCH))
def test_saelens_export_runs_in_saelens(tmp_path, architecture, normalize_input):
    """The exported folder, loaded and run by SAELens's own classes."""
    import warnings

    with warnings.catch_warnings():  # transformer_lens warns about its own deprecations
        warnings.simplefilter("ignore")
        from sae_lens import SAE

    sae = _our_sae(architecture, normalize_input)
    folder = export_saelens(sae, tmp_path / "sl")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sl = SAE.load_from_disk(str(folder), device="cpu")
    assert type(sl).__name__ == dict(jumprelu="JumpReLUSAE", topk="TopKSAE",
                                     standard="StandardSAE")[_SL_ARCH[architecture]]
    x = _x(seed=5, n=23)
    mode = "topk" if architecture == "topk" else "threshold"
    scale = math.sqrt(D_IN) if normalize_input else 1.0
    with torch.no_grad():
        f_sl = sl.encode(x)
        assert int((f_sl > 0).sum()) > 0 and int((f_sl == 0).sum()) > 0
        torch.testing.assert_close(sl(x), sae(x, mode=mode), atol=2e-5, rtol=1e-5)
        torch.testing.assert_close(f_sl / scale, sae.encode(x, mode=mode), atol=1e-5, rtol=1e-5)


def test_saelens_handwritten_folder(tmp_path):
    """A legacy-style SAELens top-k folder with apply_b_dec_to_input=False."""
    g = _gen(9)
    w = {
        "W_enc": torch.randn(D_IN, D_SAE, generator=g),
        "W_dec": torch.randn(D_SAE, D_IN, generator=g),
        "b_enc": torch.randn(D_SAE, generator=g),
        "b_dec": torch.randn(D_IN, generator=g),
    }
    folder = tmp_path / "legacy"
    folder.mkdir()
    save_file(w, str(folder / "sae_weights.safetensors"))
    cfg = dict(
        architecture="standard", activation_fn_str="topk", activation_fn_kwargs={"k": K},
        d_in=D_IN, d_sae=D_SAE, apply_b_dec_to_input=False, normalize_activations="none",
        model_name="gpt2", hook_name="blocks.3.hook_resid_pre", hook_layer=3,
    )
    (folder / "cfg.json").write_text(json.dumps(cfg))
    sae = load_any_sae(folder)
    assert isinstance(sae, TopKSAE) and sae.cfg.layer == 3 and sae.cfg.backbone == "gpt2"
    x = _x()
    pre = x @ w["W_enc"] + w["b_enc"]
    val, idx = pre.topk(K, dim=1)
    f = torch.zeros_like(pre).scatter_(1, idx, torch.relu(val))
    with torch.no_grad():
        torch.testing.assert_close(sae.encode(x), f, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(sae(x), f @ w["W_dec"] + w["b_dec"], atol=1e-5, rtol=1e-5)


def test_saelens_refusals(tmp_path):
    sae = _our_sae()
    folder = export_saelens(sae, tmp_path / "sl")
    cfg = json.loads((folder / "cfg.json").read_text())
    for key, value, match in (
        ("normalize_activations", "layer_norm", "layer_norm"),
        ("architecture", "gated", "gated"),
        ("d_sae", D_SAE + 1, "contradict"),
    ):
        bad = dict(cfg, **{key: value})
        (folder / "cfg.json").write_text(json.dumps(bad))
        with pytest.raises(ValueError, match=match):
            read_saelens(folder)
    (folder / "cfg.json").write_text(json.dumps(cfg))
    data = (folder / "sae_weights.safetensors").read_bytes()
    (folder / "sae_weights.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="truncated"):
        read_saelens(folder)
    fresh = make_sae(SAEConfig(d_in=D_IN, d_sae=D_SAE, k=K))
    with pytest.raises(ValueError, match="threshold"):
        export_saelens(fresh, tmp_path / "none")
    # per-feature thresholds that differ: a JumpReLU SAE; wrong count or sign: refused
    w = {key: torch.zeros(*shape) for key, shape in (
        ("W_enc", (D_IN, D_SAE)), ("W_dec", (D_SAE, D_IN)), ("b_enc", (D_SAE,)), ("b_dec", (D_IN,)))}
    jr = tmp_path / "jr"
    jr.mkdir()
    (jr / "cfg.json").write_text(json.dumps(dict(architecture="jumprelu", d_in=D_IN, d_sae=D_SAE)))
    w["threshold"] = torch.linspace(0, 1, D_SAE)
    save_file(w, str(jr / "sae_weights.safetensors"))
    got = read_saelens(jr, k=K)
    assert isinstance(got, JumpReLUSAE)
    torch.testing.assert_close(got.threshold.detach(), torch.linspace(0, 1, D_SAE))
    for bad, match in ((torch.linspace(0, 1, 3), "has 3 thresholds"),
                       (torch.linspace(-1, 1, D_SAE), "negative threshold")):
        w["threshold"] = bad
        save_file(w, str(jr / "sae_weights.safetensors"))
        with pytest.raises(ValueError, match=match):
            read_saelens(jr, k=K)


def test_load_any_sae_dispatch(tmp_path):
    sae = _our_sae()
    x = _x()
    native = sae.save(tmp_path / "native")
    sl = export_saelens(sae, tmp_path / "sl")
    state = _dl_state(threshold=0.1)
    _write_dl(tmp_path / "dl" / "layer_6", state, _dl_config())
    with torch.no_grad():
        for folder in (native, sl):
            back = load_any_sae(folder)
            np.testing.assert_allclose(back(x).numpy(), sae(x).numpy(), atol=1e-5)
        back = load_any_sae(tmp_path / "dl", normalize_input=False)
        torch.testing.assert_close(back.encode(x), _dl_encode(state, x, True), atol=ATOL, rtol=0)
    assert back.cfg.layer == 6
    with pytest.raises(TypeError, match="unexpected keyword"):
        load_any_sae(native, layer=3)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no SAE checkpoint"):
        load_any_sae(tmp_path / "empty")


class _FileCreator:
    """A pickle payload that would create a file when unpickled."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_executable_pickle_refused_and_not_run(tmp_path):
    marker = tmp_path / "pwned.txt"
    evil = _dl_state()
    evil["payload"] = _FileCreator(marker)
    folder = _write_dl(tmp_path / "evil", evil)
    assert not marker.exists()
    for reader in (read_dictionary_learning, load_sae, load_any_sae):
        with pytest.raises(ValueError, match="executable pickle content, which is refused"):
            reader(folder)
        assert not marker.exists()


def test_native_refusals(tmp_path):
    sae = _our_sae()
    # tensor shapes contradict cfg.json
    folder = sae.save(tmp_path / "shape")
    cfg = json.loads((folder / "cfg.json").read_text())
    cfg["d_sae"] = D_SAE + 4
    (folder / "cfg.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match=r"contradict .*cfg.json.*W_enc"):
        load_sae(folder)
    # truncated safetensors file
    folder = sae.save(tmp_path / "trunc")
    data = (folder / "sae.safetensors").read_bytes()
    (folder / "sae.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="truncated or corrupt"):
        load_sae(folder)
    # corrupt cfg.json
    folder = sae.save(tmp_path / "json")
    (folder / "cfg.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_sae(folder)


def test_load_sae_dispatches(tmp_path):
    x = _x()
    dl = _write_dl(tmp_path / "dl" / "layer_2", _dl_state(threshold=0.05))
    a = load_sae(dl.parent, layer=2)
    b = read_dictionary_learning(dl.parent, layer=2)
    torch.testing.assert_close(a(x), b(x), rtol=0, atol=0)
    sae = _our_sae()
    with torch.no_grad():
        sae.threshold.fill_(0.01)
    sl = export_saelens(sae, tmp_path / "sl")
    torch.testing.assert_close(load_sae(sl)(x), sae(x), atol=1e-5, rtol=0)
