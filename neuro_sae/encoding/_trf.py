"""A temporal response function estimator with scikit-learn's API and run-wise CV."""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator

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
class TRF(BaseEstimator):
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
        runs, which makes the grid independent of the feature scale.
    fit_intercept : bool
        Fit an unpenalised intercept per channel (the lagged design and the EEG are
        centred with their training means). Lags are zero-padded at run edges either
        way.
    cv : str
        Cross-validation scheme; only ``"leave-one-run-out"`` (runs are the unit).

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
    ):
        self.tmin = tmin
        self.tmax = tmax
        self.sfreq = sfreq
        self.alphas = alphas
        self.fit_intercept = fit_intercept
        self.cv = cv

    def _validate(self):
        if self.sfreq is None:
            raise ValueError(
                "sfreq must be given (the sampling rate of features and EEG in Hz), got "
                "None; e.g. TRF(tmin=-0.1, tmax=0.5, sfreq=128.0)."
            )
        validate_type(self.fit_intercept, bool, "fit_intercept")
        check_option("cv", self.cv, ("leave-one-run-out",))
        return _times_to_delays(self.tmin, self.tmax, self.sfreq)

    @verbose
    def fit(self, X, Y, *, verbose=None):
        """Fit the TRF.

        Parameters
        ----------
        X : array, shape (n_times, n_features) | list of array
            Stimulus features, one array per run (a single array is one run). Sparse
            arrays are densified per run.
        Y : array, shape (n_times, n_channels) | list of array
            EEG, one array per run, with the same number of samples as ``X``.
        %(verbose)s

        Returns
        -------
        self : TRF
            The fitted estimator.
        """
        delays = self._validate()
        X_runs, Y_runs, _ = _check_runs(X, Y)
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
        if self.alphas is None:
            alphas = _default_alphas(G)
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
            scores[j] = _Fold(Gt, Ht).r_path(Gj, Hj, yyj, alphas)[:, 0]
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
        W = fold.weights(alpha[np.newaxis])[0]  # (P, C)
        self.coef_ = W.T.reshape(n_ch, n_feat, L)
        self.intercept_ = (sy - sx[0] @ W) / n if fi else np.zeros(n_ch)
        self.delays_ = delays
        self.times_ = delays / float(self.sfreq)
        self.alphas_ = alphas[0]
        self.alpha_ = alpha
        self.cv_scores_ = scores
        self.n_features_in_ = n_feat
        return self

    def _check_fitted(self):
        if not hasattr(self, "coef_"):
            raise RuntimeError("This TRF is not fitted yet; call fit(X, Y) first.")

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
        single = not isinstance(X, (list, tuple))
        X_runs = [_as_2d_x(x, f"X[{ii}]") for ii, x in enumerate([X] if single else X)]
        out = []
        W = self.coef_.reshape(self.coef_.shape[0], -1).T
        for ii, x in enumerate(X_runs):
            if x.shape[1] != self.n_features_in_:
                raise ValueError(
                    f"X run {ii} has {x.shape[1]} features but the TRF was fitted with "
                    f"{self.n_features_in_}."
                )
            pred = np.empty((x.shape[0], W.shape[1]))
            for start in range(0, x.shape[0], 2048):
                stop = min(start + 2048, x.shape[0])
                pred[start:stop] = _lag_matrix(x, self.delays_, start, stop) @ W
            out.append(pred + self.intercept_)
        return out[0] if single else out

    @verbose
    def score_per_channel(self, X, Y, *, verbose=None):
        """Pearson r between predicted and actual EEG per channel (runs concatenated).

        Parameters
        ----------
        X : array, shape (n_times, n_features) | list of array
            Features, one array per run.
        Y : array, shape (n_times, n_channels) | list of array
            EEG, one array per run.
        %(verbose)s

        Returns
        -------
        r : ndarray, shape (n_channels,)
            Pearson correlation per channel.
        """
        X_runs, Y_runs, _ = _check_runs(X, Y)
        pred = np.concatenate(self.predict(X_runs), axis=0)
        y = np.concatenate(Y_runs, axis=0)
        pred = pred - pred.mean(0)
        y = y - y.mean(0)
        return _safe_r(
            np.einsum("tc,tc->c", pred, y),
            np.einsum("tc,tc->c", pred, pred),
            np.einsum("tc,tc->c", y, y),
        )

    @verbose
    def score(self, X, Y, *, verbose=None):
        """Mean over channels of the Pearson r of :meth:`score_per_channel`.

        Parameters
        ----------
        X : array, shape (n_times, n_features) | list of array
            Features, one array per run.
        Y : array, shape (n_times, n_channels) | list of array
            EEG, one array per run.
        %(verbose)s

        Returns
        -------
        score : float
            The mean Pearson r (a scalar, so ``GridSearchCV`` works).
        """
        return float(np.mean(self.score_per_channel(X, Y)))


for _name in ("fit", "predict", "score_per_channel", "score"):
    fill_doc(getattr(TRF, _name))
