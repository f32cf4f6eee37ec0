"""Synthetic sparse-dictionary data with a planted dictionary (for SAE tests and demos)."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ..utils import check_positive, check_random_state, fill_doc, logger, validate_type, verbose


@fill_doc
@verbose
def make_sparse_dictionary_data(
    n_samples,
    d_in,
    n_atoms,
    k,
    *,
    noise=0.0,
    coef_range=(0.5, 1.5),
    random_state=None,
    verbose=None,
):
    """Draw frames that are sparse non-negative mixtures of a planted dictionary.

    Every sample mixes exactly ``k`` distinct atoms, drawn uniformly, with
    coefficients drawn uniformly from ``coef_range``:
    ``X = codes @ atoms + noise * N(0, I)``. The atoms are random unit vectors.

    Parameters
    ----------
    n_samples : int
        Number of frames.
    d_in : int
        Width of a frame.
    n_atoms : int
        Size of the planted dictionary (may exceed ``d_in``: overcomplete).
    k : int
        Active atoms per frame (``1 <= k <= n_atoms``).
    noise : float
        Standard deviation of the isotropic Gaussian noise added to every
        coordinate (0: none).
    coef_range : tuple of float
        ``(low, high)`` of the uniform coefficients, ``0 < low <= high``.
    %(random_state)s
    %(verbose)s

    Returns
    -------
    X : ndarray, shape (n_samples, d_in)
        The frames (float64).
    atoms : ndarray, shape (n_atoms, d_in)
        The planted dictionary, unit-norm rows.
    codes : scipy.sparse.csr_array, shape (n_samples, n_atoms)
        The planted coefficients, exactly ``k`` positive entries per row.
    """
    for name, value in (("n_samples", n_samples), ("d_in", d_in), ("n_atoms", n_atoms), ("k", k)):
        validate_type(value, "int", name)
        check_positive(value, name)
    if k > n_atoms:
        raise ValueError(
            f"k ({k}) cannot exceed n_atoms ({n_atoms}): each sample mixes k distinct "
            "atoms. Lower k or raise n_atoms."
        )
    check_positive(noise, "noise", strict=False)
    validate_type(coef_range, (tuple, list), "coef_range")
    if len(coef_range) != 2 or not 0 < coef_range[0] <= coef_range[1]:
        raise ValueError(
            f"coef_range must be (low, high) with 0 < low <= high, got {coef_range!r} "
            "instead, e.g. coef_range=(0.5, 1.5)."
        )
    rng = check_random_state(random_state)
    atoms = rng.standard_normal((n_atoms, d_in))
    atoms /= np.linalg.norm(atoms, axis=1, keepdims=True)
    # k distinct atoms per row: the k smallest of n_atoms uniform keys
    keys = rng.random((n_samples, n_atoms))
    idx = np.sort(np.argpartition(keys, k - 1, axis=1)[:, :k], axis=1)
    vals = rng.uniform(coef_range[0], coef_range[1], size=(n_samples, k))
    indptr = np.arange(0, n_samples * k + 1, k)
    codes = sp.csr_array((vals.ravel(), idx.ravel(), indptr), shape=(n_samples, n_atoms))
    X = codes @ atoms
    if noise > 0:
        X += noise * rng.standard_normal(X.shape)
    logger.info(
        f"Simulated {n_samples} frames of width {d_in} from {n_atoms} atoms, {k} per frame"
    )
    return X, atoms, codes
