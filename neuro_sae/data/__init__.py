"""Data shipped with the package: demo speech stimuli."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from ..utils import fill_doc, logger, verbose


@fill_doc
@verbose
def demo_stimuli_dir(*, verbose=None):
    """Folder of the demo speech stimuli shipped with the package.

    Five consecutive runs (about 65-75 s each) of synthetic speech (espeak-ng, 16 kHz mono,
    OGG Vorbis) reading Chapter I of "Alice's Adventures in Wonderland" (public domain), with
    per-run transcripts ``runXX.txt``, a ``stimuli.tsv`` table and a licence note
    (``README.md``). ``tools/make_demo_stimuli.py`` regenerates them.

    Parameters
    ----------
    %(verbose)s

    Returns
    -------
    path : pathlib.Path
        The folder.
    """
    path = Path(str(resources.files(__name__) / "demo_stimuli"))
    logger.debug(f"Demo stimuli folder: {path}")
    return path


@fill_doc
@verbose
def list_demo_stimuli(*, verbose=None):
    """Table of the demo speech stimuli.

    Parameters
    ----------
    %(verbose)s

    Returns
    -------
    table : pandas.DataFrame
        One row per run with columns ``run_id``, ``file`` (audio file name), ``duration_s``
        (seconds), ``voice`` (espeak-ng voice), ``rate`` (words per minute), ``n_words``,
        ``path`` (absolute audio path, str) and ``transcript`` (the text of the run).
    """
    import pandas as pd

    folder = demo_stimuli_dir()
    table = pd.read_csv(folder / "stimuli.tsv", sep="\t", dtype={"run_id": str, "file": str})
    table["path"] = [str(folder / f) for f in table["file"]]
    table["transcript"] = [
        (folder / f"{run_id}.txt").read_text(encoding="utf-8").strip()
        for run_id in table["run_id"]
    ]
    logger.info(f"{len(table)} demo stimuli, {table['duration_s'].sum():.1f} s in all")
    return table

