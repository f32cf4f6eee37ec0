"""The study manifest: a validated YAML description of stimuli, subjects, EEG,
backbone, SAE, TRF and statistics settings.

Loading validates with pydantic (unknown keys are rejected with a "did you
mean" suggestion), resolves paths relative to the manifest file and names any
missing file.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .utils import check_fname, is_standard_montage, logger, verbose

__all__ = ["Manifest", "ManifestError", "load_manifest"]

PACKAGE_STIMULI = "package:demo_stimuli"


class ManifestError(ValueError):
    """A manifest that does not validate; the message names the file, key and fix."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class StimulusRun(_Section):
    """One stimulus run: an audio file presented once per subject."""

    id: str = Field(description="Run identifier; EEG annotations read '<onset_prefix><id>'.")
    file: str = Field(description="Audio file, relative to the stimuli folder.")
    transcript: str | None = Field(default=None, description="Optional transcript file.")


class StimuliSection(_Section):
    """Where the stimuli are."""

    root: str = Field(
        default=PACKAGE_STIMULI,
        description="Stimuli folder relative to the manifest, or 'package:demo_stimuli'.",
    )
    runs: list[StimulusRun] = Field(min_length=1)

    @field_validator("runs")
    @classmethod
    def _unique_ids(cls, runs):
        ids = [r.id for r in runs]
        dup = sorted({i for i in ids if ids.count(i) > 1})
        if dup:
            raise ValueError(f"stimulus run ids must be unique; repeated: {dup}")
        return runs


class RunSplit(_Section):
    """A named split of the stimulus runs into development (training) and test runs."""

    dev: list[str] = Field(min_length=1, description="Development runs (fit, lag choice, scaling statistics).")
    test: list[str] = Field(min_length=1, description="Held-out test runs.")

    @model_validator(mode="after")
    def _disjoint(self):
        both = sorted(set(self.dev) & set(self.test))
        if both:
            raise ValueError(f"runs {both} are in both dev and test; a split must keep them apart")
        return self


class EEGSection(_Section):
    """The EEG recordings and their preprocessing."""

    files: str = Field(
        default="{derivatives}/sub-{subject}/eeg/sub-{subject}_task-listen_eeg.fif",
        description="Pattern of one recording per subject ({subject}, {derivatives}).",
    )
    simulate: bool = Field(default=False, description="Simulate EEG from the features (demo).")
    montage: str | None = Field(
        default="biosemi64",
        description="Electrode positions: a built-in MNE montage name "
        "(mne.channels.get_builtin_montages(), or any name mne.channels.make_standard_montage "
        "accepts, e.g. the deprecated alias 'standard_1020' with MNE's FutureWarning) or a "
        "montage file relative to the manifest; "
        "None: the positions stored in the recordings.",
    )
    onset_prefix: str = "stim/"
    sfreq: float = Field(default=128.0, gt=0, description="Analysis rate in Hz.")
    l_freq: float | None = Field(default=1.0, ge=0)
    h_freq: float | None = Field(default=8.0, gt=0)
    reference: str | None = Field(
        default=None, description="None, 'average', 'mastoids' (Dryad layout) or a channel name."
    )
    scaling: Literal["robust", "zscore"] | None = "robust"
    format: Literal["fif", "mne", "dryad", "bids"] = Field(
        default="fif",
        description="'fif'/'mne': one MNE-readable file per subject (eeg.files); 'dryad': the "
        "Broderick 2018 Dryad layout under eeg.root; 'bids': a BIDS root (eeg.root, eeg.task).",
    )
    root: str | None = Field(default=None, description="Dataset folder for 'dryad' and 'bids', relative to the manifest.")
    task: str | None = Field(default=None, description="BIDS task label.")
    runs: list[int] | None = Field(default=None, description="Run numbers to read ('dryad'/'bids'); None: all.")
    stimulus_id: str = Field(default="run{run:02d}", description="Stimulus id of run number {run} ('dryad'/'bids').")
    sfreq_file: float | None = Field(default=None, gt=0, description="Expected rate of the files in Hz (checked).")
    event_id: dict[int, str] | None = Field(default=None, description="Trigger code -> stimulus id ('mne').")
    stim_channel: str | None = None
    annotation_map: dict[str, str] | None = Field(default=None, description="Annotation description -> stimulus id ('mne').")
    onsets_table: str | None = Field(default=None, description="Pattern of a run-onset table per subject ({subject}).")
    bads: dict[str, list[str]] = Field(default_factory=dict, description="Subject -> bad channels.")
    splits: dict[str, RunSplit] = Field(default_factory=dict, description="Named dev/test splits of the runs.")
    split: str | None = Field(default=None, description="The split in use (a key of eeg.splits); None: all runs.")

    @model_validator(mode="after")
    def _band(self):
        if self.l_freq is not None and self.h_freq is not None and self.l_freq >= self.h_freq:
            raise ValueError(f"eeg.l_freq ({self.l_freq}) must be below eeg.h_freq ({self.h_freq})")
        if self.split is not None and self.split not in self.splits:
            raise ValueError(f"eeg.split {self.split!r} is not one of eeg.splits {sorted(self.splits)}")
        if self.format in ("dryad", "bids") and self.root is None:
            raise ValueError(f"eeg.format {self.format!r} needs eeg.root (the dataset folder)")
        if self.format == "bids" and self.task is None:
            raise ValueError("eeg.format 'bids' needs eeg.task (the BIDS task label)")
        if self.h_freq is not None and self.h_freq >= self.sfreq / 2:
            raise ValueError(
                f"eeg.h_freq ({self.h_freq} Hz) must be below the Nyquist frequency of "
                f"eeg.sfreq ({self.sfreq / 2} Hz)"
            )
        return self


class BackboneSection(_Section):
    """The speech model whose encoder layers are read."""

    name: str = Field(default="auto", description="'auto', 'whisper-base', 'whisper-tiny.en', a folder or a hub id.")
    layers: list[int] | Literal["all"] = "all"
    window_s: float = Field(default=30.0, gt=0, le=30.0)
    context_s: float = Field(default=5.0, ge=0)
    device: str = "cpu"


class BackboneEntry(_Section):
    """One backbone of a study with several (manifest ``backbones``)."""

    name: str = Field(description="As backbone.name: 'whisper-base', 'hubert-base-random', a folder or a hub id.")
    layers: list[int] | Literal["all", "last"] | None = Field(
        default=None, description="Its SAE layers (1-based list, 'all' or 'last'); None: sae.layers."
    )
    pretrained: str | dict[int, str] | None = Field(
        default=None,
        description="A pretrained SAE release (e.g. 'audiosae/hubert-base') or layer -> folder, "
        "instead of training; None: sae.pretrained for the first backbone, else train.",
    )


EXECUTOR_PATTERN = r"^(serial|processes:[1-9][0-9]*|dask-local:[1-9][0-9]*|dask:\S+)$"


class SAESection(_Section):
    """SAE settings (BatchTopK)."""

    layers: list[int] | Literal["last", "all"] = Field(
        default="last", description="SAE layers: a 1-based list, 'last' or 'all' (every extracted layer)."
    )
    expansion: int = Field(default=8, ge=1)
    k: int = Field(default=50, ge=1)
    n_steps: int = Field(default=2000, ge=1)
    batch_size: int = Field(default=2500, ge=1)
    lr: float = Field(default=2e-4, gt=0)
    random_state: int = 0
    device: str = "cpu"
    torch_threads: int | None = Field(
        default=None, ge=1, description="torch intra-op threads while training (None: torch's default)."
    )
    pretrained: dict[int, str] | str | None = Field(
        default=None,
        description="Layer -> folder of an SAE to use instead of training one (relative to the "
        "manifest): native (cfg.json + sae.safetensors), SAELens, or AudioSAE "
        "([layer_<n>/]ae.pt), read with neuro_sae.sae.load_sae; or the name of a pretrained "
        "release (e.g. 'audiosae/whisper-small', see neuro_sae.sae.PRETRAINED_SAES) read from "
        "the huggingface_hub cache for every SAE layer.",
    )
    release: str | None = Field(
        default=None,
        description="An installed SAE release (a data package, e.g. 'neuro-sae/whisper-base'; "
        "see neuro_sae.sae.list_sae_releases) whose SAE of the same layer the interpret and "
        "steer steps use instead of the study's own; the EEG chain (features, TRF, stats) "
        "keeps the study's SAE. None: the study's SAE everywhere.",
    )

    @field_validator("release")
    @classmethod
    def _release_installed(cls, value):
        if value is None:
            return value
        installed = installed_sae_releases()
        if value not in installed:
            hint = difflib.get_close_matches(str(value), installed, n=1, cutoff=0.5)
            raise ValueError(
                f"sae.release {value!r} is not an installed SAE release (installed: "
                f"{', '.join(installed) or 'none'}).{' Did you mean ' + repr(hint[0]) + '?' if hint else ''} "
                "Install its data package from the repository root: pip install --no-deps "
                "./data_manifests/releases/neuro-sae-whisper-base (make venv does it), or "
                "remove sae.release"
            )
        return value


def installed_sae_releases():
    """Names of the installed SAE releases (entry-point group ``neuro_sae.sae_releases``,
    the group :func:`neuro_sae.sae.list_sae_releases` reads; torch-free)."""
    from importlib import metadata

    return sorted({str(ep.name) for ep in metadata.entry_points(group="neuro_sae.sae_releases")})


class FeaturesSection(_Section):
    """How SAE feature series are made and selected."""

    mode: Literal["threshold", "batchtopk", "topk"] = "threshold"
    min_rate: float = Field(default=1.0, ge=0, description="Alive: active at least this often per second.")
    max_features: int | None = Field(
        default=None, ge=1, description="Most active alive features kept per SAE layer (None: every alive one)."
    )
    max_features_other_layers: int | None = Field(
        default=None, ge=1,
        description="Most active alive features kept at every SAE layer but the primary backbone's "
        "last one (the layer of the figures, reports and planted truth), e.g. to make a grid of "
        "layers cheaper; None: max_features.",
    )  # fmt: skip
    scale: Literal["max", "zscore"] | None = "max"


class TRFSection(_Section):
    """Univariate TRF sweep."""

    tmin: float = Field(default=-0.1, description="First lag shown and reported, in s.")
    tmax: float = Field(default=0.5, description="Last lag shown and reported, in s.")
    edge_s: float = Field(
        default=0.1, ge=0,
        description="The TRFs are fitted on [tmin - edge_s, tmax + edge_s]: the lags beyond "
        "the window absorb the fit's edge artefacts; figures show and tables report (peak "
        "lags) only [tmin, tmax].",
    )  # fmt: skip
    alphas: list[float] = Field(default_factory=lambda: [10.0**e for e in range(-1, 7)], min_length=1)
    basis_width: float | None = Field(
        default=None, gt=0,
        description="Fit the kernels in a lag basis of Hann kernels this wide (s) over the "
        "fitted window (neuro_sae.encoding.lag_basis); None: one coefficient per lag.",
    )  # fmt: skip
    basis_placement: Literal["inside", "tile"] = Field(
        default="inside",
        description="With basis_width: 'inside' (whole-sample translates of one kernel inside "
        "the window; the fastest permutation null) or 'tile' (kernels cut at the ends).",
    )  # fmt: skip

    @model_validator(mode="after")
    def _window(self):
        if self.tmin >= self.tmax:
            raise ValueError(f"trf.tmin ({self.tmin}) must be below trf.tmax ({self.tmax})")
        span = self.tmax - self.tmin + 2 * self.edge_s
        if self.basis_width is not None and self.basis_width >= span:
            raise ValueError(
                f"trf.basis_width ({self.basis_width} s) must be below the fitted window "
                f"(tmax - tmin + 2 * edge_s = {span:.3g} s); e.g. basis_width: 0.1"
            )
        return self


class StatsSection(_Section):
    """Permutation statistics."""

    n_permutations: int = Field(default=1000, ge=19)
    alpha: float = Field(default=0.05, gt=0, lt=1)
    group_method: Literal["pooled-null", "sign-flip"] = "pooled-null"
    random_state: int = 0
    vp_features: int | None = Field(
        default=4, ge=1,
        description="Variance partitioning per subject x layer: the unique and shared held-out "
        "R^2 of this many of the layer's best features (held-out r) and the acoustic envelope "
        "(banded ridge); None: skip it.",
    )  # fmt: skip
    protocol_channel: str | None = Field(
        default="Pz", description="Channel of the paper's protocol table (None: every channel)."
    )


class SimulationSection(_Section):
    """Planted-truth EEG (the demo)."""

    n_planted: int = Field(default=5, ge=1)
    sfreq: float = Field(default=128.0, gt=0, description="Sampling rate of the simulated recording in Hz.")
    snr: float | None = Field(default=None, gt=0)
    random_state: int = 42


class Manifest(_Section):
    """A validated study manifest.

    Attributes hold the sections; ``path`` is the manifest file and
    :meth:`resolve` turns manifest-relative paths into absolute ones.
    """

    name: str
    description: str = ""
    derivatives: str = Field(default="derivatives/{name}", description="Output folder, relative to the current directory.")
    subjects: list[str] = Field(min_length=1)
    stimuli: StimuliSection
    eeg: EEGSection = Field(default_factory=EEGSection)
    backbone: BackboneSection = Field(default_factory=BackboneSection)
    sae: SAESection = Field(default_factory=SAESection)
    features: FeaturesSection = Field(default_factory=FeaturesSection)
    trf: TRFSection = Field(default_factory=TRFSection)
    stats: StatsSection = Field(default_factory=StatsSection)
    simulation: SimulationSection = Field(default_factory=SimulationSection)
    backbones: list[str | BackboneEntry] | None = Field(
        default=None,
        description="Several backbones, each with its SAE layers (the first is the primary one, "
        "read by figures and reports); None: the one of backbone.name. The backbone section's "
        "other settings (layers extracted, window, context, device) apply to every one.",
    )
    executor: str = Field(
        default="serial",
        description="How independent tasks run: 'serial', 'processes:N' (joblib), "
        "'dask-local:N' (a local dask.distributed cluster of N workers) or 'dask:ADDRESS' "
        "(an existing dask scheduler, e.g. tcp://host:8786); --executor overrides it.",
    )  # fmt: skip
    path: str | None = Field(default=None, exclude=True)

    @field_validator("executor")
    @classmethod
    def _executor(cls, value):
        import re

        if not re.match(EXECUTOR_PATTERN, str(value)):
            raise ValueError(
                f"executor {value!r} is not one of 'serial', 'processes:N', 'dask-local:N', "
                "'dask:ADDRESS' (N a positive number of workers, ADDRESS a dask scheduler such "
                "as tcp://host:8786)"
            )
        return value

    @model_validator(mode="after")
    def _unique_models(self):
        tags = [model_tag(m.name) for m in self.models()]
        dup = sorted({t for t in tags if tags.count(t) > 1})
        if dup:
            raise ValueError(f"backbones name the same model twice: {dup}; list each once")
        if self.backbones:
            first = self.models()[0].name
            if self.backbone.name not in ("auto", first):
                raise ValueError(
                    f"backbone.name ({self.backbone.name!r}) and the first of backbones ({first!r}) "
                    "differ; the first backbone is the primary one: drop backbone.name or make "
                    "them equal"
                )
            if self.backbone.name != first:  # code that reads backbone.name sees the primary one
                self.backbone.name = first
        return self

    def models(self):
        """The backbones of the study, primary first.

        Returns
        -------
        models : list of ModelSpec
            ``tag`` (``None`` for the primary one, else a file-safe name), ``name``
            (as ``backbone.name``), ``layers`` (SAE layers spec) and ``pretrained``.
        """
        if not self.backbones:
            return [ModelSpec(None, self.backbone.name, self.sae.layers, self.sae.pretrained)]
        out = []
        for i, entry in enumerate(self.backbones):
            entry = BackboneEntry(name=entry) if isinstance(entry, str) else entry
            if i == 0 and entry.name == "auto":  # the first entry 'auto' defers to backbone.name
                entry = entry.model_copy(update=dict(name=self.backbone.name))
            layers = self.sae.layers if entry.layers is None else entry.layers
            pre = entry.pretrained if entry.pretrained is not None or i else self.sae.pretrained
            out.append(ModelSpec(None if i == 0 else model_tag(entry.name), entry.name, layers, pre))
        return out

    @model_validator(mode="after")
    def _split_runs(self):
        ids = {r.id for r in self.stimuli.runs}
        for name, split in self.eeg.splits.items():
            unknown = sorted((set(split.dev) | set(split.test)) - ids)
            if unknown:
                raise ValueError(
                    f"eeg.splits.{name} names runs {unknown} that are not stimulus run ids "
                    f"({sorted(ids)[:8]}...)"
                )
        return self

    def split_runs(self, split=None):
        """Development and test run ids of a named split.

        Parameters
        ----------
        split : str | None
            A key of ``eeg.splits`` (``None``: ``eeg.split``; when that is None too, every
            run is both development and test).

        Returns
        -------
        dev, test : list of str
            Run ids.
        """
        split = self.eeg.split if split is None else split
        if split is None:
            ids = [r.id for r in self.stimuli.runs]
            return ids, ids
        if split not in self.eeg.splits:
            raise ValueError(f"Unknown split {split!r}; the manifest defines {sorted(self.eeg.splits)}.")
        s = self.eeg.splits[split]
        return list(s.dev), list(s.test)

    @field_validator("subjects")
    @classmethod
    def _subjects(cls, subjects):
        bad = [s for s in subjects if not s or not str(s).replace("-", "").isalnum()]
        if bad:
            raise ValueError(f"subject labels must be alphanumeric (BIDS), got {bad}")
        return [str(s) for s in subjects]

    # ------------------------------------------------------------------ paths
    @property
    def base_dir(self):
        """Folder that manifest-relative paths start from."""
        return Path(self.path).parent if self.path else Path.cwd()

    def resolve(self, path):
        """Resolve a manifest-relative path.

        Parameters
        ----------
        path : str | os.PathLike
            Absolute, or relative to the manifest's folder.

        Returns
        -------
        path : pathlib.Path
            An absolute path.
        """
        path = Path(str(path)).expanduser()
        return path if path.is_absolute() else (self.base_dir / path).resolve()

    def stimuli_dir(self):
        """The stimuli folder (the packaged demo stimuli for ``package:demo_stimuli``).

        Returns
        -------
        path : pathlib.Path
            The folder.
        """
        if self.stimuli.root == PACKAGE_STIMULI:
            from .data import demo_stimuli_dir

            return Path(demo_stimuli_dir())
        return self.resolve(self.stimuli.root)

    def stimulus_files(self, *, check=True):
        """Audio file of every run.

        Parameters
        ----------
        check : bool
            Raise ``FileNotFoundError`` naming the run and the manifest when a
            file is missing.

        Returns
        -------
        files : dict of str to pathlib.Path
            Run id to audio path, in manifest order.
        """
        root = self.stimuli_dir()
        out = {}
        for run in self.stimuli.runs:
            fname = (root / run.file).resolve()
            if check:
                check_fname(
                    fname,
                    f"stimuli.runs[id={run.id!r}].file",
                    hint=f"Fix the path in {self.path or 'the manifest'} (relative to {root}) "
                    "or add the file.",
                )
            out[run.id] = fname
        return out

    def derivatives_dir(self, out=None):
        """The output folder (``out`` overrides the manifest).

        Parameters
        ----------
        out : str | os.PathLike | None
            Override.

        Returns
        -------
        path : pathlib.Path
            The folder (not created).
        """
        if out is not None:
            return Path(out).expanduser().resolve()
        return Path(self.derivatives.format(name=self.name)).expanduser().resolve()

    def eeg_file(self, subject, derivatives):
        """EEG recording of one subject.

        Parameters
        ----------
        subject : str
            Subject label.
        derivatives : str | os.PathLike
            The output folder (for patterns using ``{derivatives}``).

        Returns
        -------
        path : pathlib.Path
            The recording's path.
        """
        self._check_subject(subject)
        return self.resolve(self.eeg.files.format(subject=subject, derivatives=derivatives))

    def _check_subject(self, subject):
        if subject not in self.subjects:
            hint = difflib.get_close_matches(str(subject), self.subjects, n=1)
            msg = (
                f"Subject {subject!r} is not in the manifest {self.path or ''}; "
                f"its subjects are {self.subjects}."
            )
            if hint:
                msg += f" Did you mean {hint[0]!r}?"
            raise ValueError(msg)


class ModelSpec(tuple):
    """One backbone of a study: ``(tag, name, layers, pretrained)`` (see :meth:`Manifest.models`)."""

    __slots__ = ()

    def __new__(cls, tag, name, layers, pretrained):
        return super().__new__(cls, (tag, name, layers, pretrained))

    tag = property(lambda self: self[0])
    name = property(lambda self: self[1])
    layers = property(lambda self: self[2])
    pretrained = property(lambda self: self[3])


def model_tag(name):
    """A file-safe tag of a backbone name (``"openai/whisper-small"`` -> ``"openai-whisper-small"``)."""
    import re

    name = str(name).rstrip("/\\")
    if name.startswith((".", "~", "/")):
        name = Path(name).name
    return re.sub(r"[^A-Za-z0-9.]+", "-", name).strip("-") or "model"


def _field_names(model_cls):
    return list(model_cls.model_fields)


def _model_at(loc):
    """The pydantic model class at a validation-error location."""
    cls = Manifest
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        field = cls.model_fields.get(part)
        if field is None:
            return None
        ann = field.annotation
        args = getattr(ann, "__args__", ())
        cands = [a for a in (ann, *args) if isinstance(a, type) and issubclass(a, BaseModel)]
        if not cands:
            # list[Model]
            for a in args:
                inner = getattr(a, "__args__", ())
                cands += [i for i in inner if isinstance(i, type) and issubclass(i, BaseModel)]
        if not cands:
            return None
        cls = cands[0]
    return cls


def _format_errors(err, source):
    lines = [f"Invalid manifest {source}:"]
    for e in err.errors():
        loc = e["loc"]
        key = ".".join(str(p) for p in loc)
        if e["type"] == "extra_forbidden":
            cls = _model_at(loc)
            allowed = _field_names(cls) if cls is not None else []
            allowed = [a for a in allowed if a != "path"]
            hint = difflib.get_close_matches(str(loc[-1]), allowed, n=1, cutoff=0.5)
            msg = f"  - unknown key '{key}'."
            if hint:
                msg += f" Did you mean '{hint[0]}'?"
            if allowed:
                msg += f" Allowed keys here: {', '.join(allowed)}."
        elif e["type"] == "missing":
            msg = f"  - missing required key '{key}'."
        elif not loc:  # a check across sections: the message names the keys
            msg = f"  - {e['msg'].removeprefix('Value error, ')}."
        else:
            msg = f"  - '{key}': {e['msg']} (got {e.get('input')!r})."
        lines.append(msg)
    return "\n".join(lines)


@verbose
def load_manifest(fname, *, overrides=None, check_files=True, verbose=None):
    """Load and validate a study manifest.

    Parameters
    ----------
    fname : str | os.PathLike
        The YAML file.
    overrides : dict | None
        Values that replace the file's (nested dicts merge), e.g.
        ``{"stats": {"n_permutations": 200}}``.
    check_files : bool
        Check that every stimulus file exists (named in the error if not).
    %(verbose)s

    Returns
    -------
    manifest : Manifest
        The validated manifest.
    """
    fname = check_fname(fname, "manifest", hint="Pass the path of a YAML manifest, e.g. data_manifests/demo.yaml.")
    with open(fname) as fid:
        try:
            raw = yaml.safe_load(fid)
        except yaml.YAMLError as err:
            raise ManifestError(f"Manifest {fname} is not valid YAML: {err}") from None
    if not isinstance(raw, dict):
        raise ManifestError(f"Manifest {fname} must hold a mapping at top level, got {type(raw).__name__}.")
    if overrides:
        raw = _merge(raw, overrides)
    try:
        manifest = Manifest(**raw, path=str(Path(fname).resolve()))
    except ValidationError as err:
        raise ManifestError(_format_errors(err, fname)) from None
    _check_montage(manifest, fname)
    if check_files:
        manifest.stimulus_files(check=True)
    logger.info(
        f"Manifest {manifest.name!r}: {len(manifest.subjects)} subjects, "
        f"{len(manifest.stimuli.runs)} stimulus runs"
    )
    return manifest


def _check_montage(manifest, fname):
    """``eeg.montage``: a built-in MNE montage or an existing montage file."""
    import mne

    montage = manifest.eeg.montage
    if montage is None:
        return
    builtin = mne.channels.get_builtin_montages()
    looks_like_file = any(sep in montage for sep in ("/", "\\")) or Path(montage).suffix != ""
    # every name make_standard_montage accepts, deprecated aliases with MNE's warning
    if not looks_like_file and is_standard_montage(montage):
        return
    looks_like_file = any(sep in montage for sep in ("/", "\\")) or Path(montage).suffix != ""
    if looks_like_file and manifest.resolve(montage).is_file():
        return
    close = difflib.get_close_matches(montage, builtin, n=3, cutoff=0.6)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    raise ManifestError(
        f"Invalid manifest {fname}:\n  - 'eeg.montage': {montage!r} is neither a built-in MNE "
        f"montage nor an existing montage file{' (looked for ' + str(manifest.resolve(montage)) + ')' if looks_like_file else ''}."
        f"{hint} Built-in montages: {', '.join(builtin)}. Use one of them, or the path of a "
        "montage file (relative to the manifest) that mne.channels.read_custom_montage reads."
    )


def _merge(base, new):
    out = dict(base)
    for key, val in new.items():
        if isinstance(val, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], val)
        else:
            out[key] = val
    return out
