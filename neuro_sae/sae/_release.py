"""Release SAEs: per-layer SAEs shipped inside an installable data package and read offline.

A release is a folder holding ``release.json`` (name, backbone, layers, each layer's
training record) and one native checkpoint folder per layer, ``layer_<n>/{cfg.json,
sae.safetensors}`` (float16). A data package makes it findable by name: it declares the
folder (a :class:`pathlib.Path`) as an entry point of the group
``neuro_sae.sae_releases``, e.g. ``"neuro-sae/whisper-base" = "neuro_sae_whisper_base:RELEASE"``,
and ``load_sae("neuro-sae/whisper-base", layer=6)`` then reads
``<RELEASE>/layer_6`` (never the hub). :func:`write_sae_release` writes the folder;
:func:`select_run_saes` picks, from a training run of ``analyses/09_corpus_saes.py``, each
layer's seed with the lowest held-out FVU.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np

from ..utils import check_fname, fill_doc, logger, validate_type, verbose
from ._convergence import _MODEL_RE

RELEASE_GROUP = "neuro_sae.sae_releases"
RELEASE_FILE = "release.json"
RELEASE_FORMAT = "neuro_sae.sae_release"
RELEASE_FORMAT_VERSION = 1
#: Prefix of the names of this project's releases (``neuro-sae/<backbone>``).
RELEASE_PREFIX = "neuro-sae/"
#: The data package of each of this project's releases (for the install hint).
RELEASE_DISTRIBUTIONS = {"neuro-sae/whisper-base": "neuro-sae-whisper-base"}
_LAYER_DIR = "layer_{layer}"


# ---------------------------------------------------------------------- lookup
def _entry_points():
    """The entry points of :data:`RELEASE_GROUP` (``name -> EntryPoint``), first one wins."""
    from importlib import metadata

    out = {}
    for ep in metadata.entry_points(group=RELEASE_GROUP):
        out.setdefault(str(ep.name), ep)
    return out


def is_release_name(name):
    """Whether ``name`` names an installed release or looks like one of this project's."""
    name = str(name)
    if name.lower().startswith(RELEASE_PREFIX) and not Path(name).exists():
        return True
    if Path(name).exists():
        return False
    return name in _entry_points()


def _install_hint(name):
    dist = RELEASE_DISTRIBUTIONS.get(str(name), str(name).replace("/", "-"))
    return (
        f"Install its data package {dist!r}: from the root of the neuro_sae repository run "
        f"`pip install --no-deps ./data_manifests/releases/{dist}` (or `make venv`, which "
        "installs it)."
    )


def release_folder(name):
    """The folder of an installed release (the entry point's ``RELEASE`` path).

    Parameters
    ----------
    name : str
        The release name (e.g. ``"neuro-sae/whisper-base"``).

    Returns
    -------
    folder : pathlib.Path
        The folder holding ``release.json`` and ``layer_<n>/``.
    """
    name = str(name)
    eps = _entry_points()
    if name not in eps:
        from ..utils import suggest

        installed = sorted(eps)
        raise ValueError(
            f"The SAE release {name!r} is not installed (installed releases: "
            f"{installed or 'none'}).{suggest(name, installed)} {_install_hint(name)}"
        )
    try:
        folder = Path(eps[name].load())
    except Exception as err:  # noqa: BLE001 - a broken package gets the reinstall advice
        raise ValueError(
            f"The entry point of the SAE release {name!r} ({eps[name].value}) cannot be "
            f"loaded ({type(err).__name__}: {err}). {_install_hint(name)}"
        ) from None
    if not (folder / RELEASE_FILE).is_file():
        raise FileNotFoundError(
            f"The SAE release {name!r} is installed at {folder} but has no {RELEASE_FILE}; "
            f"reinstall it. {_install_hint(name)}"
        )
    return folder


def read_release(name_or_folder):
    """The contents of a release's ``release.json``, with its folder and content hash.

    Parameters
    ----------
    name_or_folder : str | os.PathLike
        An installed release's name, or a release folder.

    Returns
    -------
    release : dict
        ``release.json``'s entries plus ``folder`` (pathlib.Path) and ``hash`` (the
        first 16 hex characters of the sha256 of ``release.json``, which lists the
        sha256 of every weights file).
    """
    import hashlib

    target = Path(name_or_folder)
    if isinstance(name_or_folder, str) and is_release_name(name_or_folder):
        target = release_folder(name_or_folder)
    fname = check_fname(target / RELEASE_FILE, "name_or_folder",
                        hint="A release folder holds release.json (see write_sae_release).")
    text = fname.read_bytes()
    try:
        rel = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{fname} is not valid JSON ({err}); reinstall the release.") from None
    if not isinstance(rel, dict) or rel.get("format") != RELEASE_FORMAT:
        raise ValueError(f"{fname} is not a neuro_sae SAE release description.")
    rel["layers"] = [int(x) for x in rel.get("layers", [])]
    rel["folder"] = target
    rel["hash"] = hashlib.sha256(text).hexdigest()[:16]
    return rel


def release_layer_folder(name, layer):
    """The checkpoint folder of one layer of an installed release, checked to be complete.

    Parameters
    ----------
    name : str | dict
        The release name, or the release as :func:`read_release` returns it.
    layer : int
        One of its layers (``release.json``'s ``layers``).

    Returns
    -------
    folder : pathlib.Path
        ``<RELEASE>/layer_<n>`` with ``cfg.json`` and ``sae.safetensors``.
    """
    rel = name if isinstance(name, dict) else read_release(str(name))
    name = rel.get("name", name) if isinstance(name, dict) else name
    if layer is None or isinstance(layer, bool) or int(layer) not in rel["layers"]:
        raise ValueError(
            f"The SAE release {name!r} needs layer= one of its layers {rel['layers']}, got "
            f"{layer!r} instead."
        )
    folder = rel["folder"] / _LAYER_DIR.format(layer=int(layer))
    dist = RELEASE_DISTRIBUTIONS.get(str(name), str(name).replace("/", "-"))
    for fname in ("cfg.json", "sae.safetensors"):
        if not (folder / fname).is_file():
            raise FileNotFoundError(
                f"The SAE release {name!r} lists layer {int(layer)} but its file "
                f"{folder / fname} is missing: the data package {dist!r} was installed "
                "without its weights. Write them into the repository with `python "
                "analyses/09b_release_saes.py --run <backbone folder of 09_corpus_saes.py> "
                f"--out data_manifests/releases/{dist}/{dist.replace('-', '_')}`, then "
                f"reinstall it from the repository root: `pip install --no-deps "
                f"./data_manifests/releases/{dist}` (or `make venv`)."
            )
    return folder


def release_record(name, layer):
    """The training record of one layer of an installed release (``release.json``).

    Parameters
    ----------
    name : str | dict
        The release name, or the release as :func:`read_release` returns it.
    layer : int
        The layer.

    Returns
    -------
    record : dict
        ``name``, ``layer``, ``hash`` (the release's identity), ``backbone``,
        ``frames_seen`` and the rest of the layer's record.
    """
    rel = name if isinstance(name, dict) else read_release(str(name))
    rec = dict(rel.get("records", {}).get(str(int(layer)), {}))
    rec.update(name=rel["name"], layer=int(layer), hash=rel["hash"], backbone=rel.get("backbone"))
    return rec


@verbose
def load_release_sae(name, *, layer=None, device="cpu", verbose=None):
    """Load one layer's SAE of an installed release (offline, from the data package).

    Parameters
    ----------
    name : str
        The release name (e.g. ``"neuro-sae/whisper-base"``).
    layer : int
        One of its layers.
    %(device)s
    %(verbose)s

    Returns
    -------
    sae : SparseAutoencoder
        The model (float32 parameters); ``metadata["release"]`` holds the release name,
        layer, hash and frames seen.
    """
    from ._model import _load_native

    rel = read_release(str(name))  # read once for the folder and the record
    folder = release_layer_folder(rel, layer)
    sae = _load_native(folder, device=device)
    rec = release_record(rel, layer)
    meta = dict(sae.metadata or {})
    meta["release"] = {k: rec.get(k) for k in ("name", "layer", "hash", "frames_seen")}
    sae.metadata = meta
    logger.info(f"SAE release {name} layer {layer}: {folder}")
    return sae


@verbose
def list_sae_releases(*, verbose=None):
    """The installed SAE releases (data packages of the entry-point group ``neuro_sae.sae_releases``).

    Parameters
    ----------
    %(verbose)s

    Returns
    -------
    releases : dict
        ``name -> dict(backbone, layers, folder, hash, with_weights)``; ``with_weights``
        lists the layers whose weights are present. A package that cannot be read gets
        ``error`` instead.
    """
    out = {}
    for name in sorted(_entry_points()):
        try:
            rel = read_release(release_folder(name))
        except (ValueError, OSError) as err:
            out[name] = dict(error=str(err))
            continue
        have = [layer for layer in rel["layers"]
                if (rel["folder"] / _LAYER_DIR.format(layer=layer) / "sae.safetensors").is_file()]
        out[name] = dict(backbone=rel.get("backbone"), layers=rel["layers"], folder=rel["folder"],
                         hash=rel["hash"], with_weights=have)  # fmt: skip
    return out


# ---------------------------------------------------------------------- writer
def _cfg_record(sae):
    """The training record of one SAE, from its configuration and ``train_info``."""
    info = sae.train_info or {}
    tc = info.get("train_config") or {}
    steps = info.get("n_steps_done")
    batch = tc.get("batch_size")
    return dict(
        frames_seen=int(steps) * int(batch) if steps is not None and batch else None,
        n_steps_done=steps, batch_size=batch, lr=tc.get("lr"), seed=sae.cfg.seed,
        architecture=sae.cfg.architecture, d_in=sae.cfg.d_in, d_sae=sae.cfg.d_sae, k=sae.cfg.k,
        normalize_input=sae.cfg.normalize_input, threshold=sae.threshold_summary(),
        train_metrics=info.get("final_metrics"), data_hash=info.get("data_hash"),
    )  # fmt: skip


@fill_doc
@verbose
def write_sae_release(saes, folder, *, name, backbone, records=None, extra_files=None, verbose=None):
    """Write a release folder: ``layer_<n>/`` (float16 checkpoints) and ``release.json``.

    Every layer folder is written atomically (:meth:`SparseAutoencoder.save` with
    ``dtype="float16"``) and ``release.json`` last, so a killed run leaves the previous
    release readable. ``layer_<n>`` folders of layers not in ``saes`` are removed;
    other files of the folder (the package's ``__init__.py``) are left alone. Running it
    twice on the same models writes the same files.

    Parameters
    ----------
    saes : dict
        ``{layer: SparseAutoencoder}``, 1-based layers.
    folder : str | os.PathLike
        The release folder (the data package's import package).
    name : str
        The release name users load (e.g. ``"neuro-sae/whisper-base"``).
    backbone : str
        The model whose layers the SAEs read (each SAE's ``cfg.backbone`` must match when
        set).
    records : dict | None
        ``{layer: dict}`` merged over each layer's record taken from its configuration
        (frames seen, lr, batch size, seed, ...), e.g. held-out metrics and the snapshot
        chosen. JSON-serialisable.
    extra_files : dict | None
        ``{file name in the release: source path}`` copied in (e.g. convergence tables).
    %(verbose)s

    Returns
    -------
    release_json : pathlib.Path
        The written ``release.json``.
    """
    import neuro_sae

    from ..io import atomic_path, hash_file, write_json
    from ._model import SparseAutoencoder

    validate_type(saes, dict, "saes")
    validate_type(records, (dict, None), "records")
    validate_type(extra_files, (dict, None), "extra_files")
    if not saes:
        raise ValueError("saes is empty; pass {layer: SparseAutoencoder}.")
    name, backbone = str(name), str(backbone)
    layers = sorted(int(layer) for layer in saes)
    by_layer = {int(layer): sae for layer, sae in saes.items()}
    for layer, sae in by_layer.items():
        validate_type(sae, SparseAutoencoder, f"saes[{layer}]")
        if sae.cfg.layer is not None and int(sae.cfg.layer) != layer:
            raise ValueError(f"saes[{layer}] was trained on layer {sae.cfg.layer}; key it by "
                             "its own layer.")  # fmt: skip
        if sae.cfg.backbone and str(sae.cfg.backbone) != backbone:
            raise ValueError(f"saes[{layer}] reads {sae.cfg.backbone!r}, not backbone={backbone!r}.")
    records = {int(k): dict(v) for k, v in (records or {}).items()}
    unknown = sorted(set(records) - set(layers))
    if unknown:
        raise ValueError(f"records names layers {unknown} that are not in saes ({layers}).")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    files, recs = {}, {}
    for layer in layers:
        sae = by_layer[layer]
        sub = _LAYER_DIR.format(layer=layer)
        sae.save(folder / sub, metadata=dict(release=name), dtype="float16", verbose=False)
        rec = _cfg_record(sae)
        rec.update(records.get(layer, {}))
        recs[str(layer)] = rec
        for fname in ("cfg.json", "sae.safetensors"):
            files[f"{sub}/{fname}"] = hash_file(folder / sub / fname)
    for old in sorted(folder.glob("layer_*")):
        m = re.fullmatch(r"layer_(\d+)", old.name)
        if m and int(m.group(1)) not in layers and old.is_dir() and (old / "cfg.json").is_file():
            logger.info(f"Removing {old} (layer {m.group(1)} is not in the release)")
            shutil.rmtree(old)
    for dest, src in sorted((extra_files or {}).items()):
        src = check_fname(src, f"extra_files[{dest!r}]")
        with atomic_path(folder / dest) as tmp:
            shutil.copyfile(src, tmp)
        files[str(dest)] = hash_file(folder / dest)
    rel = dict(
        format=RELEASE_FORMAT, format_version=RELEASE_FORMAT_VERSION, name=name,
        backbone=backbone, layers=layers, dtype="float16", neuro_sae_version=neuro_sae.__version__,
        records=recs, files=files,
    )  # fmt: skip
    out = write_json(rel, folder / RELEASE_FILE)
    logger.info(f"Wrote the SAE release {name} ({backbone}, layers {layers}) to {folder}")
    return out


# ------------------------------------------------------- choosing from a training run


def run_candidates(run):
    """Every loadable SAE folder of a run of ``analyses/09_corpus_saes.py --frames``.

    Parameters
    ----------
    run : str | os.PathLike
        The backbone folder (``<out>/<backbone>``) with ``budget_*_layers-*/`` runs.

    Returns
    -------
    candidates : list of dict
        ``layer``, ``seed``, ``step`` (``n_steps_done``), ``frames`` (steps x batch
        size), ``kind`` (``"final"``, ``"snapshot"`` or ``"checkpoint"``), ``budget``
        (the budget folder's name) and ``folder``.
    """
    run = check_fname(run, "run", kind="directory")
    out = []
    kinds = (("saes/*", "final"), ("train/snapshots/step-*/*", "snapshot"),
             ("train/step-*/*", "checkpoint"))  # fmt: skip
    for budget in sorted(run.glob("budget_*_layers-*")):
        for pattern, kind in kinds:
            for folder in sorted(budget.glob(pattern)):
                m = _MODEL_RE.match(folder.name)
                cfg_file = folder / "cfg.json"
                if not m or not cfg_file.is_file() or not (folder / "sae.safetensors").is_file():
                    continue
                try:
                    cfg = json.loads(cfg_file.read_text())
                except (json.JSONDecodeError, OSError):  # a half-written checkpoint: skip
                    continue
                step = cfg.get("n_steps_done")
                if step is None:
                    step = int(re.sub(r"\D", "", folder.parent.name) or 0) if kind != "final" else 0
                batch = (cfg.get("train_config") or {}).get("batch_size") or 0
                out.append(dict(layer=int(m.group(1)), seed=int(m.group(2)), step=int(step),
                                frames=int(step) * int(batch), kind=kind, budget=budget.name,
                                folder=folder))  # fmt: skip
    return out


_KIND_ORDER = {"final": 2, "snapshot": 1, "checkpoint": 0}


def most_advanced(candidates, layer):
    """Per seed, the candidate of :func:`run_candidates` at ``layer`` that has seen the most
    frames (then the most steps; at a tie the finished model, then a snapshot).

    Returns
    -------
    best : dict
        ``{seed: candidate}``.
    """
    best = {}
    for c in (c for c in candidates if c["layer"] == int(layer)):
        key = (c["frames"], c["step"], _KIND_ORDER[c["kind"]])
        old = best.get(c["seed"])
        if old is None or key > (old["frames"], old["step"], _KIND_ORDER[old["kind"]]):
            best[c["seed"]] = c
    return best


@verbose
def select_run_saes(run, *, layers=None, verbose=None):
    """Each layer's released SAE of a training run: per seed the most advanced model, then
    the seed with the lowest held-out FVU.

    Parameters
    ----------
    run : str | os.PathLike
        The backbone folder of ``analyses/09_corpus_saes.py`` (``packs.parquet``,
        ``store/``, ``budget_*_layers-*/``).
    layers : list of int | None
        Layers to release (``None``: every layer of the run).
    %(verbose)s

    Returns
    -------
    saes : dict
        ``{layer: SparseAutoencoder}``.
    records : dict
        ``{layer: dict}``: the held-out metrics (``heldout_fvu``, ``heldout_l0``,
        ``heldout_dead_fraction``, ...), the snapshot chosen and every seed's FVU.
    extra_files : dict
        ``{"convergence_layers-<...>.parquet": path}`` of the budget runs.
    """
    import pandas as pd

    from ..activations import read_activation_store
    from ._corpus import _store_frames
    from ._model import load_sae
    from .metrics import evaluate_sae

    run = check_fname(run, "run", kind="directory")
    cands = run_candidates(run)
    if not cands:
        raise FileNotFoundError(
            f"No SAE found under {run}/budget_*_layers-*/ (saes/, train/snapshots/step-*/, "
            "train/step-*/); pass the backbone folder of analyses/09_corpus_saes.py --frames."
        )
    found = sorted({c["layer"] for c in cands})
    layers = found if layers is None else [int(x) for x in layers]
    missing = sorted(set(layers) - set(found))
    if missing:
        raise ValueError(f"layers {missing} have no SAE under {run}; its layers are {found}.")
    packs = pd.read_parquet(check_fname(run / "packs.parquet", "run"))
    eval_ids = sorted(packs.loc[packs["split"] == "eval", "pack_id"].astype(str).unique())
    if not eval_ids:
        raise ValueError(f"{run / 'packs.parquet'} has no held-out ('eval') packs.")
    store = read_activation_store(run / "store", verbose=False)
    saes, records = {}, {}
    for layer in layers:
        best = most_advanced(cands, layer)
        x = np.concatenate(_store_frames(store, eval_ids, layer)).astype(np.float32, copy=False)
        scored = []
        for seed, c in sorted(best.items()):
            sae = load_sae(c["folder"], verbose=False)
            mode = "threshold" if sae.has_threshold else "batchtopk"
            m = evaluate_sae(sae, x, mode=mode, verbose=False)
            scored.append((float(m["fvu"]), seed, c, sae, m, mode))
            logger.info(f"layer {layer} seed {seed}: {c['kind']} step {c['step']} "
                        f"({c['frames']:,} frames), held-out FVU {m['fvu']:.4f}, L0 {m['l0']:.1f}")
        fvu, seed, c, sae, m, mode = min(scored, key=lambda t: (t[0], t[1]))
        saes[layer] = sae
        records[layer] = dict(
            heldout_fvu=fvu, heldout_explained_variance=float(m["explained_variance"]),
            heldout_l0=float(m["l0"]), heldout_dead_fraction=float(m["dead_fraction"]),
            heldout_frames=int(m["n_frames"]), heldout_packs=len(eval_ids), eval_mode=mode,
            snapshot=dict(budget=c["budget"], kind=c["kind"], step=c["step"],
                          path=str(Path(c["folder"]).relative_to(run))),
            seeds_fvu={str(s): f for f, s, *_ in scored},
        )  # fmt: skip
    extra, sizes = {}, {}
    for budget in sorted(run.glob("budget_*_layers-*")):
        table = budget / "convergence.parquet"
        m = re.fullmatch(r"budget_([^_]+)_(layers-.+)", budget.name)
        if not table.is_file() or not m:
            continue
        try:
            size = float(m.group(1))
        except ValueError:
            size = 0.0
        dest = f"convergence_{m.group(2)}.parquet"
        if dest not in extra or size > sizes[dest]:  # the largest budget of the same layers
            extra[dest], sizes[dest] = table, size
    return saes, records, extra
