"""Per-run design matrices and EEG on one grid: :class:`AlignedRuns` (built by
:func:`align_subject`, in ``_subject``) and its file format."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..io import SavedResult, read_result
from ..utils import (
    check_option,
    fill_doc,
    logger,
    validate_type,
    verbose,
    warn,
)

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
