"""The :class:`Activations` container: every requested layer, frame times, padding mask."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..io import SavedResult, read_result
from ..utils import fill_doc, verbose


@dataclass(repr=False)
class Activations(SavedResult):
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

    _kind = "Activations"
    _compress = False  # large float arrays: compression costs time and gains little

    @verbose
    def save(self, fname, *, overwrite=False, provenance=None, dtype=np.float16, verbose=None):
        """Save to an ``.npz`` file atomically (no pickles), with provenance.

        Parameters
        ----------
        fname : str | os.PathLike
            Destination, ending in ``.npz``.
        overwrite : bool
            Replace an existing file (refused by default).
        provenance : dict | None
            Extra provenance for the file's record (e.g. ``config_hash``,
            ``input_hashes``); see :func:`neuro_sae.io.read_provenance`.
        dtype : dtype
            Storage dtype of the activations (float16 halves the size).
        %(verbose)s

        Returns
        -------
        fname : pathlib.Path
            The written path.
        """
        return self._save(fname, overwrite=overwrite, provenance=provenance, dtype=dtype)

    def _to_saved(self, dtype=np.float16):
        arrays = {f"layer_{k}": np.asarray(v, dtype=dtype) for k, v in self.data.items()}
        arrays.update(times=self.times, mask=self.mask)
        fields = dict(
            sfreq=self.sfreq, backbone=self.backbone, stimulus_id=self.stimulus_id,
            provenance=self.provenance, layers=self.layers,
        )  # fmt: skip
        return arrays, fields

    @classmethod
    def _from_saved(cls, arrays, fields, fname, layers=None, dtype=np.float32):
        have = [int(k) for k in fields["layers"]]
        want = have if layers is None else [int(k) for k in layers]
        missing = sorted(set(want) - set(have))
        if missing:
            raise KeyError(
                f"Layers {missing} are not in {fname}; it holds {have}. Pass layers= "
                "among those or re-extract with the missing layers."
            )
        return cls(
            data={k: np.asarray(arrays[f"layer_{k}"], dtype=dtype) for k in want},
            times=arrays["times"],
            mask=arrays["mask"],
            sfreq=fields["sfreq"],
            backbone=fields["backbone"],
            stimulus_id=fields["stimulus_id"],
            provenance=fields["provenance"],
        )


fill_doc(Activations.save)


@fill_doc
@verbose
def read_activations(fname, *, layers=None, dtype=np.float32, verbose=None):
    """Read activations saved by :meth:`Activations.save`.

    Parameters
    ----------
    fname : str | os.PathLike
        The ``.npz`` file.
    layers : list of int | None
        Only these layers (``None``: all); the others are not loaded.
    dtype : dtype
        Dtype of the returned arrays.
    %(verbose)s

    Returns
    -------
    acts : Activations
        The activations.
    """
    return read_result(fname, Activations, layers=layers, dtype=dtype)
