"""Convergence of SAEs against a frame budget, each measure beside its random-dictionary null.

A long run (:func:`~neuro_sae.sae.train_store_saes` with ``snapshot_frames=``) leaves the
models at log-spaced frame counts in ``train/snapshots/step-<n>/layer-<l>_seed-<s>/``.
:func:`convergence_table` evaluates each snapshot on held-out clips: reconstruction (FVU),
sparsity (L0), dead features, and agreement between seeds, as the IoU coverage of the
paper (per-clip BatchTopK codes, IoU > 0.5) and as the mean matched cosine of decoder
directions (Hungarian matching of row-normalised decoders by signed cosine, Song et al.
2025, "MCC"). Agreement only means something against chance: the same two measures are
computed between two random dictionaries of the same shape (unit-norm random atoms, the
encoder tied to them, the trained ``b_dec``). :func:`extrapolate_budget` fits the gap to the null against log frames and says
where a stated margin would be reached.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ..utils import fill_doc, logger, progress_bar, validate_type, verbose

_STEP_RE = re.compile(r"^step-(\d+)$")
_MODEL_RE = re.compile(r"^layer-(\d+)_seed-(\d+)$")


def log_spaced_frames(n_frames, *, start=1e5):
    """Frame counts 1, 2, 5 x 10^k from ``start`` up to ``n_frames`` (which ends the list).

    Parameters
    ----------
    n_frames : int | float
        The budget (the last entry).
    start : int | float
        The first count (rounded down to a 1-2-5 value).

    Returns
    -------
    frames : list of int
        Increasing frame counts.
    """
    validate_type(n_frames, "numeric", "n_frames")
    validate_type(start, "numeric", "start")
    if not n_frames >= 1 or not start >= 1:
        raise ValueError(
            f"n_frames and start must be >= 1 frame, got n_frames={n_frames!r}, "
            f"start={start!r}."
        )
    out = []
    decade = 10 ** int(np.floor(np.log10(start)))
    while decade <= n_frames:
        for m in (1, 2, 5):
            f = m * decade
            if start <= f * 1.0000001 and f < n_frames:
                out.append(int(f))
        decade *= 10
    out.append(int(round(n_frames)))
    return sorted(set(out))


def read_snapshots(folder):
    """The snapshot SAE folders of a run, by step.

    Parameters
    ----------
    folder : path-like
        A ``snapshots/`` folder (``step-<n>/layer-<l>_seed-<s>/``), or the
        ``checkpoint_dir`` or run folder holding it (``snapshots/``,
        ``train/snapshots/``).

    Returns
    -------
    snapshots : dict
        ``{step: {(layer, seed): Path}}``, steps increasing.
    """
    folder = Path(folder)
    for sub in ("train/snapshots", "snapshots"):  # a run folder or a checkpoint_dir
        if (folder / sub).is_dir():
            folder = folder / sub
            break
    if not folder.is_dir():
        raise FileNotFoundError(
            f"No snapshots folder {folder}; train with snapshot_frames= "
            "(analyses/09_corpus_saes.py --frames N) first."
        )
    out = {}
    for step_dir in folder.iterdir():
        m = _STEP_RE.match(step_dir.name)
        if not m or not step_dir.is_dir():
            continue
        models = {}
        for sub in step_dir.iterdir():
            mm = _MODEL_RE.match(sub.name)
            if mm and (sub / "cfg.json").is_file():
                models[(int(mm.group(1)), int(mm.group(2)))] = sub
        if models:
            out[int(m.group(1))] = models
    return dict(sorted(out.items()))


def _coverage_both(codes_a, codes_b, theta):
    """Mean of the IoU coverage of A by B and of B by A, from one blockwise product.

    The same numbers as two calls of :func:`~neuro_sae.sae.consistency.activation_iou_coverage`
    (covered: best IoU > theta; dead features uncovered), at half the cost.
    """
    from .consistency import _best_iou, _binary

    A, B = _binary(codes_a, "codes_a"), _binary(codes_b, "codes_b")
    best_b = np.zeros(B.shape[1])
    best_a, _, _ = _best_iou(A, B, col_best=best_b)
    return float((np.mean(best_a > theta) + np.mean(best_b > theta)) / 2)


def _agreement(codes_a, codes_b, sae_a, sae_b, theta, match=None):
    from .consistency import hungarian_match

    if match is None:
        match = hungarian_match(sae_a.W_dec, sae_b.W_dec, thresholds=(0.7,))
    return dict(
        coverage=_coverage_both(codes_a, codes_b, theta),
        mcc=match.mean_cosine,
        shared_07=match.shared[0.7],
        match=match,
    )


@fill_doc
@verbose
def convergence_table(snapshots, store, clip_ids, *, theta=0.5, random_state=0, verbose=None):
    """Held-out reconstruction, sparsity and seed agreement of every snapshot, with nulls.

    Parameters
    ----------
    snapshots : path-like | dict
        A snapshots folder (see :func:`read_snapshots`) or
        ``{step: {(layer, seed): SparseAutoencoder | path}}``.
    store : ActivationStore | dict
        The store holding the held-out clips, or ``{layer: list of arrays}``
        (the held-out clips' activations, each (n_frames_i, d_in)).
    clip_ids : sequence of str | None
        Held-out clips of the store (never trained on); ``None`` with a dict.
    theta : float
        IoU threshold of the coverage (0.5 in the paper).
    %(random_state)s
        It draws the two random dictionaries of each layer.
    %(verbose)s

    Returns
    -------
    table : pandas.DataFrame
        One row per snapshot and layer: ``step``, ``frames`` (frames seen per
        SAE), ``layer``, ``n_seeds``, ``eval_mode`` (``"threshold"`` once the
        inference threshold is learned, per-batch ``"batchtopk"`` before), ``fvu``, ``fvu_sd`` (across seeds),
        ``explained_variance``, ``l0``, ``dead_fraction``; with two seeds or
        more, mean over seed pairs of ``iou_coverage`` (the mean of both
        directions), ``mcc`` and ``shared_07`` (Hungarian pairs with cosine
        > 0.7), and their values for two random dictionaries (``*_null``).
    """
    import pandas as pd

    from ..utils import check_random_state
    from ._corpus import _store_frames
    from ._model import SparseAutoencoder, load_sae
    from .consistency import encode_clips, random_dictionary
    from .metrics import evaluate_sae

    validate_type(snapshots, (dict, "path-like"), "snapshots")
    if not isinstance(snapshots, dict):
        snapshots = read_snapshots(snapshots)
    if not snapshots:
        raise ValueError("snapshots is empty: no snapshot has been written yet.")
    rng = check_random_state(random_state)
    layers = sorted({layer for models in snapshots.values() for layer, _ in models})
    if isinstance(store, dict):
        missing = [layer for layer in layers if layer not in store]
        if missing:
            raise ValueError(f"store has no clips of layer(s) {missing}; it has {sorted(store)}.")
        clips = {layer: [np.asarray(c, dtype=np.float32) for c in store[layer]]
                 for layer in layers}
    else:
        clip_ids = list(clip_ids or [])
        if not clip_ids:
            raise ValueError("clip_ids is empty; pass the held-out clips of the store.")
        clips = {layer: _store_frames(store, clip_ids, layer) for layer in layers}
    x_all = {layer: np.concatenate(c) for layer, c in clips.items()}
    null_seeds = {layer: [int(s) for s in rng.integers(0, 2**31 - 1, 2)] for layer in layers}
    rows, null_match = [], {}
    total = sum(len({la for la, _ in m}) for m in snapshots.values())
    pbar = progress_bar(total=total, desc="Convergence", unit="layer")
    for step, models in snapshots.items():
        for layer in sorted({la for la, _ in models}):
            saes = []
            for (la, seed), obj in sorted(models.items()):
                if la != layer:
                    continue
                sae = obj if isinstance(obj, SparseAutoencoder) else load_sae(obj, verbose=False)
                saes.append((seed, sae.eval()))
            batch = saes[0][1].train_info.get("train_config", {}) or {}
            n_frames = int(step) * int(batch.get("batch_size", 0) or 0)
            # inference mode once the threshold is learned; before, per-batch BatchTopK
            mode = "threshold" if all(s.has_threshold for _, s in saes) else "batchtopk"
            ms = [evaluate_sae(sae, x_all[layer], mode=mode, verbose=False) for _, sae in saes]
            row = dict(
                step=int(step), frames=n_frames or None, layer=int(layer), n_seeds=len(saes),
                eval_mode=mode,
                fvu=float(np.mean([m["fvu"] for m in ms])),
                fvu_sd=float(np.std([m["fvu"] for m in ms])),
                explained_variance=float(np.mean([m["explained_variance"] for m in ms])),
                l0=float(np.mean([m["l0"] for m in ms])),
                dead_fraction=float(np.mean([m["dead_fraction"] for m in ms])),
            )
            if len(saes) >= 2:
                codes = [encode_clips(sae, clips[layer]) for _, sae in saes]
                pairs = [_agreement(codes[i], codes[j], saes[i][1], saes[j][1], theta)
                         for i in range(len(saes)) for j in range(i + 1, len(saes))]
                rands = [random_dictionary(saes[0][1], random_state=s)
                         for s in null_seeds[layer]]
                # the random atoms are the same at every snapshot: match them once per layer
                null = _agreement(*[encode_clips(r, clips[layer]) for r in rands], *rands,
                                  theta, match=null_match.get(layer))
                null_match[layer] = null["match"]
                for key in ("coverage", "mcc", "shared_07"):
                    name = "iou_coverage" if key == "coverage" else key
                    row[name] = float(np.mean([p[key] for p in pairs]))
                    row[f"{name}_null"] = float(null[key])
            rows.append(row)
            pbar.update(1)
    pbar.close()
    table = pd.DataFrame(rows).sort_values(["layer", "step"], ignore_index=True)
    logger.info(f"Convergence table: {len(table)} rows ({len(snapshots)} snapshots)")
    return table


def extrapolate_budget(table, metric="iou_coverage", *, margin=0.05, layer=None, n_last=3):
    """Frames at which ``metric`` would exceed its null by ``margin``, from the measured curve.

    The gap ``metric - metric_null`` is fitted linearly against ``log10(frames)`` over the
    last ``n_last`` snapshots of the layer (seed agreement grows roughly log-linearly over
    the budgets measured here); the fit is extrapolated forward.

    Parameters
    ----------
    table : pandas.DataFrame
        From :func:`convergence_table`.
    metric : str
        ``"iou_coverage"``, ``"mcc"`` or ``"shared_07"``.
    margin : float
        The gap to reach.
    layer : int | None
        The layer (``None``: the table must hold one layer).
    n_last : int
        Snapshots in the fit (at least 2).

    Returns
    -------
    result : dict
        ``gap`` (at the last snapshot), ``frames`` (the last snapshot's),
        ``reached`` (bool), ``slope_per_decade``, ``frames_needed`` (``None``
        when the gap does not grow by at least 1e-6 per decade).
    """
    from ..utils import check_option

    check_option("metric", metric, ("iou_coverage", "mcc", "shared_07"))
    validate_type(n_last, "int", "n_last")
    if n_last < 2:
        raise ValueError(f"n_last must be >= 2 snapshots, got {n_last}.")
    t = table
    if layer is not None:
        t = t[t["layer"] == layer]
    if t["layer"].nunique() != 1:
        raise ValueError(
            f"table holds layers {sorted(t['layer'].unique())}; pass layer= (one of them)."
        )
    if f"{metric}_null" not in t or t[metric].isna().all():
        raise ValueError(f"table has no {metric!r}: seed agreement needs two seeds per layer.")
    t = t.dropna(subset=[metric, "frames"]).sort_values("frames")
    gap = (t[metric] - t[f"{metric}_null"]).to_numpy()
    frames = t["frames"].to_numpy(float)
    out = dict(gap=float(gap[-1]), frames=float(frames[-1]), reached=bool(gap[-1] >= margin),
               slope_per_decade=None, frames_needed=float(frames[-1]) if gap[-1] >= margin
               else None)
    if len(t) >= 2:
        sel = slice(-min(n_last, len(t)), None)
        slope, icpt = np.polyfit(np.log10(frames[sel]), gap[sel], 1)
        out["slope_per_decade"] = float(slope)
        exponent = (margin - icpt) / slope if slope > 1e-6 else np.inf
        if not out["reached"] and exponent < 100:  # else: not within any budget
            out["frames_needed"] = float(10**exponent)
    return out


@verbose
def plot_convergence(table, *, title=None, show=False, verbose=None):
    """Convergence figure: FVU against L0 along the run (paper Fig. 1 style), FVU, IoU
    coverage and decoder MCC against frames, each agreement beside its random null.

    Parameters
    ----------
    table : pandas.DataFrame
        From :func:`convergence_table`.
    title : str | None
        Figure title.
    show : bool
        Show the figure.
    %(verbose)s

    Returns
    -------
    fig : matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 4, figsize=(14, 3.6), layout="constrained")
    layers = sorted(table["layer"].unique())
    colors = plt.get_cmap("viridis")(np.linspace(0.05, 0.9, max(len(layers), 1)))
    for layer, color in zip(layers, colors):
        t = table[table["layer"] == layer].sort_values("frames")
        lab = f"layer {layer}"
        axes[0].plot(t["l0"], t["fvu"], "o-", color=color, label=lab, ms=3)
        axes[0].plot(t["l0"].iloc[-1], t["fvu"].iloc[-1], "*", color=color, ms=9)
        axes[1].plot(t["frames"], t["fvu"], "o-", color=color, label=lab, ms=3)
        for ax, key in ((axes[2], "iou_coverage"), (axes[3], "mcc")):
            if key not in t or t[key].isna().all():
                continue
            ax.plot(t["frames"], t[key], "o-", color=color, ms=3)
            ax.plot(t["frames"], t[f"{key}_null"], "x:", color=color, ms=4)
    axes[0].set(yscale="log", xlabel="L0 (active features per frame, held out)",
                ylabel="FVU (held out)", title="Reconstruction vs sparsity (star: last)")
    axes[1].set(xscale="log", xlabel="training frames per SAE", ylabel="FVU (held out)",
                title="Reconstruction vs budget")
    axes[2].set(xscale="log", xlabel="training frames per SAE",
                ylabel="IoU coverage (fraction of features)",
                title="Seed agreement: activations")
    axes[3].set(xscale="log", xlabel="training frames per SAE",
                ylabel="decoder MCC (mean matched cosine)", title="Seed agreement: decoders")
    for ax in axes:
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=7, ncol=2)
    from matplotlib.lines import Line2D

    proxies = [Line2D([], [], color="0.3", marker="o", ms=3, label="seed vs seed"),
               Line2D([], [], color="0.3", marker="x", ls=":", label="two random dictionaries")]
    for ax in axes[2:]:
        ax.legend(handles=proxies, fontsize=7)
    if title:
        fig.suptitle(title)
    if show:
        plt.show()
    return fig

