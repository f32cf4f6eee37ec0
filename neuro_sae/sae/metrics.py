"""SAE metrics, each defined once here and tested against its closed form.

- explained variance ``1 - E||x - x_hat||^2 / (E||x||^2 - ||E x||^2)``, the
  expectation over (non-padding) frames, accumulated in float64; the
  denominator is the total variance of the frames (trace of their covariance,
  divided by n, not n - 1);
- fraction of variance unexplained, ``fvu = 1 - explained_variance``;
- L0: mean number of active features per frame, and its histogram;
- dead features: never active over the evaluated frames; dense features:
  active on more than 10% of them;
- cosine similarity: mean over frames of ``x . x_hat / (||x|| ||x_hat||)``;
- relative reconstruction bias ``gamma = E||x_hat||^2 / E[x . x_hat]``, the
  ``gamma`` minimising ``E||x_hat / gamma - x||^2`` (< 1: the SAE shrinks its
  reconstructions, 1: unbiased).

The downstream effect of splicing an SAE into a model (Whisper WER and
cross-entropy, HuBERT probe accuracy, each against zero and mean ablation)
lives in :mod:`neuro_sae.sae.downstream`.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ..utils import check_array, check_positive, fill_doc, progress_bar, validate_type, verbose


def _to_numpy(x, name):
    try:
        import torch

        if isinstance(x, torch.Tensor):
            if x.layout != torch.strided:
                x = x.to_dense()
            x = x.detach().cpu().numpy()
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    return x


def _check_mask(mask, n):
    if mask is None:
        return None
    mask = np.asarray(mask)
    if mask.dtype != bool or mask.shape != (n,):
        raise ValueError(
            f"mask must be a boolean array of shape ({n},) (True = valid frame), got "
            f"dtype {mask.dtype} and shape {mask.shape} instead."
        )
    return mask


def _codes_csr(codes, mask):
    """Codes as a scipy CSR array of valid frames."""
    if not sp.issparse(codes):
        codes = _to_numpy(codes, "codes")
        codes = check_array(codes, "codes", ndim=2, dtype=None)
    codes = sp.csr_array(codes)
    mask = _check_mask(mask, codes.shape[0])
    if mask is not None:
        codes = codes[np.flatnonzero(mask)]
    codes.eliminate_zeros()
    return codes


class MomentAccumulator:
    """Streaming float64 sums for the explained variance of many batches.

    Parameters
    ----------
    d_in : int
        Frame width.
    """

    def __init__(self, d_in):
        self.n = 0
        self.sse = 0.0
        self.ssx = 0.0
        self.sum_x = np.zeros(d_in, dtype=np.float64)
        self.sxh = 0.0  # sum of x . x_hat
        self.shh = 0.0  # sum of ||x_hat||^2
        self.scos = 0.0  # sum of per-frame cosines

    def update(self, x, x_hat):
        """Add a batch.

        Parameters
        ----------
        x : ndarray, shape (n_frames, d_in)
            Targets (valid frames only).
        x_hat : ndarray, shape (n_frames, d_in)
            Reconstructions.
        """
        x = np.asarray(x, dtype=np.float64)
        x_hat = np.asarray(x_hat, dtype=np.float64)
        self.n += x.shape[0]
        self.sse += float(np.sum((x - x_hat) ** 2))
        self.ssx += float(np.sum(x**2))
        self.sum_x += x.sum(axis=0)
        dots = np.einsum("ij,ij->i", x, x_hat)
        nh = np.einsum("ij,ij->i", x_hat, x_hat)
        self.sxh += float(dots.sum())
        self.shh += float(nh.sum())
        nx = np.sqrt(np.einsum("ij,ij->i", x, x))
        self.scos += float(np.sum(dots / np.maximum(nx * np.sqrt(nh), 1e-300)))

    @property
    def mse(self):
        """Mean squared error per frame, ``E||x - x_hat||^2``."""
        return self.sse / self.n if self.n else np.nan

    @property
    def total_variance(self):
        """``E||x||^2 - ||E x||^2``."""
        if not self.n:
            return np.nan
        mean = self.sum_x / self.n
        return self.ssx / self.n - float(mean @ mean)

    @property
    def cosine(self):
        """Mean per-frame cosine of ``x`` and ``x_hat``."""
        return self.scos / self.n if self.n else np.nan

    @property
    def relative_bias(self):
        """``E||x_hat||^2 / E[x . x_hat]`` (NaN when the denominator is 0)."""
        return self.shh / self.sxh if self.sxh != 0 else np.nan

    @property
    def fvu(self):
        """Fraction of variance unexplained (NaN if the frames have no variance)."""
        var = self.total_variance
        return self.mse / var if var > 0 else np.nan


def _moments(x, x_hat, mask):
    x = check_array(_to_numpy(x, "x"), "x", ndim=2, dtype=np.float64)
    x_hat = check_array(_to_numpy(x_hat, "x_hat"), "x_hat", ndim=2, dtype=np.float64)
    if x.shape != x_hat.shape:
        raise ValueError(
            f"x has shape {x.shape} but x_hat has shape {x_hat.shape}; they must match."
        )
    mask = _check_mask(mask, x.shape[0])
    if mask is not None:
        x, x_hat = x[mask], x_hat[mask]
    acc = MomentAccumulator(x.shape[1])
    acc.update(x, x_hat)
    return acc


@fill_doc
@verbose
def explained_variance(x, x_hat, mask=None, *, verbose=None):
    """Explained variance ``1 - E||x - x_hat||^2 / (E||x||^2 - ||E x||^2)``.

    Parameters
    ----------
    x : array-like | Tensor, shape (n_frames, d_in)
        Input frames.
    x_hat : array-like | Tensor, shape (n_frames, d_in)
        Reconstructions.
    mask : ndarray of bool, shape (n_frames,) | None
        ``True`` for valid frames; padding frames (``False``) are left out.
    %(verbose)s

    Returns
    -------
    ev : float
        Explained variance (1 is perfect, 0 is as good as the mean frame; NaN
        when the frames have no variance).
    """
    return 1.0 - _moments(x, x_hat, mask).fvu


@fill_doc
@verbose
def fvu(x, x_hat, mask=None, *, verbose=None):
    """Fraction of variance unexplained, ``1 - explained_variance``.

    Parameters
    ----------
    %(sae_x)s
    %(sae_x_hat)s
    %(frame_mask)s
    %(verbose)s

    Returns
    -------
    fvu : float
        ``E||x - x_hat||^2 / (E||x||^2 - ||E x||^2)``.
    """
    return _moments(x, x_hat, mask).fvu


@fill_doc
@verbose
def cosine_similarity(x, x_hat, mask=None, *, verbose=None):
    """Mean over frames of the cosine between each frame and its reconstruction.

    Parameters
    ----------
    %(sae_x)s
    %(sae_x_hat)s
    %(frame_mask)s
    %(verbose)s

    Returns
    -------
    cos : float
        Mean of ``x . x_hat / (||x|| ||x_hat||)`` (a zero frame counts as 0).
    """
    return _moments(x, x_hat, mask).cosine


@fill_doc
@verbose
def relative_bias(x, x_hat, mask=None, *, verbose=None):
    """Relative reconstruction bias ``gamma = E||x_hat||^2 / E[x . x_hat]``.

    ``gamma`` minimises ``E||x_hat / gamma - x||^2``: below 1 the
    reconstructions are shrunk towards zero (as L1 penalties do), 1 is
    unbiased.

    Parameters
    ----------
    %(sae_x)s
    %(sae_x_hat)s
    %(frame_mask)s
    %(verbose)s

    Returns
    -------
    gamma : float
        The relative bias.
    """
    return _moments(x, x_hat, mask).relative_bias


@fill_doc
@verbose
def l0(codes, mask=None, *, verbose=None):
    """Mean number of active (non-zero) features per frame.

    Parameters
    ----------
    %(sae_codes)s
    %(frame_mask)s
    %(verbose)s

    Returns
    -------
    l0 : float
        Mean L0 norm of the codes.
    """
    codes = _codes_csr(codes, mask)
    return codes.nnz / codes.shape[0] if codes.shape[0] else np.nan


@fill_doc
@verbose
def l0_histogram(codes, mask=None, *, verbose=None):
    """Histogram of the number of active features per frame.

    Parameters
    ----------
    %(sae_codes)s
    %(frame_mask)s
    %(verbose)s

    Returns
    -------
    counts : ndarray of int, shape (max_l0 + 1,)
        ``counts[j]`` frames have exactly ``j`` active features.
    """
    codes = _codes_csr(codes, mask)
    return np.bincount(np.diff(codes.indptr), minlength=1)


@fill_doc
@verbose
def firing_frequency(codes, mask=None, *, verbose=None):
    """Fraction of frames on which each feature is active.

    Parameters
    ----------
    %(sae_codes)s
    %(frame_mask)s
    %(verbose)s

    Returns
    -------
    freq : ndarray, shape (d_sae,)
        Active fraction per feature, in [0, 1].
    """
    codes = _codes_csr(codes, mask)
    counts = np.bincount(codes.indices, minlength=codes.shape[1])
    return counts / max(codes.shape[0], 1)


@fill_doc
@verbose
def dead_fraction(codes, mask=None, *, verbose=None):
    """Fraction of features never active over the frames.

    Parameters
    ----------
    %(sae_codes)s
    %(frame_mask)s
    %(verbose)s

    Returns
    -------
    frac : float
        Dead fraction, in [0, 1].
    """
    return float(np.mean(firing_frequency(codes, mask) == 0))


@fill_doc
@verbose
def dense_fraction(codes, mask=None, *, threshold=0.1, verbose=None):
    """Fraction of features active on more than ``threshold`` of the frames.

    Parameters
    ----------
    %(sae_codes)s
    %(frame_mask)s
    threshold : float
        Active-frame fraction above which a feature counts as dense (0.1).
    %(verbose)s

    Returns
    -------
    frac : float
        Dense fraction, in [0, 1].
    """
    check_positive(threshold, "threshold")
    return float(np.mean(firing_frequency(codes, mask) > threshold))


@fill_doc
@verbose
def evaluate_sae(
    sae,
    x,
    *,
    mask=None,
    mode=None,
    batch_size=4096,
    normalized=False,
    dense_threshold=0.1,
    verbose=None,
):
    """Reconstruction and sparsity metrics of an SAE on a set of frames, in batches.

    Parameters
    ----------
    sae : neuro_sae.sae.SparseAutoencoder
        The model (its device is used).
    x : array-like, shape (n_frames, d_in)
        Frames to evaluate.
    mask : ndarray of bool, shape (n_frames,) | None
        ``True`` for valid frames (padding is left out of every metric).
    mode : str | None
        Encode mode (see :meth:`~neuro_sae.sae.SparseAutoencoder.encode`).
        With ``"batchtopk"`` the result depends on ``batch_size``.
    batch_size : int
        Frames per batch.
    normalized : bool
        Compute the reconstruction metrics on unit-norm frames (the training
        scale) instead of the frames' own scale.
    dense_threshold : float
        Active-frame fraction above which a feature counts as dense.
    %(verbose)s

    Returns
    -------
    metrics : dict
        ``explained_variance``, ``fvu``, ``mse`` (per frame), ``cosine``,
        ``relative_bias``, ``l0``, ``dead_fraction``, ``dense_fraction`` and
        ``n_frames``.
    """
    import torch

    validate_type(batch_size, "int", "batch_size")
    check_positive(batch_size, "batch_size")
    x = _to_numpy(x, "x")
    x = check_array(x, "x", ndim=2, dtype=np.float32)
    mask = _check_mask(mask, x.shape[0])
    if mask is not None:
        x = x[mask]
    acc = MomentAccumulator(x.shape[1])
    counts = np.zeros(sae.cfg.d_sae, dtype=np.int64)
    nnz = 0
    starts = range(0, x.shape[0], batch_size)
    with torch.inference_mode():
        for start in progress_bar(starts, desc="Evaluating SAE", unit="batch"):
            out = sae.encode_decode(x[start : start + batch_size], mode)
            if normalized:
                target, recon = out.x_in, out.recon
            else:
                target, recon = out.x_in * out.scale, out.recon * out.scale
            acc.update(target.cpu().numpy(), recon.cpu().numpy())
            col = out.codes.col_indices().cpu().numpy()
            counts += np.bincount(col, minlength=sae.cfg.d_sae)
            nnz += col.size
    n = max(acc.n, 1)
    freq = counts / n
    return dict(
        explained_variance=1.0 - acc.fvu,
        fvu=acc.fvu,
        mse=acc.mse,
        cosine=acc.cosine,
        relative_bias=acc.relative_bias,
        l0=nnz / n,
        dead_fraction=float(np.mean(freq == 0)),
        dense_fraction=float(np.mean(freq > dense_threshold)),
        n_frames=int(acc.n),
    )
