"""Stimulus-run onsets from annotations, and EEG preprocessing."""

from __future__ import annotations

import numpy as np

from ..utils import check_option, fill_doc, logger, validate_type, verbose


@fill_doc
@verbose
def find_run_onsets(raw, stimulus_ids, *, prefix="stim/", verbose=None):
    """Find where each stimulus run starts in a continuous recording.

    A run is marked by one annotation whose description is ``f"{prefix}{stimulus_id}"``; its
    onset is the first sample of the audio and its duration the length of the run.

    Parameters
    ----------
    raw : mne.io.Raw
        The continuous recording with its annotations.
    stimulus_ids : list of str
        Identifiers of the runs to find, in the order wanted.
    prefix : str
        Prefix of the run annotations (``"stim/"``).
    %(verbose)s

    Returns
    -------
    onsets : pandas.DataFrame
        One row per run, in the order of ``stimulus_ids``, with columns ``stimulus_id``,
        ``onset_s`` (seconds from the first sample of the data, i.e. the annotation onset
        minus ``raw.first_time``), ``duration_s`` (annotation duration in seconds; when it is
        0 the data up to the next run or the end of the recording), ``duration_inferred``
        (True where the annotation gave no duration) and ``onset_sample`` (index of
        ``round(onset_s * sfreq)`` into the data array).
    """
    import pandas as pd

    validate_type(prefix, str, "prefix")
    if isinstance(stimulus_ids, str):
        stimulus_ids = [stimulus_ids]
    stimulus_ids = [str(s) for s in stimulus_ids]
    if len(set(stimulus_ids)) != len(stimulus_ids):
        raise ValueError(f"stimulus_ids must be unique, got {stimulus_ids}.")
    annot = raw.annotations
    descriptions = np.array([str(d) for d in annot.description], dtype=object)
    sfreq = raw.info["sfreq"]
    t_end = raw.n_times / sfreq
    found = sorted({d for d in descriptions if d.startswith(prefix)})
    rows = []
    for stim in stimulus_ids:
        hits = np.flatnonzero(descriptions == f"{prefix}{stim}")
        if len(hits) == 0:
            shown = ", ".join(repr(f) for f in found[:20]) or "none"
            raise ValueError(
                f"Stimulus run {stim!r} has no annotation {prefix + stim!r} in the recording. "
                f"Run annotations found (prefix {prefix!r}): {shown}. Fix the run ids (they must "
                "match the manifest's stimuli.runs ids), the prefix, or add the annotation with "
                "raw.annotations.append(onset, duration, f'{prefix}{run_id}')."
            )
        if len(hits) > 1:
            raise ValueError(
                f"Stimulus run {stim!r} is annotated {len(hits)} times (onsets "
                f"{np.round(annot.onset[hits] - raw.first_time, 3).tolist()} s); keep one "
                "annotation per run (rename repeats, e.g. 'stim/run01_rep2')."
            )
        i = hits[0]
        onset = float(annot.onset[i] - raw.first_time)
        if onset < 0 or onset >= t_end:
            raise ValueError(
                f"Run {stim!r} starts at {onset:.3f} s, outside the recording (0 to "
                f"{t_end:.3f} s); check the annotation onsets and raw.first_time."
            )
        rows.append(dict(stimulus_id=stim, onset_s=onset, duration_s=float(annot.duration[i])))
    table = pd.DataFrame(rows, columns=["stimulus_id", "onset_s", "duration_s"])
    table["duration_inferred"] = table["duration_s"] <= 0
    # runs without a duration last up to the next run onset or the end of the data
    all_onsets = np.sort(
        [float(o - raw.first_time) for o, d in zip(annot.onset, descriptions) if d.startswith(prefix)]
    )
    for k in table.index[table["duration_s"] <= 0]:
        onset = table.at[k, "onset_s"]
        later = all_onsets[all_onsets > onset]
        table.at[k, "duration_s"] = (later[0] if len(later) else t_end) - onset
    table["onset_sample"] = np.round(table["onset_s"].to_numpy() * sfreq).astype(np.int64)
    order = np.argsort(table["onset_s"].to_numpy(), kind="stable")
    starts = table["onset_s"].to_numpy()[order]
    ends = starts + table["duration_s"].to_numpy()[order]
    overlap = np.flatnonzero(starts[1:] < ends[:-1] - 1e-9)
    if len(overlap):
        a, b = order[overlap[0]], order[overlap[0] + 1]
        raise ValueError(
            f"Stimulus runs {table.at[a, 'stimulus_id']!r} ({starts[overlap[0]]:.3f}-"
            f"{ends[overlap[0]]:.3f} s) and {table.at[b, 'stimulus_id']!r} (from "
            f"{starts[overlap[0] + 1]:.3f} s) overlap; fix the annotation onsets or durations."
        )
    logger.info(f"Found {len(table)} stimulus runs between {starts[0]:.1f} and {ends[-1]:.1f} s")
    return table


@fill_doc
@verbose
def preprocess_eeg(raw, *, l_freq=1.0, h_freq=8.0, sfreq=None, reference=None, verbose=None):
    """Band-pass, resample and re-reference a copy of a continuous recording.

    The band-pass is MNE's zero-phase FIR (:meth:`mne.io.Raw.filter`, ``firwin`` design, the
    default transition bands) applied to the data channels of the whole recording, so that the
    filter transients fall outside the runs; the resampling is :meth:`mne.io.Raw.resample`
    (FFT based, annotations kept).

    Parameters
    ----------
    raw : mne.io.Raw
        The continuous recording (not modified).
    l_freq : float | None
        High-pass edge in Hz (``None``: no high-pass).
    h_freq : float | None
        Low-pass edge in Hz (``None``: no low-pass).
    sfreq : float | None
        New sampling rate in Hz (``None``: keep the rate).
    reference : None | "average" | str | list of str
        ``None`` keeps the reference; ``"average"`` re-references to the average of the good
        EEG channels (channels marked bad are left out of it); channel names re-reference to
        their mean (they may not be marked bad).
    %(verbose)s

    Returns
    -------
    raw : mne.io.Raw
        A new, preloaded Raw.
    """
    from mne.io import BaseRaw

    validate_type(raw, BaseRaw, "raw", "mne.io.Raw")
    raw = raw.copy().load_data(verbose=False)
    if l_freq is not None or h_freq is not None:
        logger.info(f"Band-pass {l_freq}-{h_freq} Hz (zero-phase FIR)")
        raw.filter(l_freq, h_freq, method="fir", phase="zero", fir_design="firwin", verbose=False)
    if sfreq is not None and not np.isclose(sfreq, raw.info["sfreq"]):
        logger.info(f"Resampling the EEG from {raw.info['sfreq']:g} to {sfreq:g} Hz")
        raw.resample(sfreq, verbose=False)
    if reference is not None:
        if isinstance(reference, str) and reference != "average":
            reference = [reference]
        if isinstance(reference, str):
            check_option("reference", reference, ("average",))
        else:
            missing = [ch for ch in reference if ch not in raw.ch_names]
            if missing:
                raise ValueError(
                    f"Invalid value for the 'reference' parameter (the manifest's "
                    f"eeg.reference): channels {missing} are not in the recording. Use None, "
                    "'average' or names from raw.ch_names."
                )
            bad = [ch for ch in reference if ch in raw.info["bads"]]
            if bad:
                raise ValueError(
                    f"The reference channels {bad} (reference, the manifest's eeg.reference) are "
                    "marked bad; a bad channel cannot be the reference. Choose other channels, "
                    "'average' (the average of the good channels) or unmark them."
                )
        raw.set_eeg_reference(reference, projection=False, verbose=False)
        logger.info(f"Re-referenced to {reference}")
    return raw
