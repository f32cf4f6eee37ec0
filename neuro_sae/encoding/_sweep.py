"""Univariate sweep: one TRF per feature, for every feature x channel, with nested CV."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from .. import __version__
from ..io import SavedResult, read_result
from ..utils import (
    check_int,
    check_names,
    fill_doc,
    logger,
    progress_bar,
    tidy_frame,
    validate_type,
    verbose,
)
from ._basis import _check_basis
from ._lagged import (
    _check_run_length,
    _check_runs,
    _RunStats,
    _times_to_delays,
    _univariate_run_stats,
)
from ._ridge import _check_alphas, _default_alphas, _Fold

_ARRAYS = (
    "r", "r_folds", "alpha", "coef", "intercept", "alpha_final", "weights",
    "intercepts", "alphas", "delays", "n_times", "peak_lag_s", "peak_amplitude", "test_runs",
    "basis",
)  # fmt: skip
_META = ("sfreq", "tmin", "tmax", "feature_names", "ch_names", "provenance", "layers")


@dataclass(repr=False)
class SweepResult(SavedResult):
    """Results of :func:`univariate_sweep` (one TRF per feature and channel).

    Attributes
    ----------
    r : ndarray, shape (n_features, n_channels)
        Mean over outer folds (held-out runs) of the held-out Pearson r; with
        ``test_runs`` the r on the test runs.
    r_folds : ndarray, shape (n_folds, n_features, n_channels)
        Held-out Pearson r per outer fold (fold ``j`` holds out run ``j``); with
        ``test_runs`` a single fold: trained on the development runs, scored on the
        test runs.
    alpha : ndarray, shape (n_folds, n_features, n_channels)
        Raw alpha chosen by the inner leave-one-run-out CV of each outer fold.
    coef : ndarray, shape (n_features, n_channels, n_delays)
        Kernels refitted on all runs with ``alpha_final`` (with ``test_runs``: the
        kernels of the development runs, the single fold's weights).
    intercept : ndarray, shape (n_features, n_channels)
        Intercepts of the refitted kernels.
    alpha_final : ndarray, shape (n_features, n_channels)
        Alpha chosen by leave-one-run-out CV on all runs (used for ``coef``; with
        ``test_runs`` the alpha of the development fit).
    weights : ndarray of float32, shape (n_folds, n_features, n_channels, n_delays)
        The weights of each outer fold (trained without run ``j``), kept for the
        permutation null.
    intercepts : ndarray of float32, shape (n_folds, n_features, n_channels)
        Intercepts of each outer fold.
    alphas : ndarray, shape (n_features, n_alphas)
        The raw alpha grid of each feature.
    delays : ndarray of int, shape (n_delays,)
        Delays in samples.
    sfreq : float
        Sampling rate in Hz.
    tmin, tmax : float
        The lag window in seconds.
    n_times : ndarray of int, shape (n_runs,)
        Samples per run (checked by the permutation test).
    feature_names : list of str
        Feature names.
    ch_names : list of str
        Channel names.
    provenance : dict
        Versions and settings.
    peak_lag_s : ndarray, shape (n_features, n_channels)
        Lag (s) of the largest absolute weight of each refitted kernel.
    peak_amplitude : ndarray, shape (n_features, n_channels)
        Signed kernel value at that lag.
    layers : list of str
        Layer of each feature (``""`` when the sweep was given a single layer).
    test_runs : ndarray of int, shape (n_test,)
        Indices of the test runs of a predefined split (empty: leave-one-run-out).
    basis : ndarray, shape (n_delays, n_basis)
        The lag basis the kernels were fitted in (shape (0, 0) without a basis);
        ``coef`` and ``weights`` are the kernels over the delays (``basis @ beta``).

    Without kernels (``univariate_sweep(..., return_kernels=False)``) ``coef`` and
    ``weights`` have 0 delays; the peaks are kept.
    """

    r: np.ndarray
    r_folds: np.ndarray
    alpha: np.ndarray
    coef: np.ndarray
    intercept: np.ndarray
    alpha_final: np.ndarray
    weights: np.ndarray
    intercepts: np.ndarray
    alphas: np.ndarray
    delays: np.ndarray
    sfreq: float
    tmin: float
    tmax: float
    n_times: np.ndarray
    feature_names: list = field(default_factory=list)
    ch_names: list = field(default_factory=list)
    provenance: dict = field(default_factory=dict)
    peak_lag_s: np.ndarray = None
    peak_amplitude: np.ndarray = None
    layers: list = field(default_factory=list)
    test_runs: np.ndarray = None
    basis: np.ndarray = None

    def __post_init__(self):
        self.basis = np.zeros((0, 0)) if self.basis is None else np.asarray(self.basis, float)
        self.test_runs = np.asarray(
            [] if self.test_runs is None else self.test_runs, dtype=np.int64
        ).reshape(-1)
        if self.peak_lag_s is None or self.peak_amplitude is None:
            self.peak_lag_s, self.peak_amplitude = _peaks(self.coef, self.delays / self.sfreq)
        if self.layers is None or not len(self.layers):
            self.layers = [""] * self.r.shape[0]

    @property
    def has_kernels(self):
        """Whether ``coef`` and ``weights`` hold the kernels (``return_kernels=True``)."""
        return self.coef.shape[-1] > 0

    @property
    def folds(self):
        """The outer folds as ``(train_runs, test_runs)`` pairs of index arrays."""
        return _outer_folds(len(self.n_times), self.test_runs)

    @property
    def times(self):
        """Delays in seconds, shape (n_delays,)."""
        return self.delays / self.sfreq

    @property
    def n_features(self):
        """Number of features."""
        return self.r.shape[0]

    @property
    def n_channels(self):
        """Number of channels."""
        return self.r.shape[1]

    def __repr__(self):
        return (
            f"<SweepResult | {self.n_features} features x {self.n_channels} channels, "
            f"{len(self.n_times)} runs, lags {self.tmin:g} ... {self.tmax:g} s at "
            f"{self.sfreq:g} Hz, max r = {np.max(self.r):.3f}>"
        )

    @verbose
    def to_frame(self, *, verbose=None):
        """Tidy table: one row per feature x channel.

        Parameters
        ----------
        %(verbose)s

        Returns
        -------
        df : pandas.DataFrame
            Columns ``feature``, ``layer`` (only for a sweep over a dict of layers),
            ``channel``, ``r`` (mean held-out r), ``alpha`` (``alpha_final``),
            ``peak_lag_s`` and ``peak_amplitude`` (the signed kernel value at the
            delay of largest absolute weight).
        """
        df = tidy_frame(
            self.feature_names,
            self.ch_names,
            r=self.r,
            alpha=self.alpha_final,
            peak_lag_s=self.peak_lag_s,
            peak_amplitude=self.peak_amplitude,
        )
        if any(self.layers):  # single-layer sweeps keep the earlier columns
            layers = np.repeat(np.asarray(self.layers, dtype=str), self.n_channels)
            df.insert(1, "layer", layers)
        return df

    _kind = "SweepResult"

    def _to_saved(self):
        arrays = {k: np.asarray(getattr(self, k)) for k in _ARRAYS}
        return arrays, {k: getattr(self, k) for k in _META}

    @classmethod
    def _from_saved(cls, arrays, fields, fname):
        data = {k: arrays[k] for k in _ARRAYS if k in arrays}  # old files: no peaks
        data.update(fields)
        data["feature_names"] = list(data["feature_names"])
        data["ch_names"] = list(data["ch_names"])
        data["layers"] = list(data.get("layers") or [])
        return cls(**data)


@fill_doc
@verbose
def check_sweeps_compatible(sweeps, labels=None, *, verbose=None):
    """Check that sweeps (e.g. one per subject) can enter one group test.

    Parameters
    ----------
    sweeps : list of SweepResult
        The sweeps, e.g. one per subject.
    labels : list of str | None
        A label per sweep for the error message (e.g. ``"sub-01"``); ``None`` uses
        the positions ``"sweeps[0]"``, ...
    %(verbose)s

    Returns
    -------
    sweeps : list of SweepResult
        The same sweeps.

    Raises
    ------
    ValueError
        When a sweep differs from the first one in its lags (delays, ``tmin``,
        ``tmax``), ``sfreq``, feature names (or layers) or channel names; the
        message names the sweep's label and what differs.
    """
    sweeps = list(sweeps)
    if not sweeps:
        raise ValueError("sweeps is empty; pass one SweepResult per subject.")
    if labels is None:
        labels = [f"sweeps[{ii}]" for ii in range(len(sweeps))]
    labels = [str(lb) for lb in labels]
    if len(labels) != len(sweeps):
        raise ValueError(f"labels has {len(labels)} entries but sweeps has {len(sweeps)}.")
    for lb, sw in zip(labels, sweeps):
        validate_type(sw, SweepResult, f"the sweep of {lb}")
    ref, ref_lb = sweeps[0], labels[0]

    def _diff_list(a, b, what):
        a, b = list(a), list(b)
        if a == b:
            return None
        if len(a) != len(b):
            return f"{len(b)} {what} instead of {len(a)}"
        pos = [ii for ii, (u, v) in enumerate(zip(a, b)) if u != v]
        ii = pos[0]
        return (
            f"{what} differ at {len(pos)} position(s), first at position {ii}: "
            f"{b[ii]!r} instead of {a[ii]!r}"
        )

    for lb, sw in zip(labels[1:], sweeps[1:]):
        diffs = []
        if float(sw.sfreq) != float(ref.sfreq):
            diffs.append(f"sfreq {sw.sfreq:g} Hz instead of {ref.sfreq:g} Hz")
        if not np.array_equal(np.asarray(sw.delays), np.asarray(ref.delays)) or (
            (sw.tmin, sw.tmax) != (ref.tmin, ref.tmax)
        ):
            diffs.append(
                f"lags {sw.tmin:g} ... {sw.tmax:g} s ({len(sw.delays)} delays) instead of "
                f"{ref.tmin:g} ... {ref.tmax:g} s ({len(ref.delays)} delays)"
            )
        for what, a, b in (
            ("feature names", ref.feature_names, sw.feature_names),
            ("layers", ref.layers, sw.layers),
            ("channel names", ref.ch_names, sw.ch_names),
        ):
            d = _diff_list(a, b, what)
            if d is not None:
                diffs.append(d)
        if diffs:
            raise ValueError(
                f"The sweep of {lb} does not match the sweep of {ref_lb}: "
                + "; ".join(diffs)
                + ". Refit the sweeps with the same trf settings, features and channels "
                "(or leave that subject out) before the group test."
            )
    return sweeps


def _peaks(coef, times):
    """Lag and signed value of the largest absolute weight: 2 x (n_features, n_channels)."""
    peak = np.argmax(np.abs(coef), axis=-1)
    amp = np.take_along_axis(coef, peak[..., np.newaxis], -1)[..., 0]
    return times[peak], amp


fill_doc(SweepResult.to_frame)


@verbose
def read_sweep_result(fname, *, verbose=None):
    """Read a :class:`SweepResult` saved with :meth:`SweepResult.save`.

    Parameters
    ----------
    fname : str | os.PathLike
        The ``.npz`` file.
    %(verbose)s

    Returns
    -------
    sweep : SweepResult
        The result.
    """
    return read_result(fname, SweepResult)


fill_doc(read_sweep_result)


@fill_doc
@verbose
def univariate_sweep(
    X_runs,
    Y_runs,
    *,
    sfreq,
    tmin,
    tmax,
    alphas=None,
    feature_names=None,
    ch_names=None,
    chunk_size=64,
    return_kernels=True,
    test_runs=None,
    basis=None,
    verbose=None,
):
    """Fit one TRF per feature for every feature x channel, with nested run-wise CV.

    Each feature gets its own ``n_delays`` lagged predictors plus an intercept. For
    every outer fold (one held-out run) the alpha of each feature x channel is chosen
    by an inner leave-one-run-out CV over the training runs; the held-out Pearson r
    of the outer run is reported. Everything comes from per-run sufficient statistics
    (training statistics = total - held-out), batched over features, with one
    eigendecomposition per fold and feature serving all alphas.

    Parameters
    ----------
    X_runs : list of array | list of scipy.sparse array | dict of str -> list
        Features, one array (n_times, n_features) per run. Sparse arrays (e.g. SAE
        codes) stay sparse: only a chunk of ``chunk_size`` features of one run is
        densified at a time. A dict maps layer names to such lists (e.g. every
        alive SAE feature of every layer): one sweep over all of them, the table
        gets a ``layer`` column.
    Y_runs : list of array, shape (n_times, n_channels)
        EEG, one array per run, with the same number of samples as ``X_runs``.
    %(sfreq_features)s
    %(tmin_trf)s
    %(tmax_trf)s
    alphas : array-like of float | None
        Raw ridge penalties to try (see :class:`neuro_sae.encoding.TRF`). ``None``
        uses ``logspace(-4, 4, 9)`` times the mean eigenvalue of each feature's
        lagged covariance (a grid per feature, stored in ``SweepResult.alphas``).
    feature_names : list of str | dict of str -> list of str | None
        Names of the features (default ``"f0"``, ``"f1"``, ...), per layer (a dict)
        when ``X_runs`` is a dict.
    ch_names : list of str | None
        Names of the channels (default ``"ch0"``, ...).
    chunk_size : int
        Number of features processed together; memory scales with it.
    return_kernels : bool
        Keep the refitted kernels ``coef`` and the fold weights ``weights``
        (n_folds x n_features x n_channels x n_delays float32: large for thousands of
        features; the ``"fixed"`` permutation null needs them). If ``False`` they
        have 0 delays and only the peak lag and amplitude are kept.
    test_runs : list of int | None
        A predefined dev/test split: indices (into the runs) of the test runs.
        ``None`` (default): nested leave-one-run-out CV over all runs. Otherwise
        the alpha of each feature x channel is chosen by leave-one-run-out CV over
        the development runs (the others), the model is trained on all development
        runs with it, and ``r`` is the Pearson r between its prediction and the EEG
        over the test runs concatenated (prediction and EEG centred on the test
        runs' common mean), a single fold; ``coef`` are the development kernels.
    basis : float | array, shape (n_delays, n_basis) | None
        Fit the kernels in a lag basis (as Eelbrain's ``basis``): each TRF is
        ``basis @ beta`` and the ridge is fitted on the design ``X_lag @ basis``
        with penalty ``alpha * ||beta||^2`` (so alphas, and the default grid, refer
        to that design). A float is a kernel width in seconds for
        :func:`lag_basis` (Hann kernels, half-width spacing), e.g. ``0.05``.
        Kernels are smoother and the permutation null costs less (its fitted
        dimension is ``n_basis``, not ``n_delays``); with
        ``lag_basis(..., placement="inside")`` (whole-sample translates of one
        kernel) the null filters each feature once per run and is fastest.
        ``None`` (default): one coefficient per delay.
    %(verbose)s

    Returns
    -------
    sweep : SweepResult
        Held-out r per fold and on average, chosen alphas, kernels, fold weights.

    Notes
    -----
    With several alphas the nested CV needs at least 3 runs (with ``test_runs``: 2
    development runs); with one alpha, 2 (1).
    The fraction of choices on the edge of the alpha grid is logged at INFO (for
    features without an effect the largest alpha wins, so a warning would be noise).
    """
    validate_type(return_kernels, bool, "return_kernels")
    X_runs, feature_names, layers = _merge_layers(X_runs, feature_names)
    X_runs, Y_runs, _ = _check_runs(
        X_runs, Y_runs, allow_sparse=True, x_name="X_runs", y_name="Y_runs"
    )
    delays = _times_to_delays(tmin, tmax, sfreq)
    basis = _check_basis(basis, delays, sfreq)
    chunk_size = check_int(chunk_size, "chunk_size")
    R = len(X_runs)
    F, C, L = X_runs[0].shape[1], Y_runs[0].shape[1], len(delays)
    for ii, x in enumerate(X_runs):
        _check_run_length(x.shape[0], delays, ii)
    fixed_alphas = None if alphas is None else _check_alphas(alphas)
    A = 9 if fixed_alphas is None else len(fixed_alphas)
    test = _check_test_runs(test_runs, R, A)
    min_runs = 3 if A > 1 else 2
    if test is None and R < min_runs:
        raise ValueError(
            f"The nested leave-one-run-out CV needs at least {min_runs} runs with "
            f"{A} alpha(s), got {R}. Split the recording into more runs"
            + (" or give a single alpha." if A > 1 else ".")
        )
    feature_names = check_names(feature_names, F, "f", "feature_names")
    ch_names = check_names(ch_names, C, "ch", "ch_names")
    cv = (
        "nested leave-one-run-out" if test is None
        else f"test runs {test.tolist()}, alphas by leave-one-run-out on the other runs"
    )  # fmt: skip
    logger.info(
        f"Univariate sweep: {F} features x {C} channels, {L} delays, {A} alphas, {R} runs "
        f"({cv}), chunks of {chunk_size} features"
        + ("" if basis is None else f", in a basis of {basis.shape[1]} kernels")
    )
    n_folds = R if test is None else 1
    sy = np.stack([y.sum(0) for y in Y_runs])
    yy = np.stack([np.einsum("tc,tc->c", y, y) for y in Y_runs])
    n = [y.shape[0] for y in Y_runs]
    Lk = L if return_kernels else 0
    out = dict(
        r_folds=np.empty((n_folds, F, C)),
        alpha=np.empty((n_folds, F, C)),
        coef=np.empty((F, C, Lk)),
        intercept=np.empty((F, C)),
        alpha_final=np.empty((F, C)),
        weights=np.empty((n_folds, F, C, Lk), np.float32),
        intercepts=np.empty((n_folds, F, C), np.float32),
        alphas=np.empty((F, A)),
        peak_lag_s=np.empty((F, C)),
        peak_amplitude=np.empty((F, C)),
    )
    n_edge = 0
    starts = range(0, F, chunk_size)
    for start in progress_bar(starts, desc="Sweep", unit="chunk"):
        sl = slice(start, min(start + chunk_size, F))
        per_run = [
            _univariate_run_stats(x[:, sl] if sp.issparse(x) else x[:, sl], y, delays)
            for x, y in zip(X_runs, Y_runs)
        ]
        G_r, H_r, sx_r = (np.stack([p[k] for p in per_run]) for k in range(3))
        if basis is not None:  # the design X_lag @ basis
            G_r = np.einsum("lq,rblm,mk->rbqk", basis, G_r, basis, optimize=True)
            H_r = np.einsum("lq,rblc->rbqc", basis, H_r, optimize=True)
            sx_r = sx_r @ basis
        stats = _RunStats(G_r, H_r, sx_r, sy=sy, yy=yy, n=n)
        # Many small (n_delays x n_delays) problems: BLAS threads only add overhead
        # (and stall badly when cores are shared), so run them single-threaded.
        with threadpool_limits(limits=1, user_api="blas"):
            res = _sweep_chunk(stats, fixed_alphas, test)
        if basis is not None:  # kernels over the delays
            res["coef"] = res["coef"] @ basis.T
            res["weights"] = (res["weights"] @ basis.T).astype(np.float32)
        res["peak_lag_s"], res["peak_amplitude"] = _peaks(res["coef"], delays / sfreq)
        if not return_kernels:
            res["coef"] = res["coef"][..., :0]
            res["weights"] = res["weights"][..., :0]
        for key, val in res.items():
            if key == "n_edge":
                n_edge += val
            elif key in ("alpha", "r_folds", "weights", "intercepts"):
                out[key][:, sl] = val
            else:
                out[key][sl] = val
    if A > 1:
        logger.info(
            f"Alpha on the edge of the grid for {n_edge / (n_folds * F * C):.1%} of fold x "
            "feature x channel choices"
        )
    return SweepResult(
        r=out["r_folds"].mean(0),
        delays=delays,
        sfreq=float(sfreq),
        tmin=float(tmin),
        tmax=float(tmax),
        n_times=np.array(n),
        feature_names=feature_names,
        ch_names=ch_names,
        layers=layers,
        test_runs=test,
        basis=basis,
        provenance=dict(
            method="univariate_sweep",
            cv=cv,
            alphas="relative" if fixed_alphas is None else "raw",
            neuro_sae_version=__version__,
        ),
        **out,
    )


def _merge_layers(X_runs, feature_names):
    """A dict of layers -> runs becomes one list of runs with a layer per feature."""
    if not isinstance(X_runs, dict):
        return X_runs, feature_names, None
    if not X_runs:
        raise ValueError("X_runs is an empty dict; give at least one layer -> runs.")
    names = dict(feature_names or {})
    validate_type(names, dict, "feature_names (with a dict of layers)")
    n_runs = {len(v) for v in X_runs.values()}
    if len(n_runs) != 1:
        raise ValueError(
            f"Every layer in X_runs needs the same number of runs, got {sorted(n_runs)}."
        )
    merged, all_names, layers = [], [], []
    for layer, runs in X_runs.items():
        n_feat = runs[0].shape[1]
        all_names += check_names(names.get(layer), n_feat, "f", f"feature_names[{layer!r}]")
        layers += [str(layer)] * n_feat
    for parts in zip(*X_runs.values()):
        if any(sp.issparse(p) for p in parts):
            merged.append(sp.hstack([sp.csc_array(p) for p in parts], format="csc"))
        else:
            merged.append(np.concatenate([np.asarray(p) for p in parts], axis=1))
    return merged, all_names, layers


def _check_test_runs(test_runs, n_runs, n_alphas):
    """Sorted test-run indices (int array) or None for leave-one-run-out."""
    if test_runs is None:
        return None
    vals = np.atleast_1d(np.asarray(test_runs))
    ok = vals.ndim == 1 and vals.size and np.issubdtype(vals.dtype, np.integer)
    if ok:
        ok = np.all((vals >= 0) & (vals < n_runs)) and len(np.unique(vals)) == vals.size
    n_dev_min = 2 if n_alphas > 1 else 1
    if not ok or n_runs - vals.size < n_dev_min:
        raise ValueError(
            f"test_runs must be distinct run indices in 0 ... {n_runs - 1} leaving at least "
            f"{n_dev_min} development run(s) (with {n_alphas} alpha(s)), got {test_runs!r}; "
            "pass e.g. test_runs=[" + str(n_runs - 1) + "] or None for leave-one-run-out."
        )
    return np.sort(vals).astype(np.int64)


def _outer_folds(n_runs, test_runs):
    """``(train, test)`` run indices of each outer fold."""
    runs = np.arange(n_runs)
    test_runs = np.asarray([] if test_runs is None else test_runs, dtype=np.int64)
    if test_runs.size:
        return [(np.setdiff1d(runs, test_runs), test_runs)]
    return [(np.setdiff1d(runs, [j]), np.array([j])) for j in runs]


def _sweep_chunk(stats, fixed_alphas, test=None):
    """Nested CV and refit for one chunk of features (B = chunk size)."""
    if test is not None:
        return _split_chunk(stats, fixed_alphas, test)
    R = stats.n_runs
    runs = np.arange(R)
    G, H, sx, sy, _, n = stats.centred(runs)
    B, C = H.shape[0], H.shape[2]
    if fixed_alphas is None:
        alphas = _default_alphas(G)
    else:
        alphas = np.broadcast_to(fixed_alphas, (B, len(fixed_alphas)))
    A = alphas.shape[1]
    held = [stats.centred([j]) for j in runs]
    res = dict(
        r_folds=np.empty((R, B, C)),
        alpha=np.empty((R, B, C)),
        weights=np.empty((R, B, C, G.shape[-1]), np.float32),
        intercepts=np.empty((R, B, C), np.float32),
        alphas=alphas,
        n_edge=0,
    )
    outer_path = np.zeros((A, B, C))
    for j in runs:
        train = np.setdiff1d(runs, [j])
        if A > 1:
            inner = np.zeros((A, B, C))
            for k in train:
                Gi, Hi = stats.centred(np.setdiff1d(train, [k]))[:2]
                Gk, Hk, _, _, yyk, _ = held[k]
                inner += _Fold(Gi, Hi).r_path(Gk, Hk, yyk, alphas)
            best = np.argmax(inner, axis=0)  # (B, C)
            res["n_edge"] += int(np.sum((best == 0) | (best == A - 1)))
        else:
            best = np.zeros((B, C), int)
        alpha_bc = np.take_along_axis(alphas, best, axis=1)
        Gt, Ht, sxt, syt, _, nt = stats.centred(train)
        fold = _Fold(Gt, Ht)
        Gj, Hj, _, _, yyj, _ = held[j]
        if A > 1:
            outer_path += fold.r_path(Gj, Hj, yyj, alphas)
        res["r_folds"][j] = fold.r_at(Gj, Hj, yyj, alpha_bc)
        res["alpha"][j] = alpha_bc
        W = fold.weights(alpha_bc)  # (B, L, C)
        res["weights"][j] = W.transpose(0, 2, 1)
        res["intercepts"][j] = (syt - np.einsum("bl,blc->bc", sxt, W)) / nt
    best = np.argmax(outer_path, axis=0) if A > 1 else np.zeros((B, C), int)
    alpha_final = np.take_along_axis(alphas, best, axis=1)
    W = _Fold(G, H).weights(alpha_final)
    res["coef"] = W.transpose(0, 2, 1)
    res["intercept"] = (sy - np.einsum("bl,blc->bc", sx, W)) / n
    res["alpha_final"] = alpha_final
    return res


def _split_chunk(stats, fixed_alphas, test):
    """A predefined split: alpha by leave-one-run-out on the dev runs, fit on the dev
    runs, r on the concatenated test runs (one fold)."""
    dev = np.setdiff1d(np.arange(stats.n_runs), test)
    Gt, Ht, sxt, syt, _, nt = stats.centred(dev)
    B, C = Ht.shape[0], Ht.shape[2]
    if fixed_alphas is None:
        alphas = _default_alphas(Gt)
    else:
        alphas = np.broadcast_to(fixed_alphas, (B, len(fixed_alphas)))
    A = alphas.shape[1]
    n_edge = 0
    if A > 1:
        inner = np.zeros((A, B, C))
        for k in dev:
            Gi, Hi = stats.centred(np.setdiff1d(dev, [k]))[:2]
            Gk, Hk, _, _, yyk, _ = stats.centred([k])
            inner += _Fold(Gi, Hi).r_path(Gk, Hk, yyk, alphas)
        best = np.argmax(inner, axis=0)
        n_edge = int(np.sum((best == 0) | (best == A - 1)))
    else:
        best = np.zeros((B, C), int)
    alpha_bc = np.take_along_axis(alphas, best, axis=1)
    fold = _Fold(Gt, Ht)
    Gs, Hs, _, _, yys, _ = stats.centred(test)
    W = fold.weights(alpha_bc)  # (B, L, C)
    intercept = (syt - np.einsum("bl,blc->bc", sxt, W)) / nt
    return dict(
        r_folds=fold.r_at(Gs, Hs, yys, alpha_bc)[np.newaxis],
        alpha=alpha_bc[np.newaxis],
        weights=W.transpose(0, 2, 1)[np.newaxis].astype(np.float32),
        intercepts=intercept[np.newaxis].astype(np.float32),
        alphas=alphas,
        n_edge=n_edge,
        coef=W.transpose(0, 2, 1),
        intercept=intercept,
        alpha_final=alpha_bc,
    )
