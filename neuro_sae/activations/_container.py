"""The :class:`Activations` container: every requested layer, frame times, padding mask."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..io._atomic import atomic_path
from ..utils import check_fname

_FORMAT_VERSION = 1


@dataclass
class Activations:
    """Encoder activations of one stimulus.

    Parameters
    ----------
    data : dict of int to ndarray, shape (n_frames, d_model)
        Activations per 1-based layer (0 = stem output).
    times : ndarray, shape (n_frames,)
        Frame times in seconds from the stimulus start (centre of the receptive
        field).
    mask : ndarray of bool, shape (n_frames,)
        ``True`` for frames that come from real audio, ``False`` for padding.
        Padding frames are never used for training or metrics.
    sfreq : float
        Frame rate in Hz (50.0 for Whisper and HuBERT).
    backbone : str
        Backbone id (e.g. ``"whisper-base"``).
    stimulus_id : str | None
        Identifier of the stimulus.
    provenance : dict
        Backbone revision, dtype, layer convention, chunking parameters.
    """

    data: dict
    times: np.ndarray
    mask: np.ndarray
    sfreq: float = 50.0
    backbone: str = ""
    stimulus_id: str | None = None
    provenance: dict = field(default_factory=dict)

    def __post_init__(self):
        self.times = np.asarray(self.times, dtype=np.float64)
        self.mask = np.asarray(self.mask, dtype=bool)
        n = len(self.times)
        if self.mask.shape != (n,):
            raise ValueError(f"mask has shape {self.mask.shape} but times has {n} frames.")
        for layer, arr in self.data.items():
            if arr.ndim != 2 or arr.shape[0] != n:
                raise ValueError(
                    f"Layer {layer} activations have shape {arr.shape}, expected "
                    f"({n}, d_model) to match the {n} frame times."
                )

    @property
    def layers(self):
        """Sorted list of the layers held."""
        return sorted(self.data)

    @property
    def n_frames(self):
        """Number of frames (padding included)."""
        return len(self.times)

    def get(self, layer, *, valid_only=True):
        """Activations of one layer.

        Parameters
        ----------
        layer : int
            1-based layer.
        valid_only : bool
            Drop padding frames.

        Returns
        -------
        x : ndarray, shape (n_frames, d_model)
            The activations.
        """
        if layer not in self.data:
            raise KeyError(
                f"Layer {layer} was not extracted; available layers are {self.layers}."
            )
        x = self.data[layer]
        return x[self.mask] if valid_only else x

    def __repr__(self):
        d = next(iter(self.data.values())).shape[1] if self.data else 0
        return (
            f"<Activations | {self.backbone or 'unknown backbone'}, stimulus "
            f"{self.stimulus_id!r}, {self.n_frames} frames ({int(self.mask.sum())} valid) "
            f"at {self.sfreq:g} Hz, layers {self.layers}, d_model={d}>"
        )

    def save(self, fname, *, dtype=np.float16):
        """Save to an ``.npz`` file atomically (no pickles).

        Parameters
        ----------
        fname : str | os.PathLike
            Destination (``.npz``).
        dtype : dtype
            Storage dtype of the activations (float16 halves the size).

        Returns
        -------
        fname : pathlib.Path
            The written path.
        """
        meta = dict(
            format_version=_FORMAT_VERSION,
            sfreq=self.sfreq,
            backbone=self.backbone,
            stimulus_id=self.stimulus_id,
            provenance=self.provenance,
            layers=self.layers,
        )
        arrays = {f"layer_{k}": np.asarray(v, dtype=dtype) for k, v in self.data.items()}
        with atomic_path(fname) as tmp:
            with open(tmp, "wb") as fid:
                np.savez(
                    fid,
                    times=self.times,
                    mask=self.mask,
                    meta=np.array(json.dumps(meta)),
                    **arrays,
                )
        return Path(fname)


def read_activations(fname, *, layers=None, dtype=np.float32):
    """Read activations saved by :meth:`Activations.save`.

    Parameters
    ----------
    fname : str | os.PathLike
        The ``.npz`` file.
    layers : list of int | None
        Only these layers (``None``: all).
    dtype : dtype
        Dtype of the returned arrays.

    Returns
    -------
    acts : Activations
        The activations.
    """
    fname = check_fname(fname, "fname")
    with np.load(fname, allow_pickle=False) as npz:
        meta = json.loads(str(npz["meta"]))
        want = meta["layers"] if layers is None else list(layers)
        missing = sorted(set(want) - set(meta["layers"]))
        if missing:
            raise KeyError(f"Layers {missing} are not in {fname}; it holds {meta['layers']}.")
        data = {int(k): npz[f"layer_{k}"].astype(dtype) for k in want}
        return Activations(
            data=data,
            times=npz["times"],
            mask=npz["mask"],
            sfreq=meta["sfreq"],
            backbone=meta["backbone"],
            stimulus_id=meta["stimulus_id"],
            provenance=meta["provenance"],
        )
