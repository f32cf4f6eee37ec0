"""Encoder passes for steering: one unsteered pass that keeps the layers' states,
and the rest of the encoder run from a cached layer with a replacement applied."""

from __future__ import annotations

import numpy as np

from ..utils import validate_type


def check_clips(clips, name):
    """Validate a clip set: a DataFrame with ``id``, ``wave`` (and ``transcript``)."""
    import pandas as pd

    validate_type(clips, pd.DataFrame, name)
    for col in ("id", "wave"):
        if col not in clips.columns:
            raise ValueError(f"The clip set {name!r} lacks the column {col!r}; it needs "
                             "'id', 'wave' (16 kHz float arrays) and optionally 'transcript'.")
    if not len(clips):
        raise ValueError(f"The clip set {name!r} is empty; pass at least one clip.")
    if clips["id"].duplicated().any():
        dup = clips.loc[clips["id"].duplicated(), "id"].iloc[0]
        raise ValueError(f"The clip set {name!r} holds the clip id {dup!r} twice.")
    for cid, w in zip(clips["id"], clips["wave"]):
        w = np.asarray(w)
        if w.ndim != 1 or w.size == 0:
            raise ValueError(
                f"Clip {cid!r} of the set {name!r} is empty (shape {w.shape}); every clip "
                "must be a non-empty 1-D 16 kHz waveform. Drop it from the set."
            )
        if not np.isfinite(w).all():
            raise ValueError(f"Clip {cid!r} of the set {name!r} holds NaN or inf samples.")
        if not np.abs(w).max() > 0:
            raise ValueError(
                f"Clip {cid!r} of the set {name!r} is silent (all samples are 0): it has no "
                "activations to pool or steer. Drop it from the set."
            )
        if w.size > 30 * 16000:
            raise ValueError(
                f"Clip {cid!r} of the set {name!r} is {w.size / 16000:.1f} s long; Whisper "
                "sees 30 s windows: cut it to at most 30 s."
            )
    return clips


def n_valid(backbone, wave):
    """Frames of a clip's 30 s window that hold audio (the rest is padding)."""
    from ..backbones import n_frames_for

    n_all = int(backbone.encoder.config.max_source_positions)
    return int(min(n_all, max(1, n_frames_for(len(wave), "whisper", verbose=False))))


def encoder_states(backbone, waves, layers):
    """Unsteered pass: the states of ``layers`` and the encoder output.

    Returns
    -------
    states : dict of int to Tensor, shape (batch, n_frames, d_model)
        Per layer.
    output : Tensor
        ``last_hidden_state``.
    """
    inputs = backbone.prepare(list(waves), verbose=False)
    want = sorted(set(layers) | {backbone.n_layers})
    out = backbone.forward_layers(inputs, want, verbose=False)
    return {n: out[n] for n in layers}, out[backbone.n_layers]


def _masked(fn, hidden, valid):
    """Apply ``fn`` to the first ``valid[i]`` frames of each sequence."""
    import torch

    if fn is None:
        return hidden
    mask = torch.zeros(hidden.shape[:2], dtype=torch.bool, device=hidden.device)
    for i, n in enumerate(valid):
        mask[i, : int(n)] = True
    x = hidden[mask]
    new = fn(x)
    out = hidden.clone()
    out[mask] = new.to(device=hidden.device, dtype=hidden.dtype)
    return out


def run_from_layer(backbone, hidden, layer, fn=None, valid=None):
    """The encoder output with ``layer``'s state replaced, from a cached state.

    Equals a full forward pass under :func:`neuro_sae.backbones.splice` with the
    same replacement on the valid frames (tested), but runs only the blocks
    above ``layer``.

    Parameters
    ----------
    backbone : Backbone
        Whisper.
    hidden : Tensor, shape (batch, n_frames, d_model)
        The unsteered state of ``layer`` (as read by ``forward_layers``).
    layer : int
        1-based layer (0: stem output).
    fn : callable | None
        Replacement of the valid frames, ``(n, d_model) -> (n, d_model)``.
    valid : list of int
        Valid frames per sequence.

    Returns
    -------
    output : Tensor, shape (batch, n_frames, d_model)
        The encoder's ``last_hidden_state``.
    """
    import torch

    enc = backbone.encoder
    with torch.inference_mode():
        h = _masked(fn, hidden.to(backbone.device, backbone.dtype), valid)
        if layer == backbone.n_layers:
            return h
        for blk in enc.layers[layer:]:
            h = blk(h, None)
            if isinstance(h, (tuple, list)):
                h = h[0]
        return enc.layer_norm(h)
