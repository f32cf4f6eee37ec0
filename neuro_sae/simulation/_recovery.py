"""Planted-truth recovery: which planted features a test found, missed or confused."""

from __future__ import annotations

import numpy as np

from ..utils import check_array, check_positive, fill_doc, logger, verbose


@fill_doc
@verbose
def feature_correlations(runs, *, sfreq, l_freq=None, h_freq=None, verbose=None):
    """Correlation of every feature with every other over the concatenated runs.

    Each run is band-passed like the EEG (zero-phase FIR of
    :func:`mne.filter.filter_data`) before the runs are concatenated, so two
    features count as alike when their EEG-band time courses are.

    Parameters
    ----------
    runs : list of array, shape (n_times, n_features)
        Feature time series of each run at ``sfreq`` (same features in every run).
    sfreq : float
        Their sampling rate in Hz.
    l_freq, h_freq : float | None
        Band-pass edges in Hz (``None``: no high-pass / low-pass).
    %(verbose)s

    Returns
    -------
    corr : ndarray, shape (n_features, n_features)
        Pearson correlations; a feature that is constant has correlation 0 with
        every feature (itself included).
    """
    import mne

    check_positive(sfreq, "sfreq")
    if not isinstance(runs, (list, tuple)) or not runs:
        raise ValueError(f"runs must be a non-empty list of arrays, got {type(runs).__name__}.")
    blocks = []
    for i, x in enumerate(runs):
        x = check_array(x, f"runs[{i}]", ndim=2, dtype=np.float64)
        if x.shape[1] != np.shape(runs[0])[1]:
            raise ValueError(
                f"runs[{i}] has {x.shape[1]} features but runs[0] has {np.shape(runs[0])[1]}; "
                "pass the same features in every run."
            )
        if l_freq is not None or h_freq is not None:
            x = mne.filter.filter_data(x.T, sfreq, l_freq, h_freq, verbose=False).T
        blocks.append(x)
    x = np.concatenate(blocks)
    x = x - x.mean(0)
    norms = np.linalg.norm(x, axis=0)
    constant = norms == 0
    norms[constant] = 1.0
    x = x / norms
    corr = x.T @ x
    logger.info(f"Correlations of {x.shape[1]} features over {x.shape[0]} samples")
    return corr


@fill_doc
@verbose
def score_recovery(planted, significant, corr, feature_ids, *, threshold=0.3, verbose=None):
    """Score a test's significant features against the planted ones.

    A significant feature that was not planted is *explained by a planted
    feature* when its absolute correlation with some planted feature reaches
    ``threshold`` (it carries the planted signal), otherwise it is a *false
    positive*.

    Parameters
    ----------
    planted : array-like of int
        Feature ids that drive the simulated EEG.
    significant : array-like of int
        Feature ids the test declared significant.
    corr : array, shape (n_features, n_features)
        Correlations between the tested features (:func:`feature_correlations`),
        in the order of ``feature_ids``.
    feature_ids : array-like of int, shape (n_features,)
        The feature id of each row of ``corr``.
    threshold : float
        Smallest absolute correlation with a planted feature that explains a
        non-planted significant feature.
    %(verbose)s

    Returns
    -------
    recovery : dict
        ``hits`` and ``misses`` (planted features found / not found),
        ``false_positives``, ``explained_by_planted`` (feature id as a string ->
        ``{"planted_feature", "r"}``, the planted feature of largest absolute
        correlation) and ``recovered_fraction`` (hits over planted).
    """
    feature_ids = [int(f) for f in np.asarray(feature_ids).ravel()]
    pos = {f: i for i, f in enumerate(feature_ids)}
    corr = check_array(corr, "corr", ndim=2, dtype=np.float64)
    if corr.shape != (len(pos), len(pos)):
        raise ValueError(
            f"corr has shape {corr.shape} but feature_ids has {len(pos)} entries; pass the "
            "correlations of exactly those features."
        )
    check_positive(threshold, "threshold", strict=False)
    planted = sorted({int(p) for p in np.asarray(planted).ravel()})
    significant = sorted({int(s) for s in np.asarray(significant).ravel()})
    unknown = sorted(f for f in planted + significant if f not in pos)
    if unknown:
        raise ValueError(
            f"Features {unknown} are not among the tested feature_ids ({len(pos)} features); "
            "planted and significant features must be tested features."
        )
    hits = sorted(set(planted) & set(significant))
    misses = sorted(set(planted) - set(significant))
    explained, false_pos = {}, []
    for f in sorted(set(significant) - set(planted)):
        rs = {p: float(corr[pos[f], pos[p]]) for p in planted}
        best = max(rs, key=lambda p: (abs(rs[p]), -p)) if rs else None
        if best is not None and abs(rs[best]) >= threshold:
            explained[str(f)] = dict(planted_feature=best, r=round(rs[best], 3))
        else:
            false_pos.append(f)
    logger.info(
        f"Recovered {len(hits)}/{len(planted)} planted features; {len(false_pos)} false "
        f"positive(s), {len(explained)} explained by a planted feature"
    )
    return dict(
        hits=hits,
        misses=misses,
        false_positives=false_pos,
        explained_by_planted=explained,
        recovered_fraction=len(hits) / max(len(planted), 1),
    )
