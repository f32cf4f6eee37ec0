"""Low-level numerics of the sweep, public for :mod:`neuro_sae.stats` and advanced users.

The permutation nulls of :mod:`neuro_sae.stats` reuse the sweep's per-run sufficient
statistics and its eigendecomposition-based ridge. These functions are that shared
layer: stable names and documented shapes, no private imports across subpackages.
Conventions (MNE): ``delays = arange(round(tmin * sfreq), round(tmax * sfreq) + 1)``;
the lagged predictor at delay ``d`` is ``x[t - d]``, zero outside the run.
"""

from __future__ import annotations

from ._lagged import _check_runs, _lag_matrix, _univariate_run_stats
from ._ridge import _eig, _safe_r

__all__ = ["check_runs", "eigh_psd", "lag_matrix", "safe_r", "univariate_run_stats"]


def check_runs(X, Y, *, allow_sparse=False, x_name="X", y_name="Y"):
    """Validate lists of runs (or single arrays) of features and EEG.

    Parameters
    ----------
    X : list of array | array, shape (n_times, n_features)
        Features per run (scipy.sparse allowed with ``allow_sparse``).
    Y : list of array | array, shape (n_times, n_channels)
        EEG per run.
    allow_sparse : bool
        Keep sparse runs of ``X`` sparse (CSC).
    x_name, y_name : str
        Names of the arguments in error messages.

    Returns
    -------
    X_runs, Y_runs : list of array
        2-D runs (float64; ``X`` runs may be CSC sparse).
    single : bool
        Whether single arrays (not lists) were given.
    """
    return _check_runs(X, Y, allow_sparse=allow_sparse, x_name=x_name, y_name=y_name)


def lag_matrix(x, delays, start=0, stop=None):
    """Rows ``start:stop`` of the zero-padded lag matrix of one run.

    Parameters
    ----------
    x : ndarray, shape (n_times, n_features)
        One run.
    delays : ndarray of int, shape (n_delays,)
        Consecutive delays in samples.
    start, stop : int | None
        Row range (``stop=None``: to the end).

    Returns
    -------
    X_lag : ndarray, shape (n_rows, n_features * n_delays)
        Feature-major columns: column ``f * n_delays + l`` is ``x[t - delays[l], f]``.
    """
    return _lag_matrix(x, delays, start, stop)


def univariate_run_stats(x, y, delays):
    """Per-feature lagged statistics of one run, without building a lag matrix.

    Parameters
    ----------
    x : ndarray | scipy.sparse array, shape (n_times, n_features)
        One run of features.
    y : ndarray, shape (n_times, n_channels)
        The EEG of the run.
    delays : ndarray of int, shape (n_delays,)
        Consecutive integer delays.

    Returns
    -------
    G : ndarray, shape (n_features, n_delays, n_delays)
        Lagged auto-products of each feature with itself.
    H : ndarray, shape (n_features, n_delays, n_channels)
        Lagged cross-products with the EEG.
    sx : ndarray, shape (n_features, n_delays)
        Sums of the lagged predictors.
    """
    return _univariate_run_stats(x, y, delays)


def eigh_psd(G):
    """Batched eigendecomposition of symmetric positive semi-definite matrices.

    Parameters
    ----------
    G : ndarray, shape (..., n, n)
        Symmetric PSD matrices.

    Returns
    -------
    s : ndarray, shape (..., n)
        Eigenvalues, ascending, negative round-off clipped to 0.
    V : ndarray, shape (..., n, n)
        Eigenvectors (columns).
    """
    return _eig(G)


def safe_r(num, den, yy):
    """Pearson r from sufficient statistics: ``num / sqrt(den * yy)``, 0 where a variance is 0.

    Parameters
    ----------
    num : ndarray
        Cross-products of prediction and EEG (centred).
    den : ndarray
        Sums of squares of the prediction.
    yy : ndarray
        Sums of squares of the EEG (broadcast against ``den``).

    Returns
    -------
    r : ndarray
        The correlations.
    """
    return _safe_r(num, den, yy)
