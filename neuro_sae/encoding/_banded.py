"""Variance partitioning over feature sets with banded ridge (one alpha per set)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np

from ..utils import fill_doc, logger, validate_type, verbose
from ._cv import _Candidates, _cv_folds, _scale
from ._lagged import _check_run_length, _check_runs, _lagged_run_stats, _RunStats
from ._ridge import DEFAULT_ALPHA_GRID, _backend, _Fold
from ._trf import TRF, _band_grids


@dataclass
class VariancePartition:
    """Cross-validated explained variance of feature sets and their combinations.

    Attributes
    ----------
    set_names : list of str
        The feature sets, in order.
    subsets : list of tuple of str
        Every non-empty combination of sets, each fitted with banded ridge.
    r2 : ndarray, shape (n_subsets, n_channels)
        Held-out R^2 (coefficient of determination) of each subset's model,
        averaged over folds; prediction and EEG of the held-out runs are centred
        (EEG offsets between runs are arbitrary).
    unique : ndarray, shape (n_sets, n_channels)
        ``r2(all sets) - r2(all sets but this one)``: variance only this set explains.
    shared : ndarray, shape (n_channels,)
        ``r2(all sets) - sum(unique)``: variance explained jointly (for two sets
        ``r2(A) + r2(B) - r2(A, B)``).
    alpha : list of ndarray, shape (n_channels, n_sets_in_subset)
        The raw band alphas chosen per channel for each subset.
    ch_names : list of str
        Channel names.
    """

    set_names: list
    subsets: list
    r2: np.ndarray
    unique: np.ndarray
    shared: np.ndarray
    alpha: list = field(default_factory=list)
    ch_names: list = field(default_factory=list)

    def r2_of(self, *names):
        """Held-out R^2 (n_channels,) of the model with exactly these sets."""
        key = tuple(n for n in self.set_names if n in names)
        return self.r2[self.subsets.index(key)]

    @verbose
    def to_frame(self, *, verbose=None):
        """Tidy table: one row per channel.

        Parameters
        ----------
        %(verbose)s

        Returns
        -------
        df : pandas.DataFrame
            Columns ``channel``, ``r2_<set>+<set>...`` for every subset,
            ``unique_<set>`` for every set and ``shared``.
        """
        import pandas as pd

        cols = dict(channel=list(self.ch_names))
        for key, r2 in zip(self.subsets, self.r2):
            cols["r2_" + "+".join(key)] = r2
        for name, u in zip(self.set_names, self.unique):
            cols[f"unique_{name}"] = u
        cols["shared"] = self.shared
        return pd.DataFrame(cols)


fill_doc(VariancePartition.to_frame)


def _held_out_r2(stats, test, W):
    """R^2 (C,) of the prediction ``X W`` on the held-out runs, both centred."""
    G, H, _, _, yy, _ = stats.centred(test, True)
    sse = yy - 2 * np.einsum("pc,pc->c", W, H[0]) + np.einsum("pc,pc->c", W, G[0] @ W)
    return np.where(yy > 0, 1.0 - sse / np.where(yy > 0, yy, 1.0), 0.0)


def _r2_path(stats, folds, cands, fit_intercept, xp):
    """Held-out R^2 of every fold and candidate: (n_folds, n_cand, n_channels)."""
    C = stats.H.shape[-1]
    out = np.empty((len(folds), cands.n, C))
    for j, (train, test) in enumerate(folds):
        G, H = stats.centred(train, fit_intercept)[:2]
        for ids, d, base in cands.groups:
            Gs, Hs = _scale(d, G, H)
            fold = _Fold(xp.asarray(Gs), xp.asarray(Hs), xp)
            for k, alpha in zip(ids, base):
                W = xp.to_numpy(fold.weights(xp.asarray(np.full((1, C), alpha))))[0]
                W = W if d is None else W * d[:, np.newaxis]
                out[j, k] = _held_out_r2(stats, test, W)
    return out


def _sub_stats(stats, idx):
    """Statistics of the predictors ``idx`` only."""
    return _RunStats(
        G=stats.G[..., idx[:, None], idx[None, :]],
        H=stats.H[..., idx, :],
        sx=stats.sx[..., idx],
        sy=stats.sy,
        yy=stats.yy,
        n=stats.n,
    )


@fill_doc
@verbose
def variance_partitioning(
    X_sets,
    Y_runs,
    *,
    sfreq,
    tmin,
    tmax,
    alphas=None,
    fit_intercept=True,
    cv="leave-one-run-out",
    ch_names=None,
    device="cpu",
    verbose=None,
):
    """Unique and shared held-out explained variance of feature sets, per channel.

    Every non-empty combination of the sets is fitted as a banded ridge TRF (one
    penalty per set, chosen per channel among all combinations of the grid by the
    held-out R^2 averaged over folds), and that held-out R^2 is reported. The lagged
    statistics of all sets are computed once per run and reused by every subset.

    Parameters
    ----------
    X_sets : dict of str -> list of array, shape (n_times, n_features_set)
        The feature sets (e.g. ``{"acoustic": ..., "sae_L6": ...}``), one array per
        run each; put the baseline first.
    Y_runs : list of array, shape (n_times, n_channels)
        EEG, one array per run.
    %(sfreq_features)s
    %(tmin_trf)s
    %(tmax_trf)s
    alphas : array-like of float | None
        Raw grid tried for every set (``None``: ``logspace(-4, 4, 9)`` times the mean
        eigenvalue of each set's lagged covariance).
    fit_intercept : bool
        Fit an intercept per channel.
    cv : ``"leave-one-run-out"`` | int
        Folds over runs.
    ch_names : list of str | None
        Channel names (default ``"ch0"``, ...).
    device : str
        Solver device, as in :class:`TRF`.
    %(verbose)s

    Returns
    -------
    vp : VariancePartition
        Held-out R^2 of every subset, unique variance per set and shared variance.

    Notes
    -----
    The penalties are chosen on the same folds that report R^2 (not nested); the
    small optimism (the best of the candidates) affects every subset alike. R^2 (not
    Pearson r) selects the penalty: r ignores the scale of the prediction, so a set
    without signal would otherwise keep a small penalty and a negative R^2. Grids on the edge are not warned
    about here (fit a :class:`TRF` with ``bands`` to inspect one model).
    """
    validate_type(X_sets, dict, "X_sets")
    if len(X_sets) < 2:
        raise ValueError(
            f"X_sets must hold at least 2 feature sets to partition, got {len(X_sets)}; "
            "e.g. {'acoustic': X_env, 'sae': X_sae}."
        )
    names = [str(k) for k in X_sets]
    runs_per_set = [list(v) if isinstance(v, (list, tuple)) else [v] for v in X_sets.values()]
    n_runs = {len(r) for r in runs_per_set}
    if len(n_runs) != 1:
        raise ValueError(
            f"Every feature set needs the same number of runs, got {sorted(n_runs)}."
        )
    X_runs = [np.concatenate(parts, axis=1) for parts in zip(*runs_per_set)]
    n_feats = [np.shape(r[0])[1] if np.ndim(r[0]) == 2 else 1 for r in runs_per_set]
    X_runs, Y_runs, _ = _check_runs(X_runs, list(Y_runs), x_name="X_sets", y_name="Y_runs")
    trf = TRF(tmin, tmax, sfreq, alphas=alphas, fit_intercept=fit_intercept, cv=cv,
              device=device, bands=n_feats)  # fmt: skip
    delays = trf._validate()
    for ii, x in enumerate(X_runs):
        _check_run_length(x.shape[0], delays, ii)
    R, C, L = len(X_runs), Y_runs[0].shape[1], len(delays)
    ch_names = [f"ch{c}" for c in range(C)] if ch_names is None else list(ch_names)
    per_run = [_lagged_run_stats(x, y, delays) for x, y in zip(X_runs, Y_runs)]
    stats = _RunStats(
        *(np.stack([r[k] for r in per_run])[:, np.newaxis] for k in ("G", "H", "sx")),
        sy=np.stack([r["sy"] for r in per_run]),
        yy=np.stack([r["yy"] for r in per_run]),
        n=[r["n"] for r in per_run],
    )
    folds = _cv_folds(cv, np.arange(R))
    pred_set = np.repeat(np.repeat(np.arange(len(names)), n_feats), L)
    G_all = stats.centred(np.arange(R), fit_intercept)[0][0]
    xp = _backend(device)
    logger.info(
        f"Variance partitioning: {len(names)} sets ({', '.join(names)}), {R} runs, "
        f"{C} channels, {2 ** len(names) - 1} models"
    )

    subsets, r2, chosen = [], [], []
    for size in range(1, len(names) + 1):
        for combo in itertools.combinations(range(len(names)), size):
            idx = np.flatnonzero(np.isin(pred_set, combo))
            sub = _sub_stats(stats, idx)
            band = np.searchsorted(combo, pred_set[idx])
            if alphas is None:
                scale = np.array([np.mean(np.diag(G_all)[pred_set == k]) for k in combo])
                grids = np.where(scale > 0, scale, 1.0)[:, None] * DEFAULT_ALPHA_GRID
            else:
                grids = _band_grids(alphas, len(combo))
            cands = _Candidates(grids, band)
            path = _r2_path(sub, folds, cands, fit_intercept, xp).mean(0)
            best = np.argmax(path, axis=0)
            subsets.append(tuple(names[k] for k in combo))
            r2.append(path[best, np.arange(C)])
            chosen.append(cands.band_alphas[best])
    r2 = np.array(r2)
    full = r2[-1]
    unique = np.array(
        [full - r2[subsets.index(tuple(n for n in names if n != name))] for name in names]
    )
    return VariancePartition(
        set_names=names,
        subsets=subsets,
        r2=r2,
        unique=unique,
        shared=full - unique.sum(0),
        alpha=chosen,
        ch_names=ch_names,
    )
