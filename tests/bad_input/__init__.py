"""Bad-input cases of the whole package, one list per area.

Each area module (``manifest.py``, ``audio.py``, ``eeg.py``, ``checkpoints.py``,
``stimuli.py``, ``statistics.py``, ``pipeline.py``, ...) defines ``CASES``, a list of
:class:`BadInput`. ``tests/test_bad_input.py`` collects every list and runs each case:
the call must raise the stated exception, its message must contain every pattern
(the thing named as the user wrote it, the allowed values, the fix), and no file may
be left behind in the case's output folder.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class BadInput:
    """One bad-input case.

    Parameters
    ----------
    id : str
        Short, unique name (the pytest id).
    setup : callable
        ``setup(tmp_path) -> (call, out_dir)``: builds the inputs under ``tmp_path``
        and returns a zero-argument callable that must fail, plus the folder that
        must hold no new file afterwards (``None``: ``tmp_path`` itself).
    exc : type or tuple of type
        The exception the call raises.
    match : list of str
        Regular expressions that must all be found in the message
        (``re.search``, case-insensitive).
    what : str
        One line for the listing: what is wrong with the input.
    """

    id: str
    setup: Callable
    exc: type | tuple
    match: list[str] = field(default_factory=list)
    what: str = ""


def snapshot(folder):
    """Every file under ``folder`` with its size and mtime (to spot half-written output)."""
    folder = Path(folder)
    if not folder.exists():
        return {}
    return {
        str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }
