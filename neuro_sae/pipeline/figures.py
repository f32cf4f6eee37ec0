"""Publication figures of a study. They only read saved results; nothing is refitted."""

from __future__ import annotations

import json

import numpy as np

from ..utils import logger, verbose
from ._paths import StudyPaths
from .steps import sae_layers

__all__ = ["make_figures"]


def _save(fig, base):
    base.parent.mkdir(parents=True, exist_ok=True)
    out = []
    for ext in ("png", "pdf"):
        fname = base.with_suffix(f".{ext}")
        tmp = fname.with_name(f".{fname.stem}.tmp.{ext}")
        fig.savefig(tmp, dpi=150)
        tmp.replace(fname)
        out.append(fname)
    return out


@verbose
def make_figures(manifest, out, *, n_top=3, verbose=None):
    """Draw the study figures from saved results (PNG and PDF).

    Figures: a TRF joint plot (butterfly + topomaps, via
    :class:`mne.EvokedArray`) of the subject-averaged kernels of the top
    group-level features, topomaps of their group-mean held-out r, and a
    summary panel of every tested feature.

    Parameters
    ----------
    manifest : Manifest
        The study manifest.
    out : str | os.PathLike
        The derivatives folder.
    n_top : int
        How many top features get a joint plot and a topomap.
    %(verbose)s

    Returns
    -------
    files : list of pathlib.Path
        The figure files written.
    """
    import matplotlib.pyplot as plt
    import mne
    import pandas as pd

    from ..encoding import read_sweep_result
    from ..stats import read_group_result
    from ..viz import plot_r_topomap, plot_sweep_summary, plot_trf_joint

    paths = StudyPaths(out)
    layer = sae_layers(manifest, paths)[-1]
    subjects = manifest.subjects
    sweeps = [read_sweep_result(paths.sweep(s, layer)) for s in subjects]
    group = read_group_result(paths.group_result(layer))
    info = mne.io.read_info(paths.info(subjects[0]), verbose=False)
    names = list(sweeps[0].feature_names)
    feature_ids = np.array([int(n.lstrip("f")) for n in names])
    stat = group.statistic
    best = stat.max(axis=1)
    order = np.argsort(-best)[:n_top]
    mean_coef = np.mean([sw.coef for sw in sweeps], axis=0)  # (F, C, L)
    times = sweeps[0].times
    fig_dir = paths.figures_dir()
    files = []
    alpha = manifest.stats.alpha
    planted = None
    if paths.recovery().is_file():
        planted = json.loads(paths.recovery().read_text())["planted"]

    for rank, i in enumerate(order, 1):
        title = f"Layer {layer}, feature {feature_ids[i]}: group-mean TRF (r = {best[i]:.3f})"
        # topomap at the kernel peak on the significant channels (all channels if none):
        # channels without a response only add noise to an automatic peak search
        chans = group.p_fwe[i] < alpha
        if not chans.any():
            chans = np.ones(len(chans), bool)
        peak = times[np.argmax(np.abs(mean_coef[i][chans].mean(axis=0)))]
        fig = plot_trf_joint(mean_coef[i], times, info, title=title, topomap_times=[peak], show=False)
        files += _save(fig, fig_dir / f"fig_trf_joint_top{rank}_f{feature_ids[i]}")
        plt.close(fig)

    fig, axes = plt.subplots(1, len(order), figsize=(3.2 * len(order), 3.2), layout="constrained", squeeze=False)
    for ax, i in zip(axes[0], order):
        plot_r_topomap(
            stat[i],
            info,
            mask=group.p_fwe[i] < alpha,
            axes=ax,
            title=f"feature {feature_ids[i]}",
            show=False,
        )
    fig.suptitle(f"Held-out r, group mean (layer {layer}); dots: p_FWE < {alpha}", fontsize=9)
    files += _save(fig, fig_dir / "fig_r_topomap_top")
    plt.close(fig)

    table = pd.DataFrame(
        dict(
            feature=feature_ids,
            r=best,
            p_fwe=group.p_fwe.min(axis=1),
            significant=(group.p_fwe < alpha).any(axis=1),
        )
    )
    fig = plot_sweep_summary(table, planted=planted, alpha=alpha, show=False)
    fig.suptitle(f"{len(subjects)} subjects, {len(feature_ids)} SAE features of layer {layer}", fontsize=9)
    files += _save(fig, fig_dir / "fig_summary")
    plt.close(fig)
    logger.info(f"[figures] wrote {len(files)} files to {fig_dir}")
    return files
