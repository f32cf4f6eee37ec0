"""Per-run design matrices and EEG on one grid: :class:`AlignedRuns` and :func:`align_subject`."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..utils import (
    check_fname,
    check_option,
    check_positive,
    fill_doc,
    logger,
    validate_type,
    verbose,
)
from ._onsets import find_run_onsets, preprocess_eeg
from ._resample import resample_features

_FORMAT_VERSION = 1


@dataclass
class AlignedRuns:
    """Stimulus features and EEG of one subject, run by run, on the EEG sample grid.

    Parameters
    ----------
    run_ids : list of str
        Stimulus run identifiers (the trials of cross-validation and permutation).
    sfreq : float
        Sampling rate of ``X`` and ``Y`` in Hz.
    X : dict of str to list of ndarray, shape (n_times_i, n_features_set)
        Feature set name to one array per run.
    feature_names : dict of str to list of str
        Feature set name to the column names of its arrays.
    Y : list of ndarray, shape (n_times_i, n_channels)
        EEG of each run (robust-scaled by :func:`align_subject`).
    info : mne.Info
        Measurement info of the EEG channels (with the montage when there is one).
    masks : list of ndarray of bool, shape (n_times_i,)
        ``False`` where the sample lies inside a ``BAD*`` annotation.
    provenance : dict
        Alignment parameters.
    """

    run_ids: list
    sfreq: float
    X: dict
    feature_names: dict
    Y: list
    info: object
    masks: list = field(default_factory=list)
    provenance: dict = field(default_factory=dict)

    def __post_init__(self):
        self.run_ids = [str(r) for r in self.run_ids]
        n_runs = len(self.run_ids)
        if len(self.Y) != n_runs:
            raise ValueError(f"Y has {len(self.Y)} runs but run_ids has {n_runs}.")
        if not self.masks:
            self.masks = [np.ones(len(y), bool) for y in self.Y]
        n_ch = len(self.info["ch_names"])
        for name, runs in self.X.items():
            if len(runs) != n_runs:
                raise ValueError(f"X[{name!r}] has {len(runs)} runs but run_ids has {n_runs}.")
            n_feat = len(self.feature_names[name])
            for rid, x, y in zip(self.run_ids, runs, self.Y):
                if x.shape != (len(y), n_feat):
                    raise ValueError(
                        f"Run {rid!r}: X[{name!r}] has shape {x.shape} but the EEG has "
                        f"{len(y)} samples at {self.sfreq:g} Hz and the set {n_feat} features."
                    )
        for rid, y, m in zip(self.run_ids, self.Y, self.masks):
            if y.shape[1] != n_ch or m.shape != (len(y),):
                raise ValueError(
                    f"Run {rid!r}: Y has shape {y.shape} and mask {m.shape}, but info has "
                    f"{n_ch} channels."
                )

    @property
    def n_runs(self):
        """Number of runs."""
        return len(self.run_ids)

    @property
    def ch_names(self):
        """EEG channel names."""
        return list(self.info["ch_names"])

    def __repr__(self):
        sets = ", ".join(f"{k}: {len(v)}" for k, v in self.feature_names.items())
        dur = sum(len(y) for y in self.Y) / self.sfreq
        return (
            f"<AlignedRuns | {self.n_runs} runs, {dur:.1f} s at {self.sfreq:g} Hz, "
            f"{len(self.ch_names)} channels, features {{{sets}}}>"
        )

    @fill_doc
    @verbose
    def to_epochs(self, *, features=False, pad=False, verbose=None):
        """The EEG (and optionally the features) as one epoch per run.

        Epochs need equal lengths: runs are cropped to the shortest run, or with ``pad=True``
        zero-padded to the longest (the padding is marked bad in the ``mask`` channel). The
        data keep the units of ``Y`` (robust-scaled, not volts). ``epochs.metadata`` holds
        ``run_id`` and ``n_times`` (the run's length in the epoch) and ``info["description"]``
        the feature sets and provenance (JSON), so :meth:`from_epochs` reads everything back.

        Parameters
        ----------
        features : bool
            Also store every feature set as ``misc`` channels named ``"<set>:<feature>"``, and
            the masks as a ``stim`` channel ``"mask"`` (1 = good sample).
        pad : bool
            Zero-pad to the longest run instead of cropping to the shortest.
        %(verbose)s

        Returns
        -------
        epochs : mne.EpochsArray
            Epoch i is run i (event id ``run_ids[i]``: ``i + 1``), starting at 0 s.
        """
        import mne
        import pandas as pd

        lengths = [len(y) for y in self.Y]
        n = max(lengths) if pad else min(lengths)
        if len(set(lengths)) > 1:
            what = "Padding" if pad else "Cropping"
            logger.info(f"{what} {self.n_runs} runs to {n / self.sfreq:.2f} s")

        def fit(a):
            a = a[:n]
            return np.concatenate([a, np.zeros((n - len(a),) + a.shape[1:], a.dtype)]) if len(a) < n else a

        data = np.stack([fit(y).T for y in self.Y])
        starts = np.cumsum([0] + [n + 1] * (self.n_runs - 1))
        events = np.c_[starts, np.zeros(self.n_runs, int), np.arange(1, self.n_runs + 1)]
        event_id = {rid: i + 1 for i, rid in enumerate(self.run_ids)}
        info = self.info.copy()
        if features:
            names, extra = [], []
            for name in self.X:
                names += [f"{name}:{f}" for f in self.feature_names[name]]
            for i in range(self.n_runs):
                cols = [fit(self.X[name][i]) for name in self.X] + [fit(self.masks[i].astype(float)[:, None])]
                extra.append(np.concatenate(cols, axis=1).T)
            ch_names = list(info["ch_names"]) + names + ["mask"]
            types = info.get_channel_types() + ["misc"] * len(names) + ["stim"]
            new_info = mne.create_info(ch_names, self.sfreq, types)
            with new_info._unlock():
                for k, ch in enumerate(info["chs"]):
                    new_info["chs"][k] = ch.copy()
                new_info["bads"] = list(info["bads"])
                new_info["dig"] = info["dig"]
            info = new_info
            data = np.concatenate([data, np.stack(extra)], axis=1)
        info["description"] = json.dumps(dict(
            neuro_sae_aligned=_FORMAT_VERSION, feature_sets=list(self.X) if features else [],
            provenance=self.provenance,
        ))
        metadata = pd.DataFrame(dict(run_id=self.run_ids, n_times=[min(m, n) for m in lengths]))
        return mne.EpochsArray(data, info, events=events, tmin=0.0, event_id=event_id,
                               metadata=metadata, verbose=False)

    @classmethod
    @fill_doc
    @verbose
    def from_epochs(cls, epochs, *, verbose=None):
        """Read runs back from :meth:`to_epochs` output.

        Parameters
        ----------
        epochs : mne.Epochs
            One epoch per run; EEG channels become ``Y``, ``misc`` channels named
            ``"<set>:<feature>"`` become ``X[set]``, a ``stim`` channel ``"mask"`` the masks.
            ``metadata`` columns ``run_id`` and ``n_times`` (when present) give the run ids and
            lengths (otherwise the event names and the full epoch).
        %(verbose)s

        Returns
        -------
        aligned : AlignedRuns
            The runs.
        """
        import mne

        validate_type(epochs, mne.BaseEpochs, "epochs", "mne.Epochs")
        data = epochs.get_data(picks="all", copy=True)
        md = epochs.metadata
        if md is not None and {"run_id", "n_times"} <= set(md.columns):
            run_ids = [str(r) for r in md["run_id"]]
            lengths = [int(v) for v in md["n_times"]]
        else:
            inv = {v: k for k, v in epochs.event_id.items()}
            run_ids = [inv[e] for e in epochs.events[:, 2]]
            lengths = [data.shape[2]] * len(run_ids)
        try:
            desc = json.loads(epochs.info["description"] or "{}")
        except json.JSONDecodeError:
            desc = {}
        types = epochs.get_channel_types()
        names = epochs.ch_names
        eeg = [i for i, t in enumerate(types) if t == "eeg"]
        if not eeg:
            raise ValueError("epochs has no EEG channels; AlignedRuns needs the EEG as channels of type 'eeg'.")
        sets = {}
        for i, (n, t) in enumerate(zip(names, types)):
            if t == "misc" and ":" in n:
                set_name, feat = n.split(":", 1)
                sets.setdefault(set_name, []).append((i, feat))
        order = desc.get("feature_sets") or list(sets)
        X = {s: [data[k, [i for i, _ in sets[s]], :lengths[k]].T for k in range(len(run_ids))] for s in order}
        feature_names = {s: [f for _, f in sets[s]] for s in order}
        Y = [data[k, eeg, :lengths[k]].T for k in range(len(run_ids))]
        if "mask" in names:
            m = names.index("mask")
            masks = [data[k, m, :lengths[k]] > 0.5 for k in range(len(run_ids))]
        else:
            masks = []
        info = mne.pick_info(epochs.info, eeg)
        with info._unlock():
            info["description"] = None
        return cls(run_ids=run_ids, sfreq=float(epochs.info["sfreq"]), X=X, feature_names=feature_names,
                   Y=Y, info=info, masks=masks, provenance=desc.get("provenance", {}))

    @fill_doc
    @verbose
    def add_feature_set(self, name, X, names, *, filter=True, scale="same", verbose=None):
        """Add a feature set computed on the runs' EEG grid (in place).

        Parameters
        ----------
        name : str
            Set name (e.g. ``"envelope"``); must be new.
        X : list of ndarray, shape (n_times_i, n_columns)
            One array per run, each as long as the run's EEG.
        names : list of str
            Column names.
        filter : bool
            Apply the band-pass of the alignment (``provenance["l_freq"]``/``["h_freq"]``,
            the same zero-phase FIR as the EEG).
        scale : "same" | "max" | "zscore" | None
            Scaling over the training runs (``provenance["train_runs"]``, default all);
            ``"same"``: the scaling used for the SAE features.
        %(verbose)s

        Returns
        -------
        self : AlignedRuns
            The object, with ``X[name]``.
        """
        validate_type(name, str, "name")
        if name in self.X:
            raise ValueError(f"Feature set {name!r} exists already; sets: {list(self.X)}.")
        if len(X) != self.n_runs:
            raise ValueError(f"X has {len(X)} runs but the object {self.n_runs} ({self.run_ids}).")
        X = [np.array(x, dtype=np.float64) for x in X]  # copies: scaling works in place
        X = [x[:, None] if x.ndim == 1 else x for x in X]
        for rid, x, y in zip(self.run_ids, X, self.Y):
            if len(x) != len(y):
                raise ValueError(
                    f"Run {rid!r}: the new set has {len(x)} samples but the EEG {len(y)} at "
                    f"{self.sfreq:g} Hz; compute it on the run's grid (provenance['runs'] holds "
                    "each run's n_times and t0)."
                )
        if scale == "same":
            scale = self.provenance.get("scale", "max")
        check_option("scale", scale, ("max", "zscore", None))
        if filter:
            X = [_band_pass(x, self.sfreq, self.provenance.get("l_freq"), self.provenance.get("h_freq")) for x in X]
        train = _train_index(self.run_ids, self.provenance.get("train_runs"))
        X = _scale_features(X, scale, train)
        self.X[name] = X
        self.feature_names[name] = [str(n) for n in names]
        self.__post_init__()
        return self

    @fill_doc
    @verbose
    def add_acoustic(self, audio_by_run, *, sfreq_audio=16000, kinds=("envelope", "onsets", "spectrogram"),
                     n_bands=None, n_mels=16, words_by_run=None, scale="same", verbose=None):
        """Compute acoustic baselines of each run's audio on its EEG grid and add them.

        Each kind becomes a feature set named after it (:func:`acoustic_features`), band-passed
        and scaled like the SAE features.

        Parameters
        ----------
        audio_by_run : dict of str to ndarray, shape (n_samples,)
            Run id to the run's waveform (e.g. from :func:`neuro_sae.io.read_audio`).
        sfreq_audio : float
            Audio rate in Hz.
        kinds : tuple of str
            Among ``"envelope"``, ``"onsets"``, ``"spectrogram"``, ``"words"``.
        n_bands : int | None
            Gammatone bands of the envelope (``None``: broadband).
        n_mels : int
            Log-mel bands.
        words_by_run : dict of str to array-like | None
            Run id to word onsets in seconds (for ``"words"``).
        scale : "same" | "max" | "zscore" | None
            As in :meth:`add_feature_set`.
        %(verbose)s

        Returns
        -------
        self : AlignedRuns
            The object, with one new set per kind.
        """
        from ._acoustic import acoustic_features

        missing = [r for r in self.run_ids if r not in audio_by_run]
        if missing:
            raise ValueError(f"audio_by_run lacks the runs {missing}; give the audio of every run {self.run_ids}.")
        runs = {r["run_id"]: r for r in self.provenance.get("runs", [])}
        sets = {}
        for rid, y in zip(self.run_ids, self.Y):
            t0 = float(runs.get(rid, {}).get("t0", 0.0))
            words = None if words_by_run is None else words_by_run.get(rid)
            feats = acoustic_features(audio_by_run[rid], sfreq_audio, self.sfreq, len(y), t0=t0,
                                      kinds=kinds, n_bands=n_bands, n_mels=n_mels, words=words)
            for kind, (x, names) in feats.items():
                sets.setdefault(kind, ([], names))[0].append(x)
        for kind, (xs, names) in sets.items():
            self.add_feature_set(kind, xs, names, scale=scale)
        return self

    @fill_doc
    @verbose
    def select_runs(self, run_ids, *, verbose=None):
        """A new object with only the given runs (e.g. a development/test split).

        Parameters
        ----------
        run_ids : list of str
            Runs to keep, in this order.
        %(verbose)s

        Returns
        -------
        aligned : AlignedRuns
            The subset (arrays shared, not copied).
        """
        run_ids = [str(r) for r in run_ids]
        missing = [r for r in run_ids if r not in self.run_ids]
        if missing:
            raise ValueError(f"Runs {missing} are not in this object; its runs are {self.run_ids}.")
        idx = [self.run_ids.index(r) for r in run_ids]
        return AlignedRuns(
            run_ids=run_ids, sfreq=self.sfreq, X={k: [v[i] for i in idx] for k, v in self.X.items()},
            feature_names=dict(self.feature_names), Y=[self.Y[i] for i in idx], info=self.info,
            masks=[self.masks[i] for i in idx], provenance=dict(self.provenance),
        )

    @fill_doc
    @verbose
    def export_stim(self, out_dir, *, subject, task, feature_sets=None, overwrite=False, verbose=None):
        """Write each run's feature sets as BIDS ``*_stim.tsv.gz`` + ``.json`` files.

        File names: ``sub-<subject>_task-<task>_run-<i>_recording-<set>_stim.tsv.gz`` with
        ``i`` the 1-based run position; the sidecar holds ``SamplingFrequency``, ``StartTime``
        (0: the first EEG sample of the run), ``Columns`` and ``StimulusID``.

        Parameters
        ----------
        out_dir : str | os.PathLike
            Destination folder (e.g. ``<bids_root>/sub-01/eeg``).
        subject, task : str
            BIDS labels.
        feature_sets : list of str | None
            Sets to write (``None``: all).
        overwrite : bool
            Replace existing files.
        %(verbose)s

        Returns
        -------
        fnames : list of pathlib.Path
            The written ``.tsv.gz`` files.
        """
        from ..io._stim import write_stim_tsv

        sets = list(self.X) if feature_sets is None else list(feature_sets)
        for s in sets:
            check_option("feature_sets", s, tuple(self.X))
        out, fnames = Path(out_dir), []
        for s in sets:
            if not s.replace("-", "").isalnum():
                raise ValueError(f"Feature set name {s!r} cannot be a BIDS recording label (letters and digits only).")
        for i, rid in enumerate(self.run_ids):
            for s in sets:
                fname = out / f"sub-{subject}_task-{task}_run-{i + 1}_recording-{s}_stim.tsv.gz"
                fnames.append(write_stim_tsv(
                    fname, self.X[s][i], self.sfreq, self.feature_names[s], start_time=0.0,
                    extra=dict(StimulusID=rid, FeatureSet=s), overwrite=overwrite,
                ))
        return fnames

    def save(self, fname, *, overwrite=False):
        """Save to ``.npz`` (arrays) with JSON metadata inside, atomically, no pickles.

        Parameters
        ----------
        fname : str | os.PathLike
            Destination ending in ``.npz``.
        overwrite : bool
            Replace an existing file.

        Returns
        -------
        fname : pathlib.Path
            The written path.
        """
        from ..io._atomic import save_npz

        fname = Path(fname)
        if fname.suffix != ".npz":
            raise ValueError(f"fname must end in .npz, got {fname.name!r}.")
        if fname.exists() and not overwrite:
            raise FileExistsError(f"{fname} exists; pass overwrite=True to replace it.")
        arrays = {}
        sets = list(self.X)
        for i in range(self.n_runs):
            arrays[f"Y_{i}"] = self.Y[i]
            arrays[f"mask_{i}"] = self.masks[i]
            for k, name in enumerate(sets):
                arrays[f"X_{k}_{i}"] = self.X[name][i]
        ch_pos = {}
        for ch in self.info["chs"]:
            loc = np.asarray(ch["loc"][:3], float)
            if np.all(np.isfinite(loc)) and np.any(loc != 0):
                ch_pos[ch["ch_name"]] = loc.tolist()
        meta = dict(
            format_version=_FORMAT_VERSION,
            run_ids=self.run_ids,
            sfreq=self.sfreq,
            feature_sets=sets,
            feature_names=self.feature_names,
            ch_names=self.ch_names,
            ch_types=self.info.get_channel_types(),
            ch_pos=ch_pos,
            provenance=self.provenance,
        )
        arrays["meta"] = np.array(json.dumps(meta))
        return save_npz(fname, **arrays)


def read_aligned_runs(fname):
    """Read :class:`AlignedRuns` written by :meth:`AlignedRuns.save`.

    Parameters
    ----------
    fname : str | os.PathLike
        The ``.npz`` file.

    Returns
    -------
    aligned : AlignedRuns
        The runs (channel positions restored as a head-frame montage).
    """
    import mne

    fname = check_fname(fname, "fname")
    with np.load(fname, allow_pickle=False) as npz:
        meta = json.loads(str(npz["meta"]))
        n = len(meta["run_ids"])
        Y = [npz[f"Y_{i}"] for i in range(n)]
        masks = [npz[f"mask_{i}"] for i in range(n)]
        X = {
            name: [npz[f"X_{k}_{i}"] for i in range(n)]
            for k, name in enumerate(meta["feature_sets"])
        }
    info = mne.create_info(meta["ch_names"], meta["sfreq"], meta["ch_types"])
    if meta["ch_pos"]:
        montage = mne.channels.make_dig_montage(
            {k: np.asarray(v) for k, v in meta["ch_pos"].items()}, coord_frame="head"
        )
        info.set_montage(montage, on_missing="ignore")
    return AlignedRuns(
        run_ids=meta["run_ids"],
        sfreq=meta["sfreq"],
        X=X,
        feature_names=meta["feature_names"],
        Y=Y,
        info=info,
        masks=masks,
        provenance=meta["provenance"],
    )


def _bad_mask(raw, onset_s, n_times, sfreq):
    """True for samples of a run that lie outside every BAD annotation."""
    mask = np.ones(n_times, bool)
    t = onset_s + np.arange(n_times) / sfreq
    for a_onset, a_dur, desc in zip(
        raw.annotations.onset, raw.annotations.duration, raw.annotations.description
    ):
        if desc.upper().startswith("BAD"):
            start = a_onset - raw.first_time
            mask &= ~((t >= start) & (t < start + a_dur))
    return mask


def _band_pass(x, sfreq, l_freq, h_freq):
    """The zero-phase FIR band-pass of the EEG, applied to columns of ``x`` (n_times, n)."""
    import mne

    if (l_freq is None and h_freq is None) or x.shape[1] == 0:
        return x
    return mne.filter.filter_data(
        np.ascontiguousarray(x.T), sfreq, l_freq, h_freq, method="fir", phase="zero",
        fir_design="firwin", verbose=False,
    ).T


def _train_index(run_ids, train_runs):
    """Positions of the training runs (all runs when ``train_runs`` is None)."""
    if train_runs is None:
        return list(range(len(run_ids)))
    train_runs = [str(r) for r in train_runs]
    missing = [r for r in train_runs if r not in run_ids]
    if missing or not train_runs:
        raise ValueError(
            f"train_runs must be a non-empty subset of the runs {run_ids}; unknown: {missing}. "
            "Scaling statistics come from these runs only (e.g. the development runs)."
        )
    return [run_ids.index(r) for r in train_runs]


def _scale_features(X, scale, train):
    """Scale every run with statistics of the training runs, in place (no concatenated copy)."""
    if scale is None or not X or X[0].shape[1] == 0:
        return X
    if scale == "max":
        center = np.zeros(X[0].shape[1])
        denom = np.max([np.abs(X[i]).max(axis=0) for i in train], axis=0)
    else:
        n = sum(len(X[i]) for i in train)
        center = np.sum([X[i].sum(axis=0) for i in train], axis=0) / max(n, 1)
        denom = np.sqrt(np.sum([((X[i] - center) ** 2).sum(axis=0) for i in train], axis=0) / max(n, 1))
    n_zero = int(np.sum(denom == 0))
    if n_zero:
        logger.info(f"{n_zero} features are constant over the training runs; left unscaled")
    denom[denom == 0] = 1.0
    for x in X:
        x -= center
        x /= denom
    return X


def _scale_eeg(Y, masks, scaling, train):
    if scaling is None:
        return Y
    good = np.concatenate([Y[i][masks[i]] for i in train])
    if len(good) == 0:
        raise ValueError(
            "Every sample of the training runs is inside a BAD annotation; the EEG scaling has "
            "no data. Check the BAD annotations or the train_runs."
        )
    if scaling == "robust":
        center = np.median(good, axis=0)
        denom = np.subtract(*np.percentile(good, [75, 25], axis=0))
    else:
        center, denom = good.mean(axis=0), good.std(axis=0)
    denom[denom == 0] = 1.0
    return [(y - center) / denom for y in Y]


@fill_doc
@verbose
def align_subject(
    raw,
    series_by_run,
    *,
    feature_set="sae",
    l_freq=1.0,
    h_freq=8.0,
    sfreq=128.0,
    scale="max",
    prefix="stim/",
    feature_ids=None,
    length_tolerance_s=0.5,
    reference=None,
    eeg_scaling="robust",
    train_runs=None,
    min_rate=None,
    verbose=None,
):
    """Put the stimulus features and the EEG of one subject on one grid, run by run.

    Steps: find the run onsets (:func:`find_run_onsets`); re-reference, band-pass the whole
    recording and resample it to ``sfreq`` (:func:`preprocess_eeg`); cut each run from its
    onset for the duration of its stimulus (``n_frames / series.sfreq``); resample the features
    onto the run's EEG samples (:func:`resample_features`, which accounts for the half-sample
    rounding of the onset: the grid time ``t0`` of each run's first sample, in seconds from
    the audio start, is kept in ``provenance["runs"]``); band-pass the features with the same
    zero-phase FIR (:func:`mne.filter.filter_data`); scale the features; scale the EEG per
    channel over the good samples (outside ``BAD*`` annotations, which are kept as
    ``masks``). All scaling statistics come from ``train_runs`` only.

    Length checks: a run whose EEG (annotation duration, or the data left in the recording)
    is shorter than its stimulus by more than ``length_tolerance_s`` raises an error stating
    both lengths; a smaller shortfall trims the run (logged). EEG longer than the stimulus is
    cut at the stimulus end (logged when longer than ``length_tolerance_s``).

    Parameters
    ----------
    raw : mne.io.Raw
        The continuous recording with one ``f"{prefix}{run_id}"`` annotation per run.
    series_by_run : dict of str to neuro_sae.features.FeatureSeries
        Run id to the feature series of its stimulus, in the run order wanted.
    feature_set : str
        Name of the feature set in the result (``"sae"``).
    l_freq, h_freq : float | None
        Band-pass edges in Hz applied to the EEG and the features (1-8 Hz, as the paper).
    sfreq : float
        Rate of the aligned data in Hz (128.0).
    scale : "max" | "zscore" | None
        Feature scaling: ``"max"`` divides each feature by its maximum absolute value (the
        paper), ``"zscore"`` removes its mean and divides by its standard deviation, ``None``
        leaves it. Features that are zero everywhere stay zero.
    prefix : str
        Prefix of the run annotations.
    feature_ids : array-like of int | None
        Dictionary features to keep (``None``: every column of the series).
    length_tolerance_s : float
        How much shorter than its stimulus an EEG run may be (trimmed, logged at INFO);
        beyond it an error is raised.
    reference : None | "average" | str | list of str
        EEG re-reference (see :func:`preprocess_eeg`).
    eeg_scaling : "robust" | "zscore" | None
        ``"robust"``: zero median and unit interquartile range per channel (the paper);
        ``"zscore"``: zero mean, unit standard deviation; ``None``: volts.
    train_runs : list of str | None
        Runs whose samples give the scaling statistics (``None``: all runs). Pass the
        training (development) runs so no test-run statistic leaks into the scaling.
    min_rate : float | None
        Keep only features active at least this often per second over the training runs'
        series (alive features, :func:`neuro_sae.features.select_alive_features`);
        ``None``: keep all. Applied after ``feature_ids``.
    %(verbose)s

    Returns
    -------
    aligned : AlignedRuns
        Features ``X[feature_set]`` and EEG ``Y`` per run, at ``sfreq``.
    """
    import mne

    from ..features import FeatureSeries, select_alive_features

    check_positive(sfreq, "sfreq")
    check_positive(length_tolerance_s, "length_tolerance_s", strict=False)
    check_option("scale", scale, ("max", "zscore", None))
    check_option("eeg_scaling", eeg_scaling, ("robust", "zscore", None))
    if not isinstance(series_by_run, dict) or not series_by_run:
        raise TypeError(
            "series_by_run must be a non-empty dict mapping run ids to FeatureSeries, got "
            f"{type(series_by_run).__name__}."
        )
    for rid, s in series_by_run.items():
        if not isinstance(s, FeatureSeries):
            raise TypeError(f"series_by_run[{rid!r}] must be a FeatureSeries, got {type(s).__name__}.")
    run_ids = [str(r) for r in series_by_run]
    series = list(series_by_run.values())
    train = _train_index(run_ids, train_runs)
    if feature_ids is not None:
        series = [s.select(feature_ids) for s in series]
    ids0 = series[0].feature_ids
    for rid, s in zip(run_ids, series):
        if not np.array_equal(s.feature_ids, ids0):
            raise ValueError(
                f"Run {rid!r} has different feature_ids from run {run_ids[0]!r}; pass "
                "feature_ids= to select the same features in every run."
            )
        if not np.isclose(s.sfreq, series[0].sfreq):
            raise ValueError(
                f"Run {rid!r} has features at {s.sfreq:g} Hz but run {run_ids[0]!r} at "
                f"{series[0].sfreq:g} Hz; extract every stimulus with the same backbone."
            )
    if min_rate is not None:
        alive = select_alive_features([series[i] for i in train], min_rate=min_rate)
        series = [s.select(alive) for s in series]
        ids0 = series[0].feature_ids
    onsets = find_run_onsets(raw, run_ids, prefix=prefix)
    eeg = preprocess_eeg(raw, l_freq=l_freq, h_freq=h_freq, sfreq=sfreq, reference=reference)
    sfreq = float(eeg.info["sfreq"])
    picks = mne.pick_types(eeg.info, eeg=True, exclude=[])
    if len(picks) == 0:
        raise ValueError(
            "The recording has no EEG channels; set the channel types first "
            "(raw.set_channel_types({name: 'eeg', ...}))."
        )
    data = eeg.get_data(picks=picks)
    info = mne.pick_info(eeg.info, picks)
    Y, X, masks, runs_info = [], [], [], []
    for (_, row), rid, s in zip(onsets.iterrows(), run_ids, series):
        stim_dur = s.duration
        start = int(np.round(row["onset_s"] * sfreq))
        eeg_dur = min(row["duration_s"], (data.shape[1] - start) / sfreq)
        if eeg_dur < stim_dur - length_tolerance_s:
            raise ValueError(
                f"Run {rid!r}: the EEG lasts {eeg_dur:.3f} s but its stimulus {stim_dur:.3f} s "
                f"(more than length_tolerance_s={length_tolerance_s:g} s shorter). Check the "
                "run annotation's duration, whether the recording was cut, or raise "
                "length_tolerance_s to trim the run."
            )
        if eeg_dur > stim_dur + length_tolerance_s:
            logger.info(
                f"Run {rid!r}: the EEG run lasts {eeg_dur:.3f} s, its stimulus {stim_dur:.3f} s; "
                "using the stimulus length"
            )
        dur = min(stim_dur, eeg_dur)
        if dur < stim_dur:
            logger.info(f"Run {rid!r}: trimming to the EEG, {eeg_dur:.3f} s of {stim_dur:.3f} s")
        n_times = int(np.floor(dur * sfreq + 1e-6))
        Y.append(data[:, start : start + n_times].T)
        t0 = start / sfreq - row["onset_s"]
        x = resample_features(s, sfreq, n_times, t0=t0)
        X.append(_band_pass(x, sfreq, l_freq, h_freq))
        masks.append(_bad_mask(eeg, row["onset_s"], n_times, sfreq))
        runs_info.append(dict(run_id=rid, onset_s=float(row["onset_s"]), n_times=n_times, t0=float(t0)))
    X = _scale_features(X, scale, train)
    if not any(m.any() for m in masks):
        raise ValueError("Every sample of every run is inside a BAD annotation.")
    Y = _scale_eeg(Y, masks, eeg_scaling, train)
    names = [f"{feature_set}_{int(f)}" for f in ids0]
    logger.info(
        f"Aligned {len(run_ids)} runs ({sum(len(y) for y in Y) / sfreq:.1f} s at {sfreq:g} Hz), "
        f"{len(names)} features, {len(picks)} channels"
    )
    provenance = dict(
        l_freq=l_freq, h_freq=h_freq, sfreq=sfreq, scale=scale, prefix=prefix,
        feature_set=feature_set, runs=runs_info, eeg_scaling=eeg_scaling,
        reference=reference, train_runs=None if train_runs is None else [str(r) for r in train_runs],
        min_rate=min_rate, sae_id=series[0].sae_id, layer=series[0].layer,
    )
    return AlignedRuns(
        run_ids=run_ids, sfreq=sfreq, X={feature_set: X}, feature_names={feature_set: names},
        Y=Y, info=info, masks=masks, provenance=provenance,
    )
