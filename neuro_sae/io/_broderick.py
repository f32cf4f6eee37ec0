"""Readers for the Broderick et al. 2018 "Natural Speech" Dryad layout (doi:10.5061/dryad.070jc).

Layout read (the released folder, or files built to it)::

    <root>/EEG/Subject<N>/Subject<N>_Run<M>.mat   eegData (n_times, 128), mastoids (n_times, 2), fs
    <root>/Stimuli/Audio/audio<M>.wav              the audio of run M (searched anywhere below
                                                   Stimuli/ when not there)
    <root>/Stimuli/Text/Run<M>.mat                 wordVec, onset_time, offset_time (s)
    <root>/Stimuli/Envelopes/audio<M>_128Hz.mat    env (the released envelope, optional)

Each run file starts at the first sample of its audio.
"""

from __future__ import annotations

import re

import numpy as np

from ..utils import check_fname, check_option, fill_doc, logger, validate_type, verbose
from ._channels import add_bads

# BioSemi 128 channel names, in the order of the eegData columns (A1..A32, B1.., C1.., D1..)
BIOSEMI128 = [f"{b}{i}" for b in "ABCD" for i in range(1, 33)]
MASTOIDS = ["M1", "M2"]
_RUN_RE = re.compile(r"Run(\d+)\.mat$", re.IGNORECASE)


def _loadmat(fname, keys, what):
    from scipy.io import loadmat

    try:
        mat = loadmat(fname, squeeze_me=False)
    except (ValueError, NotImplementedError, OSError) as err:
        raise ValueError(
            f"Could not read {fname} as a MATLAB file ({err}); {what} files are MATLAB v5/v7 "
            "(.mat, scipy.io.loadmat); v7.3 (HDF5) files must be re-saved with -v7."
        ) from err
    missing = [k for k in keys if k not in mat]
    if missing:
        found = sorted(k for k in mat if not k.startswith("__"))
        raise ValueError(
            f"{fname.name} lacks the variables {missing} (found {found}); a {what} file holds "
            f"{list(keys)}."
        )
    return mat


@fill_doc
@verbose
def broderick_runs(root, subject, *, verbose=None):
    """Run numbers available for one subject of a Dryad-layout folder.

    Parameters
    ----------
    root : str | os.PathLike
        The dataset folder (holding ``EEG/``).
    subject : int | str
        Subject number (``1`` or ``"1"``; ``"Subject1"`` also accepted).
    %(verbose)s

    Returns
    -------
    runs : list of int
        Sorted run numbers.
    """
    folder = _subject_dir(root, subject)
    return sorted(int(_RUN_RE.search(p.name).group(1)) for p in folder.glob("*.mat") if _RUN_RE.search(p.name))


def _subject_dir(root, subject):
    root = check_fname(root, "root", kind="directory",
                       hint="Pass the folder of the Dryad release (it holds EEG/ and Stimuli/).")
    num = str(subject).removeprefix("Subject").removeprefix("sub-").lstrip("0") or "0"
    folder = root / "EEG" / f"Subject{num}"
    if not folder.is_dir():
        have = sorted(p.name for p in (root / "EEG").glob("Subject*")) if (root / "EEG").is_dir() else []
        raise FileNotFoundError(
            f"No folder {folder} for subject {subject!r}. Subjects found: {have or 'none'} "
            f"(expected <root>/EEG/Subject<N>/Subject<N>_Run<M>.mat)."
        )
    return folder


@fill_doc
@verbose
def read_broderick_dryad(
    root,
    subject,
    *,
    runs=None,
    reference=None,
    sfreq=None,
    stimulus_id="run{run:02d}",
    unit_scale=1e-6,
    bads=None,
    prefix="stim/",
    verbose=None,
):
    """Read one subject of the Broderick 2018 Dryad release as one continuous Raw.

    The runs (``Subject<N>_Run<M>.mat``) are concatenated in run order with
    :func:`mne.concatenate_raws`, which marks each junction with ``"BAD boundary"`` and
    ``"EDGE boundary"`` annotations (zero duration; MNE's filters treat the segments
    separately, so no filter transient crosses a junction). Each run gets one annotation
    ``f"{prefix}{stimulus_id}"`` from its first sample (the audio start) for its whole length.
    The 128 ``eegData`` columns are named A1..D32 and get the ``biosemi128`` montage; the two
    ``mastoids`` columns become channels ``M1``, ``M2`` (type ``misc``, no position).

    Parameters
    ----------
    root : str | os.PathLike
        The dataset folder (holding ``EEG/Subject<N>/``).
    subject : int | str
        Subject number.
    runs : list of int | None
        Runs to read, in this order (``None``: all, ascending).
    reference : None | "mastoids" | "average"
        ``"mastoids"`` subtracts the mean of the two mastoids from every EEG channel (the
        mastoid channels are then dropped); ``"average"`` re-references to the average of the
        128 channels; ``None`` keeps the recorded reference.
    sfreq : float | None
        Expected sampling rate in Hz; an error is raised when the files' ``fs`` differs
        (``None``: accept the files' rate, which must agree across runs).
    stimulus_id : str
        Pattern of the stimulus id of run M (``"run{run:02d}"`` gives ``run01``).
    unit_scale : float
        Factor from the file's unit to volts (``1e-6``: the data are in microvolts).
    bads : list of str | None
        Channels to mark bad (added to any already marked), before the re-referencing.
        They stay in the recording; the alignment leaves them out of every analysis.
    prefix : str
        Prefix of the run annotations.
    %(verbose)s

    Returns
    -------
    raw : mne.io.RawArray
        The runs, concatenated, with montage, bads and run annotations.
    """
    import mne

    check_option("reference", reference, (None, "mastoids", "average"))
    validate_type(stimulus_id, str, "stimulus_id")
    folder = _subject_dir(root, subject)
    available = broderick_runs(root, subject)
    runs = available if runs is None else [int(r) for r in runs]
    missing = [r for r in runs if r not in available]
    if missing:
        raise FileNotFoundError(
            f"Runs {missing} of subject {subject!r} are missing in {folder}; available runs: "
            f"{available or 'none'}."
        )
    if not runs:
        raise ValueError(f"No runs to read for subject {subject!r} in {folder}.")
    raws, rates = [], []
    num = folder.name.removeprefix("Subject")
    for run in runs:
        fname = folder / f"Subject{num}_Run{run}.mat"
        mat = _loadmat(fname, ("eegData", "mastoids", "fs"), "Broderick 2018 EEG run")
        fs = float(np.asarray(mat["fs"]).ravel()[0])
        eeg = np.asarray(mat["eegData"], dtype=np.float64)
        mast = np.asarray(mat["mastoids"], dtype=np.float64)
        if eeg.ndim != 2 or eeg.shape[1] != 128:
            hint = " (it looks transposed: save eegData as n_times x 128)" if eeg.shape[0] == 128 else ""
            raise ValueError(
                f"{fname.name}: eegData must have shape (n_times, 128), got {eeg.shape}{hint}."
            )
        if mast.shape != (eeg.shape[0], 2):
            raise ValueError(
                f"{fname.name}: mastoids must have shape (n_times, 2) = ({eeg.shape[0]}, 2) to "
                f"match eegData, got {mast.shape}; the run's files disagree in length."
            )
        if sfreq is not None and not np.isclose(fs, sfreq):
            raise ValueError(
                f"{fname.name}: its header says fs = {fs:g} Hz but sfreq = {sfreq:g} Hz was "
                "expected. Fix sfreq (the manifest's eeg.sfreq_file) or the file."
            )
        rates.append(fs)
        if not np.isclose(fs, rates[0]):
            raise ValueError(
                f"Runs disagree on the sampling rate: run {runs[0]} is at {rates[0]:g} Hz, "
                f"run {run} at {fs:g} Hz; resample the runs to one rate before reading."
            )
        data = np.concatenate([eeg, mast], axis=1).T * unit_scale
        info = mne.create_info(BIOSEMI128 + MASTOIDS, fs, ["eeg"] * 128 + ["misc"] * 2)
        raw = mne.io.RawArray(data, info, verbose=False)
        sid = stimulus_id.format(run=run)
        raw.set_annotations(mne.Annotations([0.0], [raw.n_times / fs], [f"{prefix}{sid}"]))
        raws.append(raw)
    raw = mne.concatenate_raws(raws, verbose=False) if len(raws) > 1 else raws[0]
    raw.set_montage("biosemi128", on_missing="ignore")
    # bads first: a bad channel must not enter the average or the mastoid reference
    add_bads(raw, bads, source=f"{folder.name} (A1..D32, M1, M2)")
    if reference == "mastoids":
        good = [m for m in MASTOIDS if m not in raw.info["bads"]]
        if not good:
            raise ValueError(
                f"reference='mastoids' but both mastoids {MASTOIDS} are marked bad; "
                "use reference='average' or None, or unmark one mastoid."
            )
        ref = raw.get_data(picks=good).mean(axis=0)
        eeg_picks = mne.pick_types(raw.info, eeg=True, exclude=[])
        raw._data[eeg_picks] -= ref
        raw.info["bads"] = [b for b in raw.info["bads"] if b not in MASTOIDS]
        raw.drop_channels(MASTOIDS)
        logger.info(f"Re-referenced to the mean of {good}")
    elif reference == "average":
        # MNE's average reference leaves out the channels marked bad
        raw.set_eeg_reference("average", projection=False, verbose=False)
        logger.info(f"Re-referenced to the average of the good EEG channels (bads {raw.info['bads']} left out)")
    logger.info(
        f"Read {len(runs)} Dryad runs of {folder.name}: {raw.times[-1]:.1f} s at {rates[0]:g} Hz"
    )
    return raw


def _find_audio(stim_dir, run):
    for cand in (stim_dir / "Audio" / f"audio{run}.wav", stim_dir / f"audio{run}.wav"):
        if cand.is_file():
            return cand
    hits = sorted(p for p in stim_dir.rglob("*") if p.suffix.lower() in (".wav", ".flac", ".ogg")
                  and p.stem.lower() in (f"audio{run}", f"run{run}", f"audio{run:02d}"))
    return hits[0] if hits else None


@fill_doc
@verbose
def read_broderick_stimuli(root, *, runs=None, stimulus_id="run{run:02d}", verbose=None):
    """Audio files and word onsets of the Dryad ``Stimuli/`` folder.

    Parameters
    ----------
    root : str | os.PathLike
        The dataset folder (holding ``Stimuli/``).
    runs : list of int | None
        Runs wanted (``None``: every run with an audio file or a ``Text/Run<M>.mat``).
    stimulus_id : str
        Pattern of the stimulus id of run M.
    %(verbose)s

    Returns
    -------
    stimuli : dict of str to dict
        Stimulus id to ``dict(run=M, audio=Path | None, words=DataFrame | None,
        envelope=ndarray | None)``; ``words`` has columns ``word``, ``onset``, ``offset``
        (seconds from the audio start); ``envelope`` is the released envelope at 128 Hz
        (``Envelopes/audio<M>_128Hz.mat``, variable ``env``) when present.
    """
    root = check_fname(root, "root", kind="directory")
    stim_dir = root / "Stimuli"
    if not stim_dir.is_dir():
        raise FileNotFoundError(
            f"{root} has no Stimuli/ folder; the Dryad release keeps the audio under "
            "Stimuli/Audio/audio<M>.wav and the words under Stimuli/Text/Run<M>.mat."
        )
    if runs is None:
        found = {int(m.group(1)) for p in stim_dir.rglob("*") for m in [re.search(r"(?:audio|Run)(\d+)\.(?:wav|flac|ogg|mat)$", p.name, re.IGNORECASE)] if m and "Envelope" not in str(p)}
        runs = sorted(found)
    out = {}
    for run in runs:
        audio = _find_audio(stim_dir, int(run))
        text = stim_dir / "Text" / f"Run{run}.mat"
        words = read_word_onsets(text) if text.is_file() else None
        env_f = stim_dir / "Envelopes" / f"audio{run}_128Hz.mat"
        envelope = None
        if env_f.is_file():
            envelope = np.asarray(_loadmat(env_f, ("env",), "Broderick 2018 envelope")["env"], float).ravel()
        if audio is None and words is None:
            raise FileNotFoundError(
                f"Run {run}: neither audio (Stimuli/Audio/audio{run}.wav) nor words "
                f"(Stimuli/Text/Run{run}.mat) found under {stim_dir}."
            )
        out[stimulus_id.format(run=int(run))] = dict(run=int(run), audio=audio, words=words,
                                                      envelope=envelope)
    logger.info(f"Found stimuli of {len(out)} runs under {stim_dir}")
    return out


@fill_doc
@verbose
def read_word_onsets(fname, *, trial_type=None, verbose=None):
    """Word onsets of one stimulus from a table or a Dryad ``Text/Run<M>.mat`` file.

    Parameters
    ----------
    fname : str | os.PathLike
        A ``.mat`` file (``wordVec``, ``onset_time``, ``offset_time``) or a ``.tsv``/``.csv``
        table with an ``onset`` column (seconds from the audio start; optional ``word``,
        ``offset``/``duration``), e.g. a BIDS ``*_events.tsv`` of word events.
    trial_type : str | None
        Keep only the rows whose ``trial_type`` is this (e.g. ``"word"`` in an events table
        that also holds phonemes); ``None``: all rows.
    %(verbose)s

    Returns
    -------
    words : pandas.DataFrame
        Columns ``word``, ``onset``, ``offset`` in seconds from the audio start.
    """
    import pandas as pd

    fname = check_fname(fname, "fname")
    if fname.suffix == ".mat":
        mat = _loadmat(fname, ("wordVec", "onset_time", "offset_time"), "Broderick 2018 word-onset")
        words = [np.asarray(w).ravel() for w in np.asarray(mat["wordVec"], dtype=object).ravel()]
        return pd.DataFrame(dict(
            word=[str(w[0]) if w.size else "" for w in words],
            onset=np.asarray(mat["onset_time"], float).ravel(),
            offset=np.asarray(mat["offset_time"], float).ravel(),
        ))
    table = pd.read_csv(fname, sep="," if fname.suffix == ".csv" else "\t")
    if "onset" not in table.columns:
        raise ValueError(f"{fname.name} has no 'onset' column (columns: {list(table.columns)}).")
    if trial_type is not None:
        if "trial_type" not in table.columns:
            raise ValueError(f"trial_type={trial_type!r} given but {fname.name} has no trial_type column.")
        table = table[table["trial_type"].astype(str) == trial_type].reset_index(drop=True)
    word = table["word"] if "word" in table.columns else table.get("trial_type", pd.Series([""] * len(table)))
    if "offset" in table.columns:
        offset = table["offset"]
    elif "duration" in table.columns:
        offset = table["onset"] + pd.to_numeric(table["duration"], errors="coerce").fillna(0)
    else:
        offset = table["onset"]
    return pd.DataFrame(dict(word=word.astype(str).to_numpy(), onset=table["onset"].astype(float).to_numpy(),
                             offset=np.asarray(offset, float)))
