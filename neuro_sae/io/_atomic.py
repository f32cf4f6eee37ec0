"""Atomic writes and content hashes: a killed run never leaves a half file."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from pathlib import Path

import numpy as np


def current_umask():
    """The process umask, read without changing it where the system allows.

    Returns
    -------
    umask : int
        The umask (e.g. ``0o022``).
    """
    try:
        with open("/proc/self/status") as fid:
            for line in fid:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)  # no /proc: set and restore (not thread-safe, rare)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(fname):
    """Yield a temporary path next to ``fname``; rename it onto ``fname`` on success.

    Parameters
    ----------
    fname : str | os.PathLike
        The final file name. Its parent folder is created.

    Yields
    ------
    tmp : pathlib.Path
        Where to write. On an exception the temporary file is removed and
        ``fname`` is left untouched. The final file gets the mode ``0o666 & ~umask``
        (as a plain ``open()`` would), not the ``0o600`` of temporary files.
    """
    fname = Path(fname)
    fname.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{fname.name}.", suffix=".tmp" + "".join(fname.suffixes), dir=fname.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        # mkstemp creates 0600: give the file the mode a plain open() would
        if tmp.exists():
            os.chmod(tmp, 0o666 & ~current_umask())
        os.replace(tmp, fname)
    finally:
        if tmp.exists():
            tmp.unlink()


@contextlib.contextmanager
def atomic_dir(dirname):
    """Yield a temporary folder next to ``dirname``; rename it onto ``dirname`` on success.

    An existing ``dirname`` is replaced only once the new one is complete.

    Parameters
    ----------
    dirname : str | os.PathLike
        The final folder.

    Yields
    ------
    tmp : pathlib.Path
        The folder to fill. The final folder gets the mode ``0o777 & ~umask`` (as a
        plain ``mkdir()`` would), not the ``0o700`` of temporary folders.
    """
    import shutil

    dirname = Path(dirname)
    dirname.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dirname.name}.", suffix=".tmp", dir=dirname.parent))
    try:
        yield tmp
        # mkdtemp creates 0700: give the folder the mode a plain mkdir() would
        os.chmod(tmp, 0o777 & ~current_umask())
        if dirname.exists():
            old = dirname.with_name(f".{dirname.name}.old")
            if old.exists():
                shutil.rmtree(old)
            os.replace(dirname, old)
            os.replace(tmp, dirname)
            shutil.rmtree(old)
        else:
            os.replace(tmp, dirname)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


def remove_partial_writes(path):
    """Remove what a killed :func:`atomic_path` / :func:`atomic_dir` left next to ``path``.

    A process killed while writing (SIGKILL, a lost cluster worker) cannot remove its
    temporary file or folder (``.<name>.<random>.tmp...``); the final file was never
    touched. Call before writing ``path`` again. Inside a folder ``path`` the leftovers
    of its files are removed too.

    Parameters
    ----------
    path : str | os.PathLike
        A file or folder that is about to be written.

    Returns
    -------
    removed : list of pathlib.Path
        What was removed.
    """
    import glob
    import shutil

    path = Path(path)
    found = []
    if path.parent.is_dir():
        name = glob.escape(path.name)
        found += list(path.parent.glob(f".{name}.*.tmp*"))
        found += list(path.parent.glob(f".{name}.old"))
    if path.is_dir():
        found += [p for p in path.rglob(".*.tmp*") if p.name.startswith(".")]
    removed = []
    for p in found:
        if not p.exists():
            continue
        shutil.rmtree(p) if p.is_dir() else p.unlink()
        removed.append(p)
    return removed


def write_json(obj, fname, *, indent=2):
    """Write JSON atomically (numpy scalars and arrays converted).

    Parameters
    ----------
    obj : object
        JSON-serialisable data.
    fname : str | os.PathLike
        Destination.
    indent : int
        Indentation.

    Returns
    -------
    fname : pathlib.Path
        The written path.
    """
    with atomic_path(fname) as tmp:
        with open(tmp, "w") as fid:
            json.dump(obj, fid, indent=indent, default=json_default)
            fid.write("\n")
    return Path(fname)


def json_default(o):
    """Convert numpy scalars and arrays and paths for :func:`json.dump` (``default=``).

    The one JSON encoder of the package: ``json.dumps(obj, default=json_default)``.

    Parameters
    ----------
    o : object
        An object :mod:`json` cannot serialise by itself.

    Returns
    -------
    value : int | float | bool | list | str
        The JSON-serialisable equivalent.
    """
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, np.generic):  # numpy scalars: int, float, bool, str
        return o.item()
    if isinstance(o, (Path, os.PathLike)):
        return os.fspath(o)
    if isinstance(o, (set, frozenset)):  # sorted: hashes of configs stay stable
        return sorted(o, key=str)
    raise TypeError(f"Object of type {type(o).__name__} is not JSON serialisable")


def save_npz(fname, **arrays):
    """Save arrays to ``.npz`` atomically, never with pickles.

    Parameters
    ----------
    fname : str | os.PathLike
        Destination (``.npz``).
    **arrays : ndarray
        Named arrays; object arrays are refused.

    Returns
    -------
    fname : pathlib.Path
        The written path.
    """
    for key, val in arrays.items():
        if np.asarray(val).dtype == object:
            raise TypeError(f"Array {key!r} has dtype object; npz files here hold no pickles.")
    with atomic_path(fname) as tmp:
        with open(tmp, "wb") as fid:
            np.savez_compressed(fid, **arrays)
    return Path(fname)


def write_parquet(df, fname):
    """Write a pandas DataFrame to parquet atomically.

    Parameters
    ----------
    df : pandas.DataFrame
        The table.
    fname : str | os.PathLike
        Destination.

    Returns
    -------
    fname : pathlib.Path
        The written path.

    Notes
    -----
    ``df.attrs`` entries that JSON can hold are stored with the table (pandas keeps them
    in the parquet metadata); the others (e.g. a DataFrame attached to a result table)
    are left out of the file, where pandas would raise.
    """
    import json

    if df.attrs:
        safe = {}
        for key, value in df.attrs.items():
            try:
                json.dumps(value)
            except (TypeError, ValueError):
                continue
            safe[key] = value
        if len(safe) != len(df.attrs):
            df = df.copy(deep=False)
            df.attrs = safe
    with atomic_path(fname) as tmp:
        df.to_parquet(tmp, index=False)
    return Path(fname)


def hash_file(fname, algorithm="sha256", chunk_size=1 << 20):
    """Content hash of a file.

    Parameters
    ----------
    fname : str | os.PathLike
        The file.
    algorithm : str
        A :mod:`hashlib` algorithm.
    chunk_size : int
        Read size in bytes.

    Returns
    -------
    digest : str
        Hex digest.
    """
    h = hashlib.new(algorithm)
    with open(fname, "rb") as fid:
        for chunk in iter(lambda: fid.read(chunk_size), b""):
            h.update(chunk)
    return h.hexdigest()


def hash_array(*arrays):
    """Content hash of one or more numpy arrays (dtype, shape and bytes).

    Parameters
    ----------
    *arrays : ndarray
        The arrays.

    Returns
    -------
    digest : str
        Hex sha256 digest.
    """
    h = hashlib.sha256()
    for arr in arrays:
        arr = np.ascontiguousarray(arr)
        h.update(str(arr.dtype).encode())
        h.update(str(arr.shape).encode())
        h.update(arr.tobytes())
    return h.hexdigest()


def hash_config(config):
    """Stable hash of a JSON-serialisable configuration.

    Parameters
    ----------
    config : dict
        The configuration.

    Returns
    -------
    digest : str
        The first 16 hex characters of the sha256 of its sorted JSON.
    """
    text = json.dumps(config, sort_keys=True, default=json_default)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
