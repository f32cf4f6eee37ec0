"""Reading an activation store: memory-mapped shards, the frame index, clips, batches."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..utils import check_fname, fill_doc, verbose


class ActivationStore:
    """An activation store written by :func:`build_activation_store`.

    Parameters
    ----------
    path : path-like
        The store folder.

    Attributes
    ----------
    path : pathlib.Path
        The folder.
    meta : dict
        Contents of ``store.json`` (settings, key, shards, corpus sizes).
    index : pandas.DataFrame
        One row per frame: ``clip_id``, ``corpus``, ``domain``, ``frame``,
        ``time``, ``padding``, ``shard``, ``row``.
    layers : list of int
        The stored layers (1-based, 0 = stem output).
    d_model : int
        Width of the activations.
    key : str
        Content hash of the whole store.
    """

    def __init__(self, path):
        import pandas as pd

        from ._store import STORE_FORMAT

        self.path = check_fname(path, "path", kind="directory")
        meta_file = self.path / "store.json"
        if not meta_file.is_file() or not (self.path / "index.parquet").is_file():
            raise FileNotFoundError(
                f"{self.path} is not a complete activation store (no store.json or "
                "index.parquet): build or resume it with build_activation_store()."
            )
        self.meta = json.loads(meta_file.read_text())
        if self.meta.get("format") != STORE_FORMAT:
            raise ValueError(f"{meta_file} is not an activation store description.")
        self.index = pd.read_parquet(self.path / "index.parquet")
        self.layers = list(self.meta["layers"])
        self.d_model = int(self.meta["d_model"])
        self.key = self.meta["key"]
        self._mmaps = {}

    def __repr__(self):
        n_clips = self.index["clip_id"].nunique()
        return (
            f"<ActivationStore | {self.meta['backbone']}, {n_clips} clips, "
            f"{len(self.index)} frames, layers {self.layers}, d_model={self.d_model}, "
            f"{len(self.meta['shards'])} shard(s), {self.meta['dtype']}>"
        )

    def __len__(self):
        return len(self.index)

    @property
    def corpus_frames(self):
        """Number of non-padding frames per corpus (dict)."""
        valid = self.index[~self.index["padding"]]
        return {str(k): int(v) for k, v in valid.groupby("corpus", sort=True).size().items()}

    def check_layers(self, layers):
        """Validate layers against the stored ones (``None``: all); returns a list."""
        if layers is None:
            return list(self.layers)
        one = isinstance(layers, (int, np.integer)) and not isinstance(layers, bool)
        want = [int(layers)] if one else [int(x) for x in layers]
        missing = sorted(set(want) - set(self.layers))
        if missing or not want:
            raise ValueError(
                f"Invalid value for the 'layers' parameter: the store {self.path.name} holds "
                f"layers {self.layers}, but got {want} instead. Rebuild the store with the "
                "layers you need."
            )
        return want

    def layer_array(self, layer, shard):
        """Memory-mapped array ``(n_frames_in_shard, d_model)`` of one layer in one shard."""
        from ._store import _layer_file

        key = (int(layer), int(shard))
        if key not in self._mmaps:
            name = self.meta["shards"][int(shard)]["name"]
            self._mmaps[key] = np.load(self.path / "shards" / name / _layer_file(int(layer)),
                                       mmap_mode="r", allow_pickle=False)
        return self._mmaps[key]

    @fill_doc
    @verbose
    def get_clip(self, clip_id, *, layers=None, verbose=None):
        """The activations of one clip.

        Parameters
        ----------
        clip_id : str
            The clip.
        layers : int | list of int | None
            Stored layers to read (``None``: all).
        %(verbose)s

        Returns
        -------
        acts : Activations
            Float32 activations with frame times and mask.
        """
        from ._store import _activations_from_rows

        rows = self.index[self.index["clip_id"] == str(clip_id)]
        if not len(rows):
            raise KeyError(f"clip_id {clip_id!r} is not in the store {self.path}.")
        return _activations_from_rows(self, rows, self.check_layers(layers))

    @fill_doc
    @verbose
    def iter_batches(self, *, layers=None, batch_size=2500, buffer_batches=100,
                     corpus_weights=None, n_batches=None, drop_last=False, output="numpy",
                     random_state=None, verbose=None):
        """Shuffled batches of frames across shards (padding frames excluded).

        See :func:`iter_store_batches`, which this calls with ``store=self``.

        Parameters
        ----------
        layers : int | list of int | None
            One layer (batches are arrays) or several (batches are dicts layer ->
            array); ``None``: all stored layers.
        batch_size : int
            Frames per batch (the paper: 2500 = 50 s of audio).
        buffer_batches : int
            Size of the shuffle buffer in batches (the paper: 100).
        corpus_weights : dict | str | path-like | None
            Weighted corpus sampling (see :func:`iter_store_batches`).
        n_batches : int | None
            Stop after this many batches.
        drop_last : bool
            Drop the last, smaller batch of an epoch.
        output : str
            ``"numpy"`` or ``"torch"`` (float32 tensors).
        %(random_state)s
        %(verbose)s

        Returns
        -------
        batches : generator
            Arrays ``(batch_size, d_model)`` or dicts of them.
        """
        from ._stream import iter_store_batches

        return iter_store_batches(
            self, layers=layers, batch_size=batch_size, buffer_batches=buffer_batches,
            corpus_weights=corpus_weights, n_batches=n_batches, drop_last=drop_last,
            output=output, random_state=random_state,
        )


@fill_doc
@verbose
def read_activation_store(path, *, verbose=None):
    """Open an activation store written by :func:`build_activation_store`.

    Parameters
    ----------
    path : path-like
        The store folder.
    %(verbose)s

    Returns
    -------
    store : ActivationStore
        The opened store (arrays are memory-mapped when read).
    """
    return ActivationStore(Path(path))
