"""Step ``interpret``: what the study's SAE features respond to, and their dashboard.

The stimulus runs of the primary backbone's last SAE layer are the clips
(:func:`neuro_sae.interpret.interpret_stimuli`); the dashboard lists the EEG-significant
features first, each with its group statistics and the joint plot of its subject-mean TRF.
With ``sae.release`` (an installed release, e.g. ``neuro-sae/whisper-base``) the runs are
encoded with the release's SAE of that layer instead (feature series in
``release_features/``); its features are not those the EEG chain tested, so the dashboard
lists the most active ones, without EEG statistics. ``sae.json`` names the SAE used.
Each function is the ``run``, ``config``, ``inputs`` or ``outputs`` of the step record
``06b_interpret`` in :data:`neuro_sae.pipeline.steps.STEPS`."""

from __future__ import annotations

import numpy as np

from ..io import write_json
from ..utils import logger
from ._stim_steps import (
    load_release,
    model_paths,
    release_identity,
    release_text,
    study_layers,
    timed,
)

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
    cfg = dict(interpret=dict(n_dashboard=N_DASHBOARD, n_examples=N_EXAMPLES, n_trf=N_TRF),
               stats=dict(alpha=m.stats.alpha), trf=dict(tmin=m.trf.tmin, tmax=m.trf.tmax))
    ident = release_identity(study, study_layers(study)[-1])
    if ident is not None:  # the release's identity (its release.json hash) is in the key
        cfg["sae_release"] = dict(ident, mode=m.features.mode)
    return cfg


def interpret_producers(study, subject):
    """The primary last layer's group step (which needs its fits and SAE); with
    ``sae.release`` the extraction (the release SAE encodes the activations)."""
    from ._registry import Unit

    if study.manifest.sae.release is not None:
        return [("extract", Unit(model=None))]
    return [("group", Unit(model=None, layer=study_layers(study)[-1]))]


def interpret_inputs(study, subject):
    """The runs' feature series and audio, the group tables, every subject's sweep; with
    ``sae.release`` the runs' activations and audio."""
    m = study.manifest
    paths, layer = model_paths(study, None), study_layers(study)[-1]
    if m.sae.release is not None:
        return [paths.activations(r.id) for r in m.stimuli.runs] + list(
            m.stimulus_files(check=False).values())
    files = [paths.features(r.id, layer) for r in m.stimuli.runs]
    files += list(m.stimulus_files(check=False).values())
    files += [paths.group_table(layer), paths.significant_table(layer)]
    files += [paths.sweep(s, layer) for s in m.subjects]
    return files


def interpret_outputs(study, subject):
    """The interpretation tables and the dashboard (folders), and ``sae.json`` (the SAE used)."""
    d = interpret_dir(study)
    return dict(tables=d / "tables", dashboard=d / "dashboard", sae=d / "sae.json")


def _interpret_release(study, layer, runtime):
    """Encode the runs with the ``sae.release`` SAE and interpret its features."""
    from ..activations import read_activations
    from ..features import encode_features
    from ..interpret import interpret_stimuli

    m = study.manifest
    paths, out_dir = model_paths(study, None), interpret_dir(study)
    acts = {r.id: read_activations(paths.activations(r.id), layers=[layer]) for r in m.stimuli.runs}
    sae, ident = load_release(study, layer, next(iter(acts.values())))
    with timed(runtime, "interpret"):
        files = {}
        for rid, a in acts.items():
            fs = encode_features(sae, a, layer=layer, mode=m.features.mode,
                                 sae_id=f"{ident['name']}/layer-{layer:02d}")  # fmt: skip
            files[rid] = out_dir / "release_features" / f"{rid}_features.npz"
            fs.save(files[rid], overwrite=True)
        out = interpret_stimuli(files, m.stimulus_files(check=True), out_dir, n_dashboard=N_DASHBOARD,
                                n_examples=N_EXAMPLES, verbose=False)  # fmt: skip
    write_json(dict(source="release", text=release_text(ident), d_sae=int(sae.cfg.d_sae), **ident),
               interpret_outputs(study, None)["sae"])
    logger.info(f"[interpret] layer {layer}: {release_text(ident)}; dashboard {out['dashboard']}")
    return out


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
    if m.sae.release is not None:
        return _interpret_release(study, layer, runtime)
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
    write_json(dict(source="study", text=f"the study's SAE of layer {layer} (step 02_train_sae)",
                    layer=int(layer), folder=study.labels.label(paths.sae_dir(layer))),
               interpret_outputs(study, None)["sae"])  # fmt: skip
    logger.info(f"[interpret] layer {layer}: dashboard {out['dashboard']}")
    return out
