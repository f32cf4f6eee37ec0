"""Fisher-score ranking, top-k probing, unlearning and concept erasure."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from ..utils import check_int, check_option, check_random_state, fill_doc, logger, verbose


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

    # C=None: a penalty too weak to matter (the paper's unpenalised fit)
    c = 1e12 if C is None else float(C)
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
        clf.fit(x_tr, y_tr)
    return clf.predict(x_te)


def _split(y, test_size, rng):
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(y))
    seed = int(rng.integers(2**31 - 1))
    return train_test_split(idx, test_size=test_size, stratify=y, random_state=seed)


def _mcc_per_class(y_true, y_pred, classes):
    from sklearn.metrics import matthews_corrcoef

    return {c: float(matthews_corrcoef(y_true == c, y_pred == c)) for c in classes}


def _check_xy(x, y):
    x = np.asarray(x, float)
    y = np.asarray(y)
    if x.ndim != 2 or len(x) != len(y):
        raise ValueError(f"x must be (n_samples, n_features) with one label per row; got "
                         f"x {x.shape} and y {y.shape}.")
    if len(np.unique(y)) < 2:
        raise ValueError(f"y needs at least 2 classes, got {np.unique(y).tolist()}.")
    return x, y


@fill_doc
@verbose
def probe_curve(x, y, *, ks=None, kind="probe", n_random=5, test_size=0.3, C=1.0,
                max_iter=500, random_state=None, verbose=None):
    """Top-k probing or unlearning against random selections of the same size.

    Features are ranked by Fisher score on the training split. ``kind="probe"``
    trains the classifier on the top-k features only; ``kind="unlearn"`` on all
    features but the top-k (the paper's Fig. 3/13). Each point is compared with
    ``n_random`` random selections of ``k`` features.

    Parameters
    ----------
    x : array-like, shape (n_clips, n_features)
        Pooled SAE codes (:meth:`ClipCodes.pool`).
    y : array-like, shape (n_clips,)
        Class of each clip.
    ks : sequence of int | None
        Values of k (``None``: about 12 values from 1 to all, log-spaced).
    kind : str
        ``"probe"`` or ``"unlearn"``.
    n_random : int
        Random selections per k.
    test_size : float
        Held-out fraction (stratified).
    C : float | None
        Inverse L2 strength of the logistic regression on standardised features;
        ``None``: no penalty (the paper's; slow and unstable on separable data).
    max_iter : int
        Iterations of the solver.
    %(random_state)s
    %(verbose)s

    Returns
    -------
    curve : pandas.DataFrame
        ``kind``, ``k``, ``selection`` (``fisher`` | ``random``), ``repeat``,
        ``accuracy`` and ``mcc`` (multi-class Matthews correlation).
    """
    import pandas as pd
    from sklearn.metrics import accuracy_score, matthews_corrcoef

    x, y = _check_xy(x, y)
    check_option("kind", kind, ("probe", "unlearn"))
    rng = check_random_state(random_state)
    n_feat = x.shape[1]
    if ks is None:
        ks = np.unique(np.round(np.geomspace(1, n_feat, 12)).astype(int))
    ks = [check_int(int(k), "ks", min_value=0) for k in ks]
    if max(ks) > n_feat:
        raise ValueError(f"ks holds {max(ks)} but there are only {n_feat} features.")
    tr, te = _split(y, test_size, rng)
    order = np.argsort(-fisher_scores(x[tr], y[tr]), kind="stable")
    rows = []
    for k in ks:
        sels = [("fisher", 0, order[:k])]
        sels += [("random", r, rng.choice(n_feat, k, replace=False)) for r in range(n_random)]
        for name, rep, sel in sels:
            cols = sel if kind == "probe" else np.setdiff1d(np.arange(n_feat), sel)
            pred = _fit_predict(x[tr][:, cols], y[tr], x[te][:, cols], C, max_iter)
            rows.append(dict(kind=kind, k=k, selection=name, repeat=rep,
                             accuracy=accuracy_score(y[te], pred),
                             mcc=matthews_corrcoef(y[te], pred)))
    logger.info(f"{kind} curve over {len(ks)} values of k")
    return pd.DataFrame(rows)


@dataclass
class ErasureResult:
    """Result of :func:`concept_erasure`.

    Attributes
    ----------
    curve : pandas.DataFrame
        ``n_removed``, ``fraction``, ``class``, ``mcc`` (one-vs-rest Matthews
        correlation of each class, classifier retrained after each removal).
    target : object
        The erased class.
    n_features : int
        Number of features.
    erased_at : int | None
        Fewest removed features at which the target's MCC is at most
        ``erased_mcc`` (None: never).
    others_at : int | None
        Fewest removed features at which some other class drops below ``keep_mcc``.
    erased_mcc, keep_mcc : float
        The two criteria.
    order : ndarray of int
        Removal order (feature columns, highest target Fisher score first).
    """

    curve: object
    target: object
    n_features: int
    erased_at: int | None
    others_at: int | None
    erased_mcc: float
    keep_mcc: float
    order: np.ndarray

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

        return (f"<ErasureResult | target {self.target!r}: erased after {pct(self.erased_fraction)}"
                f" of {self.n_features} features; others below MCC {self.keep_mcc} after "
                f"{pct(self.others_fraction)}>")


@fill_doc
@verbose
def concept_erasure(x, y, target, *, steps=None, erased_mcc=0.2, keep_mcc=0.75,
                    test_size=2 / 7, C=1.0, max_iter=500, random_state=None, verbose=None):
    """Erase one class by removing features in Fisher-score order, retraining each time.

    Features are ranked by their Fisher score for ``target`` against the rest
    (on the training split); after each removal the classifier is retrained on
    the remaining features and every class's one-vs-rest MCC is measured on the
    held-out split (the paper: 5:2 split, vowel A of AVLetters2 erased after 19 percent
    of the features, the other vowels below MCC 0.75 after 27 percent).

    Parameters
    ----------
    x : array-like, shape (n_clips, n_features)
        Pooled SAE codes.
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
    C : float | None
        Inverse L2 strength (``None``: no penalty).
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

    x, y = _check_xy(x, y)
    classes = list(np.unique(y))
    if target not in classes:
        raise ValueError(f"target {target!r} is not a class of y; the classes are {classes}.")
    rng = check_random_state(random_state)
    n_feat = x.shape[1]
    if steps is None:
        steps = n_feat + 1 if n_feat <= 200 else 100
    if np.ndim(steps) == 0:
        counts = np.unique(np.round(np.linspace(0, n_feat, check_int(int(steps), "steps"))))
    else:
        counts = np.unique(np.asarray(steps, int))
        if counts.min() < 0 or counts.max() > n_feat:
            raise ValueError(f"steps must lie in [0, {n_feat}], got {counts.min()}..{counts.max()}.")
    tr, te = _split(y, test_size, rng)
    order = np.argsort(-fisher_scores(x[tr], y[tr] == target), kind="stable")
    rows = []
    for n in counts.astype(int):
        keep = np.sort(order[n:])
        pred = _fit_predict(x[tr][:, keep], y[tr], x[te][:, keep], C, max_iter)
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
    oth = curve[curve["class"] != target].groupby("n_removed")["mcc"].min()
    below = oth.index[oth.to_numpy() < keep_mcc]
    others_at = int(below[0]) if len(below) else None
    res = ErasureResult(curve, target, n_feat, erased_at, others_at, float(erased_mcc),
                        float(keep_mcc), order)
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
    axes.set(xlabel="features removed (% of all, Fisher order for the target)",
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
