"""BIDS EEG reader (via mne-bids), e.g. the OpenNeuro ds004408 release of Broderick 2018.

One BIDS run (``sub-<s>_task-<t>_run-<r>_eeg.<ext>``) holds one stimulus run; the runs are
read with :func:`mne_bids.read_raw_bids` and concatenated into one Raw with one
``f"{prefix}<stimulus id>"`` annotation per run.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..utils import check_fname, fill_doc, logger, validate_type, verbose
from ._channels import add_bads, apply_montage


def _bids_runs(root, subject, task, session):
    from mne_bids import BIDSPath

    bp = BIDSPath(root=root, subject=subject, task=task, session=session, datatype="eeg",
                  suffix="eeg")
    found = {}
    for p in bp.match(ignore_json=True):
        if p.extension in (".vhdr", ".edf", ".bdf", ".set", ".fif") and p.run is not None:
            found.setdefault(int(p.run), p)
    return found


@fill_doc
@verbose
def read_bids_runs(
    root,
    subject,
    *,
    task,
    runs=None,
    session=None,
    stimulus_id="run{run:02d}",
    onset_event=None,
    sfreq=None,
    montage=None,
    on_missing="raise",
    bads=None,
    prefix="stim/",
    verbose=None,
):
    """Read the stimulus runs of one BIDS subject as one continuous Raw.

    Each BIDS run is one stimulus run; by default the run starts at the first sample of its
    audio (as in OpenNeuro ds004408) and lasts the whole file. With ``onset_event``, the run
    starts at the onset of that event (``trial_type``) of its ``*_events.tsv`` instead, for its
    ``duration`` when given. The runs are concatenated (:func:`mne.concatenate_raws`; the
    junctions get ``"BAD boundary"``/``"EDGE boundary"`` annotations so filters do not cross
    them). The events of every run stay as annotations (their ``trial_type``), so word
    events remain available.

    Parameters
    ----------
    root : str | os.PathLike
        The BIDS root.
    subject : str
        Subject label (without ``sub-``).
    task : str
        Task label (``"listening"`` in ds004408).
    runs : list of int | None
        Runs to read, in this order (``None``: all, ascending).
    session : str | None
        Session label.
    stimulus_id : str
        Pattern of the stimulus id of run r (``"run{run:02d}"``), or ``"stim_file"`` to take
        the file stem of the ``stim_file`` column of the run's events table.
    onset_event : str | None
        ``trial_type`` of the event marking the audio start (``None``: the first sample).
    sfreq : float | None
        Expected sampling rate in Hz (ds004408: 512); a different rate in the data or the
        sidecar raises.
    montage : str | mne.channels.DigMontage | None
        Montage to set (``None``: keep the positions of ``*_electrodes.tsv``, if any);
        channel names are matched without case.
    on_missing : "raise" | "warn" | "ignore"
        What to do when good EEG channels have no position in ``montage`` (see
        :func:`read_raw_runs`).
    bads : list of str | None
        Channels to mark bad (added to those of ``*_channels.tsv``); the alignment leaves
        them out of every analysis.
    prefix : str
        Prefix of the run annotations.
    %(verbose)s

    Returns
    -------
    raw : mne.io.Raw
        The runs, concatenated, preloaded, with the run annotations.
    """
    import mne
    import pandas as pd
    from mne_bids import read_raw_bids

    root = check_fname(root, "root", kind="directory", hint="Pass the BIDS root folder.")
    validate_type(stimulus_id, str, "stimulus_id")
    subject = str(subject).removeprefix("sub-")
    available = _bids_runs(root, subject, task, session)
    if not available:
        raise FileNotFoundError(
            f"No EEG runs for sub-{subject}, task-{task} under {root} (expected "
            f"sub-{subject}/[ses-*/]eeg/sub-{subject}_task-{task}_run-<r>_eeg.vhdr); check "
            "subject, task and session."
        )
    runs = sorted(available) if runs is None else [int(r) for r in runs]
    missing = [r for r in runs if r not in available]
    if missing:
        raise FileNotFoundError(
            f"Runs {missing} of sub-{subject} task-{task} are missing; available runs: "
            f"{sorted(available)}."
        )
    raws, rates = [], []
    for run in runs:
        bp = available[run]
        raw = read_raw_bids(bp, verbose="error").load_data(verbose=False)
        fs = float(raw.info["sfreq"])
        side = bp.copy().update(extension=".json").fpath
        if side.is_file():
            side_fs = json.loads(side.read_text()).get("SamplingFrequency")
            if side_fs is not None and not np.isclose(float(side_fs), fs):
                raise ValueError(
                    f"{side.name} says SamplingFrequency = {float(side_fs):g} Hz but the data "
                    f"file is at {fs:g} Hz; fix the sidecar or the data."
                )
        if sfreq is not None and not np.isclose(fs, sfreq):
            raise ValueError(
                f"Run {run} of sub-{subject} is at {fs:g} Hz but sfreq = {sfreq:g} Hz was "
                "expected; fix sfreq (the manifest's eeg.sfreq_file) or resample the data."
            )
        rates.append(fs)
        if not np.isclose(fs, rates[0]):
            raise ValueError(
                f"Runs disagree on the sampling rate: run {runs[0]} is at {rates[0]:g} Hz, run "
                f"{run} at {fs:g} Hz; resample them to one rate first."
            )
        events_f = bp.copy().update(suffix="events", extension=".tsv").fpath
        events = pd.read_csv(events_f, sep="\t") if events_f.is_file() else None
        if stimulus_id == "stim_file":
            if events is None or "stim_file" not in events.columns:
                raise ValueError(
                    f"stimulus_id='stim_file' needs a stim_file column in {events_f.name}; "
                    "use a pattern such as 'run{run:02d}' instead."
                )
            files = events["stim_file"].dropna()
            files = files[files.astype(str) != "n/a"]
            sid = Path(str(files.iloc[0])).stem
        else:
            sid = stimulus_id.format(run=run)
        onset, duration = 0.0, raw.n_times / fs
        if onset_event is not None:
            rows = None if events is None else events[events["trial_type"].astype(str) == onset_event]
            if rows is None or len(rows) != 1:
                n = 0 if rows is None else len(rows)
                raise ValueError(
                    f"Run {run}: onset_event={onset_event!r} occurs {n} times in "
                    f"{events_f.name}, expected once; pass the trial_type of the audio-start "
                    "event or None (the run starts with its audio)."
                )
            onset = float(rows["onset"].iloc[0])
            dur = pd.to_numeric(rows["duration"], errors="coerce").iloc[0] if "duration" in rows else np.nan
            duration = float(dur) if np.isfinite(dur) and dur > 0 else duration - onset
        raw.annotations.append(onset + raw.first_time, duration, f"{prefix}{sid}")
        raws.append(raw)
    raw = mne.concatenate_raws(raws, verbose=False) if len(raws) > 1 else raws[0]
    add_bads(raw, bads, source=f"sub-{subject}")
    apply_montage(raw, montage, on_missing=on_missing, source=f"sub-{subject}")
    logger.info(f"Read {len(runs)} BIDS runs of sub-{subject}: {raw.times[-1]:.1f} s at {rates[0]:g} Hz")
    return raw
