"""The pipeline's steps: one table (:data:`STEPS`) that the ``neuro-sae`` CLI, the
``analyses/NN_*.py`` scripts and :func:`run_study` all loop over, and the functions
that run one step (:func:`run_step`) or report every step's state (:func:`study_status`).

Each step record names its configuration slice (a function of the manifest), its
declared inputs, its producers, its outputs and its ``run``; see
:mod:`neuro_sae.pipeline._registry` for how keys chain and when a step is stale.
"""

from __future__ import annotations

from ..utils import fill_doc, logger, verbose
from . import _eeg_steps as E
from . import _interpret_step as IN
from . import _layer_steps as LY
from . import _steer_step as ST
from . import _stim_steps as S
from ._registry import StaleError, Step, Study, Unit, execute, get_step, step_status

__all__ = [
    "STEPS",
    "StaleError",
    "Step",
    "extract_step",
    "fit_subject_step",
    "get_step",
    "group_step",
    "run_step",
    "sae_layers",
    "sae_report_step",
    "simulate_step",
    "study_status",
    "train_sae_step",
]


def _none(study, subject):
    return []


def _alpha_slice(study, subject):
    return dict(stats=dict(alpha=study.manifest.stats.alpha))


def _primary_last(study, subject=None):
    return Unit(subject=subject, model=None, layer=E._layer(study))


def _fit_producers(study, unit):
    unit = E._unit(study, unit)
    return [("train-sae", Unit(model=unit.model, layer=unit.layer)), ("simulate", None)]


def _group_producers(study, unit):
    unit = E._unit(study, unit)
    return [("fit", Unit(s, unit.model, unit.layer)) for s in study.manifest.subjects] + [
        ("train-sae", Unit(model=unit.model, layer=unit.layer)), ("simulate", None)]


def _train_producers(study, unit):
    return [("extract", Unit(model=unit.model if isinstance(unit, Unit) else None))]


def _simulated(manifest):
    return manifest.eeg.simulate


#: Every step of the pipeline, in the order a study runs them.
STEPS = (
    Step(
        name="01_extract", cli="extract", scope="model",
        help="step 01: backbone activations (every layer) of every stimulus run, per backbone",
        config=S.extract_config, inputs=S.extract_inputs, producers=_none,
        outputs=S.extract_outputs, run=S.extract_run, units=S.model_units,
    ),
    Step(
        name="02_train_sae", cli="train-sae", scope="model-layer",
        help="step 02: train (or read sae.pretrained) the SAE of each backbone x layer, encode "
             "feature series, select alive features",
        config=S.train_config, inputs=S.train_inputs, producers=_train_producers,
        outputs=S.train_outputs, run=S.train_run, units=S.model_layer_units,
    ),
    Step(
        name="03_simulate", cli="simulate", scope="study",
        help="step 03: simulate EEG with planted responses from the features (eeg.simulate)",
        config=E.simulate_config, inputs=E.simulate_inputs,
        producers=lambda st, s: [("train-sae", _primary_last(st))], outputs=E.simulate_outputs,
        run=E.simulate_run, applies=_simulated,
        not_applicable="Manifest {manifest}: eeg.simulate is false, so EEG is read from "
                       "eeg.files and step 03 (simulate) has nothing to do; set eeg.simulate: "
                       "true to simulate EEG.",
    ),
    Step(
        name="04_fit_trf", cli="fit", scope="subject-model-layer",
        help="step 04: TRF sweep, circular-shift permutation null, paper-protocol kernels and "
             "variance partitioning of one subject x backbone x layer",
        config=E.fit_config, inputs=E.fit_inputs, producers=_fit_producers,
        outputs=E.fit_outputs, run=E.fit_run, units=E.fit_units,
    ),
    Step(
        name="05_group_stats", cli="group", scope="model-layer",
        help="step 05: group-level max-T statistics, tables and planted-truth recovery, per "
             "backbone x layer",
        config=E.group_config, inputs=E.group_inputs, producers=_group_producers,
        outputs=E.group_outputs, run=E.group_run, units=S.model_layer_units,
    ),
    Step(
        name="05b_layers", cli="layers", scope="study",
        help="across layers and backbones: layer curves, layer_mixedlm trend, variance "
             "partitioning against the acoustic envelope, the paper's protocol beside max-T",
        config=LY.layers_config, inputs=LY.layers_inputs, producers=LY.layers_producers,
        outputs=LY.layers_outputs, run=LY.layers_run,
    ),
    Step(
        name="06b_interpret", cli="interpret", scope="study",
        help="what the last layer's SAE features respond to in the stimuli (domains, label "
             "search, examples) and a static HTML dashboard, EEG-significant features first "
             "with their group statistics and TRF joint plots",
        config=IN.interpret_config, inputs=IN.interpret_inputs,
        producers=IN.interpret_producers, outputs=IN.interpret_outputs, run=IN.interpret_run,
    ),
    Step(
        name="07_figures", cli="figures", scope="study",
        help="draw the study figures from saved results",
        config=_alpha_slice, inputs=_none,
        producers=lambda st, s: [("group", _primary_last(st))]
        + [("fit", _primary_last(st, x)) for x in st.manifest.subjects],
        outputs=None, run=E.figures_run,
    ),
    Step(
        name="08_report", cli="report", scope="subject",
        help="write one mne.Report (HTML) per subject from saved results",
        config=_alpha_slice, inputs=_none,
        producers=lambda st, s: [("group", _primary_last(st)), ("fit", _primary_last(st, s))],
        outputs=None, run=E.report_run,
    ),
    Step(
        name="06_sae_report", cli="sae-report", scope="study",
        help="step 06: SAEs of every layer x seed, their metrics and seed consistency",
        config=S.sae_report_config, inputs=S.sae_report_inputs,
        producers=lambda st, s: [("extract", Unit())], outputs=None, run=S.sae_report_run,
        in_study=False, options=S.SAE_REPORT_OPTIONS,
    ),
    Step(
        name="08b_steer", cli="steer", scope="study",
        help="steer Whisper away from hearing speech in music and sound effects with the last "
             "layer's SAE features and the S-vector; FPR, hallucination rate, TPR and WER",
        config=ST.steer_config, inputs=ST.steer_inputs, producers=ST.steer_producers,
        outputs=ST.steer_outputs, run=ST.steer_run, applies=ST.steer_applies,
        not_applicable=ST.STEER_NOT_APPLICABLE, options=ST.STEER_OPTIONS,
        system=ST.steer_system,
        # in every study run, small by default; a fit set with too few false detections
        # (or rejections) for a vector is recorded as skipped, not an error
    ),
)  # fmt: skip


@fill_doc
def sae_layers(manifest, paths):
    """The layers that get an SAE (``"last"`` resolved from the extracted activations).

    Parameters
    ----------
    %(manifest)s
    paths : StudyPaths
        The derivatives layout.

    Returns
    -------
    layers : list of int
        1-based layers.
    """
    return S.resolved_layers(manifest, paths)


@fill_doc
@verbose
def run_step(manifest, step, out=None, *, subject=None, model=None, layer=None, force=False,
             upstream=False, options=None, runtime=None, verbose=None):  # fmt: skip
    """Run one step of the pipeline unless it is up to date.

    Parameters
    ----------
    %(manifest)s
    step : str
        The step, by CLI name (``"extract"``, ``"train-sae"``, ``"simulate"``, ``"fit"``,
        ``"group"``, ``"figures"``, ``"report"``, ``"sae-report"``) or record name
        (``"04_fit_trf"``).
    %(out)s
    subject : str | None
        Subject of a per-subject step (``None``: every subject in turn).
    model : str | None
        Only the units of this backbone (its tag; ``"primary"``: the first one).
    layer : int | None
        Only the units of this SAE layer.
    %(force)s
    upstream : bool
        Run the producers that are out of date first. ``False``: a stale or missing
        producer raises :class:`StaleError` naming what changed and the commands to run.
    options : dict | None
        Values of the step's extra options (``sae-report``: ``layers``, ``seeds``, ...).
    %(runtime)s
    %(verbose)s

    Returns
    -------
    outputs : dict | list
        The step's output paths (per subject for a per-subject step run for all; per
        unit label, e.g. ``"layer-03-sub-01"``, when several units ran).
    """
    st = get_step(step)
    study = Study(manifest, out, options=options)
    study.root.mkdir(parents=True, exist_ok=True)
    if subject is not None:
        if st.scope not in ("subject", "subject-model-layer"):
            raise ValueError(
                f"Step {st.cli!r} covers every subject at once; subject={subject!r} does not apply "
                "(leave it out)."
            )
        manifest._check_subject(subject)
    if upstream:  # the units of a step may be read from activations: extract them first
        try:
            st.all_units(study)
        except FileNotFoundError:
            ext = get_step("extract")
            for u in ext.all_units(study):
                execute(study, ext, u, upstream=True, runtime=runtime)
    units = select_units(study, st, subject=subject, model=model, layer=layer)
    results = {}
    for unit in units:
        results[unit] = execute(study, st, unit, force=force, upstream=upstream, runtime=runtime)
    if st.scope == "subject" and subject is None:
        return results
    if len(results) == 1:
        return next(iter(results.values()))
    return {(u.label() if isinstance(u, Unit) else u): r for u, r in results.items()}


def select_units(study, step, *, subject=None, model=None, layer=None):
    """The units of a step, those of one subject, backbone tag or layer only when given."""
    try:
        units = step.all_units(study)
    except FileNotFoundError as err:
        extract = get_step("extract")
        cmds = "\n".join(f"  {study.command(extract, u)}" for u in extract.all_units(study))
        raise StaleError(
            f"Cannot run {step.cli}: its backbone x layer units are read from the activations "
            f"({err}).\n  - extract: has not run (or its last run failed)\nRun it first:\n{cmds}\n"
            f"or rerun with --upstream ({study.command(step, subject)} --upstream)."
        ) from None
    if subject is not None:
        units = [u for u in units if (u.subject if isinstance(u, Unit) else u) == str(subject)]
    if model is not None:
        tags = {u.model or "primary" for u in units if isinstance(u, Unit)}
        if model not in tags:
            raise ValueError(f"--model {model!r} is not a backbone of {step.cli}; its backbones: "
                             f"{sorted(tags)} ('primary': the first one).")  # fmt: skip
        units = [u for u in units if isinstance(u, Unit) and (u.model or "primary") == model]
    if layer is not None:
        layers = sorted({u.layer for u in units if isinstance(u, Unit) and u.layer is not None})
        if int(layer) not in layers:
            raise ValueError(f"--layer {layer} is not an SAE layer of {step.cli} here; its layers: "
                             f"{layers}.")  # fmt: skip
        units = [u for u in units if isinstance(u, Unit) and u.layer == int(layer)]
    return units


@fill_doc
@verbose
def study_status(manifest, out=None, *, options=None, verbose=None):
    """Whether each step of a study is up to date, and if not, why.

    Parameters
    ----------
    %(manifest)s
    %(out)s
    options : dict | None
        Values of the steps' extra options.
    %(verbose)s

    Returns
    -------
    status : dict of str to (str | None)
        Step record name (``"04_fit_trf-sub-01"``) to ``None`` (up to date) or the
        reason it is stale. Steps the study does not have (``simulate`` with real EEG)
        are left out; so are ``figures``, ``report`` and ``sae-report`` until they ran.
    """
    study = Study(manifest, out, options=options)
    status = {}
    for st in STEPS:
        if not st.applies(manifest):
            continue
        try:
            subjects = st.all_units(study)
        except FileNotFoundError:
            status[st.name] = "its units are not known yet (extract has not run)"
            continue
        for s in subjects:
            if st.outputs is None and not (study.paths.cache_dir() / f"{st.step_id(s)}.json").exists():
                continue
            status[st.step_id(s)] = step_status(study, st, s)
    for sid, reason in status.items():
        logger.info(f"{sid}: {'up to date' if reason is None else reason}")
    return status


# ------------------------------------------------------------- one function per step
@fill_doc
@verbose
def extract_step(manifest, out, *, force=False, upstream=False, runtime=None, verbose=None):
    """Step 01: read every stimulus, run the backbone, save all layers' activations.

    Parameters
    ----------
    %(manifest)s
    %(out)s
    %(force)s
    upstream : bool
        See :func:`run_step`.
    %(runtime)s
    %(verbose)s

    Returns
    -------
    outputs : dict of str to pathlib.Path
        Run id to activation file.
    """
    return run_step(manifest, "extract", out, force=force, upstream=upstream, runtime=runtime)


@fill_doc
@verbose
def train_sae_step(manifest, out, *, force=False, upstream=False, runtime=None, verbose=None):
    """Step 02: train (or read, ``sae.pretrained``) one SAE per layer, encode every run.

    Parameters
    ----------
    %(manifest)s
    %(out)s
    %(force)s
    upstream : bool
        See :func:`run_step`.
    %(runtime)s
    %(verbose)s

    Returns
    -------
    outputs : dict of str to pathlib.Path
        ``sae-<layer>``, ``alive-<layer>`` and ``features-<layer>-<run>`` files.
    """
    return run_step(manifest, "train-sae", out, force=force, upstream=upstream, runtime=runtime)


@fill_doc
@verbose
def simulate_step(manifest, out, *, force=False, upstream=False, runtime=None, verbose=None):
    """Step 03 (simulated studies only): EEG driven by the real SAE features.

    Parameters
    ----------
    %(manifest)s
    %(out)s
    %(force)s
    upstream : bool
        See :func:`run_step`.
    %(runtime)s
    %(verbose)s

    Returns
    -------
    outputs : dict of str to pathlib.Path
        ``eeg-<subject>`` and ``truth-<subject>`` files.
    """
    return run_step(manifest, "simulate", out, force=force, upstream=upstream, runtime=runtime)


@fill_doc
@verbose
def fit_subject_step(manifest, out, subject, *, force=False, upstream=False, runtime=None,
                     verbose=None):  # fmt: skip
    """Step 04: align one subject's EEG with the features, sweep TRFs, permutation null.

    Parameters
    ----------
    %(manifest)s
    %(out)s
    subject : str
        Subject label.
    %(force)s
    upstream : bool
        See :func:`run_step`.
    %(runtime)s
    %(verbose)s

    Returns
    -------
    outputs : dict of str to pathlib.Path
        ``sweep``, ``permutation``, ``table`` and ``info`` files.
    """
    return run_step(manifest, "fit", out, subject=subject, force=force, upstream=upstream,
                    runtime=runtime)  # fmt: skip


@fill_doc
@verbose
def group_step(manifest, out, *, force=False, upstream=False, runtime=None, verbose=None):
    """Step 05: group-level max-T test across subjects, tables, planted-truth recovery.

    Parameters
    ----------
    %(manifest)s
    %(out)s
    %(force)s
    upstream : bool
        See :func:`run_step`.
    %(runtime)s
    %(verbose)s

    Returns
    -------
    outputs : dict of str to pathlib.Path
        ``group``, ``table``, ``significant`` and (simulated studies) ``recovery`` files.
    """
    return run_step(manifest, "group", out, force=force, upstream=upstream, runtime=runtime)


@fill_doc
@verbose
def sae_report_step(manifest, out, *, layers=None, seeds=(0, 1), expansion=8, k=50, n_steps=500,
                    batch_size=1024, lr=2e-4, device="cpu", force=False, upstream=False,
                    verbose=None):  # fmt: skip
    """Step 06: SAEs of every layer x seed of the study, their metrics and seed consistency.

    Trains one SAE per layer and seed from the activations of step 01, then writes
    per-layer metrics and consistency tables as parquet and a figure under
    ``<out>/stimuli/sae_report`` (see :func:`neuro_sae.sae.sae_layer_report`). The SAEs
    are reused only while the step's record matches its options and inputs.

    Parameters
    ----------
    %(manifest)s
    %(out)s
    layers : list of int | None
        1-based layers (``None``: every extracted layer).
    seeds : sequence of int
        SAE seeds per layer (two or more for seed consistency).
    expansion, k : int
        Dictionary size as a multiple of the layer width, and active features per frame.
    n_steps, batch_size : int
        Training steps and frames per step.
    lr : float
        Adam learning rate.
    %(device)s
    %(force)s
    upstream : bool
        See :func:`run_step`.
    %(verbose)s

    Returns
    -------
    outputs : dict | list of pathlib.Path
        As returned by :func:`neuro_sae.sae.sae_layer_report` when the step ran, else
        the recorded output files.
    """
    options = dict(layers=layers, seeds=list(seeds), expansion=expansion, k=k, n_steps=n_steps,
                   batch_size=batch_size, lr=lr, device=device)  # fmt: skip
    return run_step(manifest, "sae-report", out, force=force, upstream=upstream, options=options)
