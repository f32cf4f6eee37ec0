"""One helper for progress bars (tqdm), silenced when the log level is above INFO."""

from __future__ import annotations

import logging
import os
import sys

from tqdm.auto import tqdm

from ._logging import logger


def progress_bar(iterable=None, *, total=None, desc=None, unit="it", leave=False, disable=None):
    """Wrap an iterable in a progress bar.

    Parameters
    ----------
    iterable : iterable | None
        What to iterate over; ``None`` gives a manual bar (call ``update``).
    total : int | None
        Number of items, when ``iterable`` has no length.
    desc : str | None
        Label shown before the bar.
    unit : str
        Unit name.
    leave : bool
        Keep the bar on screen when done.
    disable : bool | None
        Force the bar off (``True``) or on (``False``). ``None`` shows it when
        the ``neuro_sae`` log level is INFO or lower and the environment
        variable ``NEURO_SAE_PROGRESS`` is not ``0``.

    Returns
    -------
    bar : tqdm.tqdm
        The progress bar (iterable).
    """
    if disable is None:
        disable = (
            logger.getEffectiveLevel() > logging.INFO
            or os.environ.get("NEURO_SAE_PROGRESS", "1") == "0"
        )
    return tqdm(
        iterable,
        total=total,
        desc=desc,
        unit=unit,
        leave=leave,
        disable=disable,
        file=sys.stderr,
        dynamic_ncols=True,
        mininterval=0.5,
    )
