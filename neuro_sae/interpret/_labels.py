"""Label search: F1 of "activation above a threshold" against a label."""

from __future__ import annotations

import numpy as np

from ..utils import check_int, check_option, fill_doc, logger, verbose


def _best_f1(score_at, y_count, thresholds):
    """Best F1 over thresholds; ``score_at(s)`` returns (tp, n_pred) per feature."""
    n_steps, n_feat = thresholds.shape
    best = np.full(n_feat, -1.0)
    best_s = np.zeros(n_feat, int)
    best_tp = np.zeros(n_feat)
    best_pred = np.zeros(n_feat)
    for s in range(n_steps):
        tp, n_pred = score_at(s)
        f1 = np.where(n_pred + y_count > 0, 2 * tp / np.maximum(n_pred + y_count, 1), 0.0)
        better = f1 > best + 1e-12
        best[better], best_s[better] = f1[better], s
        best_tp[better], best_pred[better] = tp[better], n_pred[better]
    thr = thresholds[best_s, np.arange(n_feat)]
    return best, thr, best_tp, best_pred


def _thresholds(max_act, n_steps):
    """Thresholds ``0, max/n, 2 max/n, ...`` per feature, shape (n_steps, n_features)."""
    return np.arange(n_steps)[:, None] / n_steps * max_act[None, :]


@fill_doc
@verbose
def label_search(codes, *, labels=None, level="clip", frame_labels=None, n_steps=10,
                 min_f1=0.5, top=None, verbose=None):
    """F1 of "activation above a threshold" against each label, for every feature.

    For every feature, the thresholds ``0, 0.1 m, 0.2 m, ..., 0.9 m`` (``m`` its
    largest activation, ``n_steps=10``: the paper's steps of 0.1) are tried; a
    clip (``level="clip"``: its largest activation) or a frame
    (``level="frame"``) is predicted to carry the label when the activation is
    above the threshold. The best F1 over thresholds is kept; F1 > ``min_f1``
    (0.5 in the paper) marks a hit.

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
    %(verbose)s

    Returns
    -------
    table : pandas.DataFrame
        Ranked per label (best F1 first): ``layer``, ``level``, ``label``,
        ``rank``, ``feature``, ``f1``, ``precision``, ``recall``,
        ``threshold``, ``n_positive`` (items with the label), ``hit``.
    """
    import pandas as pd

    check_option("level", level, ("clip", "frame"))
    n_steps = check_int(n_steps, "n_steps")
    if level == "clip":
        pooled = codes.pool("max")
        max_act = pooled.max(0)
        thresholds = _thresholds(max_act, n_steps)
        clip_labels = codes.clip_labels()
        if labels is None:
            labels = sorted(set().union(*clip_labels))
        y_all = {lab: np.array([lab in ls for ls in clip_labels]) for lab in labels}

        def scorer(y):
            yf = y.astype(np.float32)
            return lambda s: (yf @ (pooled > thresholds[s]), (pooled > thresholds[s]).sum(0))
    else:
        if frame_labels is None:
            raise ValueError(
                "level='frame' needs frame_labels= (a table clip_id, onset, offset, label; "
                "e.g. alignment_intervals(codes, tier='phones'))."
            )
        y_all = _frame_label_masks(codes, frame_labels, labels)
        labels = list(y_all)
        csr = codes.codes
        max_act = np.zeros(codes.n_features, np.float32)
        if csr.nnz:
            np.maximum.at(max_act, csr.indices, csr.data)
        thresholds = _thresholds(max_act, n_steps)
        rows = np.repeat(np.arange(csr.shape[0]), np.diff(csr.indptr))

        def scorer(y):
            y_nz = y[rows]

            def at(s):
                on = csr.data > thresholds[s][csr.indices]
                n_pred = np.bincount(csr.indices[on], minlength=codes.n_features)
                tp = np.bincount(csr.indices[on & y_nz], minlength=codes.n_features)
                return tp, n_pred
            return at
    out = []
    for lab in labels:
        y = y_all[lab]
        n_pos = int(y.sum())
        if n_pos == 0:
            continue
        f1, thr, tp, n_pred = _best_f1(scorer(y), n_pos, thresholds)
        f1 = np.maximum(f1, 0.0)
        order = np.argsort(-f1, kind="stable")
        if top is not None:
            order = order[: check_int(top, "top")]
        with np.errstate(invalid="ignore", divide="ignore"):
            prec = np.where(n_pred > 0, tp / np.maximum(n_pred, 1), 0.0)
        out.append(pd.DataFrame(dict(
            layer=codes.layer, level=level, label=lab, rank=np.arange(1, len(order) + 1),
            feature=codes.feature_ids[order], f1=f1[order], precision=prec[order],
            recall=tp[order] / n_pos, threshold=thr[order], n_positive=n_pos,
            hit=f1[order] > min_f1)))
    if not out:
        raise ValueError(f"none of the labels {list(labels)[:5]} occurs in these {level}s.")
    table = pd.concat(out, ignore_index=True)
    logger.info(f"Label search ({level} level): {int(table['hit'].sum())} hits with "
                f"F1 > {min_f1} over {len(out)} labels")
    return table


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
