"""BIDS continuous stimulus files: ``*_stim.tsv.gz`` (no header) + ``*_stim.json``.

The sidecar holds ``SamplingFrequency`` (Hz), ``StartTime`` (s, time of the first row
relative to the start of the associated recording or stimulus) and ``Columns`` (one name per
column), as the BIDS specification for continuous recordings requires.
"""

from __future__ import annotations

import contextlib
import gzip
import json
from pathlib import Path

import numpy as np

from ..utils import check_fname, check_positive, fill_doc, logger, verbose
from ._atomic import atomic_path


def _stim_names(fname):
    fname = Path(fname)
    if not fname.name.endswith("_stim.tsv.gz"):
        raise ValueError(
            f"fname must end in '_stim.tsv.gz' (BIDS continuous stimulus file), got "
            f"{fname.name!r}; e.g. 'sub-01_task-listen_run-1_recording-envelope_stim.tsv.gz'."
        )
    return fname, fname.with_name(fname.name[: -len(".tsv.gz")] + ".json")


@fill_doc
@verbose
def write_stim_tsv(fname, data, sfreq, columns, *, start_time=0.0, extra=None, overwrite=False,
                   verbose=None):
    """Write a feature time series as a BIDS ``*_stim.tsv.gz`` with its ``.json`` sidecar.

    Both files are written atomically: on any error neither exists.

    Parameters
    ----------
    fname : str | os.PathLike
        Destination ending in ``_stim.tsv.gz``.
    data : ndarray, shape (n_times, n_columns) | neuro_sae.features.FeatureSeries
        Values (a FeatureSeries gives its dense codes, rate, first frame time and feature ids,
        which then override ``sfreq``, ``start_time`` and default ``columns``).
    sfreq : float | None
        Rate in Hz.
    columns : list of str | None
        Column names.
    start_time : float
        Time of the first row in seconds.
    extra : dict | None
        More sidecar fields (e.g. ``{"StimulusID": "run01"}``).
    overwrite : bool
        Replace existing files.
    %(verbose)s

    Returns
    -------
    fname : pathlib.Path
        The ``.tsv.gz`` path.
    """
    fname, side = _stim_names(fname)
    # a FeatureSeries, recognised by its interface: io does not import features
    # (features imports io; no import cycle)
    if all(hasattr(data, a) for a in ("to_dense", "feature_ids", "sfreq", "times")):
        series = data
        data, sfreq = series.to_dense(), series.sfreq
        start_time = float(series.times[0]) if series.n_frames else 0.0
        if columns is None:
            columns = [f"feature_{int(f)}" for f in series.feature_ids]
        extra = dict(dict(StimulusID=series.stimulus_id, Layer=series.layer, SAE=series.sae_id), **(extra or {}))
    data = np.asarray(data, dtype=np.float64)
    if data.ndim == 1:
        data = data[:, None]
    if data.ndim != 2:
        raise ValueError(f"data must be 2-D (n_times, n_columns), got shape {data.shape}.")
    if not np.all(np.isfinite(data)):
        raise ValueError("data holds NaN or infinite values; BIDS stim files need finite numbers.")
    check_positive(sfreq, "sfreq")
    columns = [str(c) for c in columns]
    if len(columns) != data.shape[1] or len(set(columns)) != len(columns):
        raise ValueError(
            f"columns must name each of the {data.shape[1]} columns once, got {len(columns)} "
            f"names ({len(set(columns))} distinct)."
        )
    for f in (fname, side):
        if f.exists() and not overwrite:
            raise FileExistsError(f"{f} exists; pass overwrite=True to replace it.")
    meta = dict(SamplingFrequency=float(sfreq), StartTime=float(start_time), Columns=columns)
    meta.update({k: v for k, v in (extra or {}).items() if v is not None})
    with contextlib.ExitStack() as stack:
        tmp_tsv = stack.enter_context(atomic_path(fname))
        tmp_json = stack.enter_context(atomic_path(side))
        with gzip.open(tmp_tsv, "wt") as fid:
            np.savetxt(fid, data, fmt="%.10g", delimiter="\t")
        tmp_json.write_text(json.dumps(meta, indent=2))
    logger.info(f"Wrote {fname.name}: {data.shape[0]} rows x {data.shape[1]} columns at {sfreq:g} Hz")
    return fname


@fill_doc
@verbose
def read_stim_tsv(fname, *, verbose=None):
    """Read a BIDS ``*_stim.tsv.gz`` and its sidecar.

    Parameters
    ----------
    fname : str | os.PathLike
        The ``_stim.tsv.gz`` file.
    %(verbose)s

    Returns
    -------
    data : ndarray, shape (n_times, n_columns)
        The values.
    meta : dict
        The sidecar (``SamplingFrequency``, ``StartTime``, ``Columns``, ...).
    """
    fname, side = _stim_names(fname)
    check_fname(fname, "fname")
    check_fname(side, "sidecar", hint="A BIDS stim file needs its .json sidecar next to it.")
    meta = json.loads(side.read_text())
    missing = [k for k in ("SamplingFrequency", "StartTime", "Columns") if k not in meta]
    if missing:
        raise ValueError(f"{side.name} lacks the required fields {missing}.")
    with gzip.open(fname, "rt") as fid:
        data = np.loadtxt(fid, delimiter="\t", ndmin=2)
    if data.shape[1] != len(meta["Columns"]):
        raise ValueError(
            f"{fname.name} has {data.shape[1]} columns but its sidecar names {len(meta['Columns'])}."
        )
    return data, meta
