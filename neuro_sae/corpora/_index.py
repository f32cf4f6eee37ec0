"""The clip index: one table for every corpus (validation, atomic write, read)."""

from __future__ import annotations

import math
from pathlib import Path, PurePosixPath

import numpy as np

from ..utils import fill_doc, logger, validate_type, verbose

INDEX_FORMAT = "neuro_sae.clip_index"
INDEX_VERSION = 1
DOMAINS = ("speech", "music", "sounds")
# column -> (required, kind); kinds: str, float, labels, optional str
INDEX_COLUMNS = {
    "id": "str",
    "corpus": "str",
    "path": "str",
    "duration": "float",
    "sfreq": "float",
    "domain": "str",
    "labels": "labels",
    "speaker": "optional",
    "transcript": "optional",
    "alignment": "optional",
    "source": "str",
    "licence": "str",
    "sha256": "optional",
}


def _missing(value):
    return value is None or (isinstance(value, float) and math.isnan(value))


def _fail(where, message):
    raise ValueError(f"Clip index{where}: {message}")


def check_clip_index(index, *, where=""):
    """Validate a clip index and return it in canonical form (a new DataFrame).

    Parameters
    ----------
    index : pandas.DataFrame
        The table (columns in :data:`INDEX_COLUMNS`; ``corpus`` and ``sha256``
        may be absent and are then filled with ``"default"`` and null).
    where : str
        Text naming the table's origin in error messages (e.g. `` ({fname})``).

    Returns
    -------
    index : pandas.DataFrame
        Columns in the canonical order, labels as lists of str, nulls as None.
    """
    import pandas as pd

    validate_type(index, pd.DataFrame, "index", "a pandas DataFrame (a clip index)")
    df = index.copy()
    if "corpus" not in df:
        df["corpus"] = "default"
    if "sha256" not in df:
        df["sha256"] = None
    missing = [c for c in INDEX_COLUMNS if c not in df]
    if missing:
        _fail(where, f"missing column(s) {missing}; a clip index has the columns "
                     f"{list(INDEX_COLUMNS)}.")
    extra = [c for c in df.columns if c not in INDEX_COLUMNS and c != "root"]
    if extra:
        _fail(where, f"unknown column(s) {extra}; allowed are {list(INDEX_COLUMNS)} "
                     "(plus 'root').")
    df = df.reset_index(drop=True)
    if not len(df):
        _fail(where, "the table is empty; a clip index lists at least one clip.")
    for col, kind in INDEX_COLUMNS.items():
        vals = df[col].tolist()
        if kind == "str":
            bad = [i for i, v in enumerate(vals) if not isinstance(v, str) or not v]
            if bad:
                _fail(where, f"column {col!r} must hold non-empty strings; row {bad[0]} "
                             f"(id {df['id'].iloc[bad[0]]!r}) has {vals[bad[0]]!r}.")
        elif kind == "float":
            arr = np.asarray(vals, dtype=float)
            bad = np.flatnonzero(~np.isfinite(arr) | (arr <= 0))
            if bad.size:
                i = int(bad[0])
                _fail(where, f"column {col!r} must hold positive finite numbers; row {i} "
                             f"(id {df['id'].iloc[i]!r}) has {vals[i]!r}.")
            df[col] = arr
        elif kind == "labels":
            out = []
            for i, v in enumerate(vals):
                if isinstance(v, np.ndarray):
                    v = v.tolist()
                if not isinstance(v, (list, tuple)) or not all(
                    isinstance(x, str) and x for x in v
                ):
                    _fail(where, f"column 'labels' must hold lists of non-empty strings; row "
                                 f"{i} (id {df['id'].iloc[i]!r}) has {v!r}.")
                out.append(list(v))
            df[col] = pd.Series(out, dtype=object)
        else:
            out = []
            for i, v in enumerate(vals):
                if _missing(v):
                    out.append(None)
                elif isinstance(v, str):
                    out.append(v)
                else:
                    _fail(where, f"column {col!r} must hold strings or nulls; row {i} (id "
                                 f"{df['id'].iloc[i]!r}) has {v!r}.")
            df[col] = pd.Series(out, dtype=object)
    bad = sorted(set(df["domain"]) - set(DOMAINS))
    if bad:
        i = int(np.flatnonzero(df["domain"].isin(bad))[0])
        _fail(where, f"column 'domain' must be one of {list(DOMAINS)}; row {i} (id "
                     f"{df['id'].iloc[i]!r}) has {df['domain'].iloc[i]!r}.")
    dup = df["id"][df["id"].duplicated()].tolist()
    if dup:
        _fail(where, f"ids must be unique; {dup[:3]} appear more than once.")
    for col in ("path", "alignment"):
        for i, v in enumerate(df[col]):
            if v is not None and (PurePosixPath(v).is_absolute() or ".." in PurePosixPath(v).parts):
                _fail(where, f"column {col!r} must hold paths relative to the corpus root "
                             f"(no '..'); row {i} (id {df['id'].iloc[i]!r}) has {v!r}.")
    cols = list(INDEX_COLUMNS) + (["root"] if "root" in df else [])
    return df[cols]


@fill_doc
@verbose
def write_clip_index(index, fname, *, verbose=None):
    """Validate a clip index and write it to parquet atomically.

    Parameters
    ----------
    index : pandas.DataFrame
        The clip index (see :mod:`neuro_sae.corpora` for the schema).
    fname : str | os.PathLike
        Destination (``.parquet``).
    %(verbose)s

    Returns
    -------
    fname : pathlib.Path
        The written path.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    from ..io import atomic_path

    df = check_clip_index(index)
    table = pa.Table.from_pandas(df, preserve_index=False)
    meta = dict(table.schema.metadata or {})
    meta[b"neuro_sae"] = f'{{"format": "{INDEX_FORMAT}", "version": {INDEX_VERSION}}}'.encode()
    table = table.replace_schema_metadata(meta)
    fname = Path(fname)
    with atomic_path(fname) as tmp:
        pq.write_table(table, tmp)
    logger.info(f"Wrote the clip index of {len(df)} clips to {fname}")
    return fname


@fill_doc
@verbose
def read_clip_index(fname, *, verbose=None):
    """Read a clip index written by :func:`write_clip_index` (or any builder/reader).

    Parameters
    ----------
    fname : str | os.PathLike
        A parquet clip index, or a folder holding ``index.parquet`` (a built corpus).
    %(verbose)s

    Returns
    -------
    index : pandas.DataFrame
        The validated table; ``index.attrs["root"]`` is the folder of the file
        (clip paths are relative to it unless the table has a ``root`` column).
    """
    import pandas as pd

    fname = Path(fname).expanduser()
    if fname.is_dir():
        fname = fname / "index.parquet"
    if not fname.is_file():
        raise FileNotFoundError(
            f"Clip index {fname} does not exist; pass a parquet file written by "
            "write_clip_index or a corpus folder holding index.parquet "
            "(neuro-sae build-corpus --out DIR)."
        )
    try:
        df = pd.read_parquet(fname)
    except Exception as err:  # pyarrow raises several types
        raise ValueError(f"Could not read {fname} as a parquet clip index ({err}).") from err
    df = check_clip_index(df, where=f" ({fname})")
    df.attrs["root"] = str(fname.parent.resolve())
    logger.info(f"Read {len(df)} clips from {fname}")
    return df


@fill_doc
@verbose
def index_to_clips(index, root=None, *, check_files=True, verbose=None):
    """Turn a clip index into the clip table of :mod:`neuro_sae.activations`.

    The result feeds :func:`neuro_sae.activations.build_activation_store`,
    :func:`neuro_sae.activations.stream_activations` (with ``corpus_weights``
    keyed by the ``corpus`` column) and the weighted batch loaders.

    Parameters
    ----------
    index : pandas.DataFrame
        A clip index.
    root : str | os.PathLike | None
        Folder the ``path`` column is relative to. ``None``: the ``root``
        column if the index has one, else ``index.attrs["root"]``.
    check_files : bool
        Raise if an audio file is missing.
    %(verbose)s

    Returns
    -------
    clips : pandas.DataFrame
        Columns ``clip_id``, ``path`` (absolute), ``corpus`` and ``domain``.
    """
    import pandas as pd

    df = check_clip_index(index)
    if root is not None:
        roots = [Path(root).expanduser()] * len(df)
    elif "root" in df:
        roots = [Path(r) for r in df["root"]]
    elif index.attrs.get("root"):
        roots = [Path(index.attrs["root"])] * len(df)
    else:
        raise ValueError(
            "root is None and the index carries no root (no 'root' column, no "
            "index.attrs['root']); pass root=<folder the paths are relative to>."
        )
    paths = [r / p for r, p in zip(roots, df["path"])]
    if check_files:
        absent = [str(p) for p in paths if not p.is_file()]
        if absent:
            raise FileNotFoundError(
                f"{len(absent)} audio file(s) of the clip index are missing, e.g. "
                f"{absent[0]}; check root= (the folder the index paths are relative to)."
            )
    return pd.DataFrame(dict(clip_id=df["id"], path=paths, corpus=df["corpus"],
                             domain=df["domain"]))
