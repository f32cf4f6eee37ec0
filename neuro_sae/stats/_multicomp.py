"""Multiple-comparison corrections (always named: no silent default method)."""

from __future__ import annotations

import numpy as np

from ..utils import check_array, check_option, fill_doc, verbose


@fill_doc
@verbose
def fdr_correction(pvals, *, method="bh", verbose=None):
    """False discovery rate adjusted p-values (Benjamini-Hochberg).

    Parameters
    ----------
    pvals : array-like, shape (...)
        Uncorrected p-values, any shape.
    method : str
        ``"bh"``: Benjamini-Hochberg 1995 (independent or positively dependent
        tests). The only method for now, named so that it is never implicit.
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
    order = np.argsort(flat)
    ranked = flat[order] * m / np.arange(1, m + 1)
    ranked = np.minimum.accumulate(ranked[::-1])[::-1]
    out = np.empty(m)
    out[order] = np.minimum(ranked, 1.0)
    return out.reshape(p.shape)
