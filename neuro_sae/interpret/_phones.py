"""Phones and words from alignments: frame labels, feature phones, phoneme accuracy."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..utils import check_fname, check_random_state, fill_doc, logger, verbose

# HTS label files count time in units of 100 ns
_HTS_UNIT = 1e-7
SILENCES = ("", "sil", "sp", "spn", "pau", "h#", "#", "<eps>", "SIL")


@fill_doc
@verbose
def read_alignment(fname, *, tier=None, verbose=None):
    """Read a time alignment: a Praat TextGrid (MFA's output) or an HTS ``.lab`` file.

    TextGrids are read with :mod:`praatio`. HTS label files hold one segment per
    line, ``start end label`` with times in units of 100 ns (full-context labels
    are reduced to their current phone, the part between ``-`` and ``+``).

    Parameters
    ----------
    fname : path-like
        The ``.TextGrid`` or ``.lab`` file.
    tier : str | None
        TextGrid tier to keep (``None``: every interval tier). HTS files have the
        one tier ``phones``.
    %(verbose)s

    Returns
    -------
    intervals : pandas.DataFrame
        ``tier``, ``onset``, ``offset`` (seconds) and ``label``, sorted by onset;
        pauses (blank labels) are left out.
    """
    import pandas as pd

    fname = check_fname(fname, "fname")
    suffix = fname.suffix.lower()
    if suffix == ".lab":
        rows = []
        for ii, line in enumerate(fname.read_text().splitlines(), 1):
            if not line.strip():
                continue
            parts = line.split()
            try:
                start, end = int(parts[0]), int(parts[1])
                label = parts[2]
            except (IndexError, ValueError):
                raise ValueError(
                    f"{fname}, line {ii}: {line!r} is not an HTS label line 'start end "
                    "label' (times in units of 100 ns); fix or regenerate the file."
                ) from None
            if "-" in label and "+" in label:  # full-context label: keep the current phone
                label = label.split("-", 1)[1].split("+", 1)[0]
            if end < start:
                raise ValueError(f"{fname}, line {ii}: the segment ends before it starts.")
            rows.append(("phones", start * _HTS_UNIT, end * _HTS_UNIT, label))
        out = pd.DataFrame(rows, columns=["tier", "onset", "offset", "label"])
    elif suffix == ".textgrid":
        from praatio import textgrid

        try:
            tg = textgrid.openTextgrid(str(fname), includeEmptyIntervals=False)
        except Exception as err:
            raise ValueError(f"{fname} is not a readable Praat TextGrid: {err}") from None
        names = list(tg.tierNames)
        if tier is not None and tier not in names:
            raise ValueError(
                f"tier {tier!r} is not in {fname}; its tiers are {names}."
            )
        rows = []
        for name in names if tier is None else [tier]:
            t = tg.getTier(name)
            if t.tierType != textgrid.IntervalTier.tierType:
                continue
            rows += [(name, float(e.start), float(e.end), str(e.label)) for e in t.entries]
        out = pd.DataFrame(rows, columns=["tier", "onset", "offset", "label"])
    else:
        raise ValueError(
            f"{fname} is neither a Praat TextGrid (.TextGrid) nor an HTS label file (.lab)."
        )
    if tier is not None and suffix == ".lab" and tier != "phones":
        raise ValueError(f"tier {tier!r} is not in {fname}; HTS label files hold 'phones'.")
    out = out[out["label"].str.strip() != ""]
    return out.sort_values(["tier", "onset"], kind="stable").reset_index(drop=True)


def frame_labels(intervals, times, *, silences=SILENCES):
    """The label of each frame: the interval that holds the frame's time.

    Parameters
    ----------
    intervals : pandas.DataFrame
        ``onset``, ``offset``, ``label`` of one tier (non-overlapping).
    times : array-like of float, shape (n_frames,)
        Frame times in seconds (e.g. :func:`neuro_sae.backbones.frame_times`).
    silences : sequence of str
        Labels that count as no label.

    Returns
    -------
    labels : ndarray of str, shape (n_frames,)
        ``""`` where no interval (or a silence) holds the frame.
    """
    times = np.asarray(times, float)
    out = np.full(len(times), "", dtype=object)
    iv = intervals.sort_values("onset")
    on, off = iv["onset"].to_numpy(float), iv["offset"].to_numpy(float)
    lab = iv["label"].astype(str).to_numpy()
    idx = np.searchsorted(on, times, side="right") - 1
    ok = (idx >= 0) & (times < off[np.clip(idx, 0, None)])
    out[ok] = lab[idx[ok]]
    out[np.isin(out, list(silences))] = ""
    return out.astype(str)


@fill_doc
@verbose
def alignment_intervals(codes, *, tier="phones", verbose=None):
    """Time-stamped labels of every clip with an alignment.

    Parameters
    ----------
    codes : ClipCodes
        Codes whose clips have an ``alignment`` column (TextGrid or .lab paths).
    tier : str
        The tier (``"phones"`` or ``"words"``).
    %(verbose)s

    Returns
    -------
    intervals : pandas.DataFrame
        ``clip_id``, ``onset``, ``offset``, ``label``.
    """
    import pandas as pd

    if "alignment" not in codes.clips:
        raise ValueError("the clips have no 'alignment' column (TextGrid paths).")
    parts = []
    for cid in codes.clip_ids:
        path = codes.path_of(cid, "alignment")
        if path is None:
            continue
        iv = read_alignment(path, tier=tier, verbose=False)
        parts.append(iv.drop(columns="tier").assign(clip_id=cid))
    if not parts:
        raise ValueError("none of the clips has an alignment.")
    out = pd.concat(parts, ignore_index=True)[["clip_id", "onset", "offset", "label"]]
    logger.info(f"Alignments of {len(parts)} clips: {len(out)} {tier} intervals")
    return out


def codes_frame_labels(codes, intervals, *, silences=SILENCES):
    """Label of every frame of ``codes`` from time-stamped labels (``""``: none).

    Parameters
    ----------
    codes : ClipCodes
        The codes.
    intervals : pandas.DataFrame
        ``clip_id``, ``onset``, ``offset``, ``label`` (:func:`alignment_intervals`).
    silences : sequence of str
        Labels that count as no label.

    Returns
    -------
    labels : ndarray of str, shape (n_frames,)
        The label of each frame.
    """
    times = codes.frames["time"].to_numpy(float)
    out = np.full(len(times), "", dtype=object)
    for cid, g in intervals.groupby("clip_id", sort=False):
        if str(cid) in codes._slices:
            sl = codes.clip_slice(cid)
            out[sl] = frame_labels(g, times[sl], silences=silences)
    return out.astype(str)


@fill_doc
@verbose
def feature_phones(codes, labels, *, min_share=0.5, frames=None, verbose=None):
    """Each feature's majority phone: the phone of more than half its active labelled frames.

    Parameters
    ----------
    codes : ClipCodes
        The codes.
    labels : ndarray of str, shape (n_frames,)
        Phone of each frame (:func:`codes_frame_labels`; ``""``: unaligned/pause).
    min_share : float
        Share of the active labelled frames the majority phone must exceed.
    frames : ndarray of bool | None
        Frames to learn from (``None``: all).
    %(verbose)s

    Returns
    -------
    table : pandas.DataFrame
        One row per feature: ``layer``, ``feature``, ``phone`` (None when no
        phone passes ``min_share``), ``share``, ``n_active`` (active labelled frames).
    """
    import pandas as pd
    import scipy.sparse as sp

    labels = np.asarray(labels).astype(str)
    use = labels != ""
    if frames is not None:
        use &= np.asarray(frames, bool)
    phones, code = np.unique(labels[use], return_inverse=True)
    rows_used = np.flatnonzero(use)
    active = (codes.codes[rows_used] > 0).astype(np.float32)
    onehot = sp.csr_array((np.ones(len(code), np.float32), (np.arange(len(code)), code)),
                          shape=(len(code), len(phones)))
    counts = (active.T @ onehot).toarray() if len(phones) else np.zeros((codes.n_features, 0))
    n_act = counts.sum(1)
    best = counts.argmax(1) if len(phones) else np.zeros(codes.n_features, int)
    share = np.where(n_act > 0, counts[np.arange(len(best)), best] / np.maximum(n_act, 1), 0.0) \
        if len(phones) else np.zeros(codes.n_features)
    names = phones[best] if len(phones) else np.full(codes.n_features, "")
    phone = [str(p) if s > min_share and p != "" else None for p, s in zip(names, share)]
    table = pd.DataFrame(dict(layer=codes.layer, feature=codes.feature_ids,
                              phone=pd.Series(phone, dtype=object), share=share,
                              n_active=n_act.astype(int)))
    logger.info(f"{int(table['phone'].notna().sum())} of {len(table)} features carry a phone")
    return table


@fill_doc
@verbose
def phoneme_accuracy(codes, labels, phones, *, frames=None, verbose=None):
    """The paper's phoneme accuracy: a frame is right when one of its active features carries its phone.

    Parameters
    ----------
    codes : ClipCodes
        The codes.
    labels : ndarray of str, shape (n_frames,)
        Phone of each frame (``""``: left out).
    phones : pandas.DataFrame | array-like of str
        The table of :func:`feature_phones`, or one phone (or None) per feature.
    frames : ndarray of bool | None
        Frames to score (``None``: every labelled frame).
    %(verbose)s

    Returns
    -------
    accuracy : float
        Fraction of the scored frames that are right (frames with no active
        labelled feature count as wrong).
    """
    labels = np.asarray(labels).astype(str)
    if hasattr(phones, "columns"):
        phones = phones["phone"].to_numpy()
    fphone = np.array(["" if p is None else str(p) for p in phones], dtype=object)
    use = labels != ""
    if frames is not None:
        use &= np.asarray(frames, bool)
    rows = np.flatnonzero(use)
    if not len(rows):
        raise ValueError("no labelled frame to score.")
    sub = codes.codes[rows]
    row_of = np.repeat(np.arange(len(rows)), np.diff(sub.indptr))
    ok = (sub.data > 0) & (fphone[sub.indices] == labels[rows][row_of])
    right = np.zeros(len(rows), bool)
    right[row_of[ok]] = True
    return float(right.mean())


@fill_doc
@verbose
def phoneme_baselines(codes, labels, *, activations=None, test_size=0.3, n_permutations=20,
                      max_train_frames=20000, random_state=None, verbose=None):
    """Phoneme accuracy next to a chance baseline and a linear probe on the raw activations.

    Clips are split into train and test sets (whole clips). Features get their
    phone from the train frames; the accuracy is reported on the test frames
    (``test``) and, as in the paper, on all frames with phones learnt from all
    frames (``in_sample``). The chance baseline permutes the phones among the
    labelled features (same number of labelled features, same phones). The probe
    is a multinomial logistic regression from the raw activations (standardised)
    to the frame's phone, trained on the train frames, scored on the test frames.

    Parameters
    ----------
    codes : ClipCodes
        The codes.
    labels : ndarray of str, shape (n_frames,)
        Phone of each frame.
    activations : dict | None
        ``clip_id -> ndarray (n_frames_i, d_model)`` raw activations of the
        same frames (:func:`encode_clips` with ``return_activations=True``);
        ``None``: no probe.
    test_size : float
        Fraction of the aligned clips held out.
    n_permutations : int
        Permutations of the chance baseline.
    max_train_frames : int
        Cap on the probe's training frames (a random subset).
    %(random_state)s
    %(verbose)s

    Returns
    -------
    result : dict
        ``in_sample``, ``test``, ``chance``, ``chance_sd``, ``probe`` (None
        without activations), ``majority`` (always guessing the commonest
        phone), ``n_features_labelled``, ``n_test_frames``, ``n_phones``.
    """
    rng = check_random_state(random_state)
    labels = np.asarray(labels).astype(str)
    clip_of = codes.frame_clip()
    aligned = np.unique(clip_of[labels != ""])
    if len(aligned) < 2:
        raise ValueError(f"phoneme baselines need at least 2 aligned clips, got {len(aligned)}.")
    n_test = min(max(1, int(round(test_size * len(aligned)))), len(aligned) - 1)
    test_clips = rng.choice(aligned, n_test, replace=False)
    test = np.isin(clip_of, test_clips) & (labels != "")
    train = ~np.isin(clip_of, test_clips) & (labels != "")
    table_all = feature_phones(codes, labels, verbose=False)
    table_tr = feature_phones(codes, labels, frames=train, verbose=False)
    acc_in = phoneme_accuracy(codes, labels, table_all, verbose=False)
    acc_test = phoneme_accuracy(codes, labels, table_tr, frames=test, verbose=False)
    ph = table_tr["phone"].to_numpy(object)
    lab_idx = np.flatnonzero(table_tr["phone"].notna().to_numpy())
    chance = []
    for _ in range(n_permutations):
        perm = ph.copy()
        perm[lab_idx] = ph[rng.permutation(lab_idx)]
        chance.append(phoneme_accuracy(codes, labels, perm, frames=test, verbose=False))
    vals, counts = np.unique(labels[train], return_counts=True)
    majority = float(np.mean(labels[test] == vals[counts.argmax()]))
    probe = None
    if activations is not None:
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        # the activations may cover only some clips (e.g. the aligned ones)
        rows, parts = [], []
        for c in codes.clip_ids:
            if c not in activations:
                continue
            sl = codes.clip_slice(c)
            a = np.asarray(activations[c], np.float32)
            if len(a) != sl.stop - sl.start:
                raise ValueError(
                    f"activations[{c!r}] holds {len(a)} frames but the codes {sl.stop - sl.start};"
                    " pass the activations returned with these codes by encode_clips."
                )
            rows.append(np.arange(sl.start, sl.stop))
            parts.append(a)
        if not parts:
            raise ValueError("activations holds none of the codes' clips.")
        rows = np.concatenate(rows)
        x = np.full((len(labels), parts[0].shape[1]), np.nan, np.float32)
        x[rows] = np.concatenate(parts)
        has = np.zeros(len(labels), bool)
        has[rows] = True
        tr = np.flatnonzero(train & has)
        if len(tr) > max_train_frames:
            tr = rng.choice(tr, max_train_frames, replace=False)
        clf = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=300))
        import warnings

        from sklearn.exceptions import ConvergenceWarning

        with warnings.catch_warnings():
            # a probe that stops at max_iter is still a (slightly weaker) baseline
            warnings.simplefilter("ignore", ConvergenceWarning)
            clf.fit(x[tr], labels[tr])
        te = test & has
        probe = float(clf.score(x[te], labels[te])) if te.any() else None
    out = dict(in_sample=acc_in, test=acc_test, chance=float(np.mean(chance)),
               chance_sd=float(np.std(chance)), probe=probe, majority=majority,
               n_features_labelled=int(len(lab_idx)), n_test_frames=int(test.sum()),
               n_phones=int(len(np.unique(labels[labels != ""]))))
    logger.info(
        f"Phoneme accuracy: in-sample {acc_in:.3f}, held-out {acc_test:.3f}, chance "
        f"{out['chance']:.3f}, probe {probe if probe is None else round(probe, 3)}"
    )
    return out


def write_hts_lab(intervals, fname):
    """Write phone intervals as an HTS label file (``start end label``, 100 ns units).

    Parameters
    ----------
    intervals : pandas.DataFrame
        ``onset``, ``offset`` (seconds) and ``label``.
    fname : path-like
        The ``.lab`` file (written atomically).
    """
    from ..io import atomic_path

    lines = [f"{int(round(on / _HTS_UNIT))} {int(round(off / _HTS_UNIT))} {lab}"
             for on, off, lab in intervals[["onset", "offset", "label"]].itertuples(index=False)]
    with atomic_path(Path(fname)) as tmp:
        tmp.write_text("\n".join(lines) + "\n")
