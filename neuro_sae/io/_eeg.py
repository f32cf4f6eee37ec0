"""Generic EEG readers: any MNE-readable recording plus one annotation per stimulus run.

Run onsets come from the recording's own ``stim/<id>`` annotations, from an events
(trigger) channel with a trigger code -> stimulus id mapping, from other annotations with a
description -> stimulus id mapping, or from a table of onsets (onset, duration,
stimulus_id).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..utils import check_fname, fill_doc, logger, validate_type, verbose
from ._channels import add_bads, apply_montage, check_bads, has_positions

_ONSET_COLUMNS = ("onset", "duration", "stimulus_id")


def _as_table(runs, parameter="runs"):
    """A DataFrame (onset, duration, stimulus_id) from a DataFrame, list of dicts or tsv/csv path."""
    import pandas as pd

    if isinstance(runs, (str, Path)):
        fname = check_fname(runs, parameter, hint="Pass a .tsv or .csv table of run onsets.")
        sep = "," if fname.suffix == ".csv" else "\t"
        table = pd.read_csv(fname, sep=sep)
    elif isinstance(runs, pd.DataFrame):
        table = runs.copy()
    elif isinstance(runs, (list, tuple)):
        table = pd.DataFrame(list(runs))
    else:
        raise TypeError(
            f"{parameter} must be a pandas DataFrame, a list of dicts or a .tsv/.csv path with "
            f"columns {list(_ONSET_COLUMNS)}, got {type(runs).__name__}."
        )
    missing = [c for c in ("onset", "stimulus_id") if c not in table.columns]
    if missing:
        raise ValueError(
            f"{parameter} lacks the columns {missing}; it has {list(table.columns)}. A run table "
            "needs 'onset' (s from the first sample), 'stimulus_id' and optionally 'duration' (s; "
            "0 or missing: up to the next run or the end of the recording)."
        )
    if "duration" not in table.columns:
        table["duration"] = 0.0
    table["duration"] = table["duration"].fillna(0.0).astype(float)
    table["onset"] = table["onset"].astype(float)
    table["stimulus_id"] = table["stimulus_id"].astype(str)
    return table[list(_ONSET_COLUMNS)].reset_index(drop=True)


def _check_runs(table, t_end, what):
    """Runs inside the recording, unique ids, no overlaps; fills zero durations."""
    dup = table["stimulus_id"][table["stimulus_id"].duplicated()].tolist()
    if dup:
        raise ValueError(
            f"{what}: stimulus ids {sorted(set(dup))} occur more than once; each run needs its "
            "own id (rename repeats, e.g. 'run01_rep2')."
        )
    table = table.sort_values("onset", kind="stable").reset_index(drop=True)
    on = table["onset"].to_numpy()
    bad = np.flatnonzero((on < 0) | (on >= t_end))
    if len(bad):
        i = bad[0]
        raise ValueError(
            f"{what}: run {table.at[i, 'stimulus_id']!r} starts at {on[i]:.3f} s, outside the "
            f"recording (0 to {t_end:.3f} s). Onsets are seconds from the first sample of the "
            "data (subtract raw.first_time from absolute times)."
        )
    nxt = np.r_[on[1:], t_end]
    dur = table["duration"].to_numpy().copy()
    dur[dur <= 0] = (nxt - on)[dur <= 0]
    table["duration"] = dur
    over = np.flatnonzero(on[1:] < on[:-1] + dur[:-1] - 1e-9)
    if len(over):
        i = over[0]
        raise ValueError(
            f"{what}: runs {table.at[i, 'stimulus_id']!r} ({on[i]:.3f}-{on[i] + dur[i]:.3f} s) and "
            f"{table.at[i + 1, 'stimulus_id']!r} (from {on[i + 1]:.3f} s) overlap; fix the onsets "
            "or the durations (a run's duration is its audio's length)."
        )
    end = on + dur
    late = np.flatnonzero(end > t_end + 1e-9)
    if len(late):
        i = late[0]
        raise ValueError(
            f"{what}: run {table.at[i, 'stimulus_id']!r} ends at {end[i]:.3f} s but the recording "
            f"ends at {t_end:.3f} s ({end[i] - t_end:.3f} s short): the EEG of this run is "
            "shorter than its audio. Check the duration (the audio length), the onset, or "
            "whether the recording was cut; give a shorter duration to keep the partial run."
        )
    return table


@fill_doc
@verbose
def set_run_annotations(raw, runs, *, prefix="stim/", verbose=None):
    """Add one annotation per stimulus run to a recording (in place).

    Parameters
    ----------
    raw : mne.io.Raw
        The recording.
    runs : pandas.DataFrame | list of dict | str | os.PathLike
        The run table, or a ``.tsv``/``.csv`` file holding it: columns ``onset`` (seconds from
        the first sample of the data), ``stimulus_id`` and optionally ``duration`` (seconds;
        0 or missing: up to the next run or the end of the recording).
    prefix : str
        Description prefix: run ``id`` is annotated ``f"{prefix}{id}"``.
    %(verbose)s

    Returns
    -------
    raw : mne.io.Raw
        The same object, with the annotations appended.
    """
    from mne.io import BaseRaw

    validate_type(raw, BaseRaw, "raw", "mne.io.Raw")
    validate_type(prefix, str, "prefix")
    table = _check_runs(_as_table(runs), raw.n_times / raw.info["sfreq"], "runs")
    existing = {str(d) for d in raw.annotations.description}
    clash = [f"{prefix}{s}" for s in table["stimulus_id"] if f"{prefix}{s}" in existing]
    if clash:
        raise ValueError(
            f"The recording already has the run annotations {clash[:5]}; remove them first "
            "(raw.annotations.delete(...)) or use another prefix."
        )
    # raw.annotations store onsets including raw.first_time (in either orig_time convention)
    raw.annotations.append(
        table["onset"].to_numpy() + raw.first_time,
        table["duration"].to_numpy(),
        [f"{prefix}{s}" for s in table["stimulus_id"]],
    )
    logger.info(f"Annotated {len(table)} stimulus runs ({prefix}<id>)")
    return raw


@fill_doc
@verbose
def runs_from_events(raw, event_id, *, stim_channel=None, durations=None, verbose=None):
    """Run table from a trigger (events) channel.

    Parameters
    ----------
    raw : mne.io.Raw
        The recording with an events channel.
    event_id : dict of int to str
        Trigger code to stimulus id (e.g. ``{1: "run01", 2: "run02"}``). Codes not in the
        mapping are ignored; every mapped code must occur exactly once.
    stim_channel : str | None
        The events channel (``None``: MNE's default search).
    durations : dict of str to float | None
        Stimulus id to run duration in seconds (the audio length); missing: up to the next run.
    %(verbose)s

    Returns
    -------
    runs : pandas.DataFrame
        Columns ``onset`` (s from the first sample), ``duration``, ``stimulus_id``.
    """
    import mne
    import pandas as pd

    validate_type(event_id, dict, "event_id")
    events = mne.find_events(raw, stim_channel=stim_channel, shortest_event=1, verbose=False)
    rows = []
    for code, stim in event_id.items():
        hits = events[events[:, 2] == int(code)]
        if len(hits) != 1:
            found = sorted({int(c) for c in events[:, 2]})
            raise ValueError(
                f"Trigger code {code} (stimulus {stim!r}) occurs {len(hits)} times in the events "
                f"channel, expected once. Codes found: {found}. Fix event_id (trigger code -> "
                "stimulus id, e.g. in the manifest's eeg.event_id) or the stim_channel."
            )
        onset = (hits[0, 0] - raw.first_samp) / raw.info["sfreq"]
        dur = float((durations or {}).get(str(stim), 0.0))
        rows.append(dict(onset=onset, duration=dur, stimulus_id=str(stim)))
    return pd.DataFrame(rows, columns=list(_ONSET_COLUMNS))


@fill_doc
@verbose
def runs_from_annotations(raw, annotation_map, *, durations=None, verbose=None):
    """Run table from existing annotations with another naming.

    Parameters
    ----------
    raw : mne.io.Raw
        The recording.
    annotation_map : dict of str to str
        Annotation description to stimulus id (e.g. ``{"Stimulus/S  1": "run01"}``).
    durations : dict of str to float | None
        Stimulus id to run duration in seconds; missing: the annotation's duration, or when
        that is 0, up to the next run.
    %(verbose)s

    Returns
    -------
    runs : pandas.DataFrame
        Columns ``onset`` (s from the first sample), ``duration``, ``stimulus_id``.
    """
    import pandas as pd

    validate_type(annotation_map, dict, "annotation_map")
    desc = np.array([str(d) for d in raw.annotations.description], dtype=object)
    rows = []
    for name, stim in annotation_map.items():
        hits = np.flatnonzero(desc == name)
        if len(hits) != 1:
            shown = sorted(set(desc.tolist()))[:20]
            raise ValueError(
                f"Annotation {name!r} (stimulus {stim!r}) occurs {len(hits)} times, expected "
                f"once. Descriptions found: {shown}. Fix annotation_map (description -> "
                "stimulus id)."
            )
        i = hits[0]
        dur = (durations or {}).get(str(stim), float(raw.annotations.duration[i]))
        rows.append(dict(onset=float(raw.annotations.onset[i] - raw.first_time),
                         duration=float(dur), stimulus_id=str(stim)))
    return pd.DataFrame(rows, columns=list(_ONSET_COLUMNS))


@fill_doc
@verbose
def read_raw_runs(
    fname,
    *,
    runs=None,
    event_id=None,
    stim_channel=None,
    annotation_map=None,
    durations=None,
    montage=None,
    on_missing="raise",
    bads=None,
    prefix="stim/",
    verbose=None,
):
    """Read any MNE-readable EEG recording with one annotation per stimulus run.

    Where the run onsets come from (at most one of ``runs``, ``event_id``,
    ``annotation_map``; with none, the file must already hold ``f"{prefix}<id>"``
    annotations, e.g. a FIF written by this package):

    - ``runs``: a table of onsets (:func:`set_run_annotations`);
    - ``event_id``: trigger code -> stimulus id on an events channel (:func:`runs_from_events`);
    - ``annotation_map``: annotation description -> stimulus id (:func:`runs_from_annotations`).

    Parameters
    ----------
    fname : str | os.PathLike
        The recording (FIF, BrainVision ``.vhdr``, EDF/BDF, EEGLAB ``.set``, ... anything
        :func:`mne.io.read_raw` reads).
    runs : pandas.DataFrame | list of dict | str | os.PathLike | None
        Run table (``onset`` s from the first sample, ``duration`` s, ``stimulus_id``).
    event_id : dict of int to str | None
        Trigger code to stimulus id.
    stim_channel : str | None
        Events channel for ``event_id``.
    annotation_map : dict of str to str | None
        Annotation description to stimulus id.
    durations : dict of str to float | None
        Stimulus id to duration (s) for ``event_id``/``annotation_map`` runs.
    montage : str | mne.channels.DigMontage | None
        Montage to set, replacing the file's positions (``None``: keep the file's
        positions). Channel names are matched without case (``FP1`` takes ``Fp1``'s
        position).
    on_missing : "raise" | "warn" | "ignore"
        What to do when good EEG channels have no position in ``montage``: an error listing
        them (default), a warning, or a log line; they are then kept without position.
    bads : list of str | None
        Channels to mark bad (added to those of the file). They stay in the returned
        recording; the alignment leaves them out of every analysis.
    prefix : str
        Prefix of the run annotations.
    %(verbose)s

    Returns
    -------
    raw : mne.io.Raw
        The recording, preloaded, with the run annotations.
    """
    import mne

    fname = check_fname(fname, "fname", must_exist=False)
    if not fname.is_file():
        raise FileNotFoundError(
            f"EEG file not found: {fname}. Fix the path (in a manifest: eeg.files), or write a "
            "simulated subject with neuro_sae.simulation.write_simulated_subject."
        )
    given = [n for n, v in (("runs", runs), ("event_id", event_id), ("annotation_map", annotation_map)) if v is not None]
    if len(given) > 1:
        raise ValueError(
            f"Give at most one source of run onsets, got {given}; use runs (a table), event_id "
            "(trigger codes) or annotation_map (annotation descriptions)."
        )
    try:
        raw = mne.io.read_raw(fname, preload=True, verbose="error")
    except ValueError as err:
        raise ValueError(
            f"MNE cannot read {fname.name!r} ({err}). Supported: FIF, BrainVision (.vhdr), "
            "EDF/BDF, EEGLAB (.set), ...; for the Broderick 2018 .mat files use "
            "read_broderick_dryad, for a BIDS folder read_bids_runs."
        ) from err
    add_bads(raw, bads, source=fname.name)
    apply_montage(raw, montage, on_missing=on_missing, source=fname.name)
    if runs is not None:
        set_run_annotations(raw, runs, prefix=prefix)
    elif event_id is not None:
        set_run_annotations(raw, runs_from_events(raw, event_id, stim_channel=stim_channel,
                                                  durations=durations), prefix=prefix)
    elif annotation_map is not None:
        set_run_annotations(raw, runs_from_annotations(raw, annotation_map, durations=durations),
                            prefix=prefix)
    n_stim = sum(str(d).startswith(prefix) for d in raw.annotations.description)
    logger.info(
        f"Read {fname.name}: {len(raw.ch_names)} channels, {raw.times[-1]:.1f} s at "
        f"{raw.info['sfreq']:g} Hz, {n_stim} stimulus annotations"
    )
    return raw


@fill_doc
@verbose
def read_subject_eeg(manifest, subject, *, derivatives=None, on_missing="raise", verbose=None):
    """Read one subject's EEG as the manifest's ``eeg`` section describes it.

    ``eeg.format`` picks the reader: ``"fif"``/``"mne"`` :func:`read_raw_runs` on
    ``eeg.files`` (with ``eeg.event_id``, ``eeg.annotation_map`` or ``eeg.onsets_table``),
    ``"dryad"`` :func:`read_broderick_dryad` and ``"bids"`` :func:`read_bids_runs` on
    ``eeg.root``. Bad channels come from ``eeg.bads[subject]`` (added to those the files
    mark; they stay in the recording and the alignment leaves them out).

    Channel positions: for ``"fif"``/``"mne"`` (FIF, BrainVision, EDF, ...) and ``"bids"``,
    ``eeg.montage`` is applied when the manifest sets it explicitly, and otherwise (its
    default) whenever the file has no positions for its EEG channels; a file's own
    digitisation is kept when ``eeg.montage`` is left at its default. Channel names are
    matched without case; good EEG channels the montage does not name raise an error that
    lists them (``on_missing``). The Dryad layout always gets ``biosemi128``.

    Parameters
    ----------
    manifest : neuro_sae.manifest.Manifest
        The loaded manifest.
    subject : str
        Subject label.
    derivatives : str | os.PathLike | None
        Output folder, for ``eeg.files`` patterns using ``{derivatives}``.
    on_missing : "raise" | "warn" | "ignore"
        What to do when good EEG channels have no position in ``eeg.montage``.
    %(verbose)s

    Returns
    -------
    raw : mne.io.Raw
        The recording with one ``f"{eeg.onset_prefix}<id>"`` annotation per run.
    """
    eeg = manifest.eeg
    manifest._check_subject(subject)
    bads = eeg.bads.get(str(subject))
    bads_key = f"eeg.bads.{subject}"
    prefix = eeg.onset_prefix
    montage = getattr(eeg, "montage", None)
    explicit = "montage" in getattr(eeg, "model_fields_set", {"montage"})
    if eeg.format == "dryad":
        from ._broderick import BIOSEMI128, MASTOIDS, read_broderick_dryad

        check_bads(bads, BIOSEMI128 + MASTOIDS, key=bads_key,
                   source=f"the Dryad recordings of subject {subject} (A1..D32, M1, M2)")
        return read_broderick_dryad(
            manifest.resolve(eeg.root), subject, runs=eeg.runs, sfreq=eeg.sfreq_file,
            reference="mastoids" if eeg.reference == "mastoids" else None,
            stimulus_id=eeg.stimulus_id, bads=bads, prefix=prefix,
        )
    if eeg.format == "bids":
        from ._bids import read_bids_runs

        raw = read_bids_runs(
            manifest.resolve(eeg.root), subject, task=eeg.task, runs=eeg.runs,
            stimulus_id=eeg.stimulus_id, sfreq=eeg.sfreq_file, prefix=prefix,
        )
        source = f"sub-{subject} ({eeg.root})"
    else:
        fname = manifest.eeg_file(
            subject, derivatives if derivatives is not None else manifest.derivatives_dir()
        )
        if not fname.is_file():
            raise FileNotFoundError(
                f"No EEG file for subject {subject!r}: eeg.files ({eeg.files!r}) gives {fname}, "
                "which does not exist. Fix eeg.files (patterns {subject} and {derivatives}), "
                "or for the simulated demo run 'neuro-sae simulate' first."
            )
        runs = None
        if eeg.onsets_table is not None:
            runs = manifest.resolve(eeg.onsets_table.format(subject=subject))
            check_fname(runs, "eeg.onsets_table",
                        hint=f"Fix eeg.onsets_table ({eeg.onsets_table!r}, pattern {{subject}}).")
        raw = read_raw_runs(
            fname, runs=runs, event_id=eeg.event_id, stim_channel=eeg.stim_channel,
            annotation_map=eeg.annotation_map, prefix=prefix,
        )
        source = fname.name
    add_bads(raw, bads, key=bads_key, source=source)
    if montage is not None and (explicit or not has_positions(raw.info)):
        apply_montage(raw, montage, on_missing=on_missing, key="eeg.montage", source=source)
    elif montage is not None:
        logger.info(f"Keeping the channel positions of {source} (eeg.montage not set)")
    return raw


def subject_eeg_files(manifest, subject, *, derivatives=None):
    """The files :func:`read_subject_eeg` reads for one subject (for content hashing).

    Parameters
    ----------
    manifest : neuro_sae.manifest.Manifest
        The loaded manifest.
    subject : str
        Subject label.
    derivatives : str | os.PathLike | None
        Output folder, for ``eeg.files`` patterns using ``{derivatives}``.

    Returns
    -------
    files : list of pathlib.Path
        The recording(s) and, where the manifest names one, the onsets table; for the
        Dryad layout the subject's ``.mat`` runs, for BIDS every file under ``sub-<s>``.
    """
    eeg = manifest.eeg
    if eeg.format == "dryad":
        from ._broderick import _subject_dir

        return sorted(_subject_dir(manifest.resolve(eeg.root), subject).glob("*.mat"))
    if eeg.format == "bids":
        folder = manifest.resolve(eeg.root) / f"sub-{str(subject).removeprefix('sub-')}"
        return sorted(p for p in folder.rglob("*") if p.is_file())
    if derivatives is None:
        derivatives = manifest.derivatives_dir()
    files = [manifest.eeg_file(subject, derivatives)]
    if eeg.onsets_table is not None:
        files.append(manifest.resolve(eeg.onsets_table.format(subject=subject)))
    return files
