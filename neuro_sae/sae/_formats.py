"""Readers and writers of other libraries' SAE checkpoints.

- the released AudioSAE / dictionary_learning layout (``layer_n/ae.pt`` +
  ``config.json``), read only (a state dict of tensors loaded with
  ``torch.load(weights_only=True)``; this package never writes pickles);
- SAELens folders (``cfg.json`` + ``sae_weights.safetensors``), read and
  written;
- :func:`load_any_sae` picks the reader from what a folder holds.
"""

from __future__ import annotations

import json
import math
import re

import torch

from ..io import atomic_dir
from ..utils import check_fname, fill_doc, logger, validate_type, verbose
from ._architectures import BatchTopKSAE, JumpReLUSAE, ReLUSAE, TopKSAE
from ._config import SAEConfig
from ._model import (
    _CFG_NAME,
    _WEIGHTS_NAME,
    SparseAutoencoder,
    _load_native,
    make_sae,
)

_DL_WEIGHTS = "ae.pt"
_DL_CONFIG = "config.json"
_DL_KEYS = ("encoder.weight", "encoder.bias", "decoder.weight", "b_dec")
_SL_CFG = "cfg.json"
_SL_WEIGHTS = "sae_weights.safetensors"
#: SAELens input normalisations this reader can reproduce exactly.
_SL_NORMS = ("none", "constant_norm_rescale")
#: neuro_sae architectures that SAELens stores in the same form (read back from the
#: ``neuro_sae`` key of cfg.json).
_SL_SAME_FORM = {"batchtopk": ("matryoshka_batchtopk", "jumprelu")}
_ARCH_PREFIXES = ("jumprelu_", "matryoshka_")
_DL_CLASSES = {
    "BatchTopKSAE": "batchtopk",
    "AutoEncoderTopK": "topk",
}


# --------------------------------------------------------------- shared bits
def _build(architecture, d_in, d_sae, k, normalize_input, meta, where):
    fields = SAEConfig.__dataclass_fields__
    kw = {key: val for key, val in (meta or {}).items() if key in fields}
    for key in ("d_in", "d_sae", "k", "architecture", "normalize_input"):
        kw.pop(key, None)
    try:
        cfg = SAEConfig(
            d_in=d_in,
            d_sae=d_sae,
            k=k,
            architecture=architecture,
            normalize_input=normalize_input,
            **kw,
        )
    except (TypeError, ValueError) as err:
        raise ValueError(f"The checkpoint in {where} has an invalid configuration: {err}") from err
    return make_sae(cfg, random_state=0)


def _check_shape(t, shape, name, where):
    if not isinstance(t, torch.Tensor):
        raise ValueError(
            f"{name} in {where} must be a tensor, got {type(t).__name__} instead; the file "
            "is not an SAE checkpoint of the expected layout."
        )
    if tuple(t.shape) != tuple(shape):
        raise ValueError(
            f"{name} in {where} has shape {tuple(t.shape)} but the checkpoint's configuration "
            f"implies {tuple(shape)}; the weights and the config contradict each other "
            "(a corrupt or mismatched checkpoint)."
        )
    return t.detach().to("cpu", torch.float32)


@torch.no_grad()
def _fill(sae, W_enc, b_enc, W_dec, b_dec, threshold):
    sae.W_enc.copy_(W_enc)
    sae.b_enc.copy_(b_enc)
    sae.W_dec.copy_(W_dec)
    sae.b_dec.copy_(b_dec)
    if isinstance(threshold, torch.Tensor):
        sae.threshold.copy_(threshold)
    else:
        sae.threshold.fill_(float(threshold))
    sae.eval()
    return sae


# ------------------------------------------------------ dictionary_learning
def _dl_file(folder, layer):
    """Find ``ae.pt`` in ``folder`` or ``folder/layer_<layer>``."""
    if (folder / _DL_WEIGHTS).is_file():
        return folder / _DL_WEIGHTS
    layers = sorted(
        int(m.group(1))
        for p in folder.iterdir()
        if p.is_dir() and (m := re.fullmatch(r"layer_(\d+)", p.name))
        and (p / _DL_WEIGHTS).is_file()
    )
    if layer is None:
        if len(layers) == 1:
            return folder / f"layer_{layers[0]}" / _DL_WEIGHTS
        if not layers:
            raise FileNotFoundError(
                f"No {_DL_WEIGHTS} in {folder} nor in any layer_<n>/ subfolder of it. Pass "
                "the folder of a dictionary_learning / AudioSAE checkpoint."
            )
        raise ValueError(
            f"{folder} holds checkpoints of layers {layers}; pass layer= one of them."
        )
    if layer not in layers:
        raise FileNotFoundError(
            f"layer={layer!r}, but {folder} has no layer_{layer}/{_DL_WEIGHTS}; it holds "
            f"layers {layers}. Pass one of those."
        )
    return folder / f"layer_{layer}" / _DL_WEIGHTS


def _load_state(fname):
    try:
        state = torch.load(fname, map_location="cpu", weights_only=True)
    except Exception as err:  # pickle.UnpicklingError, RuntimeError, EOFError ...
        raise ValueError(
            f"Cannot read {fname} as a state dict of tensors with "
            f"torch.load(weights_only=True): {type(err).__name__}: "
            f"{str(err).splitlines()[0] if str(err) else ''}. The file is truncated, "
            "corrupt, or contains executable pickle content, which is refused."
        ) from None
    if not isinstance(state, dict):
        raise ValueError(
            f"{fname} must hold a state dict (a dict of tensors), got "
            f"{type(state).__name__} instead."
        )
    return state


def _cfg_int(cfg, names, where):
    for name in names:
        if cfg.get(name) is not None:
            try:
                return int(cfg[name])
            except (TypeError, ValueError):
                raise ValueError(
                    f"{name} in {where} must be an integer, got {cfg[name]!r} instead."
                ) from None
    return None


@fill_doc
@verbose
def read_dictionary_learning(
    folder, *, layer=None, normalize_input=True, device="cpu", verbose=None
):
    """Read a dictionary_learning / released AudioSAE checkpoint.

    The layout is ``layer_<n>/ae.pt`` (a state dict with ``encoder.weight``
    (d_sae, d_in), ``encoder.bias`` (d_sae,), ``decoder.weight`` (d_in, d_sae),
    ``b_dec`` (d_in,), ``k`` and optionally ``threshold``) plus
    ``layer_<n>/config.json``. Only tensors are read:
    ``torch.load(..., weights_only=True)`` refuses pickles with executable
    content. The mapping is exact: ``W_enc = encoder.weight.T``,
    ``W_dec = decoder.weight.T``, ``b_enc = encoder.bias``, ``b_dec``,
    ``threshold`` (-1, i.e. not learned, when absent or negative).

    Parameters
    ----------
    folder : str | os.PathLike
        A folder holding ``ae.pt``, or the release folder holding
        ``layer_<n>/`` subfolders.
    layer : int | None
        Which ``layer_<n>`` subfolder to read (1-based, as in the AudioSAE
        release). ``None``: the folder itself, or its only layer.
    normalize_input : bool
        dictionary_learning's module does not normalise its input; AudioSAE
        scaled every frame to unit L2 norm *before* the module. ``True``
        (default) reproduces the AudioSAE pipeline (the model normalises each
        frame and restores its norm on reconstruction); ``False`` reproduces
        the dictionary_learning module exactly on raw inputs.
    %(device)s
    %(verbose)s

    Returns
    -------
    sae : BatchTopKSAE | TopKSAE
        The model in eval mode (``TopKSAE`` when ``config.json`` names
        dictionary_learning's ``AutoEncoderTopK`` class).
    """
    validate_type(normalize_input, bool, "normalize_input")
    validate_type(layer, ("int", None), "layer")
    folder = check_fname(
        folder, "folder", kind="directory",
        hint="Pass the folder of a dictionary_learning / AudioSAE checkpoint.",
    )
    fname = _dl_file(folder, layer)
    raw = {}
    cfg_file = fname.parent / _DL_CONFIG
    if cfg_file.is_file():
        try:
            raw = json.loads(cfg_file.read_text())
        except json.JSONDecodeError as err:
            raise ValueError(f"{cfg_file} is not valid JSON: {err}") from None
    cfg = dict(raw.get("trainer") or {}) if isinstance(raw.get("trainer"), dict) else {}
    cfg.update({key: val for key, val in raw.items() if not isinstance(val, dict)})
    state = _load_state(fname)
    missing = [key for key in _DL_KEYS if key not in state]
    if missing:
        raise ValueError(
            f"{fname} lacks {missing}; a dictionary_learning BatchTopK state dict holds "
            f"{list(_DL_KEYS) + ['k', 'threshold (optional)']}, found {sorted(state)}."
        )
    enc = state["encoder.weight"]
    if not isinstance(enc, torch.Tensor) or enc.ndim != 2:
        raise ValueError(f"encoder.weight in {fname} must be a 2-D tensor (d_sae, d_in).")
    d_sae, d_in = enc.shape
    for names, value in ((("activation_dim", "d_in"), d_in), (("dict_size", "d_sae"), d_sae)):
        declared = _cfg_int(cfg, names, cfg_file)
        if declared is not None and declared != value:
            raise ValueError(
                f"{cfg_file} declares {names[0]}={declared} but encoder.weight in {fname} "
                f"has shape {tuple(enc.shape)} (d_sae={d_sae}, d_in={d_in}); the weights "
                "and the config contradict each other."
            )
    k = _cfg_int(cfg, ("k",), cfg_file)
    if "k" in state:
        k_state = int(torch.as_tensor(state["k"]).reshape(-1)[0])
        if k is not None and k != k_state:
            raise ValueError(
                f"{cfg_file} declares k={k} but {fname} stores k={k_state}; the weights "
                "and the config contradict each other."
            )
        k = k_state
    if k is None:
        raise ValueError(
            f"Neither {fname} nor {cfg_file} gives k; cannot build a top-k SAE without it."
        )
    dict_class = cfg.get("dict_class")
    architecture = _DL_CLASSES.get(dict_class, None if dict_class else "batchtopk")
    if architecture is None:
        raise ValueError(
            f"{cfg_file} names dict_class={dict_class!r}; the readable classes are "
            f"{sorted(_DL_CLASSES)}."
        )
    if layer is None:
        m = re.fullmatch(r"layer_(\d+)", fname.parent.name)
        layer = int(m.group(1)) if m else _cfg_int(cfg, ("layer",), cfg_file)
    backbone = cfg.get("lm_name") or cfg.get("model_name")
    meta = dict(layer=layer, backbone=backbone if isinstance(backbone, str) else None)
    sae = _build(architecture, d_in, d_sae, k, normalize_input, meta, fname)
    thr = state.get("threshold")
    thr = -1.0 if thr is None else float(torch.as_tensor(thr).reshape(-1)[0])
    if not math.isfinite(thr) or thr < 0:
        thr = -1.0
    _fill(
        sae,
        _check_shape(enc, (d_sae, d_in), "encoder.weight", fname).t(),
        _check_shape(state["encoder.bias"], (d_sae,), "encoder.bias", fname),
        _check_shape(state["decoder.weight"], (d_in, d_sae), "decoder.weight", fname).t(),
        _check_shape(state["b_dec"], (d_in,), "b_dec", fname),
        thr,
    )
    sae.metadata = {"source_format": "dictionary_learning", "source_path": str(fname)}
    sae.to(device)
    logger.info(f"Read {sae!r} from {fname}")
    return sae


# ------------------------------------------------------------------ SAELens
def _sl_k(raw):
    for src in (raw, raw.get("activation_fn_kwargs") or {}):
        if isinstance(src, dict) and src.get("k") is not None:
            return int(src["k"])
    return None


@fill_doc
@verbose
def read_saelens(folder, *, k=None, device="cpu", verbose=None):
    """Read a SAELens folder (``cfg.json`` + ``sae_weights.safetensors``).

    ``W_enc`` (d_in, d_sae), ``W_dec`` (d_sae, d_in), ``b_enc`` and ``b_dec``
    map directly. Architecture ``"topk"`` (or a standard SAE whose activation
    is top-k) becomes a :class:`TopKSAE`; ``"jumprelu"`` with one threshold
    shared by all features, or ``"batchtopk"``, becomes a
    :class:`BatchTopKSAE` whose threshold mode reproduces it, and
    ``"jumprelu"`` with thresholds that differ between features a
    :class:`JumpReLUSAE`. A folder written by :func:`export_saelens` comes
    back as the architecture it was exported from (its ``"neuro_sae"`` key
    tells a Matryoshka or a JumpReLU SAE with equal thresholds from a
    BatchTopK SAE).
    ``apply_b_dec_to_input=False`` is folded into ``b_enc``; input
    normalisation ``"constant_norm_rescale"`` (each frame scaled to norm
    ``sqrt(d_in)``) becomes ``normalize_input=True`` with the biases and the
    threshold divided by ``sqrt(d_in)``: reconstructions are identical and
    codes are SAELens's codes divided by ``sqrt(d_in)``.

    Parameters
    ----------
    folder : str | os.PathLike
        The SAELens folder.
    k : int | None
        Number of active features per frame, for a JumpReLU checkpoint that
        does not record it (it sets BatchTopK's batch budget). ``None``: read
        from ``cfg.json``.
    %(device)s
    %(verbose)s

    Returns
    -------
    sae : BatchTopKSAE | TopKSAE | ReLUSAE | JumpReLUSAE | MatryoshkaBatchTopKSAE
        The model in eval mode.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    validate_type(k, ("int", None), "k")
    folder = check_fname(folder, "folder", kind="directory", hint="Pass a SAELens SAE folder.")
    hint = f"A SAELens folder holds {_SL_CFG} and {_SL_WEIGHTS}."
    cfg_file = check_fname(folder / _SL_CFG, "folder", hint=hint)
    weights = check_fname(folder / _SL_WEIGHTS, "folder", hint=hint)
    try:
        raw = json.loads(cfg_file.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{cfg_file} is not valid JSON: {err}") from None
    if not isinstance(raw, dict):
        raise ValueError(f"{cfg_file} must hold a JSON object, got {type(raw).__name__}.")
    try:
        state = load_file(str(weights))
    except (SafetensorError, OSError, ValueError) as err:
        raise ValueError(
            f"Cannot read {weights}: {err}. The file is truncated or not a safetensors file."
        ) from None
    for key in ("W_enc", "W_dec", "b_enc", "b_dec"):
        if key not in state:
            raise ValueError(f"{weights} lacks {key!r}; found {sorted(state)}.")
    d_in, d_sae = _cfg_int(raw, ("d_in",), cfg_file), _cfg_int(raw, ("d_sae",), cfg_file)
    if d_in is None or d_sae is None:
        raise ValueError(f"{cfg_file} must give d_in and d_sae, got {sorted(raw)}.")
    W_enc = _check_shape(state["W_enc"], (d_in, d_sae), "W_enc", weights)
    W_dec = _check_shape(state["W_dec"], (d_sae, d_in), "W_dec", weights)
    b_enc = _check_shape(state["b_enc"], (d_sae,), "b_enc", weights)
    b_dec = _check_shape(state["b_dec"], (d_in,), "b_dec", weights)
    arch = raw.get("architecture", "standard")
    act = raw.get("activation_fn_str") or raw.get("activation_fn") or "relu"
    k_cfg = _sl_k(raw) if k is None else k
    thr = -1.0
    if arch == "topk" or (arch == "standard" and act == "topk"):
        architecture = "topk"
    elif arch == "standard" and act == "relu":
        architecture, thr = "relu", 0.0
        if k_cfg is None:  # only used by the top-k encode modes of a ReLU SAE
            k_cfg = min(50, d_sae)
    elif arch in ("jumprelu", "batchtopk"):
        architecture = "batchtopk"
        t = state.get("threshold", state.get("topk_threshold"))
        if t is not None:
            t = t.detach().to("cpu", torch.float32).reshape(-1)
            if t.numel() not in (1, d_sae):
                raise ValueError(
                    f"{weights} has {t.numel()} thresholds; a JumpReLU SAE has one per "
                    f"feature (d_sae={d_sae}) or one shared by all."
                )
            if bool((t < 0).any()):
                raise ValueError(
                    f"{weights} has a negative threshold {float(t.min())}; thresholds must "
                    "be >= 0."
                )
            if bool((t == t[0]).all()):  # one shared threshold: BatchTopK's inference form
                thr = float(t[0])
            else:  # thresholds per feature: a JumpReLU SAE
                architecture, thr = "jumprelu", t.expand(d_sae).clone()
        elif arch == "jumprelu":
            raise ValueError(f"{weights} is a JumpReLU SAE without a 'threshold' tensor.")
    else:
        raise ValueError(
            f"{cfg_file} has architecture={arch!r} (activation {act!r}); neuro_sae reads "
            "SAELens architectures 'topk', 'jumprelu' (one shared threshold), "
            "'batchtopk' and 'standard' (ReLU)."
        )
    if k_cfg is None:
        raise ValueError(
            f"{cfg_file} does not record k (the number of active features per frame); "
            "pass k= to read_saelens."
        )
    norm = raw.get("normalize_activations") or "none"
    if norm not in _SL_NORMS:
        raise ValueError(
            f"{cfg_file} has normalize_activations={norm!r}; neuro_sae reproduces "
            f"{list(_SL_NORMS)} exactly. Fold the normalisation into the weights first."
        )
    if not raw.get("apply_b_dec_to_input", True):
        b_enc = b_enc + b_dec @ W_enc  # (x - b_dec) W_enc + b_enc' = x W_enc + b_enc
    if norm == "constant_norm_rescale":
        root = math.sqrt(d_in)
        b_enc, b_dec = b_enc / root, b_dec / root
        if isinstance(thr, torch.Tensor) or thr >= 0:
            thr = thr / root
    meta = dict(raw.get("neuro_sae") or {})
    # architectures with the same inference form: the neuro_sae key tells them apart
    if meta.get("architecture") in _SL_SAME_FORM.get(architecture, ()):
        architecture = meta["architecture"]
        if architecture == "jumprelu" and not isinstance(thr, torch.Tensor):
            thr = torch.full((d_sae,), thr)
    sl_meta = raw.get("metadata") or raw.get("meta") or {}
    if "backbone" not in meta:
        name = sl_meta.get("model_name", raw.get("model_name"))
        meta["backbone"] = name if isinstance(name, str) else None
    if "layer" not in meta:
        layer = sl_meta.get("hook_layer", raw.get("hook_layer"))
        meta["layer"] = layer if isinstance(layer, int) and layer >= 0 else None
    if meta.get("architecture") != architecture:  # fields of another architecture
        meta = {key: val for key, val in meta.items() if not key.startswith(_ARCH_PREFIXES)}
    sae = _build(architecture, d_in, d_sae, k_cfg, norm != "none", meta, cfg_file)
    _fill(sae, W_enc, b_enc, W_dec, b_dec, thr)
    sae.metadata = {"source_format": "saelens", "source_path": str(folder)}
    sae.to(device)
    logger.info(f"Read {sae!r} from {folder}")
    return sae


@fill_doc
@verbose
def export_saelens(sae, folder, *, hook_name=None, verbose=None):
    """Write an SAE as a SAELens folder (``cfg.json`` + ``sae_weights.safetensors``).

    A :class:`TopKSAE` is written as architecture ``"topk"``, a
    :class:`ReLUSAE` as ``"standard"`` (ReLU activation); a
    :class:`BatchTopKSAE` as ``"jumprelu"`` with its learned threshold
    repeated for every feature (SAELens's inference form of BatchTopK), which
    reproduces ``encode(mode="threshold")``; a :class:`MatryoshkaBatchTopKSAE`
    likewise (SAELens also saves its trained Matryoshka SAEs as JumpReLU), and
    a :class:`JumpReLUSAE` as ``"jumprelu"`` with its thresholds per feature.
    ``normalize_input=True`` is
    written as ``normalize_activations="constant_norm_rescale"`` with the
    biases and the threshold multiplied by ``sqrt(d_in)`` so that SAELens's
    reconstruction equals :meth:`~SparseAutoencoder.forward`. The neuro_sae
    configuration is kept under the extra ``"neuro_sae"`` key, which
    :func:`read_saelens` restores. The folder is written atomically.

    Parameters
    ----------
    sae : SparseAutoencoder
        The model, of any architecture (a BatchTopK or Matryoshka SAE needs a
        learned threshold).
    folder : str | os.PathLike
        Destination folder.
    hook_name : str | None
        Hook name recorded in ``cfg.json`` (``None``: ``"layer_<n>"`` from
        ``sae.cfg.layer``).
    %(verbose)s

    Returns
    -------
    folder : pathlib.Path
        The written folder.
    """
    from safetensors.torch import save_file

    validate_type(sae, SparseAutoencoder, "sae")
    validate_type(hook_name, (str, None), "hook_name")
    folder = check_fname(folder, "folder", must_exist=False)
    c = sae.cfg
    root = math.sqrt(c.d_in) if c.normalize_input else 1.0
    tensors = {
        "W_enc": sae.W_enc.detach(),
        "W_dec": sae.W_dec.detach(),
        "b_enc": sae.b_enc.detach() * root,
        "b_dec": sae.b_dec.detach() * root,
    }
    if isinstance(sae, TopKSAE):
        arch = "topk"
    elif isinstance(sae, ReLUSAE):
        arch = "standard"
    elif isinstance(sae, JumpReLUSAE):
        arch = "jumprelu"
        tensors["threshold"] = sae.threshold.detach() * root
    elif isinstance(sae, BatchTopKSAE):
        if not sae.has_threshold:
            raise ValueError(
                "sae is a BatchTopK SAE without a learned inference threshold; SAELens "
                "reproduces BatchTopK at inference only through it (as a JumpReLU). Train "
                "the SAE (which learns the threshold) before exporting it."
            )
        arch = "jumprelu"
        tensors["threshold"] = torch.full((c.d_sae,), float(sae.threshold) * root)
    else:
        raise ValueError(
            f"sae must be a BatchTopKSAE, MatryoshkaBatchTopKSAE, TopKSAE, ReLUSAE or "
            f"JumpReLUSAE, got {type(sae).__name__} instead."
        )
    tensors = {key: t.to("cpu", torch.float32).contiguous() for key, t in tensors.items()}
    if hook_name is None and c.layer is not None:
        hook_name = f"layer_{c.layer}"
    meta = dict(model_name=c.backbone, hook_name=hook_name, hook_layer=c.layer)
    cfg = dict(
        architecture=arch,
        d_in=c.d_in,
        d_sae=c.d_sae,
        k=c.k,
        dtype="float32",
        device="cpu",
        apply_b_dec_to_input=True,
        normalize_activations="constant_norm_rescale" if c.normalize_input else "none",
        reshape_activations="none",
        metadata=meta,
        # older SAELens versions read these at top level
        activation_fn_str="topk" if arch == "topk" else "relu",
        activation_fn_kwargs={"k": c.k} if arch == "topk" else {},
        **meta,
        neuro_sae=c.to_dict(),
    )
    text = json.dumps(cfg, indent=2) + "\n"
    with atomic_dir(folder) as tmp:
        save_file(tensors, str(tmp / _SL_WEIGHTS))
        (tmp / _SL_CFG).write_text(text)
    logger.info(f"Exported {sae!r} to SAELens folder {folder}")
    return folder


# ----------------------------------------------------------------- dispatch
def _detect(folder):
    if (folder / _SL_WEIGHTS).is_file():
        return "saelens"
    if (folder / _WEIGHTS_NAME).is_file() and (folder / _CFG_NAME).is_file():
        return "native"
    if (folder / _DL_WEIGHTS).is_file() or any(
        (p / _DL_WEIGHTS).is_file() for p in folder.glob("layer_*")
    ):
        return "dictionary_learning"
    return None


_READERS = {
    "native": _load_native,
    "saelens": read_saelens,
    "dictionary_learning": read_dictionary_learning,
}
_READER_KW = {
    "native": ("device",),
    "saelens": ("device", "k"),
    "dictionary_learning": ("device", "layer", "normalize_input"),
}


@fill_doc
@verbose
def load_any_sae(folder, *, verbose=None, **kwargs):
    """Load an SAE from a native, SAELens or dictionary_learning folder.

    The format is detected from the files: ``sae_weights.safetensors``
    (SAELens, :func:`read_saelens`), ``cfg.json`` + ``sae.safetensors``
    (native, :func:`~neuro_sae.sae.load_sae`), ``ae.pt`` in the folder or in
    ``layer_<n>/`` subfolders (:func:`read_dictionary_learning`).

    Parameters
    ----------
    folder : str | os.PathLike
        The checkpoint folder.
    %(verbose)s
    **kwargs
        Passed to the reader: ``device`` (all), ``k`` (SAELens), ``layer`` and
        ``normalize_input`` (dictionary_learning).

    Returns
    -------
    sae : SparseAutoencoder
        The model in eval mode.
    """
    folder = check_fname(folder, "folder", kind="directory", hint="Pass an SAE checkpoint folder.")
    kind = _detect(folder)
    if kind is None:
        raise FileNotFoundError(
            f"{folder} holds no SAE checkpoint this package reads: expected "
            f"{_CFG_NAME} + {_WEIGHTS_NAME} (neuro_sae), {_SL_CFG} + {_SL_WEIGHTS} "
            f"(SAELens) or [layer_<n>/]{_DL_WEIGHTS} (dictionary_learning / AudioSAE)."
        )
    bad = sorted(set(kwargs) - set(_READER_KW[kind]))
    if bad:
        raise TypeError(
            f"{folder} is a {kind} checkpoint, whose reader takes {list(_READER_KW[kind])}; "
            f"got unexpected keyword(s) {bad}."
        )
    logger.info(f"{folder}: {kind} checkpoint")
    return _READERS[kind](folder, **kwargs)
