"""The step registry's engine: step records, keys that chain through producers, staleness.

A step's key hashes its configuration slice (a function of the manifest), the package
version, the content of its input files (named relative to the folder they belong to)
and the keys of its producers, recomputed from the *current* manifest and files. A
step is up to date when its record holds the current key and every recorded output
still has the hash it had when written. Before a step runs, its producers must be up
to date: with ``upstream=True`` the stale ones are run first, otherwise a
:class:`StaleError` names what changed (the setting, e.g. ``trf.tmax changed from 0.5
to 0.6``, or the file) and the commands to run. A step's record is removed before it
runs, so a failed run leaves none and no later step consumes its previous results.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

from .. import __version__
from ..io import hash_config, remove_partial_writes
from ..utils import logger, require_system
from ._cache import (
    Labels,
    explain_change,
    hash_path,
    read_record,
    remove_record,
    write_record,
)
from ._paths import StudyPaths


class Unit(NamedTuple):
    """What one task of a step covers: a subject, a backbone (its tag, ``None``: the
    primary one) and a layer; a field left ``None`` is not part of the unit."""

    subject: str | None = None
    model: str | None = None
    layer: int | None = None

    def label(self):
        """``model-<tag>-layer-NN-sub-XX`` (the parts the unit has)."""
        parts = []
        if self.model is not None:
            parts.append(f"model-{self.model}")
        if self.layer is not None:
            parts.append(f"layer-{int(self.layer):02d}")
        if self.subject is not None:
            parts.append(f"sub-{self.subject}")
        return "-".join(parts)


def unit_subject(unit):
    """The subject of a unit (a plain subject label or a :class:`Unit`), or ``None``."""
    return unit.subject if isinstance(unit, Unit) else unit


class StaleError(RuntimeError):
    """A step's producers are out of date (or never ran); the message says what to run."""


@dataclass(frozen=True)
class Step:
    """One step of the pipeline.

    Attributes
    ----------
    name : str
        Record name, e.g. ``"04_fit_trf"``.
    cli : str
        Sub-command of ``neuro-sae`` (e.g. ``"fit"``).
    scope : ``"study"`` | ``"subject"`` | ``"model"`` | ``"model-layer"`` | ``"subject-model-layer"``
        Whether the step runs once, once per subject, per backbone, per backbone x
        layer or per subject x backbone x layer (the units of the last three are
        :class:`Unit`; ``units`` lists them).
    help : str
        One line for ``--help``.
    config : callable
        ``config(study, subject) -> dict``: the slice of the manifest (and of the
        step's options) the results depend on, nested by manifest section.
    inputs : callable
        ``inputs(study, subject) -> list of Path``: files and folders read.
    producers : callable
        ``producers(study, subject) -> list of (cli name, subject or None)``.
    outputs : callable | None
        ``outputs(study, subject) -> dict of name -> Path``; ``None``: the paths in
        what ``run`` returns.
    run : callable
        ``run(study, subject, runtime) -> result``.
    applies : callable
        ``applies(manifest) -> bool``: whether the study has this step.
    not_applicable : str
        Why not, when it does not apply (an error message).
    in_study : bool
        Part of :func:`run_study` (``neuro-sae demo``).
    options : tuple of (str, dict)
        Extra command-line options (flag, :meth:`argparse.ArgumentParser.add_argument`
        keywords); their values reach the step as ``study.options``.
    units : callable | None
        ``units(study) -> list``: the units of a ``model*`` scope (``None``: from the
        scope: ``[None]`` or the subjects).
    system : callable
        ``system(study) -> tuple of str``: the system dependencies
        (:data:`neuro_sae.utils.SYSTEM_DEPENDENCIES` names) the step's run needs; checked
        before a study or the step starts, so a missing Debian package stops it at once
        with the package named, not after the earlier steps ran.
    """

    name: str
    cli: str
    scope: str
    help: str
    config: Callable
    inputs: Callable
    producers: Callable
    outputs: Callable | None
    run: Callable
    applies: Callable = lambda manifest: True
    not_applicable: str = ""
    in_study: bool = True
    options: tuple = field(default_factory=tuple)
    units: Callable | None = None
    system: Callable = lambda study: ()

    def step_id(self, subject=None):
        """Record name of this step for one unit (``None``: study-level; a subject label;
        a :class:`Unit`)."""
        if subject is None:
            return self.name
        if isinstance(subject, Unit):
            label = subject.label()
            return f"{self.name}-{label}" if label else self.name
        return f"{self.name}-sub-{subject}"

    def all_units(self, study):
        """Every unit of the step in the study (may raise ``FileNotFoundError`` when the
        layers are read from activations not extracted yet)."""
        if self.units is not None:
            return list(self.units(study))
        return list(study.manifest.subjects) if self.scope == "subject" else [None]


class Study:
    """A manifest, its derivatives folder and what is known about its steps now.

    Parameters
    ----------
    manifest : Manifest
        The validated manifest.
    out : str | os.PathLike | None
        The derivatives folder (``None``: the manifest's).
    options : dict | None
        Values of the steps' extra options (``{"layers": [1, 2], ...}``).
    """

    def __init__(self, manifest, out=None, *, options=None):
        self.manifest = manifest
        self.root = manifest.derivatives_dir(out)
        self.out_given = out is not None
        self.paths = StudyPaths(self.root)
        self.options = dict(options or {})
        eeg_root = manifest.resolve(manifest.eeg.root) if manifest.eeg.root else None
        self.labels = Labels(
            [("", self.root), ("stimuli", manifest.stimuli_dir()), ("eeg", eeg_root),
             ("manifest", manifest.base_dir)]
        )  # fmt: skip
        self.memo = {}
        self._keys = {}

    def forget(self):
        """Drop what was computed from files (after a step wrote some)."""
        self.memo.clear()
        self._keys.clear()

    def command(self, step, subject=None):
        """The ``neuro-sae`` command that runs one step."""
        parts = ["neuro-sae", step.cli]
        unit = subject if isinstance(subject, Unit) else Unit(subject=subject)
        if unit.subject is not None:
            parts += ["--subject", str(unit.subject)]
        if self.manifest.path:
            parts += ["--manifest", str(self.manifest.path)]
        if self.out_given:
            parts += ["--out", str(self.root)]
        if unit.model is not None:
            parts += ["--model", str(unit.model)]
        if unit.layer is not None:
            parts += ["--layer", str(unit.layer)]
        return shlex.join(parts)


def _steps():
    from .steps import STEPS

    return STEPS


def get_step(name):
    """The step record of a step, by CLI name (``"fit"``) or record name (``"04_fit_trf"``).

    Parameters
    ----------
    name : str | Step
        The step.

    Returns
    -------
    step : Step
        Its record.
    """
    if isinstance(name, Step):
        return name
    for step in _steps():
        if name in (step.cli, step.name):
            return step
    from ..utils import suggest

    names = [s.cli for s in _steps()]
    raise ValueError(
        f"Unknown step {name!r}; the steps are {', '.join(names)}.{suggest(str(name), names)}"
    )


def _producers(study, step, subject):
    out = []
    for name, subj in step.producers(study, subject):
        prod = get_step(name)
        if prod.applies(study.manifest):
            out.append((prod, subj))
    return out


def current_parts(study, step, subject=None):
    """What the step's key is made of now: config, inputs, producers' keys, version.

    Returns ``None`` when the inputs cannot even be listed (e.g. the layer to use is
    read from activations that do not exist yet).
    """
    sid = step.step_id(subject)
    if sid in study._keys:
        return study._keys[sid]
    try:
        inputs = {study.labels.label(p): hash_path(p) for p in step.inputs(study, subject)}
        config = step.config(study, subject)
    except FileNotFoundError:
        parts = None
    else:
        producers = {}
        for prod, subj in _producers(study, step, subject):
            pp = current_parts(study, prod, subj)
            producers[prod.step_id(subj)] = None if pp is None else pp["key"]
        parts = dict(config=config, inputs=inputs, producers=producers, version=__version__)
        parts["key"] = hash_config(parts)
    study._keys[sid] = parts
    return parts


def step_status(study, step, subject=None):
    """Whether a step is up to date, and if not, why.

    Parameters
    ----------
    study : Study
        The study.
    step : Step
        The step.
    subject : str | Unit | None
        The subject of a per-subject step, or the unit of a ``model*`` step.

    Returns
    -------
    reason : str | None
        ``None`` when up to date, else what makes it stale.
    """
    rec = read_record(study.paths.cache_dir(), step.step_id(subject))
    if rec is None:
        return "has not run (or its last run failed)"
    parts = current_parts(study, step, subject)
    if parts is None:
        return "its inputs are missing"
    if rec["key"] != parts["key"]:
        reasons = explain_change(rec, parts)
        return "; ".join(reasons) if reasons else "its key changed"
    for label, digest in rec.get("outputs", {}).items():
        now = hash_path(study.labels.path(label))
        if now != digest:
            return f"output {label} {'is missing' if now is None else 'was modified'}"
    return None


def stale_upstream(study, step, subject=None):
    """The steps ``step`` depends on (transitively) that are out of date, upstream first.

    Returns
    -------
    stale : list of (Step, subject, reason)
    """
    seen, out = set(), []

    def visit(st, subj):
        for prod, psubj in _producers(study, st, subj):
            sid = prod.step_id(psubj)
            if sid in seen:
                continue
            seen.add(sid)
            visit(prod, psubj)
            reason = step_status(study, prod, psubj)
            if reason is not None:
                out.append((prod, psubj, reason))

    visit(step, subject)
    return out


def _who(step, subject):
    if isinstance(subject, Unit):
        return f"{step.cli}" + (f" ({subject.label()})" if subject.label() else "")
    return f"{step.cli}" + ("" if subject is None else f" (sub-{subject})")


def _stale_message(study, step, subject, stale):
    lines = [
        f"Cannot run {_who(step, subject)}: {len(stale)} step(s) it depends on are out of date:"
    ]
    for st, subj, reason in stale:
        lines.append(f"  - {_who(st, subj)}: {reason}")
    lines.append("Run them first, in this order:")
    for st, subj, _ in stale:
        lines.append(f"  {study.command(st, subj)}")
    lines.append(
        f"or rerun with --upstream ({study.command(step, subject)} --upstream; in Python "
        "upstream=True), which runs them for you."
    )
    return "\n".join(lines)


def _collect_paths(obj):
    from pathlib import Path

    if isinstance(obj, Path):
        return [obj]
    if isinstance(obj, dict):
        obj = list(obj.values())
    if isinstance(obj, (list, tuple)):
        return [p for o in obj for p in _collect_paths(o)]
    return []


def execute(study, step, subject=None, *, force=False, upstream=False, runtime=None):
    """Run one step for one subject (or the study) if it is not up to date.

    Parameters
    ----------
    study : Study
        The study.
    step : Step
        The step.
    subject : str | Unit | None
        The subject of a per-subject step, or the unit of a ``model*`` step.
    force : bool
        Run even when up to date (this step only, not its producers).
    upstream : bool
        Run stale producers first instead of raising :class:`StaleError`.
    runtime : dict | None
        Seconds per stage, accumulated.

    Returns
    -------
    result : object
        What the step returns (its output paths).
    """
    manifest = study.manifest
    if not step.applies(manifest):
        raise ValueError(step.not_applicable.format(manifest=manifest.path or "the manifest"))
    require_system(*step.system(study))
    if upstream:
        for prod, psubj in _producers(study, step, subject):
            execute(study, prod, psubj, upstream=True, runtime=runtime)
    else:
        stale = stale_upstream(study, step, subject)
        if stale:
            raise StaleError(_stale_message(study, step, subject, stale))
    reason = step_status(study, step, subject)
    sid = step.step_id(subject)
    if reason is None and not force:
        logger.info(f"[{sid}] up to date, skipping")
        return step.outputs(study, subject) if step.outputs is not None else _recorded(study, sid)
    logger.info(f"[{sid}] {'forced' if reason is None else reason}: running")
    cache_dir = study.paths.cache_dir()
    remove_record(cache_dir, sid)
    if step.outputs is not None:  # what a killed earlier run of this unit left half-written
        removed = [r for p in _collect_paths(step.outputs(study, subject))
                   for r in remove_partial_writes(p)]  # fmt: skip
        if removed:
            logger.info(f"[{sid}] removed {len(removed)} temporary file(s) left by a killed run")
    try:
        result = step.run(study, subject, runtime)
    except BaseException:
        remove_record(cache_dir, sid)
        study.forget()
        raise
    study.forget()
    parts = current_parts(study, step, subject)
    outputs = step.outputs(study, subject) if step.outputs is not None else result
    record = dict(step=step.name, subject=unit_subject(subject),
                  unit=subject._asdict() if isinstance(subject, Unit) else None, **{k: parts[k] for k in
                  ("key", "config", "inputs", "producers", "version")})  # fmt: skip
    files = []
    for path in _collect_paths(outputs):  # a folder is recorded file by file
        files += sorted(f for f in path.rglob("*") if f.is_file()) if path.is_dir() else [path]
    record["outputs"] = {study.labels.label(p): hash_path(p) for p in files}
    write_record(cache_dir, sid, record)
    return result


def _recorded(study, sid):
    rec = read_record(study.paths.cache_dir(), sid) or {}
    return [study.labels.path(label) for label in rec.get("outputs", {})]
