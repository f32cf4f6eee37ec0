"""One :class:`mne.Report` per subject, built from saved results (nothing is refitted)."""

from __future__ import annotations

import json

import numpy as np

from .utils import logger, verbose

__all__ = ["make_subject_report"]


@verbose
def make_subject_report(manifest, out, subject, *, n_top=3, verbose=None):
    """Write ``sub-XX/sub-XX_report.html`` with the subject's TRF results.

    The report holds the study configuration, topomaps of held-out r and TRF
    joint plots of the subject's best features, a table of the features
    significant after max-T correction and, for simulated studies, the planted
    truth.

    Parameters
    ----------
    manifest : Manifest
        The study manifest.
    out : str | os.PathLike
        The derivatives folder.
    subject : str
        Subject label.
    n_top : int
        How many features get a figure.
    %(verbose)s

    Returns
    -------
    fname : pathlib.Path
        The HTML report.
    """
    import matplotlib.pyplot as plt
    import mne
    import pandas as pd

    from .encoding import read_sweep_result
    from .io import atomic_path
    from .pipeline import StudyPaths, sae_layers
    from .stats import read_permutation_result
    from .viz import plot_r_topomap, plot_trf_joint

    manifest._check_subject(subject)
    paths = StudyPaths(out)
    layer = sae_layers(manifest, paths)[-1]
    sweep = read_sweep_result(paths.sweep(subject, layer))
    perm = read_permutation_result(paths.permutation(subject, layer))
    info = mne.io.read_info(paths.info(subject), verbose=False)
    alpha = manifest.stats.alpha
    title = f"neuro_sae: sub-{subject}, layer {layer}"
    report = mne.Report(title=title, verbose=False)
    cfg = dict(
        study=manifest.name,
        layer=layer,
        eeg=manifest.eeg.model_dump(),
        trf=manifest.trf.model_dump(),
        stats=manifest.stats.model_dump(),
        sae=manifest.sae.model_dump(),
        features=manifest.features.model_dump(),
    )
    report.add_html(
        "<pre>" + json.dumps(cfg, indent=2) + "</pre>", title="Configuration", tags=("config",)
    )
    best = sweep.r.max(axis=1)
    order = np.argsort(-best)[:n_top]
    for i in order:
        name = sweep.feature_names[i]
        fig = plot_r_topomap(
            sweep.r[i], info, mask=perm.p_fwe[i] < alpha, title=f"{name}: held-out r", show=False
        )
        report.add_figure(fig, title=f"Held-out r: {name}", tags=("trf", "sae"), replace=True)
        plt.close(fig)
        fig = plot_trf_joint(sweep.coef[i], sweep.times, info, title=f"TRF of {name}", show=False)
        report.add_figure(fig, title=f"TRF: {name}", tags=("trf", "sae"), replace=True)
        plt.close(fig)
    sig = perm.p_fwe < alpha
    rows = [
        dict(
            feature=sweep.feature_names[i],
            n_channels=int(sig[i].sum()),
            best_channel=sweep.ch_names[int(np.argmax(sweep.r[i]))],
            r=round(float(best[i]), 4),
            p_fwe=float(perm.p_fwe[i].min()),
        )
        for i in np.flatnonzero(sig.any(axis=1))
    ]
    table = pd.DataFrame(rows, columns=["feature", "n_channels", "best_channel", "r", "p_fwe"])
    report.add_html(
        f"<p>{len(table)} of {len(best)} features significant on at least one channel "
        f"(max-T over features x channels, p_FWE &lt; {alpha}, "
        f"{perm.provenance.get('n_permutations', '?')} circular shifts).</p>"
        + table.to_html(index=False),
        title="Significant features",
        tags=("stats",),
    )
    if paths.truth(subject).is_file():
        truth = json.loads(paths.truth(subject).read_text())
        planted = pd.DataFrame(truth["planted"])
        report.add_html(planted.to_html(index=False), title="Planted truth", tags=("simulation",))
    fname = paths.subject_dir(subject) / f"sub-{subject}_report.html"
    with atomic_path(fname) as tmp:
        tmp_html = tmp.with_name(tmp.name + ".html")
        report.save(tmp_html, open_browser=False, overwrite=True, verbose=False)
        tmp_html.replace(tmp)
    logger.info(f"[report] sub-{subject}: {fname}")
    return fname
