"""EEG readers (generic MNE FIF for now)."""

from __future__ import annotations

from ..utils import check_fname, fill_doc, logger, verbose


@fill_doc
@verbose
def read_raw_runs(fname, *, verbose=None):
    """Read a continuous EEG recording saved as FIF, with its stimulus annotations.

    The recording holds every run; each run is marked by an annotation
    ``"stim/<stimulus_id>"`` (see :func:`neuro_sae.align.find_run_onsets`).

    Parameters
    ----------
    fname : str | os.PathLike
        The ``*_eeg.fif`` (or ``*_raw.fif``) file.
    %(verbose)s

    Returns
    -------
    raw : mne.io.Raw
        The recording, preloaded.
    """
    import mne

    fname = check_fname(
        fname,
        "fname",
        hint="Check the EEG path in the manifest, or write a simulated subject with "
        "neuro_sae.simulation.write_simulated_subject.",
    )
    if not fname.name.endswith((".fif", ".fif.gz")):
        raise ValueError(
            f"read_raw_runs reads FIF files (ending in .fif or .fif.gz), got {fname.name!r}; "
            "read other formats with mne.io.read_raw and pass the Raw on."
        )
    raw = mne.io.read_raw_fif(fname, preload=True, verbose="error")
    n_stim = sum(d.startswith("stim/") for d in raw.annotations.description)
    logger.info(
        f"Read {fname.name}: {len(raw.ch_names)} channels, {raw.times[-1]:.1f} s at "
        f"{raw.info['sfreq']:g} Hz, {n_stim} stimulus annotations"
    )
    return raw
