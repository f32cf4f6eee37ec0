"""A temporal response function estimator with scikit-learn's API and run-wise CV."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.exceptions import NotFittedError

from ..utils import (
    check_array,
    check_device,
    check_option,
    fill_doc,
    logger,
    validate_type,
    verbose,
    warn,
)
from ._cv import SOLVERS, _Candidates, _choose_solver, _cv_folds, _nested, _path, _solve
from ._lagged import (
    _as_2d_x,
    _check_run_length,
    _check_runs,
    _lag_matrix,
    _lagged_run_stats,
    _RunStats,
    _times_to_delays,
)
from ._ridge import DEFAULT_ALPHA_GRID, _backend, _check_alphas, _safe_r


@fill_doc
class TRF(RegressorMixin, BaseEstimator):
    """Temporal response function (forward or backward) fitted by ridge regression.

    The lagged design is never built for the whole recording: per-run sufficient
    statistics are accumulated once (float64), the ridge penalty is chosen per output
    channel by run-wise cross-validation with one eigendecomposition per fold serving
    every alpha (training statistics = total minus held-out), and held-out
    correlations are computed from held-out statistics without predicting.

    Parameters
    ----------
    %(tmin_trf)s
        With ``direction=-1`` the input (EEG) is lagged by ``-tmax ... -tmin``.
    %(tmax_trf)s
    %(sfreq_features)s
    alphas : array-like of float | float | None
        Ridge penalties to try (raw: added to the diagonal of the centred lagged
        covariance ``X^T X``, like :class:`sklearn.linear_model.Ridge`). ``None``
        uses ``logspace(-4, 4, 9)`` times the mean eigenvalue of ``X^T X`` over all
        runs, which makes the grid independent of the feature scale (divided by the
        number of runs when ``alpha_per_run=True``). With ``bands`` the grid applies
        to every band (``None``: each band's grid is scaled by its own eigenvalues),
        or give one row per band, shape (n_bands, n_alphas).
    fit_intercept : bool
        Fit an unpenalised intercept per channel (the lagged design and the EEG are
        centred with their training means).
    edge : ``"zeropad"`` | ``"valid"``
        Run edges. ``"zeropad"``: lags reaching outside a run read zeros (MNE's
        ``ReceptiveField``, mTRFpy's ``zeropad=True``). ``"valid"``: time points whose
        lags reach outside the run are dropped from the fit and from the scores
        (mTRFpy's ``zeropad=False``); :meth:`predict` still returns every sample.
    cv : ``"leave-one-run-out"`` | int
        Folds over runs: one run held out per fold, or ``cv`` contiguous groups of
        runs. Runs are never split.
    scoring : ``"pearson"``
        Score of held-out predictions: the Pearson correlation per output channel.
    device : str
        ``"cpu"`` solves with numpy; ``"cuda"`` (or ``"cuda:N"``) with torch on the
        GPU; ``"torch-cpu"`` with torch on the CPU. All in float64. The per-run
        statistics are always accumulated with numpy.
    alpha_per_run : bool
        If ``False`` (default), ``alpha`` is added to the diagonal of the summed
        ``X^T X`` of the training runs. If ``True``, the penalty is ``alpha`` times the
        number of training runs, i.e. ``alpha`` regularises the run-averaged
        covariance as mTRFpy does (see Notes): the raw penalty is ``alpha * (n_runs -
        1)`` in the leave-one-run-out folds and ``alpha * n_runs`` in the final fit.
    direction : 1 | -1
        ``1``: forward (encoding) model, ``X`` the stimulus and ``y`` the EEG.
        ``-1``: backward (decoding) model, ``X`` the EEG and ``y`` the stimulus, the
        EEG lagged by ``-tmax ... -tmin`` (later EEG reconstructs the stimulus), as
        mTRFpy's ``direction=-1`` and MNE's ``ReceptiveField(-tmax, -tmin)``.
    patterns : bool
        Also compute Haufe et al. (2014) activation patterns ``patterns_`` (mainly
        for backward models).
    bands : list of int | None
        Banded ridge: the numbers of consecutive feature columns of each band (e.g.
        ``[1, 16]`` for an envelope then 16 SAE features); every band gets its own
        penalty, chosen per channel over all combinations of the ``alphas`` grid.
    nested : bool
        Also run a nested CV: in each outer fold an inner CV over the training runs
        picks the alpha per channel; the outer held-out r is ``nested_scores_``.
    chunk_size : int | None
        Output channels scored together in each fold (bounds the memory of the
        solver to ``n_predictors x chunk_size``); ``None`` scores all at once.
        Results do not depend on it.
    solver : ``"auto"`` | ``"eigh"`` | ``"cholesky"``
        The exact route of the cross-validated alpha path. ``"eigh"``: one
        eigendecomposition of each fold's training covariance serves every alpha
        (with 96 predictors or more, fold by fold, the held-out sum of squares through a
        triangular factor; with fewer, all folds in one batched call); ``"cholesky"``:
        one Cholesky factorisation and solve per fold and alpha (cheaper when the
        alphas are few and the predictors many, ``n_predictors`` in the hundreds).
        ``"auto"`` (default) picks the one with the lower cost estimate for the shape
        (``P`` predictors, ``C`` outputs, ``A`` alphas per fold; flops calibrated on
        one BLAS thread, an eigendecomposition counted as ``3 P^3 + 400 P^2``): eigh
        about ``eig(P) + 8 P^3 / 3 + (4 + A) P^2 C`` against cholesky ``(A + 1) P^3 /
        3 + 3 A P^2 C`` plus the calls into LAPACK; the choice is logged and stored in
        ``solver_``. Both are exact (held-out r equal to ~1e-10); a torch ``device``
        always runs ``"eigh"``. The final fit on all runs (one alpha per channel) uses
        one Cholesky factorisation per distinct chosen alpha where that is cheaper than
        one eigendecomposition (``solver="eigh"``: always the eigendecomposition).
        (The dual form, for fewer samples than predictors, does not arise: the model is
        fitted from ``n_predictors x n_predictors`` sufficient statistics.)

    Attributes
    ----------
    coef_ : ndarray, shape (n_outputs, n_inputs, n_delays)
        The kernels, in the layout of :class:`mne.decoding.ReceptiveField`
        (forward: ``(n_channels, n_features, n_delays)``).
    intercept_ : ndarray, shape (n_outputs,)
        Intercepts (zeros when ``fit_intercept=False``).
    delays_ : ndarray of int, shape (n_delays,)
        Delays in samples applied to ``X`` (negative for a backward model).
    times_ : ndarray, shape (n_delays,)
        Delays in seconds.
    alphas_ : ndarray, shape (n_alphas,) | (n_alphas, n_bands)
        The raw candidates (every combination of band alphas with ``bands``).
    alpha_ : ndarray, shape (n_outputs,) | (n_outputs, n_bands)
        The chosen raw alpha per output (argmax of the mean cross-validated r).
    alpha_relative_ : ndarray, shape like ``alpha_``
        The same penalty scale-free: the raw penalty of the final fit divided by the
        mean eigenvalue of the (band's) centred lagged covariance over all runs
        (``alphas=None`` tries ``logspace(-4, 4, 9)`` in these units).
    cv_scores_ : ndarray, shape (n_folds, n_alphas, n_outputs)
        Held-out Pearson r of every fold and candidate (``n_folds = 0`` with one run).
    nested_scores_ : ndarray, shape (n_folds, n_outputs)
        Outer held-out r of the nested CV (only with ``nested=True``).
    nested_alpha_ : ndarray, shape (n_folds, n_outputs) | (n_folds, n_outputs, n_bands)
        The alpha chosen by each inner CV (only with ``nested=True``).
    solver_ : str
        The route that ran the alpha path (``"eigh"`` or ``"cholesky"``).
    patterns_ : ndarray, shape (n_outputs, n_inputs, n_delays)
        Haufe patterns ``cov(X_lagged) @ W @ inv(cov(y))`` (only with
        ``patterns=True``; covariances centred if ``fit_intercept``, over all runs).
    n_features_in_ : int
        Number of input columns.

    Notes
    -----
    **Conversion to mTRFpy's lambda.** mTRFpy (``mtrf.TRF(direction=1,
    zeropad=True, method="ridge")``) appends an unpenalised column of ones (its bias)
    to the zero-padded lag matrix, averages ``X_i^T X_i`` and ``X_i^T y_i`` over the
    ``m`` training trials and solves
    ``(mean_i X_i^T X_i + lambda * fs * I) w = mean_i X_i^T y_i``. An unpenalised
    ones column is exactly an intercept fitted on centred data, so this is our solve
    with ``fit_intercept=True`` and a raw penalty ``alpha = lambda * fs * m``:

    - with ``alpha_per_run=True``: ``alpha = lambda * sfreq``, exactly, in every CV
      fold and in the final fit;
    - with ``alpha_per_run=False`` (raw alpha): ``alpha = lambda * sfreq * (n_runs -
      1)`` in the leave-one-run-out folds but ``lambda * sfreq * n_runs`` in
      mTRFpy's final fit on all runs, so no single raw alpha reproduces both.

    mTRFpy reports weights multiplied by ``fs``: ``coef_[c, f, l] ==
    weights[f, l, c] / fs`` and ``intercept_[c] == bias[0, c] / fs``. Its lags are
    ``floor(tmin * fs) ... ceil(tmax * fs)`` (ours round), identical when ``tmin *
    sfreq`` and ``tmax * sfreq`` are integers. Its leave-one-out score is the Pearson
    r of each held-out trial, averaged over folds: ``cv_scores_.mean(0)``.

    With ``fit_intercept=False`` the fit equals :class:`mne.decoding.ReceptiveField`
    with a float ``estimator`` (:class:`mne.decoding.TimeDelayingRidge`) and
    ``fit_intercept=False``. With ``fit_intercept=True`` it equals
    :class:`sklearn.linear_model.Ridge` with an intercept on the zero-padded lag
    matrix; MNE instead fills the edges with the feature mean
    (``ReceptiveField`` + ``Ridge``) or centres the raw series before lagging
    (``TimeDelayingRidge``), which differ slightly at run edges.

    **Patterns.** For a single output MNE's ``ReceptiveField(patterns=True)`` divides
    by ``n_samples - 1`` where the variance of ``y`` belongs:
    ``patterns_ == mne_patterns * (n_samples - 1) / var(y)``.
    """

    def __init__(
        self,
        tmin=-0.1,
        tmax=0.5,
        sfreq=None,
        alphas=None,
        fit_intercept=True,
        edge="zeropad",
        cv="leave-one-run-out",
        scoring="pearson",
        device="cpu",
        alpha_per_run=False,
        direction=1,
        patterns=False,
        bands=None,
        nested=False,
        chunk_size=None,
        solver="auto",
    ):
        self.tmin = tmin
        self.tmax = tmax
        self.sfreq = sfreq
        self.alphas = alphas
        self.fit_intercept = fit_intercept
        self.edge = edge
        self.cv = cv
        self.scoring = scoring
        self.device = device
        self.alpha_per_run = alpha_per_run
        self.direction = direction
        self.patterns = patterns
        self.bands = bands
        self.nested = nested
        self.chunk_size = chunk_size
        self.solver = solver

    def _validate(self):
        if self.sfreq is None:
            raise ValueError(
                "sfreq must be given (the sampling rate of features and EEG in Hz), got "
                "None; e.g. TRF(tmin=-0.1, tmax=0.5, sfreq=128.0)."
            )
        for name in ("fit_intercept", "alpha_per_run", "patterns", "nested"):
            validate_type(getattr(self, name), bool, name)
        if isinstance(self.cv, str):
            check_option("cv", self.cv, ("leave-one-run-out",))
        else:
            validate_type(self.cv, "int", "cv")
            if isinstance(self.cv, bool) or self.cv < 2:
                raise ValueError(
                    f"cv must be 'leave-one-run-out' or an int >= 2 (folds of runs), got "
                    f"{self.cv!r}."
                )
        check_option("edge", self.edge, ("zeropad", "valid"))
        check_option("scoring", self.scoring, ("pearson",))
        check_option("direction", self.direction, (1, -1))
        check_device(self.device)
        check_option("solver", self.solver, SOLVERS)
        if self.solver == "cholesky" and self.device != "cpu":
            raise ValueError(
                f"solver='cholesky' runs on device='cpu' only, got device={self.device!r}; "
                "use solver='auto' or 'eigh' on a torch device."
            )
        if self.chunk_size is not None:
            validate_type(self.chunk_size, "int", "chunk_size")
            if self.chunk_size < 1:
                raise ValueError(f"chunk_size must be None or >= 1, got {self.chunk_size}.")
        delays = _times_to_delays(self.tmin, self.tmax, self.sfreq)
        return -delays[::-1] if self.direction == -1 else delays

    def _check_bands(self, n_feat):
        if self.bands is None:
            return np.zeros(n_feat, int)
        bands = [int(b) for b in np.atleast_1d(self.bands)]
        if any(b < 1 for b in bands) or sum(bands) != n_feat:
            raise ValueError(
                f"bands must be positive numbers of feature columns summing to the "
                f"{n_feat} features of X, got {self.bands!r}; e.g. bands=[1, "
                f"{max(n_feat - 1, 1)}]."
            )
        return np.repeat(np.arange(len(bands)), bands)

    @verbose
    def fit(self, X, y, *, verbose=None):
        """Fit the TRF.

        Parameters
        ----------
        X : array, shape (n_times, n_inputs) | list of array
            The inputs, one array per run (a single array is one run): the stimulus
            features for a forward model, the EEG for a backward one. Sparse arrays
            are densified per run.
        y : array, shape (n_times, n_outputs) | list of array
            The outputs, one array per run with the same number of samples as ``X``:
            the EEG (forward) or the stimulus (backward).
        %(verbose)s

        Returns
        -------
        self : TRF
            The fitted estimator.
        """
        Y = y
        delays = self._validate()
        if Y is None:
            raise ValueError(
                "TRF requires y to be passed, but the target y is None; give the EEG as "
                "Y, an array (n_times, n_channels) or a list of runs."
            )
        X, Y = _check_inputs(X, Y)
        X_runs, Y_runs, _ = _check_runs(X, Y, finite=False)  # NaN/inf: see _check_finite
        y_1d = all(
            np.asarray(y).ndim == 1 for y in (Y if isinstance(Y, (list, tuple)) else [Y])
        )
        for ii, x in enumerate(X_runs):
            _check_run_length(x.shape[0], delays, ii)
        n_runs = len(X_runs)
        n_feat, n_ch = X_runs[0].shape[1], Y_runs[0].shape[1]
        feat_band = self._check_bands(n_feat)
        L = len(delays)
        logger.info(
            f"Fitting a TRF: {n_runs} run(s), {n_feat} input(s) x {L} delays, "
            f"{n_ch} output(s)"
        )
        with np.errstate(invalid="ignore", over="ignore"):  # NaN/inf: _check_finite
            runs = [self._run_stats(x, y, delays) for x, y in zip(X_runs, Y_runs)]
        _check_finite(runs, X_runs, Y_runs)
        stats = _RunStats(
            G=np.stack([r["G"] for r in runs])[:, np.newaxis],
            H=np.stack([r["H"] for r in runs])[:, np.newaxis],
            sx=np.stack([r["sx"] for r in runs])[:, np.newaxis],
            sy=np.stack([r["sy"] for r in runs]),
            yy=np.stack([r["yy"] for r in runs]),
            n=[r["n"] for r in runs],
        )
        fi = self.fit_intercept
        all_runs = np.arange(n_runs)
        G_tot, _, sx_tot, _, _, n_tot = stats._tot
        diag = np.diagonal(G_tot[0]) - (sx_tot[0] * sx_tot[0] / n_tot if fi else 0.0)
        pred_band = np.repeat(feat_band, L)
        n_bands = pred_band.max() + 1
        # Mean eigenvalue of each band's block of X^T X (the centred diagonal's mean):
        # the unit of relative alphas
        scale = np.array([np.mean(diag[pred_band == k]) for k in range(n_bands)])
        scale = np.where(scale > 0, scale, 1.0)

        # Penalty multiplier for m training runs: alpha regularises the summed or
        # (alpha_per_run) the run-averaged covariance
        def mult(m):
            return float(m) if self.alpha_per_run else 1.0

        if self.alphas is None:
            grids = scale[:, np.newaxis] * DEFAULT_ALPHA_GRID / mult(n_runs)
        else:
            grids = _band_grids(self.alphas, n_bands)
        n_grid = grids.shape[1]
        cands = _Candidates(grids, pred_band)
        if n_runs == 1 and cands.n > 1:
            raise ValueError(
                f"Choosing among {n_grid} alphas needs cross-validation over runs, but X "
                "and Y hold a single run. Pass lists of runs (e.g. split a long "
                "recording into segments) or give a single alpha, e.g. alphas=[1e3]."
            )
        xp = _backend(self.device)
        folds = _cv_folds(self.cv, all_runs) if n_runs > 1 else []
        if self.nested:
            self._check_nested(folds, cands)
        n_alphas = max(len(ids) for ids, _, _ in cands.groups)
        self.solver_ = _choose_solver(self.solver, n_feat * L, n_ch, n_alphas, xp,
                                      max(len(folds), 1))  # fmt: skip
        logger.info(
            f"Solver {self.solver_!r} for {n_feat * L} predictors, {n_ch} output(s), "
            f"{n_alphas} alpha(s) per fold" + (" (auto)" if self.solver == "auto" else "")
        )
        if folds:
            scores = _path(stats, folds, cands, fi, mult, xp, self.chunk_size, self.solver_)
        else:
            scores = np.empty((0, cands.n, n_ch))
        best = np.argmax(scores.mean(0), axis=0) if cands.n > 1 else np.zeros(n_ch, int)
        if n_grid > 1:
            idx = cands.index[best]  # (n_ch, n_bands)
            on_edge = np.any((idx == 0) | (idx == n_grid - 1), axis=1)
            if on_edge.any():
                warn(
                    f"The chosen alpha lies on the edge of the grid for {on_edge.sum()} of "
                    f"{n_ch} channel(s) (grid {grids[0, 0]:.3g} ... {grids[0, -1]:.3g}); "
                    "extend the alphas grid on that side."
                )
        W, b = _solve(stats, all_runs, cands, best, fi, mult, xp, self.chunk_size,
                      self._final_route())  # fmt: skip
        squeeze = self.bands is None
        alpha = cands.band_alphas[best]
        self.coef_ = W.T.reshape(n_ch, n_feat, L)
        self.intercept_ = b
        self.delays_ = delays
        self.times_ = delays / float(self.sfreq)
        self.alphas_ = cands.band_alphas[:, 0] if squeeze else cands.band_alphas
        self.alpha_ = alpha[:, 0] if squeeze else alpha
        rel = alpha * mult(n_runs) / scale
        self.alpha_relative_ = rel[:, 0] if squeeze else rel
        self.cv_scores_ = scores
        if self.nested:
            self._fit_nested(stats, folds, cands, mult, xp, squeeze)
        if self.patterns:
            self.patterns_ = _haufe(stats, runs, W, fi).T.reshape(n_ch, n_feat, L)
        self.n_features_in_ = n_feat
        self._y_1d = y_1d
        return self

    def _run_stats(self, x, y, delays):
        """Lagged statistics of one run (edge rows removed with ``edge='valid'``)."""
        st = _lagged_run_stats(x, y, delays)
        st["yyT"] = y.T @ y if self.patterns else None
        if self.edge == "valid":
            for lo, hi in _edge_rows(x.shape[0], delays):
                Z, ye = _lag_matrix(x, delays, lo, hi), y[lo:hi]
                st["G"] -= Z.T @ Z
                st["H"] -= Z.T @ ye
                st["sx"] -= Z.sum(0)
                st["sy"] -= ye.sum(0)
                st["yy"] -= np.einsum("tc,tc->c", ye, ye)
                st["n"] -= hi - lo
                if self.patterns:
                    st["yyT"] -= ye.T @ ye
        return st

    def _final_route(self):
        """The final fits' route: eigh when asked for, else the cheaper (``_solve``)."""
        return "eigh" if self.solver == "eigh" else "auto"

    def _check_nested(self, folds, cands):
        n_runs = sum(len(te) for _, te in folds) if folds else 1
        if cands.n < 2:
            raise ValueError(
                "nested=True chooses alpha in an inner CV, but a single alpha was given "
                f"(alphas={self.alphas!r}); give a grid, e.g. alphas=np.logspace(0, 6, "
                "13), or use nested=False."
            )
        min_train = 2 if self.cv == "leave-one-run-out" else int(self.cv)
        n_train = min(len(tr) for tr, _ in folds) if folds else 0
        if n_train < min_train:
            raise ValueError(
                f"nested=True with cv={self.cv!r} needs an inner CV over the training "
                f"runs of each outer fold; {n_runs} run(s) leave {n_train} for training "
                f"but {min_train} are needed. Pass more runs or use nested=False."
            )

    def _fit_nested(self, stats, folds, cands, mult, xp, squeeze):
        r, chosen = _nested(stats, folds, self.cv, cands, self.fit_intercept, mult, xp,
                            self.chunk_size, self.solver_, self._final_route())  # fmt: skip
        alpha = cands.band_alphas[chosen]
        self.nested_scores_ = r
        self.nested_alpha_ = alpha[..., 0] if squeeze else alpha

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True  # sparse features are densified per run
        tags.target_tags.multi_output = True  # one output per EEG channel
        return tags

    def _check_fitted(self):
        if not hasattr(self, "coef_"):
            raise _NotFittedError("This TRF is not fitted yet; call fit(X, Y) first.")

    @verbose
    def predict(self, X, *, verbose=None):
        """Predict the EEG from features (lags zero-padded within each run).

        Parameters
        ----------
        X : array, shape (n_times, n_features) | list of array
            Features, one array per run.
        %(verbose)s

        Returns
        -------
        Y_pred : array, shape (n_times, n_channels) | list of array
            Predictions, a list when ``X`` is a list.
        """
        self._check_fitted()
        X, _ = _check_inputs(X, None)
        single = not isinstance(X, (list, tuple))
        X_runs = [_as_2d_x(x, f"X[{ii}]") for ii, x in enumerate([X] if single else X)]
        out = []
        W = self.coef_.reshape(self.coef_.shape[0], -1).T
        for ii, x in enumerate(X_runs):
            if x.shape[1] != self.n_features_in_:
                raise ValueError(
                    f"X has {x.shape[1]} features, but TRF is expecting "
                    f"{self.n_features_in_} features as input (run {ii}); give the "
                    "features the TRF was fitted with."
                )
            pred = np.empty((x.shape[0], W.shape[1]))
            for start in range(0, x.shape[0], 2048):
                stop = min(start + 2048, x.shape[0])
                pred[start:stop] = _lag_matrix(x, self.delays_, start, stop) @ W
            pred += self.intercept_
            out.append(pred[:, 0] if getattr(self, "_y_1d", False) else pred)
        return out[0] if single else out

    @verbose
    def to_evoked(self, info, *, feature=None, verbose=None):
        """The kernels as :class:`mne.EvokedArray` (times = lags), one per feature.

        Parameters
        ----------
        info : mne.Info
            Measurement info of the ``n_channels`` EEG channels the TRF was fitted on
            (in the same order), with ``info["sfreq"]`` equal to the TRF's ``sfreq``.
        feature : int | None
            Index of the feature (``0 <= feature < n_features``); ``None`` returns all.
        %(verbose)s

        Returns
        -------
        evoked : mne.EvokedArray | list of mne.EvokedArray
            ``coef_[:, feature, :]``, shape (n_channels, n_delays), with
            ``evoked.times == times_``; a list over features when ``feature`` is
            ``None``. Data are in the units of ``y`` per unit of the feature (MNE
            reads EEG data as volts: fit on EEG in volts for correct plot scales).

        Notes
        -----
        For a backward model (``direction=-1``, fitted with ``patterns=True``) the
        evokeds hold the Haufe patterns of each reconstructed stimulus feature,
        ``patterns_[feature]`` (n_channels, n_delays) turned to forward lags:
        ``times == -times_[::-1]`` (positive: the EEG follows the stimulus).
        """
        import mne

        self._check_fitted()
        validate_type(info, mne.Info, "info")
        if self.direction == -1:
            if not hasattr(self, "patterns_"):
                raise ValueError(
                    "A backward model's weights are not brain responses; fit it with "
                    "patterns=True to get evokeds of its Haufe patterns."
                )
            data = self.patterns_[..., ::-1].transpose(1, 0, 2)  # (n_channels, n_out, L)
            times = -self.times_[::-1]
        else:
            data, times = self.coef_, self.times_
        n_ch, n_feat, _ = data.shape
        if len(info["ch_names"]) != n_ch:
            raise ValueError(
                f"info has {len(info['ch_names'])} channels but the TRF was fitted on "
                f"{n_ch}; pass the Info of the fitted EEG channels (e.g. "
                "mne.pick_info(info, picks))."
            )
        if not np.isclose(info["sfreq"], float(self.sfreq), rtol=1e-9):
            raise ValueError(
                f"info['sfreq'] is {info['sfreq']} Hz but the TRF's sfreq is {self.sfreq} "
                "Hz; pass the Info of the EEG at the rate the TRF was fitted (e.g. after "
                "raw.resample)."
            )
        if feature is None:
            features, single = range(n_feat), False
        else:
            validate_type(feature, "int", "feature")
            if isinstance(feature, bool) or not 0 <= feature < n_feat:
                raise ValueError(
                    f"feature must be an int in [0, {n_feat - 1}] (or None for all), got "
                    f"{feature!r}."
                )
            features, single = [int(feature)], True
        out = [
            mne.EvokedArray(
                data[:, f, :].copy(),
                info,
                tmin=float(times[0]),
                comment=f"TRF {'pattern' if self.direction == -1 else 'feature'} {f}",
                nave=1,
                verbose=False,
            )
            for f in features
        ]
        return out[0] if single else out

    @verbose
    def score_per_channel(self, X, y, *, verbose=None):
        """Pearson r between predicted and actual EEG per channel (runs concatenated).

        Parameters
        ----------
        X : array, shape (n_times, n_features) | list of array
            Features, one array per run.
        y : array, shape (n_times, n_channels) | list of array
            EEG, one array per run.
        %(verbose)s

        Returns
        -------
        r : ndarray, shape (n_channels,)
            Pearson correlation per channel.
        """
        self._check_fitted()
        X, y = _check_inputs(X, y)
        X_runs, Y_runs, _ = _check_runs(X, y)
        preds = [p.reshape(len(p), -1) for p in self.predict(X_runs)]
        if self.edge == "valid":  # score only the time points that were fitted
            keep = [_valid_rows(len(p), self.delays_) for p in preds]
            preds = [p[k] for p, k in zip(preds, keep)]
            Y_runs = [y[k] for y, k in zip(Y_runs, keep)]
        pred = np.concatenate(preds, axis=0)
        y = np.concatenate(Y_runs, axis=0)
        pred = pred - pred.mean(0)
        y = y - y.mean(0)
        return _safe_r(
            np.einsum("tc,tc->c", pred, y),
            np.einsum("tc,tc->c", pred, pred),
            np.einsum("tc,tc->c", y, y),
        )

    @verbose
    def score(self, X, y, *, verbose=None):
        """Mean over channels of the Pearson r of :meth:`score_per_channel`.

        Parameters
        ----------
        X : array, shape (n_times, n_features) | list of array
            Features, one array per run.
        y : array, shape (n_times, n_channels) | list of array
            EEG, one array per run.
        %(verbose)s

        Returns
        -------
        score : float
            The mean Pearson r (a scalar, so ``GridSearchCV`` works).
        """
        return float(np.mean(self.score_per_channel(X, y)))


def _check_finite(runs, X_runs, Y_runs):
    """Reject NaN and inf in the runs from their statistics, without a pass over the data.

    Every sample of ``x`` enters ``G``'s diagonal (``x^T x`` before the edge products are
    subtracted, which cannot cancel a NaN or inf) and every sample of ``y`` enters ``yy``;
    a non-finite sum sends its run through the full check, which names it.
    """
    for ii, st in enumerate(runs):
        if not (np.isfinite(st["yy"]).all() and np.isfinite(np.diagonal(st["G"])).all()):
            check_array(X_runs[ii], f"X[{ii}]")
            check_array(Y_runs[ii], f"Y[{ii}]")


def _band_grids(alphas, n_bands):
    """Raw grids (n_bands, n_alphas): one grid for all bands, or one row per band."""
    if np.ndim(alphas) == 2 and n_bands > 1:
        grids = np.stack([_check_alphas(a) for a in alphas])
        if grids.shape[0] != n_bands:
            raise ValueError(
                f"alphas has {grids.shape[0]} rows but there are {n_bands} bands; give "
                "one grid for all bands (1-D) or one row per band."
            )
        return grids
    return np.tile(_check_alphas(alphas), (n_bands, 1))


def _edge_rows(n_times, delays):
    """Row ranges whose lags reach outside the run (dropped with ``edge='valid'``)."""
    out = []
    if delays[-1] > 0:
        out.append((0, int(delays[-1])))
    if delays[0] < 0:
        out.append((n_times + int(delays[0]), n_times))
    return out


def _valid_rows(n_times, delays):
    keep = np.ones(n_times, bool)
    for lo, hi in _edge_rows(n_times, delays):
        keep[lo:hi] = False
    return keep


def _haufe(stats, runs, W, fit_intercept):
    """Haufe patterns ``cov(X_lagged) W pinv(cov(y))``, shape (P, C), over all runs."""
    G, _, _, sy, _, n = stats.centred(np.arange(stats.n_runs), fit_intercept)
    yyT = sum(r["yyT"] for r in runs)
    if fit_intercept:
        yyT = yyT - np.outer(sy, sy) / n
    return (G[0] / (n - 1)) @ W @ np.linalg.pinv(yyT / (n - 1))


class _NotFittedError(NotFittedError, RuntimeError):
    """Not fitted: scikit-learn's NotFittedError, also a RuntimeError (the earlier type)."""


def _is_run_list(X):
    """A list of runs holds arrays; a (nested) list of numbers is one array."""
    return isinstance(X, (list, tuple)) and (
        len(X) == 0 or all(hasattr(x, "shape") for x in X)
    )


def _check_inputs(X, Y):
    """Normalise array-likes to arrays or lists of runs; reject 1-D, empty or complex X."""
    if not _is_run_list(X):
        X = X if sp.issparse(X) else np.asarray(X)
        if isinstance(Y, (list, tuple)):
            Y = np.asarray(Y)
    runs = X if isinstance(X, (list, tuple)) else [X]
    for ii, x in enumerate(runs):
        shape = x.shape if sp.issparse(x) else np.asarray(x).shape
        kind = x.dtype.kind if sp.issparse(x) else np.asarray(x).dtype.kind
        if len(shape) == 1:
            raise ValueError(
                f"X (run {ii}) must be 2-D (n_times, n_features), got a 1-D array of "
                f"shape {shape}. Reshape your data with x[:, np.newaxis] if it is a "
                "single feature (e.g. an envelope)."
            )
        if len(shape) == 2 and shape[1] == 0:
            raise ValueError(
                f"Found array with 0 feature(s) (shape={shape}) while a minimum of 1 is "
                f"required; X (run {ii}) needs at least one feature column."
            )
        if kind == "c":
            raise ValueError(
                f"Complex data not supported: X (run {ii}) is complex; pass real "
                "features (e.g. np.abs(x) for an envelope)."
            )
    if Y is not None:
        for ii, y in enumerate(Y if isinstance(Y, (list, tuple)) else [Y]):
            if np.asarray(y).dtype.kind == "c":
                raise ValueError(
                    f"Complex data not supported: Y (run {ii}) is complex; pass real EEG."
                )
    return X, Y


for _name in ("fit", "predict", "to_evoked", "score_per_channel", "score"):
    fill_doc(getattr(TRF, _name))
