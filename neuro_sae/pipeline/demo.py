"""Run the whole chain of a study (the demo: real Whisper features, simulated EEG)."""

from __future__ import annotations

import json
import time
from pathlib import Path

from ..io import write_json
from ..utils import logger, verbose
from ._paths import StudyPaths
from ._registry import Study, execute
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
def run_study(manifest, out=None, *, force=False, figures=True, verbose=None):
    """Run every step of a study in order (extract, SAE, simulate, TRF, group, figures).

    Loops over :data:`neuro_sae.pipeline.steps.STEPS` (the steps the study has, every
    subject for per-subject steps); each step is skipped while it is up to date.

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
    %(verbose)s

    Returns
    -------
    recovery : dict | None
        The planted-truth recovery (simulated studies) with the run's ``runtime_s``
        (seconds per stage, also written to ``<out>/runtime.json``), else ``None``.
    """
    out = manifest.derivatives_dir(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = StudyPaths(out)
    study = Study(manifest, out)
    runtime = {}
    t0 = time.perf_counter()
    for step in STEPS:
        if not step.in_study or not step.applies(manifest):
            continue
        if not figures and step.cli in ("figures", "report"):
            continue
        for subject in manifest.subjects if step.scope == "subject" else [None]:
            execute(study, step, subject, force=force, upstream=True, runtime=runtime)
    runtime["total"] = round(time.perf_counter() - t0, 2)
    # the run's timings live outside the group step's outputs (recovery.json is one)
    write_json(dict(runtime_s=runtime), out / "runtime.json")
    logger.info(f"Done in {runtime['total']:.0f} s; outputs in {out}")
    if manifest.eeg.simulate and paths.recovery().is_file():
        recovery = json.loads(paths.recovery().read_text())
        recovery["runtime_s"] = runtime
        return recovery
    return None


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
    rt = recovery.get("runtime_s", {})
    lines.append("  runtime (s): " + ", ".join(f"{k} {v:.1f}" for k, v in rt.items()))
    lines.append(f"  outputs: {out} (recovery.json, figures/)")
    return "\n".join(lines)
