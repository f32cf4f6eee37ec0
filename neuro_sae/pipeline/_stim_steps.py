"""Stimulus-side steps: backbone activations (01), SAEs and feature series (02), the SAE
report (06). Each function is the ``run``, ``config``, ``inputs`` or ``outputs`` of a step
record in :data:`neuro_sae.pipeline.steps.STEPS`."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from ..io import write_json
from ..utils import logger, torch_num_threads


class timed:
    """Add the seconds spent in a block to ``runtime[key]``."""

    def __init__(self, runtime, key):
        self.runtime, self.key = runtime, key

    def __enter__(self):
        self.t0 = time.perf_counter()

    def __exit__(self, *exc):
        if self.runtime is not None:
            dt = time.perf_counter() - self.t0
            self.runtime[self.key] = round(self.runtime.get(self.key, 0.0) + dt, 2)


def _extracted_layers(manifest, paths):
    from ..activations import read_activations

    fname = paths.activations(manifest.stimuli.runs[0].id)
    if not fname.is_file():
        raise FileNotFoundError(
            f"Activations {fname} not found; run `neuro-sae extract` first (the SAE layers "
            "'last' and 'all' are read from them)."
        )
    return sorted(read_activations(fname).layers)


def resolved_layers(manifest, paths, spec=None):
    """The SAE layers of one backbone (``last``/``all`` read from its activations).

    Parameters
    ----------
    manifest : Manifest
        The manifest.
    paths : StudyPaths
        The backbone's derivatives layout.
    spec : list of int | "last" | "all" | None
        Its layers (``None``: ``sae.layers``).
    """
    spec = manifest.sae.layers if spec is None else spec
    if spec == "last":
        return [_extracted_layers(manifest, paths)[-1]]
    if spec == "all":
        return _extracted_layers(manifest, paths)
    return list(spec)


def model_spec(study, tag):
    """The :class:`neuro_sae.manifest.ModelSpec` of a backbone by tag (``None``: primary)."""
    for spec in study.manifest.models():
        if spec.tag == tag:
            return spec
    tags = [m.tag or "(primary)" for m in study.manifest.models()]
    raise ValueError(f"No backbone tagged {tag!r} in the manifest; its backbones are {tags}.")


def model_paths(study, tag):
    """The derivatives layout of one backbone."""
    from ._paths import StudyPaths

    return study.paths if tag is None else StudyPaths(study.root, tag)


def model_layers(study, tag):
    """:func:`resolved_layers` of one backbone, remembered until files change."""
    key = ("layers", tag)
    if key not in study.memo:
        study.memo[key] = resolved_layers(study.manifest, model_paths(study, tag),
                                          model_spec(study, tag).layers)  # fmt: skip
    return study.memo[key]


def study_layers(study):
    """The primary backbone's SAE layers (what figures and reports read)."""
    return model_layers(study, None)


def model_units(study):
    """One unit per backbone."""
    from ._registry import Unit

    return [Unit(model=m.tag) for m in study.manifest.models()]


def model_layer_units(study):
    """One unit per backbone x SAE layer."""
    from ._registry import Unit

    return [Unit(model=m.tag, layer=layer) for m in study.manifest.models()
            for layer in model_layers(study, m.tag)]  # fmt: skip


def _unit(unit):
    from ._registry import Unit

    return unit if isinstance(unit, Unit) else Unit()


# ----------------------------------------------------------------- backbone identity
def backbone_spec(manifest, name=None):
    """The ``spec`` given to :func:`neuro_sae.backbones.load_backbone`.

    A folder is looked up relative to the manifest's folder first, then the current one.
    ``name``: a backbone of ``backbones`` (default: ``backbone.name``).
    """
    name = str(manifest.backbone.name if name is None else name)
    if "/" in name or name.startswith((".", "~")):
        cand = manifest.resolve(name)
        if cand.is_dir():
            return str(cand)
    return name


def backbone_identity(manifest, name=None):
    """What ``backbone.name`` resolves to: the model and a hash of its weights.

    ``"auto"`` and the explicit name it resolves to give the same identity, so the
    extract step's key does not depend on how the model was named.

    Returns
    -------
    identity : dict
        ``name`` (the resolved model) and ``weights`` (a content hash of the weights:
        the converted checkpoint's sha256 for the demo models, the folder's file tree
        for a local folder, the snapshot revision for a hub model).
    """
    from ..backbones import HUB_NAMES, get_demo_whisper, installed_demo_models

    spec = backbone_spec(manifest, name)
    installed = installed_demo_models()
    if spec == "auto":
        if not installed:
            return dict(name="auto", weights=None)
        spec = installed[0]
    if spec in installed:
        folder = get_demo_whisper(spec)
        conv = json.loads((Path(folder) / "neuro_sae_conversion.json").read_text())
        return dict(name=spec, weights=f"sha256:{conv['model_sha256']}")
    if spec == "hubert-base-random":
        return dict(name=spec, weights="random-init")
    if Path(spec).is_dir():
        from ._cache import hash_path

        return dict(name=Path(spec).name, weights=hash_path(spec))
    hub_id = HUB_NAMES.get(spec, spec)
    try:
        from huggingface_hub import snapshot_download

        snap = snapshot_download(hub_id, local_files_only=True, allow_patterns=["*.json"])
        return dict(name=hub_id, weights=f"revision:{Path(snap).name}")
    except Exception:  # noqa: BLE001 - not in the local cache: the extraction will say so
        return dict(name=hub_id, weights=None)


# ------------------------------------------------------------------------------ 01
def extract_config(study, subject):
    """Config slice of step 01 (one backbone)."""
    m = study.manifest
    spec = model_spec(study, _unit(subject).model)
    key = ("backbone", spec.tag)
    if key not in study.memo:
        study.memo[key] = backbone_identity(m, spec.name)
    b = m.backbone
    return dict(
        backbone=dict(layers=b.layers, window_s=b.window_s, context_s=b.context_s,
                      resolved=study.memo[key]),
        stimuli=dict(runs={r.id: r.file for r in m.stimuli.runs}),
    )  # fmt: skip


def extract_inputs(study, subject):
    """Inputs of step 01: the stimulus audio files."""
    return list(study.manifest.stimulus_files(check=False).values())


def extract_outputs(study, subject):
    """Outputs of step 01: one activation file per run."""
    paths = model_paths(study, _unit(subject).model)
    return {r.id: paths.activations(r.id) for r in study.manifest.stimuli.runs}


def extract_run(study, subject, runtime):
    """Step 01: read every stimulus, run the backbone, save all layers' activations."""
    from ..activations import extract_activations
    from ..backbones import load_backbone
    from ..io import read_audio

    manifest = study.manifest
    stim = manifest.stimulus_files(check=True)
    outputs = extract_outputs(study, subject)
    name = model_spec(study, _unit(subject).model).name
    with timed(runtime, "extract"):
        backbone = load_backbone(backbone_spec(manifest, name), device=manifest.backbone.device,
                                 encoder_only=True)  # fmt: skip
        layers = None if manifest.backbone.layers == "all" else manifest.backbone.layers
        logger.info(f"[01_extract] {backbone.name}: {len(stim)} runs")
        for rid, fname in stim.items():
            audio, sfreq = read_audio(fname, sfreq=16000)
            acts = extract_activations(
                backbone, audio, sfreq=sfreq, layers=layers, window_s=manifest.backbone.window_s,
                context_s=manifest.backbone.context_s, stimulus_id=rid,
            )  # fmt: skip
            acts.save(outputs[rid], overwrite=True)
    return outputs


# ------------------------------------------------------------------------------ 02
_EXECUTION_ONLY = ("device", "torch_threads")


def train_config(study, subject):
    """Config slice of step 02 for one backbone x layer (execution settings left out)."""
    m, unit = study.manifest, _unit(subject)
    spec = model_spec(study, unit.model)
    sae = {k: v for k, v in m.sae.model_dump().items() if k not in _EXECUTION_ONLY + ("pretrained", "layers")}
    pre = pretrained_source(m, spec, unit.layer)
    sae["pretrained"] = None if pre is None else (pre if isinstance(pre, str) else True)
    sae["layer"] = unit.layer
    feats = m.features.model_dump(include={"mode", "min_rate"})
    feats["max_features"] = layer_max_features(study, unit)
    return dict(sae=sae, features=feats)


def layer_max_features(study, unit):
    """Alive features kept at one backbone x layer: ``features.max_features`` at the primary
    backbone's last SAE layer, ``features.max_features_other_layers`` (when set) elsewhere."""
    fcfg = study.manifest.features
    if fcfg.max_features_other_layers is None:
        return fcfg.max_features
    if unit.model is None and unit.layer == study_layers(study)[-1]:
        return fcfg.max_features
    return fcfg.max_features_other_layers


def pretrained_folders(manifest, spec=None):
    """``sae.pretrained`` (or a backbone's ``pretrained``) as ``{layer: folder}``, resolved
    against the manifest's folder (a release name gives ``{}``)."""
    pre = manifest.sae.pretrained if spec is None else spec.pretrained
    if not isinstance(pre, dict):
        return {}
    return {int(layer): manifest.resolve(folder) for layer, folder in pre.items()}


def pretrained_source(manifest, spec, layer):
    """The pretrained SAE of one backbone x layer: a folder, a release name, or ``None``."""
    if isinstance(spec.pretrained, str):
        return spec.pretrained
    return pretrained_folders(manifest, spec).get(int(layer)) if layer is not None else None


def train_inputs(study, subject):
    """Inputs of step 02: the backbone's activation files and the pretrained SAE folder."""
    m, unit = study.manifest, _unit(subject)
    paths = model_paths(study, unit.model)
    pre = pretrained_source(m, model_spec(study, unit.model), unit.layer)
    return [paths.activations(r.id) for r in m.stimuli.runs] + ([pre] if isinstance(pre, Path) else [])


def train_outputs(study, subject):
    """Outputs of step 02 for one backbone x layer: the SAE folder, feature files, alive list."""
    unit = _unit(subject)
    paths, layer = model_paths(study, unit.model), unit.layer
    out = {f"sae-{layer}": paths.sae_dir(layer), f"alive-{layer}": paths.alive(layer)}
    for r in study.manifest.stimuli.runs:
        out[f"features-{layer}-{r.id}"] = paths.features(r.id, layer)
    return out


def _load_pretrained(folder, layer, manifest):
    from ..sae import load_sae

    if isinstance(folder, str):  # a release name, read from the huggingface_hub cache
        return load_sae(folder, layer=layer)
    if not folder.is_dir():
        raise FileNotFoundError(
            f"sae.pretrained[{layer}] in {manifest.path or 'the manifest'}: {folder} is not a "
            "folder; point it at an SAE checkpoint folder (native cfg.json + sae.safetensors, "
            "SAELens, or AudioSAE [layer_<n>/]ae.pt)."
        )
    if (folder / f"layer_{layer}").is_dir():
        return load_sae(folder, layer=layer)
    return load_sae(folder)


def check_pretrained_layers(study):
    """``sae.pretrained`` (a ``{layer: folder}``) names only SAE layers of the study."""
    manifest = study.manifest
    for spec in manifest.models():
        unknown = sorted(set(pretrained_folders(manifest, spec)) - set(model_layers(study, spec.tag)))
        if unknown:
            key = "sae.pretrained" if spec.tag is None else f"backbones[{spec.name}].pretrained"
            raise ValueError(
                f"{key} in {manifest.path or 'the manifest'} names layers {unknown}, which "
                f"are not SAE layers of the study ({model_layers(study, spec.tag)}, from "
                f"sae.layers={spec.layers!r}); list them in sae.layers or remove them."
            )


def train_run(study, subject, runtime):
    """Step 02: train (or read, ``sae.pretrained``) the SAE of one backbone x layer and
    encode every run."""
    from ..activations import read_activations
    from ..features import encode_features, select_alive_features
    from ..sae import SAEConfig, TrainConfig, train_sae

    manifest, unit = study.manifest, _unit(subject)
    paths, layer = model_paths(study, unit.model), unit.layer
    run_ids = [r.id for r in manifest.stimuli.runs]
    outputs = train_outputs(study, subject)
    spec = model_spec(study, unit.model)
    fcfg = manifest.features
    max_features = layer_max_features(study, unit)
    check_pretrained_layers(study)
    tag = "" if unit.model is None else f"{unit.model} "
    acts = {r: read_activations(paths.activations(r), layers=[layer]) for r in run_ids}
    first = next(iter(acts.values()))
    pre = pretrained_source(manifest, spec, layer)
    if pre is not None:
        sae = _load_pretrained(pre, layer, manifest)
        logger.info(f"[02_train_sae] {tag}layer {layer}: pretrained SAE {pre}")
        source = pre if isinstance(pre, str) else study.labels.label(pre)
        sae.save(outputs[f"sae-{layer}"], metadata=dict(pretrained_from=source))
    else:
        x = np.concatenate([a.get(layer) for a in acts.values()]).astype(np.float32)
        d_in = x.shape[1]
        sae_cfg = SAEConfig(
            d_in=d_in, d_sae=d_in * manifest.sae.expansion, k=manifest.sae.k,
            backbone=first.backbone, layer=layer, frame_rate=first.sfreq,
            seed=manifest.sae.random_state,
        )  # fmt: skip
        train_cfg = TrainConfig(
            lr=manifest.sae.lr, batch_size=min(manifest.sae.batch_size, len(x)),
            n_steps=manifest.sae.n_steps,
        )  # fmt: skip
        logger.info(
            f"[02_train_sae] {tag}layer {layer}: {len(x):,} frames, d_in={d_in}, "
            f"d_sae={sae_cfg.d_sae}, k={sae_cfg.k}, {train_cfg.n_steps} steps"
        )
        with timed(runtime, "sae_train"), torch_num_threads(manifest.sae.torch_threads):
            sae, _ = train_sae(x, sae_cfg, train_cfg, random_state=manifest.sae.random_state,
                               device=manifest.sae.device)  # fmt: skip
        sae.save(outputs[f"sae-{layer}"])
    with timed(runtime, "features"):
        series = {}
        for r in run_ids:
            fs = encode_features(sae, acts[r], layer=layer, mode=fcfg.mode,
                                 sae_id=f"layer-{layer:02d}")  # fmt: skip
            fs.save(outputs[f"features-{layer}-{r}"], overwrite=True)
            series[r] = fs
        alive, rates, n_alive = select_alive_features(
            list(series.values()), min_rate=fcfg.min_rate, max_features=max_features,
            return_rates=True,
        )  # fmt: skip
        write_json(
            dict(layer=layer, min_rate=fcfg.min_rate, n_alive=n_alive,
                 max_features=max_features, feature_ids=[int(f) for f in alive],
                 firing_rate=[float(r) for r in rates]),
            outputs[f"alive-{layer}"],
        )  # fmt: skip
    logger.info(
        f"[02_train_sae] {tag}layer {layer}: {n_alive} alive features (>= {fcfg.min_rate}/s), "
        f"{len(alive)} kept"
    )
    return outputs


# ------------------------------------------------------------------------------ 06
SAE_REPORT_OPTIONS = (
    ("--layers", dict(type=int, nargs="*", default=None, help="1-based layers (default: all)")),
    ("--seeds", dict(type=int, nargs="+", default=[0, 1], help="SAE seeds per layer")),
    ("--expansion", dict(type=int, default=8, help="dictionary size / layer width")),
    ("--k", dict(type=int, default=50, help="active features per frame")),
    ("--n-steps", dict(type=int, default=500, help="training steps")),
    ("--batch-size", dict(type=int, default=1024, help="frames per step")),
    ("--lr", dict(type=float, default=2e-4, help="Adam learning rate")),
    ("--device", dict(default="cpu", help="torch device of the training")),
)


def sae_report_options(study):
    """The options of step 06, defaults filled in."""
    opts = {flag.lstrip("-").replace("-", "_"): kw["default"] for flag, kw in SAE_REPORT_OPTIONS}
    opts.update({k: v for k, v in study.options.items() if k in opts})
    opts["seeds"] = [int(s) for s in opts["seeds"]]
    return opts


def sae_report_config(study, subject):
    """Config slice of step 06: its options (the device left out)."""
    opts = sae_report_options(study)
    opts.pop("device")
    return {"sae-report": opts}


def sae_report_inputs(study, subject):
    """Inputs of step 06: every activation file."""
    return [study.paths.activations(r.id) for r in study.manifest.stimuli.runs]


def sae_report_run(study, subject, runtime):
    """Step 06: SAEs of every layer x seed, their metrics and seed consistency.

    The SAEs are retrained whenever the step runs (the step's record, not the
    presence of ``cfg.json``, decides whether earlier ones are still valid).
    """
    from ..sae import sae_layer_report

    opts = sae_report_options(study)
    return sae_layer_report(
        sae_report_inputs(study, subject), study.paths.root / "stimuli" / "sae_report",
        layers=opts["layers"], seeds=tuple(opts["seeds"]), expansion=opts["expansion"],
        k=opts["k"], n_steps=opts["n_steps"], batch_size=opts["batch_size"], lr=opts["lr"],
        device=opts["device"], force=True,
    )  # fmt: skip


# ---------------------------------------------------------------- sae.release (06b, 08b)
def release_identity(study, layer):
    """The manifest's ``sae.release`` at one layer: what the interpret and steer steps'
    cache keys and outputs name, or ``None`` (the study's own SAE).

    Returns
    -------
    identity : dict | None
        ``name``, ``layer``, ``hash`` (of the release's ``release.json``, which lists the
        sha256 of its weights), ``backbone``, ``frames_seen`` and ``seed``.
    """
    from ..sae import read_release, release_record

    m = study.manifest
    name = m.sae.release
    if name is None:
        return None
    rel = read_release(name)
    where = m.path or "the manifest"
    if int(layer) not in rel["layers"]:
        raise ValueError(
            f"sae.release {name!r} in {where} has SAEs of layers {rel['layers']}, not of the "
            f"study's last SAE layer {int(layer)} (which the interpret and steer steps read); "
            "set sae.layers so that its last layer is one of them, or remove sae.release."
        )
    rec = release_record(rel, layer)
    return {key: rec.get(key) for key in ("name", "layer", "hash", "backbone", "frames_seen",
                                          "seed")}


def load_release(study, layer, activations=None):
    """The ``sae.release`` SAE of one layer (its identity in ``metadata["release"]``).

    Fails, never falls back to the study's SAE: a layer without weights in the installed
    package raises ``FileNotFoundError`` naming the file and the fix; activations of
    another backbone than the release's raise ``ValueError`` naming ``sae.release``.
    """
    from ..sae import load_release_sae

    ident = release_identity(study, layer)
    bb = getattr(activations, "backbone", "") or ""
    rb = ident["backbone"] or ""
    if bb and rb and bb.removeprefix("openai/") != rb.removeprefix("openai/"):
        raise ValueError(
            f"sae.release {ident['name']!r} in {study.manifest.path or 'the manifest'} holds SAEs "
            f"of {rb!r}, but the study's activations come from {bb!r}; set backbone.name to "
            f"{rb!r} (or install that model's package), or remove sae.release."
        )
    return load_release_sae(ident["name"], layer=int(layer), verbose=False), ident


def release_text(ident):
    """One line naming the SAE used: the release, layer and frames trained."""
    frames = ident.get("frames_seen")
    frames = f"{frames:,} frames" if isinstance(frames, int) else "frames not recorded"
    return (f"SAE release {ident['name']} layer {ident['layer']} (seed {ident.get('seed')}, "
            f"{frames}, release.json {ident['hash']})")
