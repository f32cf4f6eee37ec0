"""Publication figures of a study. They only read saved results; nothing is refitted."""

from __future__ import annotations

import json
import re

import numpy as np

from ..utils import fill_doc, logger, verbose
from ._paths import StudyPaths
from .steps import sae_layers

__all__ = ["make_figures"]


def _save(fig, base):
    base.parent.mkdir(parents=True, exist_ok=True)
    out = []
    for ext in ("png", "pdf"):
        fname = base.with_suffix(f".{ext}")
        tmp = fname.with_name(f".{fname.stem}.tmp.{ext}")
        try:
            fig.savefig(tmp, dpi=150)
            tmp.replace(fname)
        finally:
            tmp.unlink(missing_ok=True)
        out.append(fname)
    return out


def _require(files, manifest, what):
    """Stop with the missing file and the commands that make it, before drawing anything."""
    missing = [f for f in files if not f.is_file()]
    if missing:
        m = f" --manifest {manifest.path}" if manifest.path else ""
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise FileNotFoundError(
            f"{what} needs {missing[0]}{more}, which does not exist: run `neuro-sae fit{m} "
            f"--subject <subject>` for every subject and `neuro-sae group{m}` first (or "
            f"`neuro-sae run{m}` for every step)."
        )


def _feature_key(name):
    """The SAE feature id of ``"f123"`` (``"123"``), else the name made file-safe."""
    m = re.fullmatch(r"f(\d+)", str(name))
    return m.group(1) if m else re.sub(r"[^A-Za-z0-9]+", "-", str(name)).strip("-")


@fill_doc
@verbose
def make_figures(manifest, out, *, n_top=3, verbose=None):
    """Draw the study figures from saved results (PNG and PDF).

    Figures: a TRF joint plot (butterfly, GFP and topomaps at the GFP peaks, on one
    colour scale) of the subject-averaged kernels of each top group-level feature,
    topomaps of their group statistic on one colour scale, and a summary panel of every
    tested feature (with the permutation floor). Kernels are shown on the inner lag
    window ``trf.tmin`` ... ``trf.tmax`` of the manifest only: the fit may use a wider
    window (``trf.edge_s``) whose first and last lags carry edge artefacts; topomap times
    are GFP peaks inside the inner window, on the feature's significant channels (all
    channels when none is significant).

    Parameters
    ----------
    %(manifest)s
    %(out)s
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
    from ..viz import (
        feature_label,
        permutation_floor,
        plot_r_topomaps,
        plot_sweep_summary,
        plot_trf_joint,
    )

    paths = StudyPaths(out)
    layer = sae_layers(manifest, paths)[-1]
    subjects = manifest.subjects
    _require(
        [paths.sweep(s, layer) for s in subjects] + [paths.group_result(layer), paths.info(subjects[0])],
        manifest, "The study figures",
    )
    sweeps = [read_sweep_result(paths.sweep(s, layer)) for s in subjects]
    group = read_group_result(paths.group_result(layer))
    info = mne.io.read_info(paths.info(subjects[0]), verbose=False)
    names = list(sweeps[0].feature_names)
    stat = group.statistic
    stat_label = "held-out r (group mean)" if group.statistic_name == "mean" else "one-sample t of held-out r"
    best = stat.max(axis=1)
    order = np.argsort(-best)[:n_top]
    mean_coef = np.mean([sw.coef for sw in sweeps], axis=0)  # (F, C, L)
    times = sweeps[0].times
    tmin, tmax = manifest.trf.tmin, manifest.trf.tmax
    fig_dir = paths.figures_dir()
    files = []
    alpha = manifest.stats.alpha
    planted = None
    if paths.recovery().is_file():
        planted = json.loads(paths.recovery().read_text())["planted"]

    for rank, i in enumerate(order, 1):
        title = (
            f"Layer {layer}, {feature_label(names[i])}: mean TRF of {len(subjects)} subjects; "
            f"best channel {stat_label} {best[i]:.3f}"
        )
        chans = group.p_fwe[i] < alpha
        fig = plot_trf_joint(
            mean_coef[i], times, info, tmin=tmin, tmax=tmax, channels=chans if chans.any() else None,
            title=title, show=False,
        )
        files += _save(fig, fig_dir / f"fig_trf_joint_top{rank}_f{_feature_key(names[i])}")
        plt.close(fig)

    fig = plot_r_topomaps(
        stat[order], info, masks=group.p_fwe[order] < alpha, titles=[feature_label(names[i]) for i in order],
        label=stat_label, suptitle=f"Layer {layer}, {len(subjects)} subjects; dots: p_FWE < {alpha:g} (max-T)",
        show=False,
    )
    files += _save(fig, fig_dir / "fig_r_topomap_top")
    plt.close(fig)

    table = pd.DataFrame(
        dict(
            feature=[_feature_key(n) for n in names],
            r=best,
            p_fwe=group.p_fwe.min(axis=1),
            significant=(group.p_fwe < alpha).any(axis=1),
        )
    )
    floor = permutation_floor(group.n_permutations, exact=group.exact)
    fig = plot_sweep_summary(table, planted=planted, alpha=alpha, p_floor=floor, show=False)
    fig.suptitle(
        f"{len(subjects)} subjects, {len(names)} SAE features of layer {layer} ({group.method}, "
        f"{group.n_permutations} permutations)",
        fontsize=9,
    )
    files += _save(fig, fig_dir / "fig_summary")
    plt.close(fig)
    logger.info(f"[figures] wrote {len(files)} files to {fig_dir}")
    return files
