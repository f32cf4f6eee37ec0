"""Fisher-score ranking, top-k probing, unlearning and concept erasure.

The paper's protocol (default, ``target="reconstruction"``): features are ranked
by Fisher score on the training clips only; probing keeps only the top-k
features in the SAE reconstruction ``x_hat = W_dec f_masked + b_dec``,
unlearning masks them; the reconstructed activations are max-pooled over the
frames of each clip and classified by an unpenalised logistic regression.
``target="codes"`` classifies the max-pooled codes themselves (an earlier
default of this package).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

from ..utils import check_int, check_option, check_random_state, fill_doc, logger, verbose

TARGETS = ("reconstruction", "codes")


def fisher_scores(x, y):
    """Fisher score of every feature for a class labelling.

    ``F_j = sum_c n_c (mu_cj - mu_j)^2 / sum_c n_c var_cj``: between-class over
    within-class variance. A feature constant within classes but not across them
    scores ``inf``; a constant feature scores 0.

    Parameters
    ----------
    x : array-like, shape (n_samples, n_features)
        Features (e.g. SAE codes max-pooled per clip).
    y : array-like, shape (n_samples,)
        Class labels.

    Returns
    -------
    scores : ndarray, shape (n_features,)
        The Fisher scores.
    """
    x = np.asarray(x, float)
    y = np.asarray(y)
    if x.ndim != 2 or len(x) != len(y):
        raise ValueError(f"x must be (n_samples, n_features) with one label per row; got "
                         f"x {x.shape} and y {y.shape}.")
    mu = x.mean(0)
    between = np.zeros(x.shape[1])
    within = np.zeros(x.shape[1])
    for c in np.unique(y):
        xc = x[y == c]
        between += len(xc) * (xc.mean(0) - mu) ** 2
        within += len(xc) * xc.var(0)
    tiny = 1e-12 * max(float(np.max(between)), 1e-300)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(within > tiny, between / np.maximum(within, 1e-300),
                        np.where(between > tiny, np.inf, 0.0))


def _classifier(C, max_iter):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    # C=None: no penalty (the paper's); sklearn >= 1.8 spells it C=inf
    c = np.inf if C is None else float(C)
    return make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=max_iter))


def _fit_predict(x_tr, y_tr, x_te, C, max_iter):
    from sklearn.exceptions import ConvergenceWarning

    if x_tr.shape[1] == 0 or np.all(x_tr.std(0) == 0):
        classes, counts = np.unique(y_tr, return_counts=True)
        return np.full(len(x_te), classes[counts.argmax()])
    clf = _classifier(C, max_iter)
    with warnings.catch_warnings():
        # separable data never converge without a penalty; the fit is still usable
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        clf.fit(x_tr, y_tr)
    return clf.predict(x_te)


def _split(y, test_size, rng, groups=None):
    """Train/test clips: stratified; with ``groups``, no group on both sides."""
    from sklearn.model_selection import StratifiedGroupKFold, train_test_split

    idx = np.arange(len(y))
    seed = int(rng.integers(2**31 - 1))
    if groups is None:
        return train_test_split(idx, test_size=test_size, stratify=y, random_state=seed)
    groups = np.asarray(groups)
    if len(groups) != len(y):
        raise ValueError(f"groups must hold one group per clip: got {len(groups)} groups for "
                         f"{len(y)} clips.")
    n_groups = len(np.unique(groups))
    # test_size as whole folds of a StratifiedGroupKFold: 2/7 -> 2 of 7 folds (5:2)
    n_splits = int(min(n_groups, max(2, round(2 / test_size))))
    n_test = int(min(n_splits - 1, max(1, round(test_size * n_splits))))
    if n_groups < 2:
        raise ValueError(f"groups holds {n_groups} group; a grouped split needs at least 2 "
                         "(e.g. 2 speakers), or pass groups=None.")
    cv = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    with warnings.catch_warnings():
        # fewer members of a class than folds: sklearn warns, the split is still grouped
        warnings.simplefilter("ignore", UserWarning)
        folds = [te for _, te in cv.split(idx, y, groups)]
    te = np.sort(np.concatenate(folds[:n_test]))
    tr = np.setdiff1d(idx, te)
    return tr, te


def _mcc_per_class(y_true, y_pred, classes):
    from sklearn.metrics import matthews_corrcoef

    return {c: float(matthews_corrcoef(y_true == c, y_pred == c)) for c in classes}


class _Design:
    """Per-clip inputs of the classifier for any selection of features."""

    def __init__(self, x, y, target, decoder, lengths):
        check_option("target", target, TARGETS)
        y = np.asarray(y)
        self.target = target
        frames, bounds = None, None
        if hasattr(x, "codes") and hasattr(x, "clip_slice"):  # ClipCodes
            frames = x.codes
            bounds = np.r_[0, np.cumsum([sl.stop - sl.start for sl in x._slices.values()])]
        elif lengths is not None:
            import scipy.sparse as sp

            frames = sp.csr_array(x, dtype=np.float32)
            lengths = np.asarray(lengths, int)
            if lengths.min(initial=1) < 1 or lengths.sum() != frames.shape[0]:
                raise ValueError(f"lengths must be positive clip lengths summing to the "
                                 f"{frames.shape[0]} frames of x, got a sum of "
                                 f"{lengths.sum()}.")
            bounds = np.r_[0, np.cumsum(lengths)]
        if frames is None:
            if target == "reconstruction":
                raise ValueError(
                    "target='reconstruction' needs the codes of every frame: pass x as "
                    "ClipCodes (or frame codes with lengths=) and decoder= (the SAE), or "
                    "target='codes' to classify max-pooled codes."
                )
            self.pooled = np.asarray(x, float)
        else:
            import scipy.sparse as sp

            frames = sp.csr_array(frames, dtype=np.float32)
            self.frames, self.starts = frames, bounds[:-1]
            self.pooled = self._maxpool_sparse(frames, bounds)
        if self.pooled.ndim != 2 or len(self.pooled) != len(y):
            raise ValueError(f"x must hold one row (or clip) per label; got {len(self.pooled)} "
                             f"clips and y {y.shape}.")
        if len(np.unique(y)) < 2:
            raise ValueError(f"y needs at least 2 classes, got {np.unique(y).tolist()}.")
        self.y = y
        self.n_features = self.pooled.shape[1]
        if target == "reconstruction":
            if decoder is None:
                raise ValueError(
                    "target='reconstruction' needs decoder= (the SAE, or a tuple "
                    "(W_dec (d_sae, d_in), b_dec (d_in,))); or pass target='codes'."
                )
            self.W_dec, self.b_dec = _decoder_arrays(decoder, self.n_features)

    @staticmethod
    def _maxpool_sparse(frames, bounds):
        coo = frames.tocoo()
        clip = np.searchsorted(bounds, coo.row, side="right") - 1
        out = np.zeros((len(bounds) - 1, frames.shape[1]))
        np.maximum.at(out, (clip, coo.col), coo.data)
        return out

    def inputs(self, keep):
        """Classifier inputs of every clip with only the features in ``keep`` (bool mask)."""
        if self.target == "codes":
            return self.pooled[:, keep]
        # from the kept features only (subtracting the removed ones from the full
        # reconstruction leaves rounding residue that an unpenalised fit can read)
        cols = np.flatnonzero(keep)
        x_hat = np.asarray(self.frames[:, cols] @ self.W_dec[cols]) + self.b_dec
        return np.maximum.reduceat(x_hat, self.starts, axis=0)


def _decoder_arrays(decoder, n_features):
    if isinstance(decoder, (tuple, list)) and len(decoder) == 2:
        W, b = decoder
    else:
        W, b = getattr(decoder, "W_dec", None), getattr(decoder, "b_dec", None)
        if W is None:
            raise ValueError(f"decoder must be an SAE (with W_dec, b_dec) or a tuple "
                             f"(W_dec, b_dec), got {type(decoder).__name__}.")
    try:
        import torch

        if isinstance(W, torch.Tensor):
            W, b = W.detach().cpu().numpy(), b.detach().cpu().numpy()
    except ImportError:  # pragma: no cover
        pass
    W, b = np.asarray(W, np.float32), np.asarray(b, np.float32).ravel()
    if W.ndim != 2 or W.shape[0] != n_features or b.shape != (W.shape[1],):
        raise ValueError(f"decoder must give W_dec of shape (d_sae={n_features}, d_in) and "
                         f"b_dec (d_in,), got {W.shape} and {b.shape}.")
    return W, b


@fill_doc
@verbose
def probe_curve(x, y, *, ks=None, kind="probe", target="reconstruction", decoder=None,
                lengths=None, groups=None, n_random=5, test_size=0.3, C=None, max_iter=500,
                random_state=None, verbose=None):
    """Top-k probing or unlearning against random selections of the same size.

    Features are ranked by Fisher score (of the max-pooled codes) on the
    training clips only. ``kind="probe"`` keeps only the top-k features,
    ``kind="unlearn"`` all but the top-k (the paper's Fig. 3/13). With
    ``target="reconstruction"`` (the paper's) the classifier reads the SAE
    reconstruction ``W_dec f_masked + b_dec`` of every frame, max-pooled per
    clip; with ``target="codes"`` the max-pooled codes of the kept features.
    Each point is compared with ``n_random`` random selections of ``k``
    features.

    Parameters
    ----------
    x : ClipCodes | array-like
        The SAE codes: :class:`ClipCodes` (frames of each clip), frame codes
        ``(n_frames, d_sae)`` with ``lengths=``, or (``target="codes"`` only)
        pooled codes ``(n_clips, n_features)``.
    y : array-like, shape (n_clips,)
        Class of each clip.
    ks : sequence of int | None
        Values of k (``None``: about 12 values from 1 to all, log-spaced).
    kind : str
        ``"probe"`` or ``"unlearn"``.
    target : str
        ``"reconstruction"`` (the paper's) or ``"codes"``.
    decoder : SparseAutoencoder | tuple | None
        The SAE, or ``(W_dec (d_sae, d_in), b_dec (d_in,))``; needed by
        ``target="reconstruction"``.
    lengths : sequence of int | None
        Frames per clip when ``x`` is an array of frame codes.
    groups : array-like | None
        Group of each clip (e.g. its speaker): no group is on both sides of
        the split (:class:`~sklearn.model_selection.StratifiedGroupKFold`).
    n_random : int
        Random selections per k.
    test_size : float
        Held-out fraction (stratified; with ``groups`` rounded to whole folds).
    C : float | None
        ``None``: unpenalised logistic regression (the paper's); a float: the
        inverse L2 strength on standardised inputs (``C=1.0``: sklearn's default).
    max_iter : int
        Iterations of the solver.
    %(random_state)s
    %(verbose)s

    Returns
    -------
    curve : pandas.DataFrame
        ``kind``, ``target``, ``k``, ``selection`` (``fisher`` | ``random``),
        ``repeat``, ``accuracy`` and ``mcc`` (multi-class Matthews correlation),
        all on the held-out clips.
    """
    import pandas as pd
    from sklearn.metrics import accuracy_score, matthews_corrcoef

    check_option("kind", kind, ("probe", "unlearn"))
    design = _Design(x, y, target, decoder, lengths)
    y = design.y
    rng = check_random_state(random_state)
    n_feat = design.n_features
    if ks is None:
        ks = np.unique(np.round(np.geomspace(1, n_feat, 12)).astype(int))
    ks = [check_int(int(k), "ks", min_value=0) for k in ks]
    if max(ks) > n_feat:
        raise ValueError(f"ks holds {max(ks)} but there are only {n_feat} features.")
    tr, te = _split(y, test_size, rng, groups)
    # ranking on the training clips only: a ranking on all clips leaks the test labels
    order = np.argsort(-fisher_scores(design.pooled[tr], y[tr]), kind="stable")
    rows = []
    for k in ks:
        sels = [("fisher", 0, order[:k])]
        sels += [("random", r, rng.choice(n_feat, k, replace=False)) for r in range(n_random)]
        for name, rep, sel in sels:
            keep = np.zeros(n_feat, bool)
            keep[sel] = True
            if kind == "unlearn":
                keep = ~keep
            xx = design.inputs(keep)
            pred = _fit_predict(xx[tr], y[tr], xx[te], C, max_iter)
            rows.append(dict(kind=kind, target=target, k=k, selection=name, repeat=rep,
                             accuracy=accuracy_score(y[te], pred),
                             mcc=matthews_corrcoef(y[te], pred)))
    logger.info(f"{kind} curve ({target}) over {len(ks)} values of k")
    return pd.DataFrame(rows)


@dataclass
class ErasureResult:
    """Result of :func:`concept_erasure`.

    Attributes
    ----------
    curve : pandas.DataFrame
        ``n_removed``, ``fraction`` (of all ``n_features``, i.e. d_sae),
        ``class``, ``mcc`` (one-vs-rest Matthews correlation of each class,
        classifier retrained after each removal).
    target : object
        The erased class.
    n_features : int
        Number of features (d_sae: the denominator of the fractions).
    erased_at : int | None
        Fewest removed features from which on the target's MCC stays at most
        ``erased_mcc`` (None: never).
    others_at : int | None
        Fewest removed features at which some other class that started at or
        above ``keep_mcc`` drops below it (None: never, or no such class; see
        ``others_start_below``).
    erased_mcc, keep_mcc : float
        The two criteria.
    order : ndarray of int
        Removal order (feature columns, highest target Fisher score first).
    others_start_below : list
        Other classes whose MCC is below ``keep_mcc`` before any removal: they
        cannot "drop below" it and are left out of ``others_at``. When every
        other class is here, ``others_at`` is None and
        ``others_never_above`` is True.
    target_mode : str
        ``"reconstruction"`` or ``"codes"``.
    """

    curve: object
    target: object
    n_features: int
    erased_at: int | None
    others_at: int | None
    erased_mcc: float
    keep_mcc: float
    order: np.ndarray
    others_start_below: list = field(default_factory=list)
    target_mode: str = "reconstruction"

    @property
    def others_never_above(self):
        """True when no other class starts at or above ``keep_mcc`` (bool)."""
        classes = set(self.curve["class"]) - {self.target} if len(self.curve) else set()
        return bool(classes) and set(self.others_start_below) >= classes

    @property
    def erased_fraction(self):
        """``erased_at / n_features`` (None when never erased)."""
        return None if self.erased_at is None else self.erased_at / self.n_features

    @property
    def others_fraction(self):
        """``others_at / n_features`` (None when the others never drop)."""
        return None if self.others_at is None else self.others_at / self.n_features

    def __repr__(self):
        def pct(v):
            return "never" if v is None else f"{100 * v:.1f}%"

        others = ("no other class starts above MCC " f"{self.keep_mcc}" if self.others_never_above
                  else f"others below MCC {self.keep_mcc} after {pct(self.others_fraction)}")
        return (f"<ErasureResult | target {self.target!r}: erased after {pct(self.erased_fraction)}"
                f" of {self.n_features} features; {others}>")


def _others_at(curve, target, keep_mcc):
    """First count where an other class that started >= keep_mcc drops below it."""
    oth = curve[curve["class"] != target]
    start = oth[oth["n_removed"] == oth["n_removed"].min()].set_index("class")["mcc"]
    below = sorted(c for c, m in start.items() if m < keep_mcc)
    live = oth[~oth["class"].isin(below)]
    if not len(live):
        return None, below
    mins = live.groupby("n_removed")["mcc"].min()
    hit = mins.index[mins.to_numpy() < keep_mcc]
    return (int(hit[0]) if len(hit) else None), below


@fill_doc
@verbose
def concept_erasure(x, y, target, *, steps=None, erased_mcc=0.2, keep_mcc=0.75,
                    test_size=2 / 7, target_mode="reconstruction", decoder=None, lengths=None,
                    groups=None, C=None, max_iter=500, random_state=None, verbose=None):
    """Erase one class by removing features in Fisher-score order, retraining each time.

    Features are ranked by their Fisher score for ``target`` against the rest
    (on the training clips only); after each removal the classifier is
    retrained on what remains and every class's one-vs-rest MCC is measured on
    the held-out clips (the paper: 5:2 split, vowel A of AVLetters2 erased after
    19 percent of the features, the other vowels below MCC 0.75 after 27
    percent). Fractions are of all ``d_sae`` features (dead ones included).

    Parameters
    ----------
    x : ClipCodes | array-like
        The SAE codes: :class:`ClipCodes`, frame codes with ``lengths=``, or
        (``target_mode="codes"`` only) pooled codes ``(n_clips, n_features)``.
    y : array-like, shape (n_clips,)
        Class of each clip.
    target : object
        The class to erase (one of ``y``).
    steps : int | sequence of int | None
        Numbers of removed features to evaluate: a sequence of counts, or an
        int for that many evenly spaced counts from 0 to all (``None``: every
        count when there are at most 200 features, else 100 counts).
    erased_mcc : float
        The target counts as erased once its MCC is at most this.
    keep_mcc : float
        MCC the other classes must stay above.
    test_size : float
        Held-out fraction (2/7: the paper's 5:2 split).
    target_mode : str
        ``"reconstruction"`` (the paper's: classify the max-pooled SAE
        reconstruction from the remaining features) or ``"codes"`` (the
        max-pooled remaining codes).
    decoder : SparseAutoencoder | tuple | None
        The SAE, or ``(W_dec, b_dec)``; needed by ``"reconstruction"``.
    lengths : sequence of int | None
        Frames per clip when ``x`` is an array of frame codes.
    groups : array-like | None
        Speaker (or other group) of each clip: no group on both sides of the
        split (the paper's AVLetters2 split is by speaker). ``None``: clips
        are split at random (one speaker may then be in train and test).
    C : float | None
        ``None``: unpenalised (the paper's); a float: inverse L2 strength
        (``C=1.0`` is the regime the paper calls overly optimistic).
    max_iter : int
        Iterations of the solver.
    %(random_state)s
    %(verbose)s

    Returns
    -------
    result : ErasureResult
        The MCC curves and the two fractions.
    """
    import pandas as pd

    y_arr = np.asarray(y)
    classes = list(np.unique(y_arr))
    if target not in classes:
        raise ValueError(f"target {target!r} is not a class of y; the classes are {classes}.")
    design = _Design(x, y_arr, target_mode, decoder, lengths)
    y = design.y
    rng = check_random_state(random_state)
    n_feat = design.n_features
    if steps is None:
        steps = n_feat + 1 if n_feat <= 200 else 100
    if np.ndim(steps) == 0:
        counts = np.unique(np.round(np.linspace(0, n_feat, check_int(int(steps), "steps"))))
    else:
        counts = np.unique(np.asarray(steps, int))
        if counts.min() < 0 or counts.max() > n_feat:
            raise ValueError(f"steps must lie in [0, {n_feat}], got {counts.min()}..{counts.max()}.")
    tr, te = _split(y, test_size, rng, groups)
    order = np.argsort(-fisher_scores(design.pooled[tr], y[tr] == target), kind="stable")
    rows = []
    for n in counts.astype(int):
        keep = np.ones(n_feat, bool)
        keep[order[:n]] = False
        xx = design.inputs(keep)
        pred = _fit_predict(xx[tr], y[tr], xx[te], C, max_iter)
        for c, m in _mcc_per_class(y[te], pred, classes).items():
            rows.append({"n_removed": int(n), "fraction": n / n_feat, "class": c, "mcc": m})
    curve = pd.DataFrame(rows)
    tgt = curve[curve["class"] == target].set_index("n_removed")["mcc"]
    erased = tgt.index[tgt.to_numpy() <= erased_mcc]
    # erased from that count on (the curve does not come back above the line)
    erased_at = None
    for n in erased:
        if (tgt.loc[n:] <= erased_mcc).all():
            erased_at = int(n)
            break
    others_at, below = _others_at(curve, target, keep_mcc)
    res = ErasureResult(curve, target, n_feat, erased_at, others_at, float(erased_mcc),
                        float(keep_mcc), order, below, target_mode)
    logger.info(repr(res))
    return res


@fill_doc
@verbose
def plot_erasure(result, *, axes=None, show=False, verbose=None):
    """MCC of each class against the fraction of removed features.

    Parameters
    ----------
    result : ErasureResult
        The result of :func:`concept_erasure`.
    %(axes_show)s
    %(verbose)s

    Returns
    -------
    fig : matplotlib.figure.Figure
        The figure.
    """
    import matplotlib.pyplot as plt

    if axes is None:
        fig, axes = plt.subplots(figsize=(6, 3.6), layout="constrained")
    fig = axes.figure
    for c, g in result.curve.groupby("class", sort=True):
        is_t = c == result.target
        axes.plot(100 * g["fraction"], g["mcc"], lw=2.2 if is_t else 1.0,
                  color="k" if is_t else None, label=f"{c}{' (target)' if is_t else ''}")
    for frac, lab, ls in ((result.erased_fraction, "target erased", "--"),
                          (result.others_fraction, f"others < MCC {result.keep_mcc}", ":")):
        if frac is not None:
            axes.axvline(100 * frac, color="gray", ls=ls, label=f"{lab}: {100 * frac:.1f}%")
    axes.axhline(result.keep_mcc, color="gray", lw=0.5)
    axes.set(xlabel=f"features removed (% of all {result.n_features}, Fisher order for the "
                    f"target; classifier on the {result.target_mode})",
             ylabel="MCC (one vs rest)", title=f"Concept erasure of {result.target}")
    axes.legend(fontsize=7, frameon=False)
    if show:
        plt.show()
    return fig


@fill_doc
@verbose
def plot_probe_curves(curves, *, axes=None, show=False, verbose=None):
    """Accuracy of top-k probing / unlearning against random selections (Fig. 3/13).

    Parameters
    ----------
    curves : pandas.DataFrame
        One or more tables of :func:`probe_curve` (concatenated).
    %(axes_show)s
    %(verbose)s

    Returns
    -------
    fig : matplotlib.figure.Figure
        The figure.
    """
    import matplotlib.pyplot as plt

    if axes is None:
        fig, axes = plt.subplots(figsize=(6, 3.6), layout="constrained")
    fig = axes.figure
    g = curves.groupby(["kind", "selection", "k"])["accuracy"].mean().reset_index()
    for (kind, sel), d in g.groupby(["kind", "selection"]):
        axes.plot(d["k"], d["accuracy"], marker="o", ms=3, ls="-" if sel == "fisher" else "--",
                  label=f"{kind}, {sel}")
    axes.set(xscale="symlog", xlabel="k (features kept for probe, removed for unlearn)",
             ylabel="held-out accuracy", title="Top-k probing and unlearning")
    axes.legend(fontsize=7, frameon=False)
    if show:
        plt.show()
    return fig
