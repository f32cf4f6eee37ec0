"""Audio encoders (Whisper, HuBERT, wav2vec2): loading, frame timing and layer taps."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from ..utils import check_option, fill_doc, logger, torch_generator, validate_type, verbose
from ._ct2 import (
    _DEMO_MODELS,
    DEMO_INSTALL_HINT,
    _demo_versions,
    convert_ct2_whisper,
    get_demo_whisper,
    installed_demo_models,
)

KINDS = ("whisper", "hubert", "wav2vec2")
FRAME_RATE = 50.0
SFREQ = 16000
# HuBERT/wav2vec2 convolutional stem: receptive field and stride in samples (the stride,
# 320 samples = 20 ms, is also one Whisper encoder frame)
CONV_FIELD, CONV_STRIDE = 400, 320
_CONV_FIELD, _CONV_STRIDE = CONV_FIELD, CONV_STRIDE
# Whisper: mel hop in samples; conv2 has stride 2 -> 2 mel frames per encoder frame
_MEL_HOP = 160
LAYER_CONVENTION = (
    "1-based: layer n = output of encoder block n, layer 0 = stem output (input of block 1) "
    "= hidden_states[n] of transformers with output_hidden_states=True; the last layer is the "
    "encoder's last_hidden_state, i.e. for Whisper (and stable-layer-norm wav2vec2/HuBERT) the "
    "last block output followed by the final encoder layer norm"
)
HUBERT_RANDOM_SEED = 20260205  # fixed seed of the "hubert-base-random" control

# short names -> Hugging Face hub ids (the demo names whisper-base / whisper-tiny.en use
# the offline CTranslate2 weights when installed, else these ids)
HUB_NAMES = {
    **{f"whisper-{size}": f"openai/whisper-{size}" for size in (
        "tiny", "tiny.en", "base", "base.en", "small", "small.en", "medium", "medium.en",
        "large", "large-v1", "large-v2", "large-v3", "large-v3-turbo")},
    "whisper-turbo": "openai/whisper-large-v3-turbo",
    "hubert-base": "facebook/hubert-base-ls960",
    "hubert-large": "facebook/hubert-large-ll60k",
    "hubert-xlarge": "facebook/hubert-xlarge-ll60k",
    "wav2vec2-base": "facebook/wav2vec2-base",
    "wav2vec2-base-960h": "facebook/wav2vec2-base-960h",
    "wav2vec2-large": "facebook/wav2vec2-large-lv60",
    "wav2vec2-large-960h": "facebook/wav2vec2-large-960h-lv60-self",
    "wav2vec2-xls-r-300m": "facebook/wav2vec2-xls-r-300m",
}


@fill_doc
@verbose
def frame_times(n_frames, kind, *, verbose=None):
    """Times of the encoder frames: the centre of each frame's receptive field.

    Both encoders emit 50 frames per second of 16 kHz audio:

    - **Whisper**: the log-mel spectrogram has a hop of 160 samples with centred
      STFT windows, so mel frame m is centred on sample 160 m; conv2 has stride 2,
      so encoder frame i is centred on mel frame 2 i, i.e. at ``0.02 * i`` s.
    - **HuBERT / wav2vec2**: the convolutional stem has a receptive field of 400
      samples and a stride of 320, so frame i covers samples
      ``[320 i, 320 i + 400)`` and is centred at ``(320 * i + 200) / 16000`` s
      (``0.02 * i + 0.0125``).

    Receptive fields at the stem output (layer 0), in 16 kHz samples: Whisper
    ``[320 i - 520, 320 i + 520)`` (centred 400-sample STFT windows with hop 160,
    then conv1 with kernel 3 and conv2 with kernel 3 and stride 2); HuBERT/wav2vec2
    ``[320 i, 320 i + 400)``. So a click at time ``t`` changes the stem output of
    exactly the frames whose receptive field holds it, most the frame whose time
    is nearest ``t`` (tested with planted clicks in ``tests/backbones/test_timing.py``).
    Deeper layers mix frames through attention, but stay time-aligned.

    Parameters
    ----------
    n_frames : int
        Number of frames.
    kind : str
        ``"whisper"``, ``"hubert"`` or ``"wav2vec2"``.
    %(verbose)s

    Returns
    -------
    %(frame_times)s
    """
    check_option("kind", kind, KINDS)
    validate_type(n_frames, "int", "n_frames")
    idx = np.arange(int(n_frames), dtype=np.float64)
    if kind == "whisper":
        return idx * (2 * _MEL_HOP) / SFREQ
    return (idx * _CONV_STRIDE + _CONV_FIELD / 2) / SFREQ


@fill_doc
@verbose
def n_frames_for(n_samples, kind, *, verbose=None):
    """Number of frames of ``n_samples`` of 16 kHz audio.

    Whisper: the frames whose centre lies inside the audio (``ceil(n / 320)``);
    HuBERT/wav2vec2: the frames the convolutional stem emits
    (``floor((n - 400) / 320) + 1``, each receptive field fully inside the audio).

    Parameters
    ----------
    n_samples : int
        Number of audio samples at 16 kHz.
    kind : str
        ``"whisper"``, ``"hubert"`` or ``"wav2vec2"``.
    %(verbose)s

    Returns
    -------
    n_frames : int
        The number of frames.
    """
    n_samples = int(n_samples)
    if kind == "whisper":
        return -(-n_samples // (2 * _MEL_HOP))
    if n_samples < _CONV_FIELD:
        return 0
    return (n_samples - _CONV_FIELD) // _CONV_STRIDE + 1


class _Stop(Exception):
    """Raised by a forward hook to skip the blocks above the deepest requested layer."""


class Backbone:
    """An audio encoder with 1-based layer taps.

    Build it with :func:`load_backbone` or :meth:`Backbone.from_model`.

    Attributes
    ----------
    name : str
        Backbone id (e.g. ``"whisper-base"``).
    kind : str
        ``"whisper"``, ``"hubert"`` or ``"wav2vec2"``.
    n_layers : int
        Number of encoder blocks.
    d_model : int
        Width of the activations.
    frame_rate : float
        Frames per second (50.0).
    revision : str | None
        Weight revision (hub commit, or sha256 of converted weights).
    provenance : dict
        Where the weights come from.
    model : torch.nn.Module
        The full model (e.g. ``WhisperForConditionalGeneration``).
    encoder : torch.nn.Module
        The module that maps audio input to encoder states (Whisper: its
        encoder; HuBERT/wav2vec2: the base model).
    device : torch.device
        Where the model lives.
    dtype : torch.dtype
        Dtype of the computation.
    """

    frame_rate = FRAME_RATE
    sfreq = SFREQ

    def __init__(self, model, *, kind, name, provenance=None, feature_extractor=None,
                 normalize_audio=False):
        check_option("kind", kind, KINDS)
        self.model = model.eval()
        self.kind = kind
        self.name = str(name)
        self.provenance = dict(provenance or {})
        self.revision = self.provenance.get("revision")
        self.normalize_audio = bool(normalize_audio)
        if kind == "whisper":
            self.encoder = _whisper_encoder(model)
            cfg = self.encoder.config
            self.n_layers = len(self.encoder.layers)
            self.d_model = int(cfg.d_model)
            n_input = int(cfg.max_source_positions) * 2 * _MEL_HOP
            self.window_samples = n_input  # Whisper sees fixed windows (30 s)
            if feature_extractor is None:
                from transformers import WhisperFeatureExtractor

                feature_extractor = WhisperFeatureExtractor(
                    feature_size=int(cfg.num_mel_bins), chunk_length=n_input // SFREQ
                )
            self.feature_extractor = feature_extractor
        else:
            self.encoder = _ssl_encoder(model)
            self.n_layers = len(self.encoder.encoder.layers)
            self.d_model = int(self.encoder.config.hidden_size)
            self.window_samples = None
            self.feature_extractor = None
        param = next(self.model.parameters())
        self.device, self.dtype = param.device, param.dtype

    @classmethod
    @fill_doc
    @verbose
    def from_model(cls, model, *, kind=None, name=None, provenance=None, verbose=None):
        """Wrap an in-memory transformers model (e.g. a tiny random config for tests).

        Parameters
        ----------
        model : transformers.PreTrainedModel
            A Whisper model (``WhisperForConditionalGeneration``, ``WhisperModel``
            or ``WhisperEncoder``) or a ``HubertModel`` / ``Wav2Vec2Model`` (or a
            model holding one as ``.hubert`` / ``.wav2vec2``).
        kind : str | None
            ``"whisper"``, ``"hubert"`` or ``"wav2vec2"``; ``None`` reads it from
            ``model.config.model_type``.
        name : str | None
            Backbone id (``None``: ``"<kind>-custom"``).
        provenance : dict | None
            Recorded with the activations.
        %(verbose)s

        Returns
        -------
        backbone : Backbone
            The wrapped model.
        """
        if kind is None:
            kind = getattr(getattr(model, "config", None), "model_type", None)
            check_option("kind", kind, KINDS, extra="Pass kind= explicitly.")
        name = f"{kind}-custom" if name is None else name
        return cls(model, kind=kind, name=name, provenance=provenance)

    def __repr__(self):
        return (
            f"<Backbone | {self.name} ({self.kind}), {self.n_layers} layers, "
            f"d_model={self.d_model}, {self.frame_rate:g} frames/s, {self.device}, "
            f"{str(self.dtype).replace('torch.', '')}>"
        )

    @fill_doc
    @verbose
    def to(self, device=None, dtype=None, *, verbose=None):
        """Move the model to a device and/or dtype (in place).

        Parameters
        ----------
        %(device)s
        dtype : torch.dtype | None
            New dtype (``None``: unchanged).
        %(verbose)s

        Returns
        -------
        self : Backbone
            The backbone.
        """
        self.model.to(device=device, dtype=dtype)
        param = next(self.model.parameters())
        self.device, self.dtype = param.device, param.dtype
        return self

    @fill_doc
    @verbose
    def check_layers(self, layers, *, verbose=None):
        """Validate ``layers``.

        Parameters
        ----------
        %(layers)s
        %(verbose)s

        Returns
        -------
        layers : list of int
            Sorted, unique, in ``[0, n_layers]``.
        """
        if layers is None:
            return list(range(1, self.n_layers + 1))
        if isinstance(layers, (int, np.integer)) and not isinstance(layers, bool):
            layers = [layers]
        validate_type(layers, (list, tuple, np.ndarray, range), "layers", "int, list of int or None")
        out = []
        for layer in layers:
            validate_type(layer, "int", "layers")
            if not 0 <= int(layer) <= self.n_layers:
                raise ValueError(
                    f"Invalid value for the 'layers' parameter: {self.name} has layers 0 (stem) "
                    f"to {self.n_layers} (1-based block outputs), but got {int(layer)} instead."
                )
            out.append(int(layer))
        if not out:
            raise ValueError("layers is empty; pass None for all layers.")
        return sorted(set(out))

    @fill_doc
    @verbose
    def prepare(self, waves, *, verbose=None):
        """Turn 16 kHz waveforms into the encoder's input tensor.

        Parameters
        ----------
        waves : list of ndarray, shape (n_samples,)
            Waveforms. Whisper: each at most one window long, zero-padded to it
            by the log-mel feature extractor. HuBERT/wav2vec2: all of one length.
        %(verbose)s

        Returns
        -------
        inputs : torch.Tensor
            Whisper: log-mel features ``(n, n_mels, n_mel_frames)``;
            HuBERT/wav2vec2: waveforms ``(n, n_samples)``.
        """
        import torch

        if self.kind == "whisper":
            feats = self.feature_extractor(
                [np.asarray(w, np.float32) for w in waves], sampling_rate=SFREQ,
                return_tensors="np", padding="max_length",
            ).input_features
            return torch.from_numpy(np.asarray(feats)).to(self.device, self.dtype)
        return torch.from_numpy(np.stack(waves).astype(np.float32)).to(self.device, self.dtype)

    @fill_doc
    @verbose
    def forward_layers(self, inputs, layers, *, verbose=None):
        """Run the encoder and return the requested layers.

        Blocks above the deepest requested layer are skipped.

        Parameters
        ----------
        inputs : torch.Tensor
            From :meth:`prepare`.
        layers : list of int
            Sorted 1-based layers (0 = stem output; see ``LAYER_CONVENTION``).
        %(verbose)s

        Returns
        -------
        out : dict of int to torch.Tensor, shape (n, n_frames, d_model)
            The activations.
        """
        import torch

        blocks = self.encoder.layers if self.kind == "whisper" else self.encoder.encoder.layers
        deepest = max(layers)
        out = {}
        handles = []

        def first(output):
            return output[0] if isinstance(output, (tuple, list)) else output

        def pre_hook(module, args, kwargs):
            hidden = args[0] if args else kwargs["hidden_states"]
            out[0] = hidden
            if deepest == 0:
                raise _Stop

        def make_hook(n):
            def hook(module, args, output):
                out[n] = first(output)
                if n == deepest:
                    raise _Stop

            return hook

        try:
            if 0 in layers:
                handles.append(blocks[0].register_forward_pre_hook(pre_hook, with_kwargs=True))
            for n in layers:
                if 1 <= n < self.n_layers:
                    handles.append(blocks[n - 1].register_forward_hook(make_hook(n)))
            with torch.inference_mode():
                try:
                    res = self.encoder(inputs)
                except _Stop:
                    res = None
            if self.n_layers in layers:
                out[self.n_layers] = res.last_hidden_state
        finally:
            for h in handles:
                h.remove()
        return {n: out[n] for n in layers}


def _whisper_encoder(model):
    from transformers.models.whisper.modeling_whisper import WhisperEncoder

    if isinstance(model, WhisperEncoder):
        return model
    for getter in (lambda m: m.get_encoder(), lambda m: m.model.encoder, lambda m: m.encoder):
        try:
            enc = getter(model)
        except AttributeError:
            continue
        if isinstance(enc, WhisperEncoder):
            return enc
    raise TypeError(
        f"model must be a transformers Whisper model with an encoder, got {type(model).__name__}."
    )


def _ssl_encoder(model):
    for attr in (None, "hubert", "wav2vec2"):
        m = model if attr is None else getattr(model, attr, None)
        if m is not None and hasattr(m, "feature_extractor") and hasattr(m, "encoder"):
            return m
    raise TypeError(
        "model must be a transformers HubertModel or Wav2Vec2Model (or hold one as .hubert / "
        f".wav2vec2), got {type(model).__name__}."
    )


def _random_init_(model, seed):
    """Re-initialise every parameter from a seeded torch.Generator (no global seeding)."""
    import torch
    from torch.nn.utils.parametrize import ParametrizationList

    gen = torch_generator(seed)
    with torch.no_grad():
        for module in model.modules():
            params = dict(module.named_parameters(recurse=False))
            if not params or isinstance(module, ParametrizationList):
                continue
            if isinstance(module, (torch.nn.LayerNorm, torch.nn.GroupNorm)):
                module.weight.fill_(1.0)
                module.bias.zero_()
                continue
            for pname, p in params.items():
                if pname.endswith("bias"):
                    p.zero_()
                elif isinstance(module, torch.nn.Linear):
                    p.normal_(0.0, 0.02, generator=gen)
                elif p.ndim >= 2:
                    fan_in = p[0].numel()
                    p.normal_(0.0, (2.0 / fan_in) ** 0.5, generator=gen)
                else:
                    p.uniform_(0.0, 1.0, generator=gen)
            # parametrised weight norm (pos_conv_embed): weight = g * v / ||v||
            par = getattr(module, "parametrizations", None)
            if par is not None and "weight" in par:  # handled here, skipped above
                g, v = par.weight.original0, par.weight.original1
                dims = tuple(i for i in range(v.ndim) if g.shape[i] == 1)
                v.normal_(0.0, (2.0 / v[0].numel()) ** 0.5, generator=gen)
                g.copy_(torch.linalg.vector_norm(v, dim=dims, keepdim=True))
    return model


def _hubert_base_random():
    import torch
    from transformers import HubertConfig, HubertModel

    with torch.device("meta"):
        model = HubertModel(HubertConfig())
    model.to_empty(device="cpu")
    _random_init_(model, HUBERT_RANDOM_SEED)
    prov = dict(source="HubertModel(HubertConfig())", init="random", seed=HUBERT_RANDOM_SEED,
                revision=f"random-{HUBERT_RANDOM_SEED}")
    return model, prov


def _hub_offline():
    env = os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")
    try:
        from huggingface_hub import constants

        return env or bool(constants.HF_HUB_OFFLINE)
    except ImportError:  # pragma: no cover
        return env


def _load_transformers(path_or_id, *, local_only, encoder_only=False):
    """Load a Whisper/HuBERT/wav2vec2 model from a local folder or a hub id."""
    from transformers import AutoConfig

    cfg = AutoConfig.from_pretrained(path_or_id, local_files_only=local_only,
                                     trust_remote_code=False)
    kind = cfg.model_type
    if kind == "data2vec-audio":  # pragma: no cover
        kind = "wav2vec2"
    check_option(
        "model_type", kind, KINDS,
        extra=f"({path_or_id!r} is not a Whisper, HuBERT or wav2vec2 model.)",
    )
    kw = dict(local_files_only=local_only, trust_remote_code=False)
    feature_extractor = None
    normalize = False
    if kind == "whisper":
        from transformers import WhisperFeatureExtractor, WhisperForConditionalGeneration

        model = None
        if encoder_only and Path(path_or_id).is_dir():
            model = _whisper_encoder_from_folder(path_or_id)
        if model is None:
            model = WhisperForConditionalGeneration.from_pretrained(path_or_id, **kw)
            if encoder_only:
                model = model.get_encoder()
        try:
            feature_extractor = WhisperFeatureExtractor.from_pretrained(path_or_id, **kw)
        except OSError:
            feature_extractor = None
    else:
        from transformers import AutoModel

        model = AutoModel.from_pretrained(path_or_id, **kw)
        try:
            from transformers import AutoFeatureExtractor

            normalize = bool(getattr(AutoFeatureExtractor.from_pretrained(path_or_id, **kw),
                                     "do_normalize", False))
        except (OSError, ValueError):
            normalize = False
    revision = getattr(cfg, "_commit_hash", None)
    return model, kind, feature_extractor, normalize, revision


def _whisper_encoder_from_folder(folder):
    """Build a WhisperEncoder from a transformers folder, reading only the encoder's
    tensors from its safetensors file(s); None when the folder has no safetensors."""
    import torch
    from safetensors import safe_open
    from transformers import WhisperConfig
    from transformers.models.whisper.modeling_whisper import WhisperEncoder, sinusoids

    folder = Path(folder)
    files = sorted(folder.glob("*.safetensors"))
    if not files:
        return None
    cfg = WhisperConfig.from_pretrained(folder, local_files_only=True)
    state = {}
    for fname in files:
        with safe_open(str(fname), framework="pt") as fid:
            for key in fid.keys():
                for prefix in ("model.encoder.", "encoder."):
                    if key.startswith(prefix):
                        state[key[len(prefix):]] = fid.get_tensor(key).float()
    with torch.device("meta"):
        enc = WhisperEncoder(cfg)
    if "embed_positions.weight" not in state:  # not saved by some writers: fixed sinusoids
        state["embed_positions.weight"] = sinusoids(cfg.max_source_positions, cfg.d_model)
    missing, unexpected = enc.load_state_dict(state, strict=False, assign=True)
    if missing or unexpected:
        raise ValueError(
            f"The Whisper weights in {folder} do not match its config.json: missing "
            f"{sorted(missing)[:5]}, unexpected {sorted(unexpected)[:5]}."
        )
    return enc.eval()


def _hub_snapshot(repo_id, *, local_only):
    """Local folder of a hub model (config, feature extractor and safetensors only)."""
    from huggingface_hub import snapshot_download

    return Path(snapshot_download(
        repo_id, local_files_only=local_only,
        allow_patterns=["*.json", "*.safetensors", "*.txt"],
    ))


def _unknown_spec(spec_str):
    from ..utils import suggest

    names = ["auto", "hubert-base-random", *_DEMO_MODELS, *HUB_NAMES]
    return ValueError(
        f"Unknown backbone {spec_str!r} (the manifest's backbone.name; load_backbone's spec): "
        "it is not an existing folder, a hub id ('owner/name') or a known name. Known names: "
        f"{', '.join(sorted(set(names)))}.{suggest(spec_str, names)} Fix backbone.name."
    )


@fill_doc
@verbose
def load_backbone(spec="auto", *, device="cpu", dtype=None, cache_dir=None, encoder_only=False,
                  verbose=None):
    """Load an audio encoder.

    Parameters
    ----------
    spec : str | os.PathLike
        Which model:

        - ``"auto"``: ``"whisper-base"`` if installed, else ``"whisper-tiny.en"``;
        - ``"whisper-base"`` / ``"whisper-tiny.en"``: the real OpenAI weights
          shipped in CTranslate2 format by the demo packages (converted once,
          then cached);
        - ``"hubert-base-random"``: the HuBERT-base architecture, randomly
          initialised from a fixed seed (an untrained-network control);
        - a folder: CTranslate2/faster-whisper (holds ``model.bin``) or
          transformers (``config.json`` of a whisper, hubert or wav2vec2 model);
        - a short name of a hub model: ``"whisper-tiny"`` ... ``"whisper-large-v3"``,
          ``"whisper-large-v3-turbo"`` (alias ``"whisper-turbo"``), the ``.en``
          variants, ``"hubert-base"``, ``"hubert-large"``, ``"wav2vec2-base"``,
          ``"wav2vec2-large"`` ... (see ``HUB_NAMES``); ``"whisper-base"`` and
          ``"whisper-tiny.en"`` use the offline demo weights when installed;
        - a Hugging Face hub id (e.g. ``"openai/whisper-small"``); with
          ``HF_HUB_OFFLINE=1`` only the local hub cache is used, and a model
          missing from it raises an error that names the setting and the
          local alternatives.
    %(device)s
    dtype : torch.dtype | str | None
        Computation dtype (``None``: float32). ``"float16"`` suits GPUs.
    cache_dir : str | os.PathLike | None
        Where converted CTranslate2 models are cached (``None``:
        ``$NEURO_SAE_CACHE/whisper`` or ``~/.cache/neuro_sae/whisper``).
    encoder_only : bool
        Whisper: read and build only the encoder (its tensors are read from the
        safetensors file(s); the decoder is never loaded), which is all that
        extraction needs and saves memory (about half of Whisper's weights).
        Intervention hooks that run the decoder (generation, decoder logits)
        need ``False``. HuBERT/wav2vec2 always load the bare encoder model
        (no CTC or pre-training head).
    %(verbose)s

    Returns
    -------
    backbone : Backbone
        The model, in eval mode, on ``device``.
    """
    import torch

    validate_type(spec, "path-like", "spec")
    if isinstance(dtype, str):
        if not hasattr(torch, dtype) or not isinstance(getattr(torch, dtype), torch.dtype):
            check_option("dtype", dtype, ("float32", "float16", "bfloat16"))
        dtype = getattr(torch, dtype)
    validate_type(encoder_only, bool, "encoder_only")
    spec_str = str(spec)
    feature_extractor, normalize = None, False
    if spec_str in _DEMO_MODELS and spec_str not in installed_demo_models():
        spec_str = HUB_NAMES[spec_str]  # the hub copy of the same weights
    elif spec_str in HUB_NAMES and spec_str not in _DEMO_MODELS:
        spec_str = HUB_NAMES[spec_str]
    if spec_str == "auto":
        avail = installed_demo_models()
        if not avail:
            raise RuntimeError(
                "No Whisper weights are installed for backbone.name 'auto' (load_backbone's "
                f"spec). Install them with {DEMO_INSTALL_HINT}, or set backbone.name to a local "
                "model folder or a hub id."
            )
        spec_str = avail[0]
    if spec_str in _DEMO_MODELS:
        path = get_demo_whisper(spec_str, cache_dir=cache_dir)
        model, kind, feature_extractor, normalize, _ = _load_transformers(
            path, local_only=True, encoder_only=encoder_only)
        conv = json.loads((path / "neuro_sae_conversion.json").read_text())
        prov = dict(source=_DEMO_MODELS[spec_str]["source"], format="ctranslate2-float16",
                    packages=_demo_versions(spec_str), converted=str(path),
                    revision=f"sha256:{conv['model_sha256'][:16]}")
        name = spec_str
    elif spec_str == "hubert-base-random":
        model, prov = _hubert_base_random()
        kind, name = "hubert", spec_str
    elif Path(spec_str).expanduser().is_dir():
        path = Path(spec_str).expanduser()
        if (path / "model.bin").is_file() or list(path.glob("model.bin.part*")):
            from ._ct2 import _cache_key, _cache_root, _model_bin_parts

            files = _model_bin_parts(path)
            out = _cache_root(cache_dir) / f"{path.name}-{_cache_key(files)}"
            if not (out / "model.safetensors").is_file():
                convert_ct2_whisper(path, out)
            conv = json.loads((out / "neuro_sae_conversion.json").read_text())
            model, kind, feature_extractor, normalize, _ = _load_transformers(
                out, local_only=True, encoder_only=encoder_only)
            prov = dict(source=str(path), format="ctranslate2", converted=str(out),
                        revision=f"sha256:{conv['model_sha256'][:16]}")
        elif (path / "config.json").is_file():
            model, kind, feature_extractor, normalize, rev = _load_transformers(
                path, local_only=True, encoder_only=encoder_only)
            prov = dict(source=str(path), format="transformers", revision=rev)
        else:
            raise FileNotFoundError(
                f"The backbone folder {spec_str!r} (backbone.name; load_backbone's spec) holds "
                "neither model.bin (CTranslate2) nor config.json (transformers); point "
                "backbone.name at a model folder."
            )
        name = path.name
    else:
        if spec_str.count("/") != 1 or spec_str.startswith(("/", ".", "~")):
            raise _unknown_spec(spec_str)
        offline = _hub_offline()
        try:
            if encoder_only:
                model, kind, feature_extractor, normalize, rev = _load_transformers(
                    _hub_snapshot(spec_str, local_only=offline), local_only=True,
                    encoder_only=True)
            else:
                model, kind, feature_extractor, normalize, rev = _load_transformers(
                    spec_str, local_only=offline)
        except OSError as err:
            how = (
                "HF_HUB_OFFLINE is set and the model is not in the local hub cache"
                if offline else "the download failed"
            )
            raise RuntimeError(
                f"Could not load the hub model {spec_str!r}: {how}. Download it on a machine "
                f"with internet (huggingface-cli download {spec_str}) and copy the hub cache, "
                "set backbone.name (load_backbone's spec) to a local folder, or use the offline "
                f"demo weights (backbone.name: whisper-base after {DEMO_INSTALL_HINT})."
            ) from err
        prov = dict(source=spec_str, format="hub", revision=rev)
        name = spec_str
    if dtype is not None or str(device) != "cpu":
        model.to(device=device, dtype=dtype)
    bb = Backbone(model, kind=kind, name=name, provenance=prov,
                  feature_extractor=feature_extractor, normalize_audio=normalize)
    logger.info(f"Loaded {bb!r}")
    return bb
