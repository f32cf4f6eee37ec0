"""Alignment of one subject: run checks, EEG preprocessing, features on the EEG grid
(:func:`align_subject`)."""

from __future__ import annotations

import numpy as np

from ..utils import (
    check_option,
    check_positive,
    fill_doc,
    logger,
    verbose,
    warn,
)
from ._aligned import AlignedRuns, _band_pass, _scale_features, _train_index
from ._onsets import find_run_onsets, preprocess_eeg
from ._resample import resample_features


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


def eeg_scaling_statistics(Y_runs, masks, runs, scaling="robust"):
    """Per-channel centre and spread of the EEG of some runs, over their good samples.

    Parameters
    ----------
    Y_runs : list of array, shape (n_times, n_channels)
        The EEG of every run.
    masks : list of array of bool, shape (n_times,)
        True for the samples outside every BAD annotation, per run.
    runs : list of int
        The runs whose samples give the statistics (e.g. the training or development runs).
    scaling : ``"robust"`` | ``"standard"``
        Median and interquartile range, or mean and standard deviation.

    Returns
    -------
    center : array, shape (n_channels,)
        Median (or mean) per channel.
    spread : array, shape (n_channels,)
        Interquartile range (or standard deviation) per channel; 1 where it is 0.
    """
    runs = list(runs)
    good = np.concatenate([Y_runs[i][masks[i]] for i in runs])
    if len(good) == 0:
        raise ValueError(
            f"Every sample of run(s) {runs} is inside a BAD annotation: the EEG scaling has "
            "no data. Check the BAD annotations or the runs the scaling is taken from "
            "(train_runs, or the development runs of the protocol)."
        )
    if scaling == "robust":
        center = np.median(good, axis=0)
        spread = np.subtract(*np.percentile(good, [75, 25], axis=0))
    else:
        center, spread = good.mean(axis=0), good.std(axis=0)
    return center, np.where(spread == 0, 1.0, spread)


def _scale_eeg(Y, masks, scaling, train):
    if scaling is None:
        return Y
    center, denom = eeg_scaling_statistics(Y, masks, train, scaling)
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

    from ..io import FeatureSeries, select_alive_features

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
