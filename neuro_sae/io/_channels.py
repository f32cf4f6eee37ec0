"""Bad channels and montages of a recording, shared by every EEG reader.

Kept apart from the readers so that ``_eeg`` (generic, manifest) and ``_bids`` both import
it without importing each other.
"""

from __future__ import annotations

import numpy as np

from ..utils import check_option, logger, standard_montage, warn

_ON_MISSING = ("raise", "warn", "ignore")


def check_bads(bads, ch_names, *, key="bads", source="the recording"):
    """Check that every bad channel is in ``ch_names``; returns the list (or ``[]``).

    ``key`` is the name of the setting as the user wrote it (e.g. ``eeg.bads.3``).
    """
    if not bads:
        return []
    if isinstance(bads, str):
        bads = [bads]
    bads = [str(b) for b in bads]
    missing = [b for b in bads if b not in ch_names]
    if missing:
        lower = {c.lower(): c for c in ch_names}
        close = {b: lower[b.lower()] for b in missing if b.lower() in lower}
        hint = f" (names differ only in case: {close})" if close else ""
        shown = list(ch_names[:12]) + (["..."] if len(ch_names) > 12 else [])
        raise ValueError(
            f"{key} lists channels {missing} that are not in {source}{hint}; its channels are "
            f"{shown}. Fix {key}: give channel names exactly as the recording spells them."
        )
    return bads


def add_bads(raw, bads, *, key="bads", source="the recording"):
    """Mark ``bads`` bad in ``raw`` (added to the channels already marked), in place."""
    bads = check_bads(bads, raw.ch_names, key=key, source=source)
    if bads:
        old = list(raw.info["bads"])
        raw.info["bads"] = old + [b for b in bads if b not in old]
        logger.info(f"Bad channels: {raw.info['bads']}")
    return raw


def has_positions(info, picks="eeg"):
    """True when at least one good channel of ``picks`` has a (non-zero, finite) position."""
    import mne

    try:
        idx = mne.pick_types(info, eeg=True, exclude="bads") if picks == "eeg" else picks
    except ValueError:
        return False
    for i in idx:
        loc = np.asarray(info["chs"][i]["loc"][:3], float)
        if np.all(np.isfinite(loc)) and np.any(loc != 0):
            return True
    return False


def apply_montage(raw, montage, *, on_missing="raise", key="montage", source="the recording"):
    """Set ``montage`` on ``raw`` (in place), matching channel names case-insensitively.

    Every good EEG channel must get a position: the channels the montage does not name raise
    an error listing them (``on_missing="raise"``), a warning (``"warn"``) or are logged
    (``"ignore"``) and kept without position. Bad channels without position are only logged.
    """
    import mne

    if montage is None:
        return raw
    check_option("on_missing", on_missing, _ON_MISSING)
    name = montage
    if isinstance(montage, str):
        montage = standard_montage(montage, key)
    elif not isinstance(montage, mne.channels.DigMontage):
        raise TypeError(
            f"{key} must be the name of a standard montage (e.g. 'biosemi64', 'colin27_1020') "
            f"or an mne.channels.DigMontage, got {type(montage).__name__}."
        )
    else:
        name = "the DigMontage given"
    known = {c.lower() for c in montage.ch_names}
    eeg = [raw.ch_names[i] for i in mne.pick_types(raw.info, eeg=True, exclude=[])]
    unmatched = [c for c in eeg if c.lower() not in known]
    bad_unmatched = [c for c in unmatched if c in raw.info["bads"]]
    unmatched = [c for c in unmatched if c not in raw.info["bads"]]
    if bad_unmatched:
        logger.info(f"Bad channels without a position in {name!r}: {bad_unmatched}")
    if unmatched:
        shown = unmatched[:20] + (["..."] if len(unmatched) > 20 else [])
        msg = (
            f"{len(unmatched)} of the {len(eeg)} EEG channels of {source} have no position in "
            f"the montage {name!r} ({key}; names compared without case): {shown}. The montage "
            f"names its channels e.g. {montage.ch_names[:6]}. Fix: rename the channels to the "
            f"montage's names (raw.rename_channels), choose the montage of the cap ({key}), "
            "mark them bad, set their type to 'misc'/'eog' if they are not EEG, or read them "
            "without position (on_missing='warn' or 'ignore')."
        )
        if on_missing == "raise":
            raise ValueError(msg)
        if on_missing == "warn":
            warn(msg)
        else:
            logger.info(msg)
    raw.set_montage(montage, match_case=False, on_missing="ignore", verbose=False)
    n_pos = len(eeg) - len(unmatched) - len(bad_unmatched)
    logger.info(f"Montage {name!r}: positions for {n_pos} of {len(eeg)} EEG channels")
    return raw
