"""Step ``interpret``: what the study's SAE features respond to, and their dashboard.

The stimulus runs of the primary backbone's last SAE layer are the clips
(:func:`neuro_sae.interpret.interpret_stimuli`); the dashboard lists the EEG-significant
features first, each with its group statistics and the joint plot of its subject-mean TRF.
Each function is the ``run``, ``config``, ``inputs`` or ``outputs`` of the step record
``06b_interpret`` in :data:`neuro_sae.pipeline.steps.STEPS`."""

from __future__ import annotations

import numpy as np

from ..utils import logger
from ._stim_steps import model_paths, study_layers, timed

N_DASHBOARD = 20
N_EXAMPLES = 3
N_TRF = 10


def interpret_dir(study):
    """Folder of the step's outputs: ``stimuli/interpret/layer-<ll>``."""
    layer = study_layers(study)[-1]
    return study.paths.sae_dir(layer).parents[1] / "interpret" / f"layer-{layer:02d}"


def interpret_config(study, subject):
    """Config slice of the interpret step."""
    m = study.manifest
    return dict(interpret=dict(n_dashboard=N_DASHBOARD, n_examples=N_EXAMPLES, n_trf=N_TRF),
                stats=dict(alpha=m.stats.alpha), trf=dict(tmin=m.trf.tmin, tmax=m.trf.tmax))


def interpret_producers(study, subject):
    """The primary last layer's group step (which needs its fits and SAE)."""
    from ._registry import Unit

    return [("group", Unit(model=None, layer=study_layers(study)[-1]))]


def interpret_inputs(study, subject):
    """The runs' feature series and audio, the group tables, every subject's sweep."""
    m = study.manifest
    paths, layer = model_paths(study, None), study_layers(study)[-1]
    files = [paths.features(r.id, layer) for r in m.stimuli.runs]
    files += list(m.stimulus_files(check=False).values())
    files += [paths.group_table(layer), paths.significant_table(layer)]
    files += [paths.sweep(s, layer) for s in m.subjects]
    return files


def interpret_outputs(study, subject):
    """The interpretation tables and the dashboard (folders)."""
    d = interpret_dir(study)
    return dict(tables=d / "tables", dashboard=d / "dashboard")


def interpret_run(study, subject, runtime):
    """Interpret the stimuli's features and write the dashboard."""
    import matplotlib.pyplot as plt
    import mne
    import pandas as pd

    from ..encoding import read_sweep_result
    from ..interpret import interpret_stimuli
    from ..viz import plot_trf_joint

    m = study.manifest
    paths, layer = model_paths(study, None), study_layers(study)[-1]
    with timed(runtime, "interpret"):
        sig = pd.read_parquet(paths.significant_table(layer))
        table = pd.read_parquet(paths.group_table(layer))
        sweeps = [read_sweep_result(paths.sweep(s, layer)) for s in m.subjects]
        names = list(sweeps[0].feature_names)
        mean_coef = np.mean([sw.coef for sw in sweeps], axis=0)
        info = mne.io.read_info(paths.info(m.subjects[0]), verbose=False)
        figs = {}
        for f in sig.sort_values("p_fwe")["feature"].head(N_TRF):
            i = names.index(f"f{int(f)}") if f"f{int(f)}" in names else None
            if i is None:
                continue
            figs[int(f)] = plot_trf_joint(
                mean_coef[i], sweeps[0].times, info, tmin=m.trf.tmin, tmax=m.trf.tmax,
                title=f"feature {int(f)}: mean TRF of {len(m.subjects)} subjects", show=False,
                verbose=False)
        out = interpret_stimuli(
            {r.id: paths.features(r.id, layer) for r in m.stimuli.runs},
            m.stimulus_files(check=True), interpret_dir(study), significant=sig,
            group_table=table, trf_figures=figs, n_dashboard=N_DASHBOARD,
            n_examples=N_EXAMPLES, verbose=False)
        plt.close("all")
    logger.info(f"[interpret] layer {layer}: dashboard {out['dashboard']}")
    return out
