"""Run the whole chain of a study (the demo: real Whisper features, simulated EEG)."""

from __future__ import annotations

import json
import time
from pathlib import Path

from ..io import write_json
from ..utils import logger, require_system, verbose
from ._paths import StudyPaths
from ._registry import Study
from .steps import STEPS

__all__ = ["default_manifest", "run_study", "format_summary"]


def default_manifest():
    """Path of the demo manifest (``data_manifests/demo.yaml`` of the source tree or cwd).

    Returns
    -------
    path : pathlib.Path
        The manifest.
    """
    here = Path(__file__).resolve().parents[2] / "data_manifests" / "demo.yaml"
    cwd = Path.cwd() / "data_manifests" / "demo.yaml"
    for cand in (cwd, here):
        if cand.is_file():
            return cand
    raise FileNotFoundError(
        "No demo manifest found (looked for data_manifests/demo.yaml in the current folder "
        f"and at {here}); pass --manifest PATH."
    )


@verbose
def run_study(manifest, out=None, *, force=False, figures=True, executor=None, retries=1,
              verbose=None):  # fmt: skip
    """Run every step of a study in order, each step's independent units through an executor.

    Loops over :data:`neuro_sae.pipeline.steps.STEPS` (the steps the study has); a
    step's units (per backbone, backbone x layer, subject x backbone x layer) that are
    not up to date run as independent tasks, in this process, in local processes
    (joblib) or on a dask.distributed cluster. Units with a valid record are skipped,
    so a rerun after a crash redoes only what is missing (the log names each unit it
    runs and why). Each unit writes its own files: every executor gives the same results.

    Parameters
    ----------
    manifest : Manifest
        The validated manifest.
    out : str | os.PathLike | None
        Derivatives folder (default: the manifest's ``derivatives``).
    force : bool
        Recompute every step.
    figures : bool
        Draw the figures and write the per-subject reports.
    executor : str | None
        ``"serial"``, ``"processes:N"``, ``"dask-local:N"`` or ``"dask:ADDRESS"``
        (``None``: the manifest's ``executor``).
    retries : int
        Times a failed task (an error, or its worker died) is run again before the
        study stops with an error naming its step, subject, backbone and layer.
    %(verbose)s

    Returns
    -------
    recovery : dict | None
        The planted-truth recovery (simulated studies) with the run's ``runtime_s``
        (seconds per stage summed over tasks, also written to ``<out>/runtime.json``
        with the wall time of each step and the wall and CPU time of each task), else
        ``None``.
    """
    from ._cache import remove_record
    from ._executor import Executor, run_task
    from ._registry import step_status

    out = manifest.derivatives_dir(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = StudyPaths(out)
    executor = manifest.executor if executor is None else executor
    runtime, step_wall, task_wall, task_cpu, recomputed = {}, {}, {}, {}, []
    # every Debian program/file a step of this study needs, before anything runs
    preflight = Study(manifest, out)
    require_system(*sorted({d for step in STEPS if step.in_study and step.applies(manifest)
                            and (figures or step.cli not in ("figures", "report"))
                            for d in step.system(preflight)}))
    t0 = time.perf_counter()
    with Executor(executor) as ex:
        for step in STEPS:
            if not step.in_study or not step.applies(manifest):
                continue
            if not figures and step.cli in ("figures", "report"):
                continue
            t_step = time.perf_counter()
            units = step.all_units(Study(manifest, out))
            if force:
                for u in units:
                    remove_record(paths.cache_dir(), step.step_id(u))
            failed = {}
            for attempt in range(int(retries) + 1):
                study = Study(manifest, out)
                pending = []
                for u in units:
                    reason = step_status(study, step, u)
                    if reason is not None:
                        pending.append(u)
                        logger.info(f"[{step.step_id(u)}] {reason}: {'running' if not attempt else 'retrying'}")
                if not pending:
                    break
                tasks = [(run_task, (manifest, out, step.name, u, False)) for u in pending]
                labels = [step.step_id(u) for u in pending]
                try:
                    results = ex.map(tasks, label=labels.__getitem__)
                except Exception as err:  # noqa: BLE001 - a pool whose worker died: retry
                    results = [dict(runtime={}, wall_s=0.0, error=f"{type(err).__name__}: {err}")] * len(pending)
                failed = {}
                for u, res in zip(pending, results):
                    sid = step.step_id(u)
                    for key, val in res["runtime"].items():
                        runtime[key] = round(runtime.get(key, 0.0) + val, 2)
                    if res["error"] is None:
                        task_wall[sid] = round(res["wall_s"], 2)
                        task_cpu[sid] = round(res.get("cpu_s", 0.0), 2)
                        logger.info(f"[{sid}] done: {task_wall[sid]:.1f} s wall, {task_cpu[sid]:.1f} s CPU")
                        recomputed.append(sid)
                    else:
                        failed[u] = res["error"]
                        logger.warning(f"[{sid}] failed (attempt {attempt + 1}): {res['error']}")
                if not failed:
                    break
            if failed:
                raise RuntimeError(_failure_message(step, failed, retries))
            step_wall[step.name] = round(time.perf_counter() - t_step, 2)
    runtime["total"] = round(time.perf_counter() - t0, 2)
    logger.info(f"Recomputed {len(recomputed)} unit(s): {', '.join(recomputed) or 'none'}")
    # the run's timings live outside the group step's outputs (recovery.json is one)
    write_json(dict(runtime_s=runtime, step_wall_s=step_wall, task_wall_s=task_wall, task_cpu_s=task_cpu,
                    executor=executor, recomputed=recomputed), out / "runtime.json")  # fmt: skip
    logger.info(f"Done in {runtime['total']:.0f} s; outputs in {out}")
    if manifest.eeg.simulate and paths.recovery().is_file():
        recovery = json.loads(paths.recovery().read_text())
        recovery["runtime_s"] = runtime
        return recovery
    return None


def _failure_message(step, failed, retries):
    from ._registry import Unit

    lines = [f"{len(failed)} task(s) of step {step.cli} failed {int(retries) + 1} time(s):"]
    for u, err in failed.items():
        if isinstance(u, Unit):
            who = ", ".join(f"{k} {v}" for k, v in
                            (("subject", u.subject), ("backbone", u.model or "primary"), ("layer", u.layer))
                            if v is not None) or "the study"  # fmt: skip
        else:
            who = "the study" if u is None else f"subject {u}"
        lines.append(f"  - {who}: {err}")
    lines.append("Fix the cause and rerun: units already done are not recomputed.")
    return "\n".join(lines)


def format_summary(recovery, out):
    """A short human-readable summary of a demo run.

    Parameters
    ----------
    recovery : dict
        Content of ``recovery.json``.
    out : str | os.PathLike
        The derivatives folder.

    Returns
    -------
    text : str
        The summary.
    """
    n_p = len(recovery["planted"])
    lines = [
        "",
        f"neuro_sae demo: layer {recovery['layer']}, {recovery['n_features_tested']} SAE features x "
        f"channels tested, {len(recovery['subjects'])} subjects",
        f"  planted features       : {recovery['planted']}",
        f"  recovered (group level): {len(recovery['hits'])}/{n_p} {recovery['hits']}",
        f"  missed                 : {recovery['misses']}",
        f"  false positives        : {len(recovery['false_positives'])} {recovery['false_positives']}",
        f"  explained by a planted : {len(recovery['explained_by_planted'])} "
        f"{sorted(int(k) for k in recovery['explained_by_planted'])}",
    ]
    for s, rec in recovery["subjects"].items():
        r = rec.get("planted_channels_r", {})
        r_txt = ", ".join(f"f{k}: {v:.3f}" for k, v in r.items())
        lines.append(
            f"  sub-{s}: {len(rec['hits'])}/{n_p} planted significant, "
            f"{len(rec['false_positives'])} false positive(s); planted-channel r: {r_txt}"
        )
    lines += _grid_summary(out)
    rt = recovery.get("runtime_s", {})
    lines.append("  runtime (s): " + ", ".join(f"{k} {v:.1f}" for k, v in rt.items()))
    lines.append(f"  outputs: {out} (recovery.json, runtime.json, figures/, group/layers/)")
    return "\n".join(lines)


def _grid_summary(out):
    """One line per backbone x layer of the layers step (when it ran): features tested,
    max-T and paper-protocol shares of significant features, and the layer trends."""
    import pandas as pd

    d = StudyPaths(out).layers_dir()
    if not (d / "protocol_vs_maxt.parquet").is_file():
        return []
    summary = pd.read_parquet(d / "protocol_vs_maxt.parquet")
    lines = [f"  study grid ({len(summary)} backbone x layer units; group/layers/layer_curves.png):"]
    for row in summary.itertuples():
        lines.append(f"    {row.model:<20s} layer {int(row.layer):2d}: {int(row.n_features):4d} features, "
                     f"significant max-T {100 * row.maxt_fraction:5.1f}%, paper protocol "
                     f"({row.protocol_channel}) {100 * row.protocol_fraction:5.1f}%")  # fmt: skip
    mixed = d / "layer_mixedlm.parquet"
    if mixed.is_file():
        tab = pd.read_parquet(mixed)
        for row in tab[tab["term"] == "layer"].itertuples():
            stat = getattr(row, "statistic", "max")
            what = (f"best held-out r of {int(row.n_sample)} random features per layer"
                    if stat == "sample_max" and pd.notna(getattr(row, "n_sample", None))
                    else f"layer statistic {stat!r}")
            lines.append(f"    layer trend ({what}), {row.model}: {row.estimate:+.4f} per layer "
                         f"(p = {row.p:.3g}, layer_mixedlm)")  # fmt: skip
    return lines
