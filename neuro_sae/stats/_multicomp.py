"""Multiple-comparison corrections (always named: no silent default method)."""

from __future__ import annotations

import numpy as np

from ..utils import check_array, check_option, fill_doc, verbose, warn


@fill_doc
@verbose
def fdr_correction(pvals, *, method="bh", n_permutations=None, q=0.05, verbose=None):
    """False discovery rate adjusted p-values (Benjamini-Hochberg).

    Parameters
    ----------
    pvals : array-like, shape (...)
        Uncorrected p-values, any shape.
    method : str
        ``"bh"``: Benjamini-Hochberg 1995 (independent or positively dependent
        tests). The only method for now, named so that it is never implicit.
    n_permutations : int | None
        When the p-values come from ``n_permutations`` permutations (smallest
        attainable value ``1 / (n_permutations + 1)``), a warning says when tests
        at that floor cannot be rejected at level ``q`` and how many permutations
        it would take.
    q : float
        The FDR level of that check.
    %(verbose)s

    Returns
    -------
    p_adjusted : ndarray, shape (...)
        Adjusted p-values (``p_adjusted <= q`` rejects at FDR ``q``); equal to
        ``statsmodels.stats.multitest.multipletests(p, method="fdr_bh")[1]``.
    """
    check_option("method", method, ("bh",))
    p = check_array(pvals, "pvals")
    flat = p.ravel()
    if np.any((flat < 0) | (flat > 1)):
        raise ValueError("pvals must lie in [0, 1]; got values outside that range.")
    m = flat.size
    if m == 0:
        return p.copy()
    if n_permutations is not None:
        msg = _fdr_floor_message(flat, int(n_permutations), float(q))
        if msg:
            warn(msg + '; use more permutations or tail="gpd" in sweep_permutation_test.')
    order = np.argsort(flat)
    ranked = flat[order] * m / np.arange(1, m + 1)
    ranked = np.minimum.accumulate(ranked[::-1])[::-1]
    out = np.empty(m)
    out[order] = np.minimum(ranked, 1.0)
    return out.reshape(p.shape)


def _fdr_floor_message(p, n_permutations, q):
    """Why BH cannot reject tests at the permutation floor (``""`` when it can)."""
    floor = 1.0 / (n_permutations + 1)
    m = np.size(p)
    n_floor = int(np.sum(np.asarray(p) <= floor * (1 + 1e-9)))
    if n_floor == 0 or floor <= n_floor * q / m or floor > q:  # floor > q: warned already
        return ""
    need = int(np.ceil(m / (n_floor * q))) - 1
    return (
        f"{n_floor} of {m} tests have the smallest attainable p-value "
        f"1/({n_permutations} + 1) = {floor:.3g}, above the Benjamini-Hochberg threshold "
        f"{n_floor} * {q:g} / {m} = {n_floor * q / m:.3g}: FDR cannot reject them with "
        f"{n_permutations} permutations; it would need at least {need} permutations"
    )


def _check_n_permutations(n_permutations, alpha, what="n_permutations"):
    """Warn when ``1 / (n_permutations + 1)``, the smallest p-value, exceeds alpha."""
    alpha = float(alpha)
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha!r}; e.g. alpha=0.05.")
    if n_permutations < 0:
        raise ValueError(f"{what} must be >= 0, got {n_permutations}.")
    p_min = 1.0 / (n_permutations + 1)
    if p_min > alpha:
        need = int(np.ceil(1.0 / alpha)) - 1
        warn(
            f"{what}={n_permutations} is too small for alpha={alpha:g}: the smallest "
            f"attainable p-value is 1/({n_permutations} + 1) = {p_min:.3g} > {alpha:g}, so "
            f"nothing can be significant; use at least {need} permutations (1000 or more "
            "for stable family-wise p-values).",
        )
    return p_min


@fill_doc
@verbose
def max_t_across(results, *, verbose=None):
    """Family-wise p-values over several families at once (e.g. layers): max-T.

    Each result keeps its per-permutation maxima; when the results used the same
    permutations (same runs and ``random_state``, so identical ``shifts``), the
    maximum over results of each permutation's maximum controls the family-wise error
    over all their tests together (features x channels x layers).

    Parameters
    ----------
    results : list of PermutationResult
        Results of :func:`sweep_permutation_test` with identical ``shifts``.
    %(verbose)s

    Returns
    -------
    p_fwe : list of ndarray, shape (n_features_i, n_channels)
        ``(1 + #{max over results of max_null >= r}) / (1 + n_permutations)`` per
        result.
    max_null : ndarray, shape (n_permutations,)
        The joint per-permutation maxima.
    """
    if len(results) == 0:
        raise ValueError("results is empty; pass the PermutationResult of each layer.")
    ref = results[0]
    for ii, res in enumerate(results[1:], 1):
        if res.shifts.shape != ref.shifts.shape or not np.array_equal(res.shifts, ref.shifts):
            raise ValueError(
                f"results[{ii}] used other permutations than results[0]; the joint max-T "
                "needs the same shifts: run every layer on the same runs with the same "
                "integer random_state and n_permutations."
            )
    joint = np.max(np.stack([res.max_null for res in results]), axis=0)
    n = len(joint)
    p = [(1 + np.sum(joint[:, None, None] >= res.r, axis=0)) / (1 + n) for res in results]
    return p, joint
