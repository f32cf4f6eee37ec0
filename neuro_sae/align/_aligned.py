"""Per-run design matrices and EEG on one grid: :class:`AlignedRuns` and :func:`align_subject`."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..utils import check_fname, check_option, check_positive, fill_doc, logger, verbose
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
    def to_epochs(self, *, verbose=None):
        """The EEG as one epoch per run.

        Runs are cropped to the length of the shortest run (Epochs need equal lengths). The
        data keep the units of ``Y`` (robust-scaled, not volts).

        Parameters
        ----------
        %(verbose)s

        Returns
        -------
        epochs : mne.EpochsArray
            Epoch i is run i (event id ``run_ids[i]``: ``i + 1``), starting at 0 s.
        """
        import mne

        n_min = min(len(y) for y in self.Y)
        lengths = {len(y) for y in self.Y}
        if len(lengths) > 1:
            logger.info(f"Cropping {self.n_runs} runs to the shortest: {n_min / self.sfreq:.2f} s")
        data = np.stack([y[:n_min].T for y in self.Y])
        starts = np.cumsum([0] + [len(y) for y in self.Y[:-1]])
        events = np.c_[starts, np.zeros(self.n_runs, int), np.arange(1, self.n_runs + 1)]
        event_id = {rid: i + 1 for i, rid in enumerate(self.run_ids)}
        return mne.EpochsArray(data, self.info, events=events, tmin=0.0, event_id=event_id, verbose=False)

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
    verbose=None,
):
    """Put the stimulus features and the EEG of one subject on one grid, run by run.

    Steps: find the run onsets (:func:`find_run_onsets`); band-pass the whole recording and
    resample it to ``sfreq`` (:func:`preprocess_eeg`); cut each run from its onset for the
    duration of its stimulus (``n_frames / series.sfreq``); resample the features onto the
    run's EEG samples (:func:`resample_features`, which accounts for the half-sample
    rounding of the onset); band-pass the features with the same zero-phase FIR
    (:func:`mne.filter.filter_data`); scale the features; robust-scale the EEG (per channel,
    zero median and unit interquartile range over the good samples of all runs, as in the
    AudioSAE paper).

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
        Feature scaling over all runs: ``"max"`` divides each feature by its maximum
        absolute value (the paper), ``"zscore"`` removes its mean and divides by its standard
        deviation, ``None`` leaves it. Features that are zero everywhere stay zero.
    prefix : str
        Prefix of the run annotations.
    feature_ids : array-like of int | None
        Dictionary features to keep (``None``: every column of the series).
    length_tolerance_s : float
        How much shorter than its stimulus an EEG run may be (trimmed, logged at INFO);
        beyond it an error is raised.
    %(verbose)s

    Returns
    -------
    aligned : AlignedRuns
        Features ``X[feature_set]`` and EEG ``Y`` per run, at ``sfreq``.
    """
    import mne

    from ..features import FeatureSeries

    check_positive(sfreq, "sfreq")
    check_positive(length_tolerance_s, "length_tolerance_s", strict=False)
    check_option("scale", scale, ("max", "zscore", None))
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
    if feature_ids is not None:
        series = [s.select(feature_ids) for s in series]
    ids0 = series[0].feature_ids
    for rid, s in zip(run_ids, series):
        if not np.array_equal(s.feature_ids, ids0):
            raise ValueError(
                f"Run {rid!r} has different feature_ids from run {run_ids[0]!r}; pass "
                "feature_ids= to select the same features in every run."
            )
    onsets = find_run_onsets(raw, run_ids, prefix=prefix)
    eeg = preprocess_eeg(raw, l_freq=l_freq, h_freq=h_freq, sfreq=sfreq)
    sfreq = float(eeg.info["sfreq"])
    picks = mne.pick_types(eeg.info, eeg=True, exclude=[])
    if len(picks) == 0:
        raise ValueError("The recording has no EEG channels; set the channel types first.")
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
        dur = min(stim_dur, eeg_dur)
        if dur < stim_dur:
            logger.info(f"Run {rid!r}: trimming to the EEG, {eeg_dur:.3f} s of {stim_dur:.3f} s")
        n_times = int(np.floor(dur * sfreq + 1e-6))
        Y.append(data[:, start : start + n_times].T)
        t0 = start / sfreq - row["onset_s"]
        x = resample_features(s, sfreq, n_times, t0=t0)
        if (l_freq is not None or h_freq is not None) and x.shape[1]:
            x = mne.filter.filter_data(
                x.T, sfreq, l_freq, h_freq, method="fir", phase="zero", fir_design="firwin",
                verbose=False,
            ).T
        X.append(x)
        masks.append(_bad_mask(eeg, row["onset_s"], n_times, sfreq))
        runs_info.append(dict(run_id=rid, onset_s=float(row["onset_s"]), n_times=n_times))
    if scale is not None and X[0].shape[1]:
        cat = np.concatenate(X)
        if scale == "max":
            center = np.zeros(cat.shape[1])
            denom = np.abs(cat).max(axis=0)
        else:
            center = cat.mean(axis=0)
            denom = cat.std(axis=0)
        n_zero = int(np.sum(denom == 0))
        if n_zero:
            logger.info(f"{n_zero} features are constant over all runs; left unscaled")
        denom[denom == 0] = 1.0
        X = [(x - center) / denom for x in X]
    good = np.concatenate([y[m] for y, m in zip(Y, masks)])
    if len(good) == 0:
        raise ValueError("Every sample of every run is inside a BAD annotation.")
    med = np.median(good, axis=0)
    iqr = np.subtract(*np.percentile(good, [75, 25], axis=0))
    iqr[iqr == 0] = 1.0
    Y = [(y - med) / iqr for y in Y]
    names = [f"{feature_set}_{int(f)}" for f in ids0]
    logger.info(
        f"Aligned {len(run_ids)} runs ({sum(len(y) for y in Y) / sfreq:.1f} s at {sfreq:g} Hz), "
        f"{len(names)} features, {len(picks)} channels"
    )
    provenance = dict(
        l_freq=l_freq, h_freq=h_freq, sfreq=sfreq, scale=scale, prefix=prefix,
        feature_set=feature_set, runs=runs_info,
        sae_id=series[0].sae_id, layer=series[0].layer,
    )
    return AlignedRuns(
        run_ids=run_ids, sfreq=sfreq, X={feature_set: X}, feature_names={feature_set: names},
        Y=Y, info=info, masks=masks, provenance=provenance,
    )
