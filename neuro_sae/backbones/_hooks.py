"""Intervention hooks: replace one encoder layer's output during forward passes."""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np

from ..utils import fill_doc, logger, validate_type, verbose
from ._backbone import Backbone

INTERVENTION_SITES = (
    "layer 0: the input of block 1 (a forward pre-hook on block 1); layer 1 <= n < n_layers: "
    "the output of block n; layer n_layers: the encoder's last_hidden_state, i.e. the output "
    "of the final encoder layer norm for Whisper and stable-layer-norm HuBERT/wav2vec2 (a "
    "forward hook on that layer norm) and the last block output otherwise. So every layer is "
    "replaced exactly where extract_activations reads it"
)


def _blocks(backbone):
    return backbone.encoder.layers if backbone.kind == "whisper" else backbone.encoder.encoder.layers


def _final_norm(backbone):
    """The module whose output is last_hidden_state, or None (the last block's output)."""
    if backbone.kind == "whisper":
        return backbone.encoder.layer_norm
    if getattr(backbone.encoder.config, "do_stable_layer_norm", False):
        return backbone.encoder.encoder.layer_norm
    return None


def _check_layer(backbone, layer):
    validate_type(layer, "int", "layer")
    if not 0 <= int(layer) <= backbone.n_layers:
        raise ValueError(
            f"Invalid value for the 'layer' parameter: {backbone.name} has layers 0 (stem) to "
            f"{backbone.n_layers} (1-based block outputs), but got {int(layer)} instead."
        )
    return int(layer)


def _check_mask(mask):
    """Frame mask as a bool tensor of shape (n_frames,) or (batch, n_frames), or None."""
    import torch

    if mask is None:
        return None
    if torch.is_tensor(mask):
        mask = mask.detach().cpu().numpy()
    mask = np.asarray(mask)
    if mask.dtype != bool or mask.ndim not in (1, 2):
        raise ValueError(
            "mask must be a boolean array of shape (n_frames,) or (batch, n_frames) (True = "
            f"frame is replaced), got dtype {mask.dtype} and shape {mask.shape} instead."
        )
    return torch.from_numpy(mask.copy())


def _broadcast_mask(mask, hidden):
    """Mask as (batch, n_frames) bool on hidden's device."""
    if mask is None:
        return None
    batch, n_frames = hidden.shape[:2]
    if mask.shape[-1] != n_frames or (mask.ndim == 2 and mask.shape[0] not in (1, batch)):
        raise ValueError(
            f"mask has shape {tuple(mask.shape)} but the layer's hidden state has {batch} "
            f"sequence(s) of {n_frames} frames; pass a mask of shape ({n_frames},) or "
            f"({batch}, {n_frames})."
        )
    return mask.to(hidden.device).expand(batch, n_frames)


def _apply(fn, hidden, mask, layer):
    import torch

    new = fn(hidden)
    if not torch.is_tensor(new) or tuple(new.shape) != tuple(hidden.shape):
        shape = tuple(new.shape) if hasattr(new, "shape") else type(new).__name__
        raise ValueError(
            f"fn must return a tensor of the layer's shape {tuple(hidden.shape)} (batch, frames, "
            f"d_model), got {shape} instead (layer {layer})."
        )
    new = new.to(device=hidden.device, dtype=hidden.dtype)
    m = _broadcast_mask(mask, hidden)
    if m is None:
        return new
    return torch.where(m[..., None], new, hidden)


@fill_doc
@verbose
def intervene(backbone, layer, fn, *, mask=None, verbose=None):
    """Replace the output of one encoder layer with ``fn(hidden)`` inside a ``with`` block.

    Every forward pass of the backbone's model inside the block (encoder
    extraction, :meth:`~neuro_sae.backbones.Backbone.forward_layers`, a full
    Whisper forward with its decoder, generation) uses the replaced layer, and
    every later block sees it. The hook is always removed on exit, also when
    the block raises.

    Where the replacement happens is exactly where the layer is read by
    :func:`neuro_sae.activations.extract_activations` (see
    ``neuro_sae.backbones.LAYER_CONVENTION``), so ``fn`` works in the scale of
    the extracted activations (e.g. an SAE trained on them) and the identity
    leaves the model unchanged:

    - layer 0 (stem output): the input of block 1 is replaced;
    - ``1 <= layer < n_layers``: the output of block ``layer``;
    - ``layer == n_layers``: the encoder's ``last_hidden_state``, i.e. for
      Whisper (and stable-layer-norm HuBERT/wav2vec2) the output of the final
      encoder layer norm, not the raw last block output; otherwise the last
      block's output.

    Parameters
    ----------
    backbone : Backbone
        The model to intervene on.
    layer : int
        1-based layer (0 = stem output).
    fn : callable
        ``fn(hidden) -> Tensor``; ``hidden`` is a tensor of shape
        ``(batch, n_frames, d_model)`` and the result must have the same shape.
    mask : array of bool, shape (n_frames,) | (batch, n_frames) | None
        Frames to replace (``True``); the others keep their original values
        (e.g. leave padding frames untouched). ``None``: all frames.
    %(verbose)s

    Returns
    -------
    ctx : context manager
        Use as ``with intervene(bb, 6, fn): ...``; it yields the backbone.
        Arguments are checked when ``intervene`` is called, the hook is
        registered on entering the block.
    """
    validate_type(backbone, Backbone, "backbone")
    layer = _check_layer(backbone, layer)
    if not callable(fn):
        raise TypeError(f"fn must be callable (hidden -> hidden), got {type(fn).__name__}.")
    mask = _check_mask(mask)
    return _hooked(backbone, layer, fn, mask)


@contextmanager
def _hooked(backbone, layer, fn, mask):
    blocks = _blocks(backbone)
    if layer == 0:

        def pre_hook(module, args, kwargs):
            if args:
                return (_apply(fn, args[0], mask, layer), *args[1:]), kwargs
            kwargs = dict(kwargs)
            kwargs["hidden_states"] = _apply(fn, kwargs["hidden_states"], mask, layer)
            return args, kwargs

        handle = blocks[0].register_forward_pre_hook(pre_hook, with_kwargs=True)
    else:
        module = blocks[layer - 1]
        if layer == backbone.n_layers and _final_norm(backbone) is not None:
            module = _final_norm(backbone)

        def hook(module, args, output):
            if isinstance(output, tuple):
                return (_apply(fn, output[0], mask, layer), *output[1:])
            return _apply(fn, output, mask, layer)

        handle = module.register_forward_hook(hook)
    logger.debug(f"Intervention hook on layer {layer} of {backbone.name}")
    try:
        yield backbone
    finally:
        handle.remove()


@fill_doc
@verbose
def splice(backbone, layer, reconstruct, *, mask=None, verbose=None):
    """Replace a layer's frames with a reconstruction of them (e.g. an SAE's).

    A context manager (see :func:`intervene`). The selected frames of all
    sequences are flattened to ``(n_selected, d_model)``, passed through
    ``reconstruct`` and written back; unselected frames are left untouched
    and are never passed to ``reconstruct`` (so a batch-level top-k SAE does not
    see padding).

    Parameters
    ----------
    backbone : Backbone
        The model to intervene on.
    layer : int
        1-based layer (0 = stem output).
    reconstruct : callable
        ``reconstruct(x) -> x_hat`` on tensors of shape ``(n_frames, d_model)``
        in the layer's own scale, e.g. a
        :class:`neuro_sae.sae.SparseAutoencoder` (its ``forward`` undoes any
        input normalisation).
    mask : array of bool, shape (n_frames,) | (batch, n_frames) | None
        Frames to replace (``None``: all).
    %(verbose)s

    Returns
    -------
    ctx : context manager
        Use as ``with splice(bb, 6, sae): ...``.
    """
    import torch

    if not callable(reconstruct):
        raise TypeError(
            f"reconstruct must be callable (x -> x_hat on (n_frames, d_model)), got "
            f"{type(reconstruct).__name__}."
        )
    mask_t = _check_mask(mask)

    def fn(hidden):
        m = _broadcast_mask(mask_t, hidden)
        if m is None:
            m = torch.ones(hidden.shape[:2], dtype=torch.bool, device=hidden.device)
        x = hidden[m]
        x_hat = torch.as_tensor(reconstruct(x))
        if tuple(x_hat.shape) != tuple(x.shape):
            raise ValueError(
                f"reconstruct must return shape {tuple(x.shape)} (n_frames, d_model), got "
                f"{tuple(x_hat.shape)} instead."
            )
        out = hidden.clone()
        out[m] = x_hat.to(device=hidden.device, dtype=hidden.dtype)
        return out

    return intervene(backbone, layer, fn)


@fill_doc
@verbose
def steer(backbone, layer, vector, alpha=1.0, *, mask=None, verbose=None):
    """Add ``alpha * vector`` to a layer's frames.

    A context manager (see :func:`intervene`).

    Parameters
    ----------
    backbone : Backbone
        The model to intervene on.
    layer : int
        1-based layer (0 = stem output).
    vector : array-like | Tensor, shape (d_model,) | (n_frames, d_model)
        The steering direction (e.g. an SAE decoder row), in the layer's units;
        ``(n_frames, d_model)`` gives one vector per frame.
    alpha : float
        Scale.
    mask : array of bool, shape (n_frames,) | (batch, n_frames) | None
        Frames to steer (``None``: all).
    %(verbose)s

    Returns
    -------
    ctx : context manager
        Use as ``with steer(bb, 6, v, alpha=4.0): ...``.
    """
    import torch

    validate_type(alpha, "numeric", "alpha")
    if torch.is_tensor(vector):
        vector = vector.detach().cpu().numpy()
    vec = np.asarray(vector, dtype=np.float64)
    if vec.ndim not in (1, 2) or vec.shape[-1] != backbone.d_model or not np.isfinite(vec).all():
        raise ValueError(
            f"vector must be finite with shape (d_model,) or (n_frames, d_model), d_model = "
            f"{backbone.d_model} for {backbone.name}, got shape {vec.shape} instead."
        )
    vec_t = torch.from_numpy(vec)

    def fn(hidden):
        if vec_t.ndim == 2 and vec_t.shape[0] != hidden.shape[1]:
            raise ValueError(
                f"vector has {vec_t.shape[0]} frames but the layer has {hidden.shape[1]}; pass "
                f"shape ({hidden.shape[1]}, {backbone.d_model}) or ({backbone.d_model},)."
            )
        return hidden + (float(alpha) * vec_t).to(device=hidden.device, dtype=hidden.dtype)

    return intervene(backbone, layer, fn, mask=mask)
