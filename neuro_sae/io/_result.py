"""One way to save a result: versioned ``.npz`` files with provenance, read back checked.

Every saved result of the package (sweeps, permutation, group and cluster results,
feature series, activations, aligned runs) derives from :class:`SavedResult`. A file is
an ``.npz`` (never pickles) holding the result's arrays plus one JSON string,
``metadata``::

    {"kind": "SweepResult", "format_version": 2,
     "record": {"neuro_sae_version": ..., "numpy_version": ..., "scipy_version": ...,
                "mne_version": ..., "python_version": ..., "created": ISO time (UTC),
                "config_hash": ..., "input_hashes": {...}, ...},
     "fields": {... the result's own metadata ...}}

On read the kind is checked (reading a permutation file as a sweep is an error naming
the right reader), a newer ``format_version`` than this package writes is refused, and
an older one goes through the migration hooks registered with
:func:`register_migration` (one per kind and version step). Version 2 is the first
version of this layout; every kind has a hook from its version 1 (the hand-written
formats before it).
"""

from __future__ import annotations

import json
import platform
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from ..utils import check_fname, fill_doc, logger, validate_type, verbose
from ._atomic import atomic_path, json_default

#: Current format version of each kind of saved result.
FORMAT_VERSIONS = {
    "SweepResult": 2,
    "PermutationResult": 2,
    "GroupResult": 2,
    "ClusterResult": 2,
    "FeatureSeries": 2,
    "Activations": 2,
    "AlignedRuns": 2,
}
#: The public reader of each kind (named in error messages).
READERS = {
    "SweepResult": "neuro_sae.encoding.read_sweep_result",
    "PermutationResult": "neuro_sae.stats.read_permutation_result",
    "GroupResult": "neuro_sae.stats.read_group_result",
    "ClusterResult": "neuro_sae.stats.read_cluster_result",
    "FeatureSeries": "neuro_sae.features.read_feature_series",
    "Activations": "neuro_sae.activations.read_activations",
    "AlignedRuns": "neuro_sae.align.read_aligned_runs",
}
_MIGRATIONS = {}  # (kind, from_version) -> function(arrays, fields) -> (arrays, fields)
_RESERVED = ("kind", "format_version", "record", "fields")


def _package_version(name):
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return None


def make_record(provenance=None):
    """The provenance record written with every saved result.

    Parameters
    ----------
    provenance : dict | None
        More entries, e.g. ``config_hash`` (str) and ``input_hashes`` (dict of
        relative path -> content hash); they override the defaults.

    Returns
    -------
    record : dict
        ``neuro_sae_version``, ``numpy_version``, ``scipy_version``, ``mne_version``
        (``None`` when MNE is not installed), ``python_version``, ``created`` (ISO 8601,
        UTC), then the given entries.
    """
    from .. import __version__

    record = dict(
        neuro_sae_version=__version__,
        numpy_version=np.__version__,
        scipy_version=_package_version("scipy"),
        mne_version=_package_version("mne"),
        python_version=platform.python_version(),
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
    )
    if provenance is not None:
        validate_type(provenance, dict, "provenance")
        record.update(provenance)
    return record


def register_migration(kind, from_version):
    """Register a function that upgrades a saved result by one format version.

    Parameters
    ----------
    kind : str
        The result kind (e.g. ``"SweepResult"``).
    from_version : int
        The version the function reads; it returns version ``from_version + 1``.

    Returns
    -------
    decorator : callable
        Decorates ``func(arrays, fields) -> (arrays, fields)``; ``arrays`` is a
        mutable mapping of the file's arrays (loaded on first access) and ``fields``
        the result's metadata dict.
    """

    def decorator(func):
        _MIGRATIONS[(str(kind), int(from_version))] = func
        return func

    return decorator


class _Arrays(Mapping):
    """The arrays of an open npz, loaded on access; migrations may set or drop keys."""

    def __init__(self, npz):
        self._npz = npz
        self._set = {}
        self._dropped = set()

    def __getitem__(self, key):
        if key in self._set:
            return self._set[key]
        if key in self._dropped or key not in self._npz.files:
            raise KeyError(key)
        return self._npz[key]

    def __setitem__(self, key, value):
        self._set[key] = value
        self._dropped.discard(key)

    def __delitem__(self, key):
        self._set.pop(key, None)
        self._dropped.add(key)

    def __iter__(self):
        keys = [k for k in self._npz.files if k not in self._dropped and k not in self._set]
        return iter(keys + list(self._set))

    def __len__(self):
        return sum(1 for _ in self)


def _guess_legacy_kind(files, meta):
    """Kind of a version-1 file written before the common layout (key ``meta``)."""
    if "indptr" in files:
        return "FeatureSeries"
    if "run_ids" in meta or "Y_0" in files:
        return "AlignedRuns"
    if "mask" in files:
        return "Activations"
    return None


def _parse_metadata(npz, fname):
    """``(kind, version, record, fields)`` of an open npz of any known layout."""
    files = npz.files
    if "metadata" in files:
        md = json.loads(str(npz["metadata"]))
        if "fields" in md:  # the common layout (version >= 2)
            return md.get("kind"), md.get("format_version"), md.get("record", {}), md["fields"]
        # version 1 of the stats/encoding results: fields at the top level
        fields = {k: v for k, v in md.items() if k not in ("kind", "format_version")}
        record = {"neuro_sae_version": fields.pop("neuro_sae_version", None)}
        return md.get("kind"), md.get("format_version", 1), record, fields
    if "meta" in files:  # version 1 of feature series, activations, aligned runs
        meta = json.loads(str(npz["meta"]))
        version = meta.pop("format_version", 1)
        return _guess_legacy_kind(files, meta), version, {}, meta
    raise ValueError(
        f"{fname} is not a saved neuro_sae result (no 'metadata' entry; it holds "
        f"{sorted(files)[:8]}); read it with numpy.load or pass a file written by a "
        "result's .save()."
    )


def _check_kind(kind, expected, fname):
    if kind == expected:
        return
    if kind in READERS:
        raise ValueError(
            f"{fname} holds a {kind}, not a {expected}; read it with {READERS[kind]}()."
        )
    raise ValueError(
        f"{fname} holds a result of kind {kind!r}, not a {expected}; pass a file written "
        f"by {expected}.save() (read with {READERS.get(expected, 'its reader')}())."
    )


def _migrate(kind, version, arrays, fields, fname):
    current = FORMAT_VERSIONS[kind]
    if not isinstance(version, int) or isinstance(version, bool):
        raise ValueError(f"{fname} has an invalid format_version {version!r}; rewrite it.")
    if version > current:
        from .. import __version__

        raise ValueError(
            f"{fname} is a {kind} of format_version {version}, but this neuro_sae "
            f"({__version__}) reads {kind} files up to format_version {current}; upgrade "
            "neuro_sae (pip install -U neuro_sae) to read it."
        )
    while version < current:
        func = _MIGRATIONS.get((kind, version))
        if func is None:
            raise ValueError(
                f"{fname} is a {kind} of format_version {version} and no migration from "
                f"that version is registered (this neuro_sae writes version {current}); "
                "recompute the result."
            )
        logger.debug(f"Migrating {fname} ({kind}) from format_version {version}")
        arrays, fields = func(arrays, fields)
        version += 1
    return arrays, fields


def _check_npz_name(fname, parameter):
    fname = Path(fname)
    if fname.suffix != ".npz":
        raise ValueError(
            f"{parameter} must end with '.npz', got {fname.name!r}; e.g. "
            f"{fname.with_suffix('.npz').name!r}."
        )
    return fname


@fill_doc
@verbose
def read_provenance(fname, *, verbose=None):
    """Read the kind, format version and provenance record of a saved result.

    Only the metadata is read, not the arrays.

    Parameters
    ----------
    fname : str | os.PathLike
        A file written by a result's ``save``.
    %(verbose)s

    Returns
    -------
    record : dict
        :func:`make_record`'s entries (package versions, ``created``, ``config_hash``
        and ``input_hashes`` when they were given) plus ``kind`` and
        ``format_version``. Files written before the common layout have only the
        entries they stored.
    """
    fname = check_fname(fname, "fname")
    with np.load(fname, allow_pickle=False) as npz:
        kind, version, record, _ = _parse_metadata(npz, fname)
    return dict(record, kind=kind, format_version=version)


def read_result(fname, kind, *, parameter="fname", **kwargs):
    """Open a saved result: check its kind and version, migrate it, rebuild it.

    Parameters
    ----------
    fname : str | os.PathLike
        The ``.npz`` file.
    kind : type
        The :class:`SavedResult` subclass expected.
    parameter : str
        Name of the file argument in error messages.
    **kwargs
        Passed to ``kind._from_saved`` (e.g. the layers to load).

    Returns
    -------
    result : SavedResult
        ``kind._from_saved(arrays, fields, fname, **kwargs)``, called while the file
        is open (arrays are loaded on access).
    """
    fname = check_fname(fname, parameter)
    with np.load(fname, allow_pickle=False) as npz:
        got, version, _, fields = _parse_metadata(npz, fname)
        _check_kind(got, kind._kind, fname)
        arrays, fields = _migrate(kind._kind, version, _Arrays(npz), fields, fname)
        return kind._from_saved(arrays, fields, fname, **kwargs)


class SavedResult:
    """Base of every saved result: ``save`` with ``overwrite`` and provenance.

    A subclass sets ``_kind`` (a key of :data:`FORMAT_VERSIONS`) and implements
    ``_to_saved() -> (arrays, fields)`` (a dict of arrays and a JSON-serialisable
    dict) and the classmethod ``_from_saved(arrays, fields, fname)``. Its reader is
    ``read_result(fname, TheClass)``. ``_compress = False`` stores the arrays
    uncompressed (large float activations).
    """

    _kind = None
    _compress = True

    @verbose
    def save(self, fname, *, overwrite=False, provenance=None, verbose=None):
        """Save to ``.npz`` atomically: arrays, JSON metadata and provenance, no pickles.

        Parameters
        ----------
        fname : str | os.PathLike
            Destination, ending in ``.npz``.
        overwrite : bool
            Replace an existing file (refused by default).
        provenance : dict | None
            Extra provenance for the file's record, e.g. ``config_hash`` and
            ``input_hashes`` (relative path -> content hash). ``config_hash`` and
            ``input_hashes`` found in the result's own ``provenance`` are recorded
            too. Read back with :func:`neuro_sae.io.read_provenance`.
        %(verbose)s

        Returns
        -------
        fname : pathlib.Path
            The written path.
        """
        return self._save(fname, overwrite=overwrite, provenance=provenance)

    def _save(self, fname, *, overwrite=False, provenance=None, **kwargs):
        """Write the file; ``kwargs`` go to ``_to_saved`` (e.g. a storage dtype)."""
        fname = _check_npz_name(fname, "fname")
        validate_type(overwrite, bool, "overwrite")
        if fname.exists() and not overwrite:
            raise FileExistsError(
                f"{fname} exists; pass overwrite=True to replace it (or choose another "
                "file name)."
            )
        arrays, fields = self._to_saved(**kwargs)
        own = getattr(self, "provenance", None) or {}
        extra = {k: own[k] for k in ("config_hash", "input_hashes") if k in own}
        extra.update(provenance or {})
        record = make_record(extra)
        md = dict(kind=self._kind, format_version=FORMAT_VERSIONS[self._kind], record=record,
                  fields=fields)  # fmt: skip
        text = json.dumps(md, default=json_default)
        for key, val in arrays.items():
            if key in _RESERVED or key == "metadata":
                raise ValueError(f"Array name {key!r} is reserved.")
            if np.asarray(val).dtype == object:
                raise TypeError(
                    f"{self._kind} array {key!r} has dtype object; saved results hold no "
                    "pickles."
                )
        logger.info(f"Writing {self._kind} to {fname}")
        save = np.savez_compressed if self._compress else np.savez
        with atomic_path(fname) as tmp:
            with open(tmp, "wb") as fid:
                save(fid, metadata=np.array(text), **arrays)
        return fname

    def _to_saved(self, **kwargs):  # pragma: no cover - every subclass implements it
        raise NotImplementedError

    @classmethod
    def _from_saved(cls, arrays, fields, fname, **kwargs):  # pragma: no cover
        raise NotImplementedError


fill_doc(SavedResult.save)


def _v1_to_v2(arrays, fields):
    """Version 1 -> 2: the arrays keep their names; only the file layout changed."""
    return arrays, fields


for _kind in FORMAT_VERSIONS:
    register_migration(_kind, 1)(_v1_to_v2)
