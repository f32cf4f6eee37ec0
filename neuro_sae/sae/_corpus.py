"""SAEs trained on a corpus at study scale: packed clips, an activation store, weighted
streaming, resumable training of every layer x seed, held-out report, coverage vs hours."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np

from ..io import write_json, write_parquet
from ..utils import (
    check_fname,
    check_random_state,
    fill_doc,
    logger,
    validate_type,
    verbose,
)
from ._config import SAEConfig, TrainConfig

_SFREQ = 16000


@fill_doc
@verbose
def pack_clips(clips, *, max_seconds=30.0, mixer=None, random_state=None, verbose=None):
    """Concatenate the clips of each corpus into packs of at most ``max_seconds``.

    Whisper computes a full 30 s window whatever the clip's length, so a 3 s clip
    costs as much as a 30 s one; packing the clips of one corpus (in a random
    order) into windows removes that waste. Optionally each pack is augmented
    by an :class:`~neuro_sae.activations.AudioMixer` (noise and music at random
    SNRs, as in the paper).

    Parameters
    ----------
    clips : pandas.DataFrame
        Columns ``clip_id``, ``path`` (audio file), ``corpus`` and ``domain``
        (e.g. from :func:`neuro_sae.corpora.index_to_clips`).
    max_seconds : float
        Longest pack; a clip longer than this is a pack of its own.
    mixer : AudioMixer | None
        Augmentation applied to each pack.
    %(random_state)s
    %(verbose)s

    Returns
    -------
    packs : list of dict
        ``clip_id`` (``<corpus>-pack-<n>``), ``audio`` (float32, 16 kHz),
        ``sfreq``, ``corpus`` and ``domain``, for
        :func:`~neuro_sae.activations.build_activation_store`.
    members : pandas.DataFrame
        One row per clip: ``pack_id``, ``clip_id``, ``onset_s``, ``duration_s``,
        and the pack's augmentation (``mixed``, a string such as
        ``"noise:3@12.1dB"``).
    """
    import pandas as pd

    from ..io import read_audio

    validate_type(clips, pd.DataFrame, "clips")
    missing = [c for c in ("clip_id", "path", "corpus", "domain") if c not in clips]
    if missing:
        raise ValueError(
            f"clips lacks the column(s) {missing}; pass the clip table of "
            "neuro_sae.corpora.index_to_clips (clip_id, path, corpus, domain)."
        )
    max_len = int(round(float(max_seconds) * _SFREQ))
    if max_len < _SFREQ:
        raise ValueError(f"max_seconds must be at least 1 s, got {max_seconds!r}.")
    rng = check_random_state(random_state)
    groups = []  # (corpus, domain, [(clip_id, audio), ...]) in pack order
    for corpus, group in clips.groupby("corpus", sort=True):
        domain, cur, n_cur = str(group["domain"].iloc[0]), [], 0
        for i in rng.permutation(len(group)):
            row = group.iloc[int(i)]
            x, _ = read_audio(row["path"], sfreq=_SFREQ, verbose=False)
            if cur and n_cur + len(x) > max_len:
                groups.append((str(corpus), domain, cur))
                cur, n_cur = [], 0
            cur.append((str(row["clip_id"]), x))
            n_cur += len(x)
        if cur:
            groups.append((str(corpus), domain, cur))
    packs, members, n_pack = [], [], {}
    for corpus, domain, items in groups:
        n = n_pack[corpus] = n_pack.get(corpus, -1) + 1
        pack_id = f"{corpus}-pack-{n:05d}"
        audio = np.concatenate([x for _, x in items]).astype(np.float32)
        mixed = ""
        if mixer is not None:
            audio, events = mixer.apply(audio, rng)
            mixed = ";".join(f"{kind}:{j}@{snr:.1f}dB" for kind, j, snr in events)
        packs.append(dict(clip_id=pack_id, audio=audio, sfreq=_SFREQ, corpus=corpus,
                          domain=domain))
        onset = 0
        for cid, x in items:
            members.append(dict(pack_id=pack_id, clip_id=cid, onset_s=onset / _SFREQ,
                                duration_s=len(x) / _SFREQ, mixed=mixed))
            onset += len(x)
    logger.info(f"Packed {len(clips)} clips into {len(packs)} packs of <= {max_seconds:g} s")
    return packs, pd.DataFrame(members)


def subset_store(store, clip_ids):
    """A view of an activation store restricted to some clips (nothing is copied).

    Parameters
    ----------
    store : ActivationStore
        The store.
    clip_ids : sequence of str
        The clips to keep.

    Returns
    -------
    view : ActivationStore
        The same store whose ``index`` holds only those clips' frames (what
        :func:`~neuro_sae.activations.iter_store_batches` streams).
    """
    keep = set(str(c) for c in clip_ids)
    unknown = keep - set(store.index["clip_id"].unique())
    if unknown:
        raise ValueError(
            f"clip_ids holds {len(unknown)} clip(s) that are not in the store "
            f"{store.path}, e.g. {sorted(unknown)[:3]}."
        )
    view = copy.copy(store)
    view.index = store.index[store.index["clip_id"].isin(keep)].reset_index(drop=True)
    view._mmaps = store._mmaps
    return view


def frames_to_steps(n_frames, batch_size, name="n_frames"):
    """Optimiser steps that see at least ``n_frames`` frames (``ceil``), checked."""
    validate_type(n_frames, "numeric", name)
    if not np.isfinite(n_frames) or n_frames < 1:
        raise ValueError(f"{name} must be a number of frames >= 1, got {n_frames!r} instead.")
    return max(1, int(np.ceil(float(n_frames) / int(batch_size) - 1e-9)))


def _store_frames(store, clip_ids, layer):
    """Float32 activations of some clips of the store, one array per clip."""
    return [store.get_clip(c, layers=[layer], verbose=False).get(layer) for c in clip_ids]


@fill_doc
@verbose
def train_store_saes(
    store,
    out_dir,
    *,
    layers=None,
    seeds=(0, 1),
    clip_ids=None,
    expansion=8,
    k=50,
    architecture="batchtopk",
    n_steps=300,
    batch_size=1024,
    lr=1e-3,
    threshold_beta=0.999,
    corpus_weights=None,
    buffer_batches=20,
    checkpoint_every=50,
    n_threads=None,
    n_frames=None,
    snapshot_frames=None,
    keep_checkpoints=None,
    random_state=0,
    verbose=None,
):
    """Train one SAE per layer and seed on an activation store, resumably.

    Batches stream from the store (:func:`~neuro_sae.activations.iter_store_batches`,
    weighted corpus sampling when ``corpus_weights`` is given) and feed all
    layers and seeds in one pass (:func:`~neuro_sae.sae.train_saes`).
    Checkpoints go to ``out_dir/train``; a killed run continues from the last
    one when called again, and finished models (``out_dir/saes``) are read
    instead of retrained when their configuration matches.

    Parameters
    ----------
    store : ActivationStore
        The activation store.
    out_dir : path-like
        Output folder (``saes/layer-<ll>_seed-<s>``, ``train/``,
        ``history.parquet``).
    layers : list of int | None
        Layers (``None``: all in the store).
    seeds : sequence of int
        Initialisation seeds.
    clip_ids : sequence of str | None
        Train on these clips only (``None``: all).
    expansion : int
        ``d_sae = expansion * d_model``.
    k : int
        Mean active features per frame.
    architecture : str
        SAE architecture.
    n_steps, batch_size, lr : int, int, float
        Optimisation (Adam, linear decay over the last fifth of the steps).
    threshold_beta : float
        EMA decay of the BatchTopK inference threshold (updated from the middle
        of the run; short runs need less than the paper's 0.999).
    corpus_weights : dict | None
        Weight per corpus of the store (see
        :func:`~neuro_sae.activations.read_corpus_weights`).
    buffer_batches : int
        Shuffle buffer, in batches.
    checkpoint_every : int
        Steps between checkpoints.
    n_threads : int | None
        Torch threads during training.
    n_frames : int | float | None
        The training budget in frames: ``n_steps = ceil(n_frames / batch_size)``
        (overrides ``n_steps``).
    snapshot_frames : sequence of int | None
        Frame counts at which every model is saved without optimiser state to
        ``out_dir/train/snapshots/step-<n>/`` (e.g. :func:`log_spaced_frames`),
        for convergence curves (:func:`convergence_table`).
    keep_checkpoints : int | None
        Resumable checkpoints kept (the latest ones; ``None``: all).
    %(random_state)s
    %(verbose)s

    Returns
    -------
    saes : dict
        ``{(layer, seed): SparseAutoencoder}``.
    """
    import pandas as pd

    from ..activations import iter_store_batches
    from ._model import load_sae
    from ._train import train_saes

    out_dir = check_fname(out_dir, "out_dir", must_exist=False)
    layers = store.check_layers(layers)
    seeds = [int(s) for s in seeds]
    view = store if clip_ids is None else subset_store(store, clip_ids)
    cfgs = {
        layer: SAEConfig(d_in=store.d_model, d_sae=expansion * store.d_model, k=k,
                         architecture=architecture, backbone=store.meta.get("backbone"),
                         layer=int(layer))
        for layer in layers
    }
    if n_frames is not None:
        n_steps = frames_to_steps(n_frames, batch_size, "n_frames")
    snapshot_steps = None
    if snapshot_frames is not None:
        snapshot_steps = sorted({min(frames_to_steps(f, batch_size, "snapshot_frames"), n_steps)
                                 for f in snapshot_frames})
    tcfg = TrainConfig(n_steps=n_steps, batch_size=batch_size, lr=lr,
                       threshold_beta=threshold_beta, log_every=max(1, n_steps // 20),
                       checkpoint_every=checkpoint_every)
    folders = {(layer, s): Path(out_dir) / "saes" / f"layer-{layer:02d}_seed-{s}"
               for layer in layers for s in seeds}
    stamp = dict(store=store.key, n_frames=int(len(view.index)), train=tcfg.to_dict(),
                 corpus_weights=corpus_weights, random_state=random_state)
    done_file = Path(out_dir) / "saes" / "trained.json"
    if done_file.is_file() and json.loads(done_file.read_text()) == json.loads(
        json.dumps(stamp)
    ) and all((f / "cfg.json").is_file() for f in folders.values()):
        logger.info(f"Reading {len(folders)} trained SAEs from {out_dir / 'saes'}")
        return {key: load_sae(f, verbose=False) for key, f in folders.items()}
    batches = iter_store_batches(
        view, layers=layers, batch_size=batch_size, buffer_batches=buffer_batches,
        corpus_weights=corpus_weights, n_batches=n_steps, drop_last=True,
        random_state=random_state, verbose=False,
    )
    saes, history = train_saes(
        batches, cfgs, tcfg, seeds=seeds, checkpoint_dir=Path(out_dir) / "train",
        resume=True, n_threads=n_threads, snapshot_steps=snapshot_steps,
        keep_checkpoints=keep_checkpoints,
    )
    for key, sae in saes.items():
        sae.save(folders[key], verbose=False)
    write_parquet(pd.DataFrame(history), Path(out_dir) / "history.parquet")
    write_json(stamp, done_file)
    return saes


@fill_doc
@verbose
def store_sae_report(saes, store, clip_ids, *, random_state=0, verbose=None):
    """Held-out metrics and seed consistency of SAEs trained on a store.

    Parameters
    ----------
    saes : dict
        ``{(layer, seed): SparseAutoencoder}`` (from :func:`train_store_saes`).
    store : ActivationStore
        The store holding the held-out clips.
    clip_ids : sequence of str
        Held-out clips: metrics over all their frames (inference mode),
        consistency on per-clip BatchTopK codes (as in the paper).
    %(random_state)s
    %(verbose)s

    Returns
    -------
    metrics : pandas.DataFrame
        One row per layer and seed: ``explained_variance``, ``fvu``, ``l0``,
        ``dead_fraction``, ``dense_fraction`` and the rest of
        :func:`~neuro_sae.sae.metrics.evaluate_sae`.
    consistency : pandas.DataFrame
        :func:`~neuro_sae.sae.consistency.consistency_table` with the random
        baseline rows (``b == "random"``).
    """
    import pandas as pd

    from .consistency import consistency_table
    from .metrics import evaluate_sae

    layers = sorted({layer for layer, _ in saes})
    rows, clips = [], {}
    for layer in layers:
        clips[layer] = _store_frames(store, clip_ids, layer)
        x = np.concatenate(clips[layer])
        for (lay, seed), sae in sorted(saes.items()):
            if lay != layer:
                continue
            m = evaluate_sae(sae, x, verbose=False)
            rows.append(dict(layer=int(layer), seed=int(seed),
                             d_sae=sae.cfg.d_sae, k=sae.cfg.k,
                             **{key: v for key, v in m.items() if np.isscalar(v)}))
    metrics = pd.DataFrame(rows)
    models = {layer: [saes[key] for key in sorted(saes) if key[0] == layer] for layer in layers}
    table = consistency_table(models, clips, baseline=True, random_state=random_state,
                              verbose=False)
    return metrics, table


def domain_weights(corpus_frames, target):
    """Corpus weights that give each corpus a target share of the sampled frames.

    :func:`~neuro_sae.activations.sampling_probabilities` draws corpus ``c`` with
    probability ``w_c n_c / sum_j w_j n_j``; ``w_c = target_c / n_c`` makes that
    probability ``target_c`` (renormalised over the corpora present).

    Parameters
    ----------
    corpus_frames : dict
        Frames per corpus (``ActivationStore.corpus_frames``).
    target : dict
        Wanted share per corpus (e.g. the paper's batches: speech 0.40, music
        0.45, sounds 0.15).

    Returns
    -------
    weights : dict
        ``{corpus: weight}`` for ``corpus_weights=``.
    """
    validate_type(target, dict, "target")
    missing = sorted(set(corpus_frames) - set(target))
    if missing:
        raise ValueError(
            f"target has no share for the corpora {missing} of the store (it has "
            f"{sorted(target)}); give every corpus a share (0 to leave one out)."
        )
    return {c: float(target[c]) / n for c, n in corpus_frames.items() if n > 0}


@fill_doc
@verbose
def sparsity_sweep(x_train, x_eval, specs, train_config, *, random_state=0, n_threads=None,
                   verbose=None):
    """Train one SAE per specification and measure error and L0 on held-out frames.

    Parameters
    ----------
    x_train, x_eval : ndarray, shape (n_frames, d_in)
        Training and held-out frames.
    specs : list of dict
        Each: ``architecture``, ``expansion``, ``k`` and optionally
        ``l1_coefficient`` / ``l0_coefficient`` (the sparsity knob of ReLU and
        JumpReLU SAEs).
    train_config : TrainConfig
        Shared optimisation settings (coefficients overridden per spec).
    %(random_state)s
    n_threads : int | None
        Torch threads during training.
    %(verbose)s

    Returns
    -------
    table : pandas.DataFrame
        One row per spec: its fields, ``l0``, ``fvu`` (1 - explained variance of
        the unit-norm frames, the training scale), ``explained_variance``,
        ``dead_fraction``, ``train_s``.
    """
    import dataclasses
    import time

    import pandas as pd

    from ._train import train_sae
    from .metrics import evaluate_sae

    rows = []
    d_in = x_train.shape[1]
    for spec in specs:
        spec = dict(spec)
        coefs = {key: spec[key] for key in ("l1_coefficient", "l0_coefficient") if key in spec}
        cfg = SAEConfig(d_in=d_in, d_sae=int(spec["expansion"]) * d_in, k=int(spec["k"]),
                        architecture=spec["architecture"])
        tcfg = dataclasses.replace(train_config, **coefs)
        t0 = time.perf_counter()
        sae, _ = train_sae(x_train, cfg, tcfg, random_state=random_state, n_threads=n_threads,
                           verbose=False)
        train_s = time.perf_counter() - t0
        m = evaluate_sae(sae, x_eval, normalized=True, verbose=False)
        rows.append(dict(spec, l0=m["l0"], fvu=m["fvu"],
                         explained_variance=m["explained_variance"],
                         dead_fraction=m["dead_fraction"], train_s=train_s))
        logger.info(f"{spec}: L0 {m['l0']:.1f}, FVU {m['fvu']:.4f}, {train_s:.0f} s")
    return pd.DataFrame(rows)


@fill_doc
@verbose
def plot_pareto(table, *, show=False, verbose=None):
    """Normalised reconstruction error against L0, one curve per architecture.

    Parameters
    ----------
    table : pandas.DataFrame
        From :func:`sparsity_sweep` (``architecture``, ``expansion``, ``l0``,
        ``fvu``).
    show : bool
        Show the figure.
    %(verbose)s

    Returns
    -------
    fig : matplotlib.figure.Figure
        One panel per expansion.
    """
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter

    expansions = sorted(table["expansion"].unique())
    dead = table[table["l0"] < 1]  # no active feature: off a log axis
    table = table[table["l0"] >= 1]
    fig, axes = plt.subplots(1, len(expansions), figsize=(5.2 * len(expansions), 4.0),
                             layout="constrained", sharey=True, squeeze=False)
    styles = dict(batchtopk=("C0", "o"), topk=("C1", "s"), matryoshka_batchtopk=("C2", "D"),
                  jumprelu=("C3", "^"), relu=("C4", "v"))
    handles = {}
    for ax, e in zip(axes[0], expansions):
        sub = table[table["expansion"] == e]
        for arch, grp in sub.groupby("architecture", sort=False):
            grp = grp.sort_values("l0")
            color, marker = styles.get(arch, ("k", "x"))
            (handles[arch],) = ax.plot(grp["l0"], grp["fvu"], marker=marker, color=color,
                                       label=arch)
        ax.set(xscale="log", yscale="log", xlabel="L0 (active features per frame)",
               title=f"expansion {e}x")
        ticks = [t for t in (1, 3, 10, 30, 100, 300, 1000)
                 if sub["l0"].min() / 2 <= t <= sub["l0"].max() * 2]
        ax.set_xticks(ticks, [str(t) for t in ticks])
        ax.xaxis.set_minor_formatter(NullFormatter())
        yticks = [t for t in (0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0, 1.5)
                  if table["fvu"].min() / 1.3 <= t <= table["fvu"].max() * 1.3]
        ax.set_yticks(yticks, [f"{t:g}" for t in yticks])
        ax.yaxis.set_minor_formatter(NullFormatter())
        ax.grid(True, which="both", alpha=0.3)
        n_dead = int((dead["expansion"] == e).sum())
        if n_dead:
            ax.text(0.02, 0.02, f"{n_dead} SAE(s) with L0 < 1 not shown",
                    transform=ax.transAxes, fontsize=7, color="0.4")
    axes[0][0].set_ylabel("normalised error (1 - explained variance)")
    axes[0][0].legend(list(handles.values()), list(handles), fontsize=8)
    if show:
        plt.show()
    return fig
