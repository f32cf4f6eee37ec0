"""Label search: F1 of "activation above a threshold" against a label, with a chance control."""

from __future__ import annotations

import numpy as np

from ..utils import check_int, check_option, check_random_state, fill_doc, logger, verbose


def _thresholds(min_act, max_act, n_steps):
    """Thresholds ``min + i (max - min) / n_steps``, i = 0 .. n_steps - 1, per feature.

    Shape (n_steps, n_features): the paper's steps of 0.1 of each feature's range
    (``n_steps=10``), from its minimum towards its maximum.
    """
    frac = np.arange(n_steps)[:, None] / n_steps
    return (min_act[None, :] + frac * (max_act - min_act)[None, :]).astype(np.float32)


def _f1(tp, n_pred, n_pos):
    den = n_pred + n_pos
    return np.where(den > 0, 2.0 * tp / np.maximum(den, 1), 0.0)


def _best_f1_dense(pooled, Y, thresholds):
    """Best F1 over thresholds of every feature for every labelling, vectorised.

    Parameters
    ----------
    pooled : ndarray, shape (n_items, n_features)
        Activations (one row per clip).
    Y : ndarray of bool, shape (n_labellings, n_items)
        Labellings (the observed one and its permutations).
    thresholds : ndarray, shape (n_steps, n_features)

    Returns
    -------
    best, thr, tp, n_pred : ndarray, shape (n_labellings, n_features)
    """
    n_lab = Y.shape[0]
    n_feat = pooled.shape[1]
    n_pos = Y.sum(1, dtype=np.float64)[:, None]
    Yf = Y.astype(np.float32)
    best = np.full((n_lab, n_feat), -1.0)
    best_s = np.zeros((n_lab, n_feat), int)
    best_tp = np.zeros((n_lab, n_feat))
    best_pred = np.zeros((n_lab, n_feat))
    for s in range(thresholds.shape[0]):
        on = pooled > thresholds[s]
        n_pred = on.sum(0, dtype=np.float64)[None, :]
        tp = (Yf @ on.astype(np.float32)).astype(np.float64)
        f1 = _f1(tp, n_pred, n_pos)
        better = f1 > best + 1e-12
        best = np.where(better, f1, best)
        best_s = np.where(better, s, best_s)
        best_tp = np.where(better, tp, best_tp)
        best_pred = np.where(better, np.broadcast_to(n_pred, better.shape), best_pred)
    thr = thresholds[best_s, np.arange(n_feat)[None, :]]
    return np.maximum(best, 0.0), thr, best_tp, best_pred


#: Bound on the entries of one block of stacked "above threshold" matrices (memory).
_BLOCK_ENTRIES = 1 << 24


def _null_max_f1(pooled, y, thresholds, n_permutations, rng, chunk=64):
    """Best F1 of every feature under ``n_permutations`` shuffles of the clip labels.

    One matrix product per block of features and chunk of permutations serves
    every threshold: the binary "above threshold" matrices of all steps are
    stacked side by side (blocks of features bound the memory).

    Returns ndarray, shape (n_permutations, n_features).
    """
    n_steps, n_feat = thresholds.shape
    n_items = pooled.shape[0]
    n_pos = float(y.sum())
    Y = np.stack([rng.permutation(y) for _ in range(n_permutations)]).astype(np.float32)
    out = np.empty((n_permutations, n_feat))
    block = max(1, _BLOCK_ENTRIES // max(n_items * n_steps, 1))
    for f0 in range(0, n_feat, block):
        f1_ = min(f0 + block, n_feat)
        on = np.concatenate([pooled[:, f0:f1_] > thresholds[s, f0:f1_] for s in range(n_steps)],
                            axis=1)
        n_pred = on.sum(0, dtype=np.float64)[None, :]
        on = on.astype(np.float32)
        for start in range(0, n_permutations, chunk):
            stop = min(start + chunk, n_permutations)
            f1 = _f1((Y[start:stop] @ on).astype(np.float64), n_pred, n_pos)
            out[start:stop, f0:f1_] = f1.reshape(stop - start, n_steps, f1_ - f0).max(1)
    return out


def _split_items(y, groups, rng):
    """Two halves of the items, stratified on ``y``; whole groups (clips) when given."""
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

    seed = int(rng.integers(2**31 - 1))
    if groups is None:
        n_min = int(min(y.sum(), (~y).sum()))
        if n_min < 2:
            return None
        cv = StratifiedKFold(n_splits=2, shuffle=True, random_state=seed)
        return next(cv.split(np.zeros(len(y)), y))
    cv = StratifiedGroupKFold(n_splits=2, shuffle=True, random_state=seed)
    try:
        a, b = next(cv.split(np.zeros(len(y)), y, groups))
    except ValueError:
        return None
    return (a, b) if y[a].any() and y[b].any() else None


@fill_doc
@verbose
def label_search(codes, *, labels=None, level="clip", frame_labels=None, n_steps=10,
                 min_f1=0.5, top=None, n_permutations=200, alpha=0.05, heldout=True,
                 random_state=0, verbose=None):
    """F1 of "activation above a threshold" against each label, for every feature.

    For every feature, the thresholds ``min + i (max - min) / n_steps``
    (``i = 0 .. n_steps - 1``; ``min`` and ``max`` the feature's smallest and
    largest activation over the clips, or frames; ``n_steps=10``: the paper's
    steps of 0.1 of the range) are tried; a clip (``level="clip"``: its largest
    activation) or a frame (``level="frame"``) is predicted to carry the label
    when the activation is above the threshold. The best F1 over thresholds is
    kept (in sample, as the paper); F1 > ``min_f1`` (0.5 in the paper) is
    ``hit_in_sample``.

    The best-threshold F1 of thousands of features is biased upwards: with five
    positive clips, one of 2,048 random features passes F1 > 0.5. Two chance
    controls are reported beside it:

    - a label-permutation null (``level="clip"``): the clip labels are
      shuffled ``n_permutations`` times and the best F1 of every feature is
      recomputed; ``p_feature`` is each feature's permutation p-value and
      ``p_fwe`` the family-wise one (against the maximum over features of
      each permutation). ``hit`` is ``f1 > min_f1`` and ``p_fwe <= alpha``;
    - ``f1_heldout``: the threshold is picked on one half of the clips
      (stratified on the label) and F1 is measured on the other half
      (``level="frame"``: halves of whole clips).

    Frame labels are autocorrelated in time, so shuffling them is no null:
    at frame level ``p_feature``/``p_fwe`` are NaN and ``hit`` is
    ``hit_in_sample``; read ``f1_heldout`` there.

    Parameters
    ----------
    codes : ClipCodes
        The SAE codes of labelled clips.
    labels : list of str | None
        Labels to search (``None``: every clip label, or every frame label with
        ``level="frame"``).
    level : str
        ``"clip"`` (labels of the clip index) or ``"frame"`` (time-stamped labels).
    frame_labels : pandas.DataFrame | None
        For ``level="frame"``: time-stamped labels, columns ``clip_id``,
        ``onset``, ``offset`` (seconds from the clip start) and ``label``
        (e.g. :func:`alignment_intervals`); a frame carries a label when its
        time lies in ``[onset, offset)``.
    n_steps : int
        Number of thresholds over each feature's range.
    min_f1 : float
        F1 above which a feature is a hit.
    top : int | None
        Keep only the ``top`` best features per label (``None``: all).
    n_permutations : int
        Label permutations of the null (``level="clip"``; 0: none, then
        ``hit`` is ``hit_in_sample``). The smallest p-value is
        ``1 / (n_permutations + 1)``.
    alpha : float
        Family-wise level of ``hit``.
    heldout : bool
        Also compute ``f1_heldout`` (threshold on one half, F1 on the other).
    %(random_state)s
    %(verbose)s

    Returns
    -------
    table : pandas.DataFrame
        Ranked per label (best in-sample F1 first): ``layer``, ``level``,
        ``label``, ``rank``, ``feature``, ``f1``, ``precision``, ``recall``,
        ``threshold``, ``n_positive`` (items with the label), ``n_items``,
        ``p_feature``, ``p_fwe``, ``f1_null_max`` (95th percentile over
        permutations of the best F1 of any feature: the F1 a label reaches by
        chance), ``f1_heldout``, ``hit_in_sample`` and ``hit``.
    """
    import pandas as pd

    check_option("level", level, ("clip", "frame"))
    n_steps = check_int(n_steps, "n_steps")
    n_permutations = check_int(n_permutations, "n_permutations", min_value=0)
    if not 0 < float(alpha) < 1:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha!r}; e.g. alpha=0.05.")
    rng = check_random_state(random_state)
    if level == "clip":
        pooled = codes.pool("max")
        thresholds = _thresholds(pooled.min(0), pooled.max(0), n_steps)
        clip_labels = codes.clip_labels()
        if labels is None:
            labels = sorted(set().union(*clip_labels))
        y_all = {lab: np.array([lab in ls for ls in clip_labels]) for lab in labels}
        n_items = len(pooled)
        item_group = None
    else:
        if frame_labels is None:
            raise ValueError(
                "level='frame' needs frame_labels= (a table clip_id, onset, offset, label; "
                "e.g. alignment_intervals(codes, tier='phones'))."
            )
        y_all = _frame_label_masks(codes, frame_labels, labels)
        labels = list(y_all)
        csr = codes.codes
        n_items = csr.shape[0]
        item_group = codes.frame_clip()
        max_act = np.zeros(codes.n_features, np.float32)
        if csr.nnz:
            np.maximum.at(max_act, csr.indices, csr.data)
        # a feature inactive in some frame has minimum 0 (sparse codes are >= 0)
        n_on = np.bincount(csr.indices, minlength=codes.n_features)
        min_act = np.zeros(codes.n_features, np.float32)
        full = n_on == n_items
        if full.any():
            dense_min = np.full(codes.n_features, np.inf, np.float32)
            np.minimum.at(dense_min, csr.indices, csr.data)
            min_act[full] = dense_min[full]
        thresholds = _thresholds(min_act, max_act, n_steps)
    out = []
    for lab in labels:
        y = np.asarray(y_all[lab], bool)
        n_pos = int(y.sum())
        if n_pos == 0:
            continue
        if level == "clip":
            f1, thr, tp, n_pred = (a[0] for a in _best_f1_dense(pooled, y[None, :], thresholds))
        else:
            f1, thr, tp, n_pred = _best_f1_sparse(csr, y, thresholds)
        p_feat = np.full(len(f1), np.nan)
        p_fwe = np.full(len(f1), np.nan)
        null95 = np.nan
        if level == "clip" and n_permutations and n_pos < n_items:
            null = _null_max_f1(pooled, y, thresholds, n_permutations, rng)
            p_feat = (1 + (null >= f1[None, :] - 1e-12).sum(0)) / (n_permutations + 1)
            nmax = null.max(1)
            p_fwe = (1 + (nmax[:, None] >= f1[None, :] - 1e-12).sum(0)) / (n_permutations + 1)
            null95 = float(np.quantile(nmax, 0.95))
        f1_ho = np.full(len(f1), np.nan)
        if heldout:
            f1_ho = _heldout_f1(pooled if level == "clip" else csr, y, thresholds, item_group,
                                rng)
        order = np.argsort(-f1, kind="stable")
        if top is not None:
            order = order[: check_int(top, "top")]
        with np.errstate(invalid="ignore", divide="ignore"):
            prec = np.where(n_pred > 0, tp / np.maximum(n_pred, 1), 0.0)
        hit_is = f1[order] > min_f1
        controlled = level == "clip" and n_permutations > 0
        out.append(pd.DataFrame(dict(
            layer=codes.layer, level=level, label=lab, rank=np.arange(1, len(order) + 1),
            feature=codes.feature_ids[order], f1=f1[order], precision=prec[order],
            recall=tp[order] / n_pos, threshold=thr[order], n_positive=n_pos,
            n_items=n_items, p_feature=p_feat[order], p_fwe=p_fwe[order],
            f1_null_max=null95, f1_heldout=f1_ho[order], hit_in_sample=hit_is,
            hit=hit_is & (p_fwe[order] <= alpha) if controlled else hit_is)))
    if not out:
        raise ValueError(f"none of the labels {list(labels)[:5]} occurs in these {level}s.")
    table = pd.concat(out, ignore_index=True)
    logger.info(f"Label search ({level} level): {int(table['hit'].sum())} hits "
                f"({int(table['hit_in_sample'].sum())} in sample) with F1 > {min_f1} over "
                f"{len(out)} labels")
    return table


def _best_f1_sparse(csr, y, thresholds, rows_sel=None):
    """Best F1 over thresholds at frame level (sparse codes, >= 0); y over frames."""
    n_feat = csr.shape[1]
    rows = np.repeat(np.arange(csr.shape[0]), np.diff(csr.indptr))
    keep = np.ones(len(rows), bool) if rows_sel is None else rows_sel[rows]
    n_items = csr.shape[0] if rows_sel is None else int(rows_sel.sum())
    y_nz = y[rows] & keep
    n_pos = float(y.sum() if rows_sel is None else (y & rows_sel).sum())
    best = np.full(n_feat, -1.0)
    best_s = np.zeros(n_feat, int)
    best_tp = np.zeros(n_feat)
    best_pred = np.zeros(n_feat)
    # frames where a feature is 0 are "on" only when the threshold is below 0: never,
    # except for features active everywhere (threshold at their minimum > 0)
    for s in range(thresholds.shape[0]):
        on = (csr.data > thresholds[s][csr.indices]) & keep
        n_pred = np.bincount(csr.indices[on], minlength=n_feat).astype(float)
        tp = np.bincount(csr.indices[on & y_nz], minlength=n_feat).astype(float)
        neg = thresholds[s] < 0  # never for codes >= 0; kept for completeness
        if neg.any():
            n_pred[neg] = n_items
            tp[neg] = n_pos
        f1 = _f1(tp, n_pred, n_pos)
        better = f1 > best + 1e-12
        best[better], best_s[better] = f1[better], s
        best_tp[better], best_pred[better] = tp[better], n_pred[better]
    thr = thresholds[best_s, np.arange(n_feat)]
    return np.maximum(best, 0.0), thr, best_tp, best_pred


def _heldout_f1(x, y, thresholds, item_group, rng):
    """F1 on one half of the items at the threshold that is best on the other half."""
    if item_group is None:
        halves = _split_items(y, None, rng)
    else:
        halves = _split_items(y, item_group, rng)
    if halves is None:
        return np.full(thresholds.shape[1], np.nan)
    a, b = halves
    if item_group is None:
        _, thr, _, _ = (v[0] for v in _best_f1_dense(x[a], y[a][None, :], thresholds))
        on = x[b] > thr[None, :]
        tp = y[b].astype(np.float32) @ on.astype(np.float32)
        return _f1(tp.astype(float), on.sum(0).astype(float), float(y[b].sum()))
    mask_a = np.zeros(len(y), bool)
    mask_a[a] = True
    _, thr, _, _ = _best_f1_sparse(x, y, thresholds, rows_sel=mask_a)
    f1, _, _, _ = _best_f1_sparse(x, y, thr[None, :], rows_sel=~mask_a)
    return f1
def _frame_label_masks(codes, frame_labels, labels=None):
    """``label -> bool mask over frames`` from time-stamped labels."""
    need = {"clip_id", "onset", "offset", "label"}
    if not need <= set(frame_labels):
        raise ValueError(
            f"frame_labels lacks the column(s) {sorted(need - set(frame_labels))}; it needs "
            "clip_id, onset, offset, label."
        )
    times = codes.frames["time"].to_numpy(float)
    fl = frame_labels[frame_labels["label"].astype(str) != ""]
    if labels is not None:
        fl = fl[fl["label"].isin(list(labels))]
    masks = {}
    for (cid, lab), g in fl.groupby(["clip_id", "label"], sort=True):
        if str(cid) not in codes._slices:
            continue
        sl = codes.clip_slice(cid)
        t = times[sl]
        hit = np.zeros(len(t), bool)
        for on, off in zip(g["onset"].to_numpy(float), g["offset"].to_numpy(float)):
            hit |= (t >= on) & (t < off)
        if str(lab) not in masks:
            masks[str(lab)] = np.zeros(len(times), bool)
        masks[str(lab)][sl] |= hit
    return masks
