"""Per-run design matrices and EEG on one grid: :class:`AlignedRuns` and :func:`align_subject`."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..io import SavedResult, read_result
from ..utils import (
    check_option,
    check_positive,
    fill_doc,
    logger,
    validate_type,
    verbose,
    warn,
)
from ._onsets import find_run_onsets, preprocess_eeg
from ._resample import resample_features

_FORMAT_VERSION = 1


@dataclass(repr=False)
class AlignedRuns(SavedResult):
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
        Measurement info of the analysed EEG channels (with the montage when there is one);
        it may mark no channel bad: bad channels are left out of ``Y`` and ``info``, and
        their names kept in ``provenance["bads"]`` (see :attr:`bads`).
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
        marked = [b for b in self.info["bads"] if b in self.info["ch_names"]]
        if marked:
            raise ValueError(
                f"info marks the channels {marked} bad, but AlignedRuns holds the analysed "
                "channels only (every column of Y enters the fits). Drop them from Y and info "
                "(align_subject and from_epochs do this) and list them in provenance['bads']."
            )
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

    @property
    def bads(self):
        """Channels marked bad in the recording and left out of ``Y`` (``provenance["bads"]``)."""
        return list(self.provenance.get("bads", []))

    def __repr__(self):
        sets = ", ".join(f"{k}: {len(v)}" for k, v in self.feature_names.items())
        dur = sum(len(y) for y in self.Y) / self.sfreq
        return (
            f"<AlignedRuns | {self.n_runs} runs, {dur:.1f} s at {self.sfreq:g} Hz, "
            f"{len(self.ch_names)} channels, features {{{sets}}}>"
        )

    @fill_doc
    @verbose
    def to_epochs(self, *, features=False, unequal="raise", pad=False, verbose=None):
        """The EEG (and optionally the features) as one epoch per run.

        Epochs need equal lengths. Runs of unequal length raise an error unless
        ``unequal`` says what to do: ``"pad"`` zero-pads every run to the longest (the
        padding is marked bad in the ``mask`` channel; :meth:`from_epochs` gives the runs
        back exactly), ``"crop"`` crops every run to the shortest (the samples after it are
        not in the epochs; :meth:`from_epochs` warns and records the original lengths).
        ``self`` is never changed. The data keep the units of ``Y`` (robust-scaled, not
        volts). ``epochs.metadata`` holds ``run_id``, ``n_times`` (the run's samples in the
        epoch) and ``n_times_orig`` (the run's length in ``self``), and
        ``info["description"]`` the feature sets and provenance (JSON), so
        :meth:`from_epochs` reads everything back.

        Parameters
        ----------
        features : bool
            Also store every feature set as ``misc`` channels named ``"<set>:<feature>"``, and
            the masks as a ``stim`` channel ``"mask"`` (1 = good sample).
        unequal : "raise" | "pad" | "crop"
            What to do with runs of unequal length (see above).
        pad : bool
            Same as ``unequal="pad"`` (kept for older code).
        %(verbose)s

        Returns
        -------
        epochs : mne.EpochsArray
            Epoch i is run i (event id ``run_ids[i]``: ``i + 1``), starting at 0 s.
        """
        import mne
        import pandas as pd

        check_option("unequal", unequal, ("raise", "pad", "crop"))
        if pad:
            unequal = "pad"
        lengths = [len(y) for y in self.Y]
        n = max(lengths) if unequal == "pad" else min(lengths)
        if len(set(lengths)) > 1:
            if unequal == "raise":
                shown = ", ".join(f"{r!r}: {k}" for r, k in zip(self.run_ids, lengths))
                raise ValueError(
                    f"The runs have unequal lengths ({shown} samples at {self.sfreq:g} Hz) but "
                    "epochs need one length. Pass unequal='pad' to zero-pad every run to the "
                    f"longest ({max(lengths) / self.sfreq:.2f} s; the padding is masked and "
                    "from_epochs restores the runs exactly) or unequal='crop' to crop every "
                    f"run to the shortest ({min(lengths) / self.sfreq:.2f} s; the samples after "
                    "it are dropped from the epochs), or select runs of one length "
                    "(select_runs)."
                )
            what = "Padding" if unequal == "pad" else "Cropping"
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
        metadata = pd.DataFrame(dict(run_id=self.run_ids, n_times=[min(m, n) for m in lengths],
                                     n_times_orig=lengths))
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
            lengths (otherwise the event names and the full epoch). Runs cropped by
            ``to_epochs(unequal="crop")`` (``n_times_orig`` above ``n_times``) come back
            cropped, with a warning; their original lengths are kept in
            ``provenance["cropped"]``. Channels marked bad are left out (their names are
            added to ``provenance["bads"]``).
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
        provenance = dict(desc.get("provenance", {}))
        if md is not None and "n_times_orig" in md.columns:
            orig = [int(v) for v in md["n_times_orig"]]
            cropped = {r: [o, k] for r, o, k in zip(run_ids, orig, lengths) if o > k}
            if cropped:
                warn(
                    f"The epochs hold {len(cropped)} runs cropped by to_epochs(unequal='crop') "
                    f"(run: [original, kept] samples) {cropped}; the samples after the crop are "
                    "not in the epochs. Use to_epochs(unequal='pad') to keep every sample."
                )
                provenance["cropped"] = cropped
        types = epochs.get_channel_types()
        names = epochs.ch_names
        eeg = [i for i, t in enumerate(types) if t == "eeg" and names[i] not in epochs.info["bads"]]
        bads = [b for b in epochs.info["bads"] if b in names and types[names.index(b)] == "eeg"]
        if bads:
            provenance["bads"] = list(provenance.get("bads", [])) + [
                b for b in bads if b not in provenance.get("bads", [])]
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
                   Y=Y, info=info, masks=masks, provenance=provenance)

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
        from ..io import write_stim_tsv

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

    _kind = "AlignedRuns"

    def _to_saved(self):
        """Arrays ``Y_i``, ``mask_i``, ``X_k_i`` and the metadata (storage of ``save``)."""
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
        fields = dict(
            run_ids=self.run_ids,
            sfreq=self.sfreq,
            feature_sets=sets,
            feature_names=self.feature_names,
            ch_names=self.ch_names,
            ch_types=self.info.get_channel_types(),
            ch_pos=ch_pos,
            provenance=self.provenance,
        )
        return arrays, fields

    @classmethod
    def _from_saved(cls, arrays, fields, fname):
        import mne

        meta = fields
        n = len(meta["run_ids"])
        Y = [arrays[f"Y_{i}"] for i in range(n)]
        masks = [arrays[f"mask_{i}"] for i in range(n)]
        X = {
            name: [arrays[f"X_{k}_{i}"] for i in range(n)]
            for k, name in enumerate(meta["feature_sets"])
        }
        info = mne.create_info(meta["ch_names"], meta["sfreq"], meta["ch_types"])
        if meta["ch_pos"]:
            montage = mne.channels.make_dig_montage(
                {k: np.asarray(v) for k, v in meta["ch_pos"].items()}, coord_frame="head"
            )
            info.set_montage(montage, on_missing="ignore")
        return cls(
            run_ids=meta["run_ids"],
            sfreq=meta["sfreq"],
            X=X,
            feature_names=meta["feature_names"],
            Y=Y,
            info=info,
            masks=masks,
            provenance=meta["provenance"],
        )


@fill_doc
@verbose
def read_aligned_runs(fname, *, verbose=None):
    """Read :class:`AlignedRuns` written by :meth:`AlignedRuns.save`.

    Parameters
    ----------
    fname : str | os.PathLike
        The ``.npz`` file.
    %(verbose)s

    Returns
    -------
    aligned : AlignedRuns
        The runs (channel positions restored as a head-frame montage; the bad
        channels left out are in ``provenance["bads"]``).
    """
    return read_result(fname, AlignedRuns)


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


def _check_finite(raw, onsets, reference, chunk=2**20):
    """Raise at the first non-finite raw sample of an analysed (good EEG or reference) channel.

    Checked before any filtering, which would spread one NaN over the whole channel.
    """
    import mne

    picks = list(mne.pick_types(raw.info, eeg=True, exclude="bads"))
    if isinstance(reference, (list, tuple)) or (isinstance(reference, str) and reference != "average"):
        refs = [reference] if isinstance(reference, str) else list(reference)
        picks += [raw.ch_names.index(c) for c in refs if c in raw.ch_names
                  and raw.ch_names.index(c) not in picks]
    sfreq = raw.info["sfreq"]
    for start in range(0, raw.n_times, chunk):
        block = raw.get_data(picks=picks, start=start, stop=min(start + chunk, raw.n_times))
        bad = ~np.isfinite(block)
        if not bad.any():
            continue
        rows = np.flatnonzero(bad.any(axis=1))
        first = [int(np.argmax(bad[r])) for r in rows]
        k = int(np.argmin(first))
        ch = raw.ch_names[picks[rows[k]]]
        t = (start + first[k]) / sfreq
        value = block[rows[k], first[k]]
        where = "outside every stimulus run"
        for _, row in onsets.iterrows():
            if row["onset_s"] <= t < row["onset_s"] + row["duration_s"]:
                where = f"{t - row['onset_s']:.3f} s into run {row['stimulus_id']!r}"
                break
        others = [raw.ch_names[picks[r]] for r in rows if r != rows[k]]
        raise ValueError(
            f"The raw EEG holds a non-finite value ({value}) in channel {ch!r} at {t:.3f} s "
            f"from the first sample ({where})"
            + (f"; channels {others[:10]} also hold some" if others else "")
            + ". Filtering would spread it over the whole channel. Fix: mark the channel bad "
            "(the manifest's eeg.bads, or raw.info['bads']) if it is broken, or replace the "
            "non-finite samples (e.g. interpolate them) before aligning."
        )


def _check_lengths(rid, eeg_dur, stim_dur, inferred, tolerance, max_ratio, sfreq):
    """Compare a run's EEG and stimulus lengths: error, warning or log (see align_subject)."""
    quantum = 1.0 / sfreq  # below one analysis sample: rounding, not a mismatch
    if eeg_dur < stim_dur - tolerance:
        raise ValueError(
            f"Run {rid!r}: the EEG lasts {eeg_dur:.3f} s but its stimulus {stim_dur:.3f} s "
            f"(more than length_tolerance_s={tolerance:g} s shorter). Check the run "
            "annotation's duration, whether the recording was cut, and that the stimulus file "
            "is the run's (the manifest's stimuli.runs), or raise length_tolerance_s to trim "
            "the run."
        )
    if eeg_dur < stim_dur - quantum:
        warn(
            f"Run {rid!r}: the EEG lasts {eeg_dur:.3f} s, its stimulus {stim_dur:.3f} s; "
            f"trimming the run to the EEG ({stim_dur - eeg_dur:.3f} s shorter, within "
            f"length_tolerance_s={tolerance:g} s)."
        )
    excess = eeg_dur - stim_dur
    if inferred:
        if excess > quantum:
            logger.info(
                f"Run {rid!r}: {eeg_dur:.3f} s of EEG up to the next run (the annotation has no "
                f"duration); using the stimulus length, {stim_dur:.3f} s"
            )
        return
    if excess > tolerance and eeg_dur > max_ratio * stim_dur:
        raise ValueError(
            f"Run {rid!r}: the EEG run lasts {eeg_dur:.3f} s but its stimulus only "
            f"{stim_dur:.3f} s (the EEG is {eeg_dur / max(stim_dur, 1e-12):.1f} times longer; "
            f"max_length_ratio={max_ratio:g}). The stimulus file is probably cut or not this run's: check the "
            "manifest's stimuli.runs entry of this run and the run annotation's duration; pass "
            "a larger max_length_ratio if the EEG run really outlasts its stimulus."
        )
    if excess > tolerance:
        warn(
            f"Run {rid!r}: the EEG run lasts {eeg_dur:.3f} s, its stimulus {stim_dur:.3f} s; "
            f"using the first {stim_dur:.3f} s of the EEG ({excess:.3f} s left out)."
        )
    elif excess > quantum:
        logger.info(
            f"Run {rid!r}: the EEG run lasts {eeg_dur:.3f} s, its stimulus {stim_dur:.3f} s; "
            "using the stimulus length"
        )


def _n_samples(dur, sfreq, n_left):
    """Samples of a run lasting ``dur`` s: nearest whole sample, halves down, at most ``n_left``.

    Returns the count and the fraction of a sample dropped (negative: added).
    """
    exact = dur * sfreq
    n = int(np.ceil(exact - 0.5 - 1e-9))
    n = max(0, min(n, int(n_left)))
    return n, exact - n


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
    max_length_ratio=1.5,
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

    Bad channels (``raw.info["bads"]``) are left out: the aligned EEG ``Y`` and ``info`` hold
    the good EEG channels only, so no fit, null or max-T family sees a bad channel, and an
    ``"average"`` reference is the average of the good channels. Their names are kept in
    ``provenance["bads"]`` (and :attr:`AlignedRuns.bads`).

    Non-finite raw samples (NaN, inf) of a good EEG (or reference) channel raise an error
    naming the channel, the time and the run, before any filtering (which would spread them).

    Length checks, per run (the EEG length is the annotation's duration, or the data left in
    the recording when shorter):

    - EEG shorter than the stimulus by more than ``length_tolerance_s``: error stating both
      lengths; by less (and more than one sample): the run is trimmed to the EEG, with a
      warning;
    - EEG longer than the stimulus, the annotation having a duration: an error when the EEG
      is more than ``max_length_ratio`` times the stimulus (and longer by more than
      ``length_tolerance_s``: a cut or wrong stimulus file), a warning when longer by more
      than ``length_tolerance_s``, a log line below; the run is cut at the stimulus end;
    - when the annotation has no duration (the run lasts up to the next run), a longer EEG
      is only logged.

    Run lengths in samples: ``duration * sfreq`` rounded to the nearest whole sample (halves
    down) and capped at the EEG left in the recording; a fractional remainder is logged
    (never more than half a sample, i.e. ``0.5 / sfreq`` s).

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
        How much shorter than its stimulus an EEG run may be (trimmed, with a warning);
        beyond it an error is raised. Also the excess length of the EEG above which a
        warning is given.
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
    max_length_ratio : float
        An EEG run (with an annotated duration) more than this many times longer than its
        stimulus raises an error (1.5).
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
    check_positive(max_length_ratio, "max_length_ratio")
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
    bads = [b for b in raw.info["bads"] if b in raw.ch_names]
    picks = mne.pick_types(raw.info, eeg=True, exclude="bads")
    if len(picks) == 0:
        n_eeg = len(mne.pick_types(raw.info, eeg=True, exclude=[]))
        raise ValueError(
            "The recording has no good EEG channels"
            + (f" (all {n_eeg} are marked bad: {bads})" if n_eeg else "")
            + "; set the channel types (raw.set_channel_types({name: 'eeg', ...})) or unmark "
            "bad channels (raw.info['bads'], the manifest's eeg.bads)."
        )
    if bads:
        logger.info(f"Leaving out {len(bads)} bad channels: {bads}")
    _check_finite(raw, onsets, reference)
    eeg = preprocess_eeg(raw, l_freq=l_freq, h_freq=h_freq, sfreq=sfreq, reference=reference)
    sfreq = float(eeg.info["sfreq"])
    picks = mne.pick_types(eeg.info, eeg=True, exclude="bads")
    data = eeg.get_data(picks=picks)
    info = mne.pick_info(eeg.info, picks)
    Y, X, masks, runs_info = [], [], [], []
    for (_, row), rid, s in zip(onsets.iterrows(), run_ids, series):
        stim_dur = s.duration
        start = int(np.round(row["onset_s"] * sfreq))
        eeg_dur = min(row["duration_s"], (data.shape[1] - start) / sfreq)
        _check_lengths(rid, eeg_dur, stim_dur, bool(row["duration_inferred"]),
                       length_tolerance_s, max_length_ratio, sfreq)
        dur = min(stim_dur, eeg_dur)
        n_times, frac = _n_samples(dur, sfreq, data.shape[1] - start)
        if abs(frac) > 1e-6:
            logger.info(
                f"Run {rid!r}: {dur:.4f} s is {dur * sfreq:.3f} samples at {sfreq:g} Hz; "
                f"using {n_times} ({'dropping' if frac > 0 else 'adding'} "
                f"{abs(frac):.3f} sample, {abs(frac) / sfreq * 1e3:.2f} ms)"
            )
        Y.append(data[:, start : start + n_times].T)
        t0 = start / sfreq - row["onset_s"]
        x = resample_features(s, sfreq, n_times, t0=t0)
        X.append(_band_pass(x, sfreq, l_freq, h_freq))
        masks.append(_bad_mask(eeg, row["onset_s"], n_times, sfreq))
        runs_info.append(dict(run_id=rid, onset_s=float(row["onset_s"]), n_times=n_times, t0=float(t0),
                              stim_duration_s=float(stim_dur), eeg_duration_s=float(eeg_dur)))
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
        min_rate=min_rate, sae_id=series[0].sae_id, layer=series[0].layer, bads=bads,
        length_rounding="nearest sample, halves down, capped at the EEG left",
    )
    return AlignedRuns(
        run_ids=run_ids, sfreq=sfreq, X={feature_set: X}, feature_names={feature_set: names},
        Y=Y, info=info, masks=masks, provenance=provenance,
    )
