"""Encode activations into SAE feature time series."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ..io import FeatureSeries
from ..utils import (
    check_array,
    check_option,
    check_positive,
    fill_doc,
    logger,
    progress_bar,
    validate_type,
    verbose,
)


def _sae_mode(sae, mode):
    from ..sae import ENCODE_MODES

    if mode is None:
        mode = sae.inference_mode
    check_option("mode", mode, ENCODE_MODES)
    return mode


@fill_doc
@verbose
def encode_array(
    sae,
    x,
    times,
    *,
    sfreq=50.0,
    mode=None,
    batch_size=4096,
    device="cpu",
    stimulus_id=None,
    layer=None,
    sae_id=None,
    provenance=None,
    verbose=None,
):
    """Encode an array of (valid) frames into a :class:`FeatureSeries`.

    Parameters
    ----------
    sae : neuro_sae.sae.SparseAutoencoder
        The model.
    x : array-like, shape (n_frames, d_in)
        Activations of valid frames (padding already removed).
    %(frame_times)s
    sfreq : float
        Frame rate in Hz (50.0).
    mode : str | None
        ``"threshold"`` (activations above the learned threshold: frame-wise,
        so the result does not depend on batching), ``"topk"`` (``k`` per
        frame) or ``"batchtopk"`` (the ``k * n_frames`` largest activations of
        the whole stimulus, encoded as one batch, as in the AudioSAE
        consistency protocol). ``None``: the architecture's inference mode
        (``"threshold"`` for BatchTopK SAEs, ``"topk"`` for TopK SAEs).
    batch_size : int
        Frames per forward pass (ignored for ``"batchtopk"``).
    %(device)s
        The SAE is moved there.
    stimulus_id : str | None
        Identifier of the stimulus.
    layer : int | None
        1-based layer of the activations (``None``: ``sae.cfg.layer``).
    sae_id : str | None
        Identifier of the SAE stored in the series (``None``: built from the
        SAE's backbone, layer and size).
    provenance : dict | None
        Extra provenance entries.
    %(verbose)s

    Returns
    -------
    series : FeatureSeries
        Codes of all ``d_sae`` features (sparse, float32), ``feature_ids``
        ``0 ... d_sae - 1``.
    """
    import torch

    import neuro_sae

    mode = _sae_mode(sae, mode)
    x = check_array(x, "x", ndim=2, dtype=np.float32)
    times = check_array(times, "times", ndim=1, dtype=np.float64)
    if times.shape[0] != x.shape[0]:
        raise ValueError(
            f"times has {times.shape[0]} entries but x has {x.shape[0]} frames; pass one "
            "time per frame."
        )
    d_in = sae.cfg.d_in
    if x.shape[1] != d_in:
        raise ValueError(
            f"The activations have width {x.shape[1]} but the SAE expects d_in={d_in}; "
            "use the SAE trained on this backbone and layer."
        )
    check_positive(sfreq, "sfreq")
    validate_type(batch_size, "int", "batch_size")
    check_positive(batch_size, "batch_size")
    validate_type(provenance, (dict, None), "provenance")
    if layer is None:
        layer = sae.cfg.layer
    if sae_id is None:
        cfg = sae.cfg
        sae_id = f"{cfg.backbone or 'sae'}_layer-{cfg.layer}_{cfg.architecture}-{cfg.d_sae}-k{cfg.k}"
    sae = sae.to(device)
    n_frames = x.shape[0]
    logger.info(
        f"Encoding {n_frames:,} frames with {sae.cfg.d_sae:,} features (mode={mode!r})"
    )
    step = n_frames if mode == "batchtopk" else batch_size
    blocks = []
    with torch.inference_mode():
        starts = range(0, n_frames, max(step, 1))
        for start in progress_bar(starts, desc="Encoding features", unit="batch"):
            codes = sae.encode_sparse(x[start : start + step], mode)
            blocks.append(
                sp.csr_array(
                    (
                        codes.values().cpu().numpy(),
                        codes.col_indices().cpu().numpy(),
                        codes.crow_indices().cpu().numpy(),
                    ),
                    shape=tuple(codes.shape),
                )
            )
    if blocks:
        data = sp.vstack(blocks, format="csr")
    else:
        data = sp.csr_array((0, sae.cfg.d_sae), dtype=np.float32)
    prov = dict(
        mode=mode,
        backbone=sae.cfg.backbone,
        d_sae=sae.cfg.d_sae,
        k=sae.cfg.k,
        threshold=sae.threshold_summary() if mode == "threshold" else None,
        normalize_input=sae.cfg.normalize_input,
        neuro_sae_version=neuro_sae.__version__,
    )
    prov.update(provenance or {})
    return FeatureSeries(
        data=data,
        times=times,
        feature_ids=np.arange(sae.cfg.d_sae),
        sfreq=float(sfreq),
        stimulus_id=stimulus_id,
        layer=layer,
        sae_id=sae_id,
        provenance=prov,
    )


@fill_doc
@verbose
def encode_features(
    sae,
    activations,
    *,
    layer=None,
    mode=None,
    batch_size=4096,
    device="cpu",
    sae_id=None,
    verbose=None,
):
    """Encode one stimulus' activations into a :class:`FeatureSeries`.

    Only valid frames (``activations.mask``) are encoded and kept, with their
    frame times.

    Parameters
    ----------
    sae : neuro_sae.sae.SparseAutoencoder
        The model.
    activations : neuro_sae.activations.Activations
        Activations of one stimulus.
    layer : int | None
        1-based layer to encode. ``None``: ``sae.cfg.layer``, or the only layer
        held. A layer other than the SAE's own raises.
    mode : str | None
        See :func:`encode_array` (``None``: ``"threshold"`` for BatchTopK SAEs).
    batch_size : int
        Frames per forward pass.
    %(device)s
    sae_id : str | None
        Identifier of the SAE stored in the series.
    %(verbose)s

    Returns
    -------
    series : FeatureSeries
        Sparse float32 codes of the valid frames, at ``activations.sfreq``.
    """
    from ..activations import Activations

    validate_type(activations, Activations, "activations")
    if layer is None:
        if sae.cfg.layer is not None:
            layer = sae.cfg.layer
        elif len(activations.layers) == 1:
            layer = activations.layers[0]
        else:
            raise ValueError(
                f"layer must be given: the SAE does not record its layer and the "
                f"activations hold layers {activations.layers}."
            )
    validate_type(layer, "int", "layer")
    if sae.cfg.layer is not None and layer != sae.cfg.layer:
        raise ValueError(
            f"The SAE was trained on layer {sae.cfg.layer} but layer={layer} was asked "
            f"for; pass layer={sae.cfg.layer} or load the SAE of layer {layer}."
        )
    if layer not in activations.data:
        raise ValueError(
            f"layer={layer} is not in the activations, which hold layers "
            f"{activations.layers}; extract it first or pick one of those."
        )
    if abs(activations.sfreq - sae.cfg.frame_rate) > 1e-6:
        raise ValueError(
            f"The activations run at {activations.sfreq:g} Hz but the SAE was trained "
            f"on frames at {sae.cfg.frame_rate:g} Hz; use activations of the SAE's "
            "backbone."
        )
    if sae.cfg.backbone and activations.backbone and sae.cfg.backbone != activations.backbone:
        raise ValueError(
            f"The SAE was trained on {sae.cfg.backbone!r} activations (its cfg.json "
            f"'backbone') but these activations come from {activations.backbone!r}; "
            f"extract the activations with {sae.cfg.backbone!r}, or use an SAE trained "
            f"on {activations.backbone!r}."
        )
    x = activations.get(layer, valid_only=True)
    times = activations.times[activations.mask]
    return encode_array(
        sae,
        x,
        times,
        sfreq=activations.sfreq,
        mode=mode,
        batch_size=batch_size,
        device=device,
        stimulus_id=activations.stimulus_id,
        layer=layer,
        sae_id=sae_id,
        provenance=dict(backbone=activations.backbone or sae.cfg.backbone),
    )
