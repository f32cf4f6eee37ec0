"""A temporal response function estimator with scikit-learn's API and run-wise CV."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.exceptions import NotFittedError

from ..utils import check_option, fill_doc, logger, validate_type, verbose, warn
from ._lagged import (
    _as_2d_x,
    _check_run_length,
    _check_runs,
    _lag_matrix,
    _lagged_run_stats,
    _RunStats,
    _times_to_delays,
)
from ._ridge import _check_alphas, _default_alphas, _Fold, _safe_r


@fill_doc
class TRF(RegressorMixin, BaseEstimator):
    """Forward (encoding) temporal response function fitted by ridge regression.

    The lagged design is never built for the whole recording: per-run sufficient
    statistics are accumulated once, the ridge penalty is chosen per channel by
    leave-one-run-out cross-validation with one eigendecomposition per fold serving
    every alpha, and held-out correlations are computed from held-out statistics.

    Parameters
    ----------
    %(tmin_trf)s
    %(tmax_trf)s
    %(sfreq_features)s
    alphas : array-like of float | float | None
        Ridge penalties to try (raw: added to the diagonal of the centred lagged
        covariance ``X^T X``, like :class:`sklearn.linear_model.Ridge`). ``None``
        uses ``logspace(-4, 4, 9)`` times the mean eigenvalue of ``X^T X`` over all
        runs, which makes the grid independent of the feature scale (divided by the
        number of runs when ``alpha_per_run=True``).
    fit_intercept : bool
        Fit an unpenalised intercept per channel (the lagged design and the EEG are
        centred with their training means). Lags are zero-padded at run edges either
        way.
    cv : str
        Cross-validation scheme; only ``"leave-one-run-out"`` (runs are the unit).
    alpha_per_run : bool
        If ``False`` (default), ``alpha`` is added to the diagonal of the summed
        ``X^T X`` of the training runs. If ``True``, the penalty is ``alpha`` times the
        number of training runs, i.e. ``alpha`` regularises the run-averaged
        covariance as mTRFpy does (see Notes): the raw penalty is ``alpha * (n_runs -
        1)`` in the leave-one-run-out folds and ``alpha * n_runs`` in the final fit.

    Attributes
    ----------
    coef_ : ndarray, shape (n_channels, n_features, n_delays)
        The kernels, in the layout of :class:`mne.decoding.ReceptiveField`.
    intercept_ : ndarray, shape (n_channels,)
        Intercepts (zeros when ``fit_intercept=False``).
    delays_ : ndarray of int, shape (n_delays,)
        Delays in samples.
    times_ : ndarray, shape (n_delays,)
        Delays in seconds.
    alphas_ : ndarray, shape (n_alphas,)
        The raw alpha grid used.
    alpha_ : ndarray, shape (n_channels,)
        The chosen alpha per channel (argmax of the mean cross-validated r).
    cv_scores_ : ndarray, shape (n_folds, n_alphas, n_channels)
        Held-out Pearson r of every fold and alpha (``n_folds = 0`` with one run).
    n_features_in_ : int
        Number of features.

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
    """

    def __init__(
        self,
        tmin=-0.1,
        tmax=0.5,
        sfreq=None,
        alphas=None,
        fit_intercept=True,
        cv="leave-one-run-out",
        alpha_per_run=False,
    ):
        self.tmin = tmin
        self.tmax = tmax
        self.sfreq = sfreq
        self.alphas = alphas
        self.fit_intercept = fit_intercept
        self.cv = cv
        self.alpha_per_run = alpha_per_run

    def _validate(self):
        if self.sfreq is None:
            raise ValueError(
                "sfreq must be given (the sampling rate of features and EEG in Hz), got "
                "None; e.g. TRF(tmin=-0.1, tmax=0.5, sfreq=128.0)."
            )
        validate_type(self.fit_intercept, bool, "fit_intercept")
        validate_type(self.alpha_per_run, bool, "alpha_per_run")
        check_option("cv", self.cv, ("leave-one-run-out",))
        return _times_to_delays(self.tmin, self.tmax, self.sfreq)

    @verbose
    def fit(self, X, y, *, verbose=None):
        """Fit the TRF.

        Parameters
        ----------
        X : array, shape (n_times, n_features) | list of array
            Stimulus features, one array per run (a single array is one run). Sparse
            arrays are densified per run.
        y : array, shape (n_times, n_channels) | list of array
            EEG, one array per run, with the same number of samples as ``X``.
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
        X_runs, Y_runs, _ = _check_runs(X, Y)
        y_1d = all(
            np.asarray(y).ndim == 1 for y in (Y if isinstance(Y, (list, tuple)) else [Y])
        )
        for ii, x in enumerate(X_runs):
            _check_run_length(x.shape[0], delays, ii)
        n_runs = len(X_runs)
        n_feat, n_ch = X_runs[0].shape[1], Y_runs[0].shape[1]
        L = len(delays)
        logger.info(
            f"Fitting a TRF: {n_runs} run(s), {n_feat} feature(s) x {L} delays, "
            f"{n_ch} channel(s)"
        )
        runs = [_lagged_run_stats(x, y, delays) for x, y in zip(X_runs, Y_runs)]
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
        G, H, sx, sy, _, n = stats.centred(all_runs, fi)
        # Penalty multiplier for m training runs: alpha regularises the summed or
        # (alpha_per_run) the run-averaged covariance
        def mult(m):
            return float(m) if self.alpha_per_run else 1.0

        if self.alphas is None:
            alphas = _default_alphas(G) / mult(n_runs)
        else:
            alphas = _check_alphas(self.alphas)[np.newaxis]
        n_alphas = alphas.shape[1]
        if n_runs == 1 and n_alphas > 1:
            raise ValueError(
                f"Choosing among {n_alphas} alphas needs leave-one-run-out CV, but X and Y "
                "hold a single run. Pass lists of runs (e.g. split a long recording into "
                "segments) or give a single alpha, e.g. alphas=[1e3]."
            )
        scores = np.empty((n_runs if n_runs > 1 else 0, n_alphas, n_ch))
        for j in range(scores.shape[0]):
            train = np.setdiff1d(all_runs, [j])
            Gt, Ht = stats.centred(train, fi)[:2]
            Gj, Hj, _, _, yyj, _ = stats.centred([j], fi)
            scores[j] = _Fold(Gt, Ht).r_path(Gj, Hj, yyj, alphas * mult(n_runs - 1))[:, 0]
        if n_alphas > 1:
            best = np.argmax(scores.mean(0), axis=0)
            on_edge = (best == 0) | (best == n_alphas - 1)
            if on_edge.any():
                warn(
                    f"The chosen alpha lies on the edge of the grid for {on_edge.sum()} of "
                    f"{n_ch} channel(s) (grid {alphas[0, 0]:.3g} ... {alphas[0, -1]:.3g}); "
                    "extend the alphas grid on that side."
                )
        else:
            best = np.zeros(n_ch, int)
        alpha = alphas[0, best]
        fold = _Fold(G, H)
        W = fold.weights(alpha[np.newaxis] * mult(n_runs))[0]  # (P, C)
        self.coef_ = W.T.reshape(n_ch, n_feat, L)
        self.intercept_ = (sy - sx[0] @ W) / n if fi else np.zeros(n_ch)
        self.delays_ = delays
        self.times_ = delays / float(self.sfreq)
        self.alphas_ = alphas[0]
        self.alpha_ = alpha
        self.cv_scores_ = scores
        self.n_features_in_ = n_feat
        self._y_1d = y_1d
        return self

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
        """
        import mne

        self._check_fitted()
        validate_type(info, mne.Info, "info")
        n_ch, n_feat, _ = self.coef_.shape
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
                self.coef_[:, f, :].copy(),
                info,
                tmin=float(self.times_[0]),
                comment=f"TRF feature {f}",
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
        pred = np.concatenate(self.predict(X_runs), axis=0)
        if pred.ndim == 1:
            pred = pred[:, np.newaxis]
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
