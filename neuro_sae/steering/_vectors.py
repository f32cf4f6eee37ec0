"""Steering vectors: features that predict a false speech detection (logistic
regression on clip-pooled SAE codes, F1 against k), the SAE steering direction
``s = -sign(beta)`` on the top-k features, the S-vector baseline, and the layer
replacement functions."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..utils import check_option, fill_doc, logger, validate_type, verbose
from . import _docs  # noqa: F401

METHODS = ("sae", "svector")
POOLINGS = ("mean", "max")
SCALES = ("frame", "absolute")


@fill_doc
@verbose
def check_sae(sae, backbone, layer, *, verbose=None):
    """Check that an SAE reads ``layer`` of ``backbone`` (its ``cfg.json`` fields).

    Parameters
    ----------
    sae : SparseAutoencoder | path-like
        The SAE or its folder (read with :func:`neuro_sae.sae.load_sae`).
    backbone : Backbone
        The model to steer.
    layer : int
        The layer to steer.
    %(verbose)s

    Returns
    -------
    sae : SparseAutoencoder
        The (loaded) SAE.
    """
    from ..sae import SparseAutoencoder, load_sae

    where = ""
    if not isinstance(sae, SparseAutoencoder):
        validate_type(sae, "path-like", "sae", "SparseAutoencoder or SAE folder")
        where = f" ({sae}/cfg.json)"
        sae = load_sae(sae, verbose=False)
    cfg = sae.cfg
    if cfg.layer is not None and int(cfg.layer) != int(layer):
        raise ValueError(
            f"The SAE{where} was trained on layer {cfg.layer} (cfg.json 'layer') but layer "
            f"{layer} is steered. Steer layer {cfg.layer}, or pass an SAE trained on layer "
            f"{layer}."
        )
    if cfg.backbone is not None and cfg.backbone != backbone.name:
        raise ValueError(
            f"The SAE{where} was trained on backbone {cfg.backbone!r} (cfg.json 'backbone') "
            f"but the steered model is {backbone.name!r}. Pass an SAE of {backbone.name!r} or "
            f"load the backbone {cfg.backbone!r}."
        )
    if int(cfg.d_in) != int(backbone.d_model):
        raise ValueError(
            f"The SAE{where} reads {cfg.d_in}-d activations (cfg.json 'd_in') but "
            f"{backbone.name} layer {layer} has d_model = {backbone.d_model}. Pass an SAE of "
            "this backbone."
        )
    return sae


def _check_k(k, sae):
    validate_type(k, "int", "k")
    if not 1 <= int(k) <= sae.cfg.d_sae:
        raise ValueError(
            f"Invalid value for the 'k' parameter: the SAE has {sae.cfg.d_sae} features, so k "
            f"must be in [1, {sae.cfg.d_sae}], got {int(k)}. Pass a smaller k."
        )
    return int(k)


@fill_doc
@verbose
def pool_codes(sae, frames, *, pooling="mean", mode=None, verbose=None):
    """Clip-pooled SAE codes.

    Parameters
    ----------
    sae : SparseAutoencoder
        The SAE.
    frames : list of array, shape (n_frames_i, d_in)
        The valid frames of each clip at the SAE's layer.
    pooling : str
        ``"mean"`` or ``"max"`` over a clip's frames.
    mode : str | None
        Encoding mode (see :meth:`neuro_sae.sae.SparseAutoencoder.encode`).
    %(verbose)s

    Returns
    -------
    pooled : ndarray, shape (n_clips, d_sae)
        Pooled codes (in the SAE's normalised scale).
    """
    import torch

    check_option("pooling", pooling, POOLINGS)
    out = np.zeros((len(frames), sae.cfg.d_sae))
    with torch.inference_mode():
        for i, x in enumerate(frames):
            codes = sae.encode(torch.as_tensor(np.asarray(x, np.float32)), _mode(sae, mode))
            out[i] = (codes.mean(0) if pooling == "mean" else codes.amax(0)).double().numpy()
    return out


def _check_labels(labels, n):
    y = np.asarray(labels).astype(bool)
    if y.shape != (n,):
        raise ValueError(f"labels must have one entry per clip ({n}), got shape {y.shape}.")
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if min(n_pos, n_neg) < 2:
        raise ValueError(
            "The vector's fit clips need at least 2 falsely detected and 2 correctly rejected "
            f"non-speech clips, got {n_pos} detected and {n_neg} rejected. Add fit clips (e.g. "
            "music and recorded sound effects) or change the threshold."
        )
    return y


def _logreg(C, random_state):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    seed = None if random_state is None else int(np.random.default_rng(random_state).integers(2**31))
    return make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=2000,
                                                              random_state=seed))


@fill_doc
@verbose
def rank_features(pooled, labels, *, C=1.0, random_state=None, verbose=None):
    """Logistic regression of a false detection on clip-pooled codes.

    Parameters
    ----------
    pooled : ndarray, shape (n_clips, d_sae)
        Pooled codes (:func:`pool_codes`).
    labels : array of bool, shape (n_clips,)
        True where the unsteered model detected speech in the non-speech clip.
    C : float
        Inverse L2 penalty of the regression (on standardised codes).
    %(random_state)s
    %(verbose)s

    Returns
    -------
    beta : ndarray, shape (d_sae,)
        Coefficients (on standardised codes; a feature never active gets 0).
    order : ndarray of int, shape (d_sae,)
        Features by decreasing ``|beta|``.
    """
    X = np.asarray(pooled, float)
    y = _check_labels(labels, X.shape[0])
    clf = _logreg(C, random_state).fit(X, y)
    beta = clf[-1].coef_[0].copy()
    beta[X.std(0) == 0] = 0.0
    order = np.argsort(-np.abs(beta), kind="stable")
    return beta, order


@fill_doc
@verbose
def feature_f1(pooled, labels, ks, *, n_splits=5, C=1.0, random_state=None, verbose=None):
    """Cross-validated F1 of predicting a false detection from the top-k features.

    The paper's Table 7: inside each training fold the features are ranked by
    ``|beta|`` (:func:`rank_features`), a regression on the top ``k`` alone is
    refit and scored (F1) on the held-out fold; the folds are stratified.

    Parameters
    ----------
    pooled : ndarray, shape (n_clips, d_sae)
        Pooled codes.
    labels : array of bool, shape (n_clips,)
        False detection per clip.
    ks : list of int
        Numbers of features.
    n_splits : int
        Folds (at most the size of the smaller class).
    C : float
        Inverse L2 penalty.
    %(random_state)s
    %(verbose)s

    Returns
    -------
    table : pandas.DataFrame
        Columns ``k``, ``f1`` (pooled over folds), ``n_clips``.
    """
    import pandas as pd
    from sklearn.metrics import f1_score
    from sklearn.model_selection import StratifiedKFold

    X = np.asarray(pooled, float)
    y = _check_labels(labels, X.shape[0])
    n_splits = int(min(n_splits, y.sum(), (~y).sum()))
    for k in ks:
        if not 1 <= int(k) <= X.shape[1]:
            raise ValueError(
                f"Invalid value for the 'ks' parameter: k = {k} but the SAE has {X.shape[1]} "
                f"features; pass ks in [1, {X.shape[1]}]."
            )
    seed = int(np.random.default_rng(random_state).integers(2**31))
    cv = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    pred = {int(k): np.zeros(len(y), bool) for k in ks}
    for train, test in cv.split(X, y):
        _, order = rank_features(X[train], y[train], C=C, random_state=seed, verbose=False)
        for k in pred:
            cols = order[:k]
            clf = _logreg(C, seed).fit(X[train][:, cols], y[train])
            pred[k][test] = clf.predict(X[test][:, cols])
    rows = [dict(k=k, f1=float(f1_score(y, p)), n_clips=len(y)) for k, p in pred.items()]
    logger.info("F1 vs k: " + ", ".join(f"{r['k']}: {r['f1']:.2f}" for r in rows))
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class SteeringVector:
    """A steering direction at one layer.

    Attributes
    ----------
    method : str
        ``"sae"`` (SAE features) or ``"svector"`` (difference of mean activations).
    layer : int
        1-based layer.
    source : str
        Name of the clip set it was fitted on.
    features : tuple of int
        SAE method: the top-k features by ``|beta|``.
    signs : tuple of float
        SAE method: ``s_j = -sign(beta_j)`` of those features.
    direction : tuple of float
        S-vector: the unit vector ``-(m_detected - m_rejected) / ||...||`` in the
        layer's units (adding it moves away from a false detection).
    """

    method: str
    layer: int
    source: str = ""
    features: tuple = ()
    signs: tuple = ()
    direction: tuple = ()

    @property
    def k(self):
        """Number of steered features (SAE method; None for the S-vector)."""
        return len(self.features) if self.method == "sae" else None


@fill_doc
@verbose
def sae_vector(beta, order, k, sae, *, layer, source="", verbose=None):
    """The SAE steering vector: ``s_j = -sign(beta_j)`` on the top-k features.

    Parameters
    ----------
    beta : ndarray, shape (d_sae,)
        From :func:`rank_features`.
    order : ndarray of int
        Features by decreasing ``|beta|``.
    k : int
        Number of features (at most the SAE's ``d_sae``).
    sae : SparseAutoencoder
        The SAE (for the check of ``k``).
    layer : int
        Its layer.
    source : str
        Name of the fit clips.
    %(verbose)s

    Returns
    -------
    vector : SteeringVector
        The SAE vector.
    """
    k = _check_k(k, sae)
    feats = [int(j) for j in order[:k]]
    signs = [-float(np.sign(beta[j])) for j in feats]
    return SteeringVector("sae", int(layer), str(source), tuple(feats), tuple(signs))


@fill_doc
@verbose
def s_vector(pooled_acts, labels, *, layer, source="", verbose=None):
    """The paper's S-vector baseline from clip-mean activations.

    Parameters
    ----------
    pooled_acts : ndarray, shape (n_clips, d_model)
        Mean activation of each clip's valid frames at the layer.
    labels : array of bool, shape (n_clips,)
        False detection per clip.
    layer : int
        The layer.
    source : str
        Name of the fit clips.
    %(verbose)s

    Returns
    -------
    vector : SteeringVector
        ``direction = -(m_detected - m_rejected) / ||m_detected - m_rejected||``
        where ``m`` are means over clips (each clip weighted equally).
    """
    A = np.asarray(pooled_acts, float)
    y = _check_labels(labels, A.shape[0])
    diff = A[y].mean(0) - A[~y].mean(0)
    norm = np.linalg.norm(diff)
    if not norm > 0:
        raise ValueError("The detected and rejected clips have identical mean activations.")
    return SteeringVector("svector", int(layer), str(source), direction=tuple(-diff / norm))


def _mode(sae, mode):
    """The SAE's inference mode, or top-k when a threshold mode has no learned threshold."""
    if mode is None and sae.inference_mode == "threshold" and not sae.has_threshold:
        return "topk"
    return mode


def _norms(x, sae):
    import torch

    if sae is None or sae.cfg.normalize_input:
        return x.norm(dim=1, keepdim=True).clamp_min(1e-12)
    return torch.ones(x.shape[0], 1, dtype=x.dtype, device=x.device)


@fill_doc
@verbose
def steering_fn(vector, alpha, *, sae=None, keep_error=True, scale="frame", mode=None,
                verbose=None):
    """The layer replacement of a steering vector, on ``(n_frames, d_model)`` frames.

    - SAE method: ``x -> x_hat(f(x) + alpha * s) * ||x||`` (the SAE's input
      scaling undone; ``s`` holds ``-sign(beta_j)`` on the top-k features), or
      with ``keep_error=True``
      ``x -> x + (x_hat(f(x) + alpha * s) - x_hat(f(x))) * ||x||``, which for
      the affine decoder is ``x + alpha * ||x|| * s @ W_dec``.
    - S-vector: ``x -> x + alpha * ||x|| * u`` (``scale="frame"``: alpha in
      units of each frame's norm, the scale the SAE method steers in) or the
      paper's literal ``x -> x + alpha * u`` (``scale="absolute"``).

    Parameters
    ----------
    vector : SteeringVector
        The direction.
    alpha : float
        Strength (0: no change with ``keep_error`` and for the S-vector).
    sae : SparseAutoencoder | None
        The SAE (SAE method only).
    %(steer_keep_error)s
    scale : str
        S-vector only: ``"frame"`` or ``"absolute"``.
    mode : str | None
        SAE encoding mode (``None``: the SAE's inference mode).
    %(verbose)s

    Returns
    -------
    fn : callable
        ``fn(x) -> x_new`` on tensors of shape ``(n_frames, d_model)``, for
        :func:`neuro_sae.backbones.splice`.
    """
    import torch

    validate_type(vector, SteeringVector, "vector")
    validate_type(alpha, "numeric", "alpha")
    alpha = float(alpha)
    if vector.method == "svector":
        check_option("scale", scale, SCALES)
        u = torch.tensor(vector.direction, dtype=torch.float32)

        def fn(x):
            step = alpha * u.to(device=x.device, dtype=x.dtype)
            if scale == "frame":
                return x + _norms(x, None) * step
            return x + step

        return fn
    if sae is None:
        raise ValueError("The SAE method needs the SAE: pass sae=.")
    validate_type(keep_error, bool, "keep_error")
    s = torch.zeros(sae.cfg.d_sae, dtype=torch.float32, device=sae.device)
    s[list(vector.features)] = torch.tensor(vector.signs, dtype=torch.float32, device=sae.device)

    def fn(x):
        with torch.no_grad():
            x32 = x.to(device=sae.device, dtype=torch.float32)
            norms = _norms(x32, sae)
            codes = sae.encode(x32, _mode(sae, mode))
            steered = sae.decode(codes + alpha * s, scale=norms)
            if not keep_error:
                return steered.to(x.dtype)
            base = sae.decode(codes, scale=norms)
            return (x32 + (steered - base)).to(x.dtype)

    return fn
