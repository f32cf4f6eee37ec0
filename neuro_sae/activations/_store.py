"""On-disk activation store for corpora: sharded ``.npy`` arrays (memory-mapped on read)
plus a parquet frame index; resumable and content-hashed."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np

from ..backbones import LAYER_CONVENTION, SFREQ, Backbone, frame_times, n_frames_for
from ..io import atomic_dir, hash_config, write_json, write_parquet
from ..utils import check_option, fill_doc, logger, progress_bar, validate_type, verbose, warn
from ._clips import check_clips, clip_hash, load_clip
from ._container import Activations
from ._extract import _to_mono_16k, extract_activations

STORE_FORMAT = "neuro_sae.activation_store"
STORE_VERSION = 1
INDEX_COLUMNS = ("clip_id", "corpus", "domain", "frame", "time", "padding", "shard", "row")


def _layer_file(layer):
    return f"layer_{layer:03d}.npy"


def _extract_clip_batch(backbone, clips, layers, *, batch_size, window_s, context_s):
    """Activations of several clips; Whisper clips that fit one window share forward passes.

    Returns a list with, per clip, a dict layer -> (n_frames, d) float32 array, or
    None when the clip gives no frame.
    """
    import torch

    results = [None] * len(clips)
    waves = []
    for clip in clips:
        audio, sfreq = load_clip(clip)
        try:
            x = _to_mono_16k(audio, sfreq)
        except ValueError as err:
            raise ValueError(f"clip {clip['clip_id']!r} ({clip['corpus']}): {err}") from err
        waves.append(x)
    short = []
    for i, x in enumerate(waves):
        n = n_frames_for(len(x), backbone.kind)
        if n < 1:
            logger.warning(
                f"Skipping clip {clips[i]['clip_id']!r}: {len(x)} samples at 16 kHz give no "
                f"{backbone.kind} frame."
            )
            continue
        if backbone.kind == "whisper" and len(x) <= window_s * SFREQ:
            short.append(i)
        else:
            acts = extract_activations(
                backbone, x, layers=layers, window_s=window_s, context_s=context_s,
                batch_size=batch_size, stimulus_id=clips[i]["clip_id"], verbose="WARNING",
            )
            results[i] = acts.data
    # Whisper clips no longer than one window: one padded window each, batched
    for b in range(0, len(short), batch_size):
        idx = short[b : b + batch_size]
        res = backbone.forward_layers(backbone.prepare([waves[i] for i in idx]), layers)
        for n_layer, tensor in res.items():
            arr = tensor.to(device="cpu", dtype=torch.float32).numpy()
            for j, i in enumerate(idx):
                n = n_frames_for(len(waves[i]), "whisper")
                results[i] = results[i] or {}
                results[i][n_layer] = np.ascontiguousarray(arr[j, :n])
    return results


def _write_shard(shard_dir, arrays, index, meta):
    """Write one shard atomically: a killed build never leaves a half shard."""
    with atomic_dir(shard_dir) as tmp:
        for layer, arr in arrays.items():
            np.save(tmp / _layer_file(layer), arr, allow_pickle=False)
        index.to_parquet(tmp / "index.parquet", index=False)
        (tmp / "shard.json").write_text(json.dumps(meta, sort_keys=True, indent=1) + "\n")


def _shard_done(shard_dir, shard_hash):
    meta = shard_dir / "shard.json"
    if not meta.is_file():
        return False
    try:
        return json.loads(meta.read_text()).get("hash") == shard_hash
    except ValueError:
        return False


@fill_doc
@verbose
def build_activation_store(
    backbone,
    clips,
    out_dir,
    *,
    layers=None,
    clips_per_shard=64,
    dtype="float16",
    window_s=None,
    context_s=None,
    batch_size=8,
    verbose=None,
):
    """Extract the activations of a list of audio clips to a sharded on-disk store.

    Layout of ``out_dir``::

        store.json                      settings, content hash, shard list
        index.parquet                   one row per frame (see below)
        shards/shard-00000/layer_003.npy  (n_frames_in_shard, d_model), one per layer
        shards/shard-00000/index.parquet  the shard's rows of the index
        shards/shard-00000/shard.json     the shard's content hash

    The frame index has the columns ``clip_id``, ``corpus``, ``domain``, ``frame``
    (frame number within its clip), ``time`` (its time in s, see
    :func:`neuro_sae.backbones.frame_times`), ``padding`` (always False: Whisper's
    padding frames are never stored), ``shard`` and ``row`` (its row in the shard's
    arrays).

    **Resuming and content hashes.** Clips are grouped, in the order given, into
    shards of ``clips_per_shard``. Each shard's hash covers the backbone (name and
    revision), the layers, the extraction settings and the content hash of each of
    its clips (file bytes, or array bytes and rate). A shard is written atomically
    (to a temporary folder renamed when complete), so a killed build keeps its
    completed shards and leaves no half shard; rerunning the same call redoes
    only the missing ones (leftover temporary folders are removed) and gives the
    same store as an uninterrupted build. A rerun after a change (other layers,
    an edited clip) redoes only the shards whose hash changed. ``store.json`` and
    ``index.parquet`` are written last: a store without them is incomplete.

    Clips that give no frame (empty or shorter than one receptive field) are
    skipped with a warning and listed under ``skipped`` in ``store.json``; clips
    with non-finite samples raise an error naming the clip. Silent clips are
    extracted like any other.

    Parameters
    ----------
    backbone : Backbone
        From :func:`neuro_sae.backbones.load_backbone`.
    clips : list of dict | list of path-like | pandas.DataFrame
        The clips: ``clip_id`` (unique; default: the file stem), ``path`` (audio
        file) or ``audio`` (array, with ``sfreq`` in Hz, default 16000),
        ``corpus`` (default ``"default"``) and ``domain`` (default ``"unknown"``).
    out_dir : path-like
        The store folder (created).
    %(layers)s
    clips_per_shard : int
        Clips per shard.
    dtype : str
        Storage dtype, ``"float16"`` (half the size; relative rounding error
        below 1e-3) or ``"float32"``.
    window_s, context_s : float | None
        Windowing of long audio, as in :func:`extract_activations`.
    batch_size : int
        Windows per forward pass (Whisper clips no longer than one window are
        batched together).
    %(verbose)s

    Returns
    -------
    store : ActivationStore
        The store, opened.
    """
    from ._storeio import ActivationStore

    validate_type(backbone, Backbone, "backbone")
    clips = check_clips(clips)
    layers = backbone.check_layers(layers)
    validate_type(clips_per_shard, "int", "clips_per_shard")
    validate_type(batch_size, "int", "batch_size")
    if clips_per_shard < 1 or batch_size < 1:
        raise ValueError(
            f"clips_per_shard and batch_size must be >= 1, got {clips_per_shard} and "
            f"{batch_size} instead."
        )
    check_option("dtype", str(dtype), ("float16", "float32"))
    dtype = str(dtype)
    out_dir = Path(out_dir).expanduser()
    if window_s is None:  # as in extract_activations
        window_s = 30.0 if backbone.window_samples is None else backbone.window_samples / SFREQ
    settings = dict(
        format=STORE_FORMAT, format_version=STORE_VERSION, backbone=backbone.name,
        kind=backbone.kind, revision=backbone.revision, layers=layers, dtype=dtype,
        window_s=float(window_s), context_s=None if context_s is None else float(context_s),
        compute_dtype=str(backbone.dtype).replace("torch.", ""), clips_per_shard=clips_per_shard,
    )
    t0 = time.perf_counter()
    hashes = [clip_hash(c) for c in progress_bar(clips, desc="hashing clips", unit="clip")]
    groups = [list(range(i, min(i + clips_per_shard, len(clips))))
              for i in range(0, len(clips), clips_per_shard)]
    shard_hashes = [
        hash_config(dict(settings=settings, clips=[
            (clips[i]["clip_id"], clips[i]["corpus"], clips[i]["domain"], hashes[i]) for i in g
        ]))
        for g in groups
    ]
    key = hash_config(dict(settings=settings, shards=shard_hashes))
    meta_file = out_dir / "store.json"
    if meta_file.is_file() and (out_dir / "index.parquet").is_file():
        old = json.loads(meta_file.read_text())
        if old.get("key") == key and all(
            _shard_done(out_dir / "shards" / s["name"], s["hash"]) for s in old["shards"]
        ):
            logger.info(f"Activation store {out_dir} is up to date (key {key}); nothing to do.")
            return ActivationStore(out_dir)
    shard_root = out_dir / "shards"
    shard_root.mkdir(parents=True, exist_ok=True)
    names = [f"shard-{k:05d}" for k in range(len(groups))]
    # leftovers of a killed build (temporary folders) and shards no longer in the plan
    for p in sorted(shard_root.iterdir()):
        if p.name.startswith(".") or p.name not in names:
            logger.info(f"Removing stale {p.name} from {shard_root}")
            shutil.rmtree(p) if p.is_dir() else p.unlink()
    meta_file.unlink(missing_ok=True)
    todo = [k for k in range(len(groups)) if not _shard_done(shard_root / names[k],
                                                            shard_hashes[k])]
    logger.info(
        f"Activation store {out_dir}: {len(clips)} clips in {len(groups)} shard(s), "
        f"{len(groups) - len(todo)} already done; layers {layers} of {backbone.name}"
    )
    with progress_bar(total=len(clips), desc=f"{backbone.name} store", unit="clip") as bar:
        bar.update(sum(len(groups[k]) for k in range(len(groups)) if k not in todo))
        for k in todo:
            shard_clips = [clips[i] for i in groups[k]]
            res = _extract_clip_batch(backbone, shard_clips, layers, batch_size=batch_size,
                                      window_s=window_s, context_s=context_s)
            rows, arrays = [], {n: [] for n in layers}
            for clip, data in zip(shard_clips, res):
                if data is None:  # no frame: listed as skipped below
                    continue
                n = next(iter(data.values())).shape[0]
                rows.append((clip, n))
                for layer in layers:
                    arrays[layer].append(data[layer].astype(dtype))
            index = _shard_index(rows, backbone.kind, k)
            arrays = {
                n: (np.concatenate(a) if a else np.zeros((0, backbone.d_model), dtype))
                for n, a in arrays.items()
            }
            _write_shard(shard_root / names[k], arrays, index,
                         dict(hash=shard_hashes[k], n_frames=len(index), settings=settings,
                              clips=[c["clip_id"] for c in shard_clips]))
            bar.update(len(groups[k]))
    import pandas as pd

    parts = [pd.read_parquet(shard_root / nm / "index.parquet") for nm in names]
    index = pd.concat(parts, ignore_index=True) if parts else _shard_index([], backbone.kind, 0)
    kept = set(index["clip_id"].unique())
    skipped = [c["clip_id"] for c in clips if c["clip_id"] not in kept]
    write_parquet(index, out_dir / "index.parquet")
    corpora = index.groupby("corpus", sort=True).size()
    write_json(
        dict(settings, key=key, layer_convention=LAYER_CONVENTION, d_model=backbone.d_model,
             frame_rate=backbone.frame_rate, backbone_provenance=backbone.provenance,
             n_clips=len(clips) - len(skipped), n_frames=len(index), skipped=skipped,
             corpus_frames={str(c): int(v) for c, v in corpora.items()},
             shards=[dict(name=nm, hash=h, n_frames=int((index["shard"] == i).sum()))
                     for i, (nm, h) in enumerate(zip(names, shard_hashes))]),
        meta_file,
    )
    if skipped:
        warn(f"{len(skipped)} clip(s) gave no frame and were skipped: {skipped[:5]}")
    logger.info(f"Built {out_dir} ({len(index)} frames) in {time.perf_counter() - t0:.1f} s")
    return ActivationStore(out_dir)


def _shard_index(rows, kind, shard):
    import pandas as pd

    cols = {c: [] for c in INDEX_COLUMNS}
    row0 = 0
    for clip, n in rows:
        cols["clip_id"].append(np.full(n, clip["clip_id"], dtype=object))
        cols["corpus"].append(np.full(n, clip["corpus"], dtype=object))
        cols["domain"].append(np.full(n, clip["domain"], dtype=object))
        cols["frame"].append(np.arange(n, dtype=np.int64))
        cols["time"].append(frame_times(n, kind))
        cols["padding"].append(np.zeros(n, bool))
        cols["shard"].append(np.full(n, shard, np.int64))
        cols["row"].append(np.arange(row0, row0 + n, dtype=np.int64))
        row0 += n
    dtypes = dict(clip_id=object, corpus=object, domain=object, frame=np.int64,
                  time=np.float64, padding=bool, shard=np.int64, row=np.int64)
    return pd.DataFrame({
        c: (np.concatenate(v) if v else np.zeros(0, dtypes[c])).astype(dtypes[c])
        for c, v in cols.items()
    })


def _activations_from_rows(store, rows, layers):
    """An :class:`Activations` for the frames of one clip (rows of the index)."""
    data = {}
    for layer in layers:
        parts = [store.layer_array(layer, int(s))[g["row"].to_numpy()].astype(np.float32)
                 for s, g in rows.groupby("shard", sort=True)]
        data[layer] = np.concatenate(parts)
    return Activations(
        data=data, times=rows["time"].to_numpy(), mask=~rows["padding"].to_numpy(bool),
        sfreq=store.meta["frame_rate"], backbone=store.meta["backbone"],
        stimulus_id=str(rows["clip_id"].iloc[0]),
        provenance=dict(store=str(store.path), key=store.meta["key"],
                        layer_convention=store.meta["layer_convention"],
                        revision=store.meta["revision"], dtype=store.meta["dtype"]),
    )
