"""Content hashes, relative file labels and step records.

A step record (``<derivatives>/.cache/<step>[-sub-XX].json``) holds the step's key,
the configuration slice and the input hashes the key was made of (so a stale step can
say which setting or file changed), its producers' keys and the hash of every output.
Every file is named by a *label*, a path relative to the folder it lives in (see
:meth:`Labels.label`), never by an absolute path or a bare base name: moving the
derivatives folder keeps every record valid, and same-named files in two subfolders
stay apart.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..io import hash_config, hash_file, write_json

# (resolved path, inode, size, mtime_ns) -> sha256: a file is hashed once per content
_FILE_HASHES: dict = {}


def hash_path(path):
    """Content hash of a file, or of a folder as its relative tree.

    Parameters
    ----------
    path : str | os.PathLike
        File or folder.

    Returns
    -------
    digest : str | None
        The hash (``None`` when the path does not exist). A folder hashes the
        relative POSIX path and content of every file under it, so renaming or
        moving a file inside it changes the hash and moving the folder does not.
    """
    path = Path(path)
    if path.is_dir():
        tree = {
            p.relative_to(path).as_posix(): _hash_file(p)
            for p in sorted(path.rglob("*"))
            if p.is_file()
        }
        return "tree:" + hash_config(tree)
    if path.is_file():
        return _hash_file(path)
    return None


def _hash_file(path):
    st = os.stat(path)
    memo = (str(Path(path).resolve()), st.st_ino, st.st_size, st.st_mtime_ns)
    digest = _FILE_HASHES.get(memo)
    if digest is None:
        digest = hash_file(path)
        _FILE_HASHES[memo] = digest
    return digest


class Labels:
    """Names files relative to the folder they belong to.

    Parameters
    ----------
    bases : list of (str, pathlib.Path)
        Prefix and folder, most specific first; the derivatives folder has the
        empty prefix. A file under none of them is named relative to the last one
        (the manifest's folder), with ``..`` as needed.
    """

    def __init__(self, bases):
        self.bases = [(prefix, Path(folder).resolve()) for prefix, folder in bases if folder is not None]

    def label(self, path):
        """The label of ``path`` (``"<prefix>:<relative path>"``, no prefix in derivatives).

        Parameters
        ----------
        path : str | os.PathLike
            The file or folder.

        Returns
        -------
        label : str
            Its label.
        """
        path = Path(path).expanduser().resolve()
        for prefix, base in self.bases:
            if path == base or base in path.parents:
                rel = path.relative_to(base).as_posix()
                return f"{prefix}:{rel}" if prefix else rel
        prefix, base = self.bases[-1]
        return f"{prefix}:{Path(os.path.relpath(path, base)).as_posix()}"

    def path(self, label):
        """The path a label names (inverse of :meth:`label`).

        Parameters
        ----------
        label : str
            A label.

        Returns
        -------
        path : pathlib.Path
            The file or folder.
        """
        prefixes = dict(self.bases)
        prefix, sep, rel = label.partition(":")
        if sep and prefix in prefixes:
            return Path(os.path.normpath(prefixes[prefix] / rel))
        return prefixes[""] / label


def record_file(cache_dir, step_id):
    """Path of the record of one step (and subject)."""
    return Path(cache_dir) / f"{step_id}.json"


def read_record(cache_dir, step_id):
    """The record of a step, or ``None`` (never run, failed, or unreadable)."""
    fname = record_file(cache_dir, step_id)
    try:
        rec = json.loads(fname.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return rec if isinstance(rec, dict) and "key" in rec else None


def write_record(cache_dir, step_id, record):
    """Write a step record atomically."""
    return write_json(record, record_file(cache_dir, step_id))


def remove_record(cache_dir, step_id):
    """Remove a step record (a failed or running step has none)."""
    record_file(cache_dir, step_id).unlink(missing_ok=True)


def flatten(config, prefix=""):
    """``{"trf": {"tmax": 0.5}}`` -> ``{"trf.tmax": 0.5}`` (lists are values)."""
    out = {}
    for key, val in config.items():
        name = f"{prefix}{key}"
        if isinstance(val, dict) and val:
            out.update(flatten(val, name + "."))
        else:
            out[name] = val
    return out


def _short(val):
    text = json.dumps(val, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def explain_change(old, new):
    """Sentences naming what differs between a recorded and a current key's parts.

    Parameters
    ----------
    old : dict
        The record (``config``, ``inputs``, ``producers``, ``version``).
    new : dict
        The current parts, same keys.

    Returns
    -------
    reasons : list of str
        E.g. ``"trf.tmax changed from 0.5 to 0.6"``, ``"input stimuli:r1.wav changed"``.
    """
    reasons = []
    a, b = flatten(old.get("config", {})), flatten(new.get("config", {}))
    for key in sorted(set(a) | set(b)):
        if key not in a:
            reasons.append(f"{key} was added ({_short(b[key])})")
        elif key not in b:
            reasons.append(f"{key} was removed (was {_short(a[key])})")
        elif a[key] != b[key]:
            reasons.append(f"{key} changed from {_short(a[key])} to {_short(b[key])}")
    a, b = old.get("inputs", {}), new.get("inputs", {})
    for key in sorted(set(a) | set(b)):
        if a.get(key) != b.get(key):
            what = "is missing" if b.get(key) is None else "is new" if key not in a else "changed"
            reasons.append(f"input {key} {what}")
    a, b = old.get("producers", {}), new.get("producers", {})
    for key in sorted(set(a) | set(b)):
        if a.get(key) != b.get(key):
            reasons.append(f"its producer {key} is not the run it was made from")
    if old.get("version") != new.get("version"):
        reasons.append(f"neuro_sae changed from {old.get('version')} to {new.get('version')}")
    return reasons
