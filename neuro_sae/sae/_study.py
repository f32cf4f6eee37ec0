"""Per-layer SAE report of a study: train (or read) layers x seeds, metrics, consistency."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..io import write_json, write_parquet
from ..utils import check_fname, fill_doc, logger, validate_type, verbose
from ._config import SAEConfig, TrainConfig

_METRIC_COLS = (
    "explained_variance", "fvu", "mse", "cosine", "relative_bias", "l0", "dead_fraction",
    "dense_fraction", "n_frames",
)


def _read_runs(activation_files, layers):
    from ..activations import read_activations

    runs = [read_activations(f, layers=layers) for f in activation_files]
    if not runs:
        raise ValueError("activation_files is empty; pass the extraction outputs of the study.")
    return runs


@fill_doc
@verbose
def sae_layer_report(
    activation_files,
    out_dir,
    *,
    layers=None,
    seeds=(0, 1),
    expansion=8,
    k=50,
    n_steps=500,
    batch_size=1024,
    lr=2e-4,
    eval_mode=None,
    random_state=0,
    device="cpu",
    force=False,
    verbose=None,
):
    """Train (or read) one SAE per layer and seed, then tabulate metrics and consistency.

    All layers and seeds are trained in one pass over the same frames
    (:func:`~neuro_sae.sae.train_saes`). Models already in
    ``out_dir/saes/layer-<ll>_seed-<s>`` are read instead (unless ``force``).
    The metrics (:func:`~neuro_sae.sae.metrics.evaluate_sae`) use all valid
    frames; seed consistency (:func:`~neuro_sae.sae.consistency.consistency_table`,
    per-clip BatchTopK codes of every stimulus run, random-initialisation
    baseline) compares the seeds of each layer.

    Parameters
    ----------
    activation_files : list of path-like
        Activation files of the study's stimuli (the extraction step's
        ``*_activations.npz``).
    out_dir : str | os.PathLike
        Output folder: ``saes/``, ``sae_metrics.parquet``,
        ``sae_consistency.parquet``, ``sae_history.parquet``, ``sae_report.png``
        and ``sae_report.json``.
    layers : list of int | None
        Layers to use (``None``: all in the files).
    seeds : sequence of int
        Initialisation seeds (2 in the paper's consistency analysis).
    expansion : int
        ``d_sae = expansion * d_in`` (8 in the paper).
    k : int
        Mean active features per frame (50 in the paper).
    n_steps : int
        Training steps.
    batch_size : int
        Frames per batch (at most the number of frames).
    lr : float
        Adam learning rate.
    eval_mode : str | None
        Encode mode of the metrics (``None``: the inference mode).
    %(random_state)s
        It fixes the batch order.
    %(device)s
    force : bool
        Retrain even when the SAEs exist.
    %(verbose)s

    Returns
    -------
    result : dict
        ``metrics`` and ``consistency`` (pandas DataFrames), ``figure``
        (matplotlib Figure) and ``files`` (written paths).
    """
    import matplotlib

    from . import consistency as cons
    from ._model import load_sae
    from ._train import _model_name, train_saes
    from .metrics import evaluate_sae

    out_dir = check_fname(out_dir, "out_dir", must_exist=False)
    validate_type(activation_files, (list, tuple), "activation_files")
    seeds = [int(s) for s in seeds]
    runs = _read_runs(activation_files, layers)
    layers = sorted(runs[0].layers) if layers is None else list(layers)
    first = runs[0]
    data = {layer: np.concatenate([r.get(layer) for r in runs]).astype(np.float32)
            for layer in layers}
    n_frames = len(next(iter(data.values())))
    sae_dir = Path(out_dir) / "saes"
    folders = {(layer, s): sae_dir / _model_name(f"{layer:02d}", s) for layer in layers for s in seeds}
    have = all((f / "cfg.json").is_file() for f in folders.values())
    if have and not force:
        logger.info(f"Reading {len(folders)} SAEs from {sae_dir}")
        saes = {key: load_sae(f) for key, f in folders.items()}
        history = None
    else:
        cfgs = {
            layer: SAEConfig(
                d_in=data[layer].shape[1], d_sae=expansion * data[layer].shape[1], k=k,
                backbone=first.backbone or None, layer=int(layer), frame_rate=first.sfreq,
            )
            for layer in layers
        }
        tcfg = TrainConfig(n_steps=n_steps, batch_size=min(batch_size, n_frames), lr=lr,
                           log_every=max(1, n_steps // 10))
        saes, history = train_saes(data, cfgs, tcfg, seeds=seeds, random_state=random_state,
                                   device=device)
        for key, sae in saes.items():
            sae.save(folders[key], verbose=False)
    rows = []
    for (layer, seed), sae in saes.items():
        m = evaluate_sae(sae, data[layer], mode=eval_mode)
        rows.append(dict(layer=int(layer), seed=seed, d_in=sae.cfg.d_in, d_sae=sae.cfg.d_sae,
                         k=sae.cfg.k, **{c: m[c] for c in _METRIC_COLS}))
    import pandas as pd

    metrics = pd.DataFrame(rows).sort_values(["layer", "seed"], ignore_index=True)
    clips = {layer: [r.get(layer) for r in runs] for layer in layers}
    models = {layer: [saes[(layer, s)] for s in seeds] for layer in layers}
    table = cons.consistency_table(models, clips, baseline=True, random_state=random_state)
    files = dict(
        metrics=write_parquet(metrics, Path(out_dir) / "sae_metrics.parquet"),
        consistency=write_parquet(table, Path(out_dir) / "sae_consistency.parquet"),
    )
    if history is not None:
        files["history"] = write_parquet(history, Path(out_dir) / "sae_history.parquet")
    with matplotlib.rc_context({"backend": "agg"}):
        fig = plot_sae_report(metrics, table)
        fname = Path(out_dir) / "sae_report.png"
        fig.savefig(fname, dpi=120)
    files["figure"] = fname
    files["summary"] = write_json(
        dict(layers=[int(x) for x in layers], seeds=seeds, n_frames=int(n_frames),
             backbone=first.backbone, trained=history is not None,
             activation_files=[str(f) for f in activation_files]),
        Path(out_dir) / "sae_report.json",
    )
    logger.info(f"SAE report of {len(layers)} layer(s) x {len(seeds)} seed(s) in {out_dir}")
    return dict(metrics=metrics, consistency=table, figure=fig, files=files)


@fill_doc
@verbose
def plot_sae_report(metrics, consistency, *, show=False, verbose=None):
    """Plot L0 against FVU per layer, and seed coverage per layer.

    Parameters
    ----------
    metrics : pandas.DataFrame
        From :func:`sae_layer_report` (``layer``, ``seed``, ``l0``, ``fvu``).
    consistency : pandas.DataFrame
        From :func:`~neuro_sae.sae.consistency.consistency_table` with
        ``baseline=True``.
    show : bool
        Show the figure.
    %(verbose)s

    Returns
    -------
    fig : matplotlib.figure.Figure
        Two panels.
    """
    import matplotlib.pyplot as plt

    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(9, 3.6), layout="constrained")
    layers = sorted(metrics["layer"].unique())
    cmap = plt.get_cmap("viridis")
    for i, layer in enumerate(layers):
        m = metrics[metrics["layer"] == layer]
        ax0.scatter(m["l0"], m["fvu"], color=cmap(i / max(len(layers) - 1, 1)),
                    label=f"layer {layer}", s=30)
    ax0.set(xlabel="L0 (active features per frame)", ylabel="FVU", title="Sparsity vs error")
    ax0.legend(fontsize=7, ncol=2)
    seed_rows = consistency[consistency["b"] != "random"]
    base_rows = consistency[consistency["b"] == "random"]
    cols = [("iou_coverage", "IoU coverage (theta 0.5)"),
            ("decoder_shared_0.7", "decoder shared (cos > 0.7)")]
    for (col, label), style in zip(cols, ("x:", "x--")):
        if col in seed_rows:
            ax1.plot(layers, seed_rows.groupby("layer")[col].mean().reindex(layers), "o-",
                     label=label)
            if col in base_rows and len(base_rows):
                ax1.plot(layers, base_rows.groupby("layer")[col].mean().reindex(layers), style,
                         color="0.5", label=f"{label.split(' (')[0]}, random init")
    ax1.set_xticks(layers)
    ax1.set(xlabel="layer", ylabel="fraction of features", ylim=(0, 1.02),
            title="Seed consistency")
    ax1.legend(fontsize=7)
    if show:
        plt.show()
    return fig
