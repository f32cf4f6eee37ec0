"""Circular-shift permutation null for univariate sweeps, with max-T family-wise control."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import scipy.fft as sfft
from threadpoolctl import threadpool_limits

from .. import __version__
from ..encoding import SweepResult, check_runs
from ..io import SavedResult, hash_array, hash_config, read_result
from ..utils import (
    check_device,
    check_int,
    check_n_jobs,
    check_option,
    check_positive,
    check_random_state,
    fill_doc,
    logger,
    progress_bar,
    tidy_frame,
    validate_type,
    verbose,
    warn,
)
from ._common import _rs_repr, _save_table
from ._lowrank import _check_rank_tol
from ._mismatch import _crop, _mismatch_null
from ._multicomp import _check_n_permutations, _fdr_floor_message, fdr_correction
from ._refit import _refit_null_iter
from ._refit_device import _refit_null_iter_torch
from ._shifts import _draw_shifts, _resolve_shift_step
from ._tail import _GPD_MIN_EXCEED, _GPD_MIN_PERMUTATIONS, _gpd_chunk, _gpd_many

_NULL_TYPES = {
    "refit": "circular-shift refit (all runs shifted, folds refit with the observed alphas)",
    "fixed": "circular-shift (fixed fold models, held-out EEG shifted)",
    "mismatch": "trial-mismatch refit (stimulus of run i against EEG of run j, runs cropped "
    "to the shortest, folds refit with the observed alphas)",
}
_HYPER = {
    "refit": "held fixed at the observed alphas (sweep.alpha)",
    "fixed": "observed fold weights (sweep.weights)",
    "mismatch": "held fixed at the observed alphas (sweep.alpha)",
}
_HYPER_NESTED = "re-chosen in every permutation by the sweep's nested CV over sweep.alphas"
_NULL_TYPE = _NULL_TYPES["fixed"]  # default of results saved before the refit null


@dataclass(repr=False)
class PermutationResult(SavedResult):
    """Results of :func:`sweep_permutation_test`.

    Attributes
    ----------
    r : ndarray, shape (n_features, n_channels)
        Observed statistic: mean over folds of held-out r, recomputed by the same
        code as the null (the permutation without shift; for ``"refit"`` equal to
        ``sweep.r`` up to float32 rounding, alphas re-chosen by the nested CV or held
        at ``sweep.alpha``; from the float32 fold weights for ``"fixed"``).
    p_fwe : ndarray, shape (n_features, n_channels)
        Family-wise corrected p-values (max-T over features x channels).
    p_uncorrected : ndarray, shape (n_features, n_channels)
        Uncorrected p-values from the same permutations.
    p_fdr : ndarray, shape (n_features, n_channels)
        Benjamini-Hochberg adjusted ``p_uncorrected`` (method ``"fdr_bh"``).
    max_null : ndarray, shape (n_permutations,)
        Maximum over features x channels of each permutation's statistic.
    shifts : ndarray of int, shape (n_permutations, n_runs)
        Circular shift (samples, ``np.roll`` convention) of each run in each
        permutation (``"refit"``: in training and test; ``"fixed"``: as held-out run);
        for ``"mismatch"`` the EEG run paired with each stimulus run.
    null : ndarray of float32, shape (n_permutations, n_features, n_channels) | None
        The full null, when ``return_null=True`` (for group-level pooling).
    n_permutations : int
        Number of permutations.
    min_shift_s : float
        Smallest circular distance of a shift, in seconds.
    random_state : int | str | None
        The random state given (a Generator is recorded by its type name).
    null_type : str
        How the null was built (also ``provenance["null_type"]``: ``"refit"`` or
        ``"fixed"``).
    fdr_method : str
        The FDR method of ``p_fdr``.
    feature_names, ch_names : list of str
        Names.
    provenance : dict
        Versions, ``null_type``, ``alpha_selection``, ``tail`` (``"empirical"`` or
        ``"gpd"``) and ``n_gpd`` (tests whose p-value came from the tail fit),
        ``sided`` (1), ``n_jobs``, ``config_hash`` (hash of the sweep settings and of
        the test's parameters) and, for ``"mismatch"``, ``n_times_cropped``.
    """

    r: np.ndarray
    p_fwe: np.ndarray
    p_uncorrected: np.ndarray
    p_fdr: np.ndarray
    max_null: np.ndarray
    shifts: np.ndarray
    null: np.ndarray | None = None
    n_permutations: int = 0
    min_shift_s: float = 0.0
    random_state: object = None
    null_type: str = _NULL_TYPE
    fdr_method: str = "fdr_bh"
    feature_names: list = field(default_factory=list)
    ch_names: list = field(default_factory=list)
    provenance: dict = field(default_factory=dict)

    def __repr__(self):
        n_sig = int(np.sum(self.p_fwe < 0.05))
        return (
            f"<PermutationResult | {self.r.shape[0]} features x {self.r.shape[1]} channels, "
            f"{self.n_permutations} permutations, {n_sig} with p_fwe < 0.05>"
        )

    @verbose
    def to_frame(self, alpha=0.05, *, verbose=None):
        """Tidy table: one row per feature x channel.

        Parameters
        ----------
        alpha : float
            Family-wise error level for the ``significant`` column.
        %(verbose)s

        Returns
        -------
        df : pandas.DataFrame
            Columns ``feature``, ``channel``, ``r``, ``p_uncorrected``, ``p_fdr``,
            ``p_fwe``, ``significant`` (``p_fwe < alpha``).
        """
        return tidy_frame(
            self.feature_names,
            self.ch_names,
            r=self.r,
            p_uncorrected=self.p_uncorrected,
            p_fdr=self.p_fdr,
            p_fwe=self.p_fwe,
            significant=self.p_fwe < alpha,
        )

    _kind = "PermutationResult"

    def _to_saved(self):
        arrays = {k: np.asarray(getattr(self, k)) for k in _PERM_ARRAYS}
        if self.null is not None:
            arrays["null"] = np.asarray(self.null)
        return arrays, {k: getattr(self, k) for k in _PERM_META}

    @classmethod
    def _from_saved(cls, arrays, fields, fname):
        data = {k: arrays[k] for k in _PERM_ARRAYS}
        data["null"] = arrays["null"] if "null" in arrays else None
        data.update(fields)
        data["feature_names"] = list(data["feature_names"])
        data["ch_names"] = list(data["ch_names"])
        return cls(**data)

    def save_table(self, fname, alpha=0.05, *, overwrite=False):
        """Write :meth:`to_frame` to parquet (atomic; provenance in the file metadata).

        Parameters
        ----------
        fname : str | os.PathLike
            Destination ending in ``.parquet``.
        alpha : float
            Family-wise level of the ``significant`` column.
        overwrite : bool
            Replace an existing file.

        Returns
        -------
        fname : pathlib.Path
            The written path.
        """
        return _save_table(self.to_frame(alpha), fname, self.provenance, overwrite=overwrite)


_PERM_ARRAYS = ("r", "p_fwe", "p_uncorrected", "p_fdr", "max_null", "shifts")
_PERM_META = (
    "n_permutations", "min_shift_s", "random_state", "null_type", "fdr_method",
    "feature_names", "ch_names", "provenance",
)  # fmt: skip
fill_doc(PermutationResult.to_frame)


@fill_doc
@verbose
def read_permutation_result(fname, *, verbose=None):
    """Read a :class:`PermutationResult` saved with :meth:`PermutationResult.save`.

    Parameters
    ----------
    fname : str | os.PathLike
        The ``.npz`` file.
    %(verbose)s

    Returns
    -------
    result : PermutationResult
        The result.
    """
    return read_result(fname, PermutationResult)


def _predict_chunk(x, w, delays):
    """Predictions without intercept, shape (F, C, T), from x (T, F) and w (F, C, L)."""
    n_times, n_feat = x.shape
    xt = np.zeros((n_feat, len(delays), n_times))
    for li, d in enumerate(delays):
        d = int(d)
        if d >= 0:
            xt[:, li, d:] = x[: n_times - d].T
        else:
            xt[:, li, :d] = x[-d:].T
    return w @ xt


@fill_doc
@verbose
def sweep_permutation_test(
    X_runs,
    Y_runs,
    sweep,
    *,
    n_permutations=1000,
    min_shift_s=None,
    random_state=None,
    return_null=False,
    chunk_size=16,
    null="refit",
    alpha=0.05,
    rank_tol=None,
    device="cpu",
    alpha_selection="nested",
    tail="empirical",
    n_jobs=None,
    shift_step="auto",
    verbose=None,
):
    """Circular-shift permutation test of a univariate sweep, with max-T FWE control.

    In each permutation every run's EEG is circularly shifted: the same shift for
    every channel and feature (so the spatial and across-feature dependence is kept
    for max-T), an independent random shift per run. The statistic of a permutation
    is the mean over folds of the held-out Pearson r, exactly like ``sweep.r``.

    ``null="refit"`` (default, valid): the shifted EEG is used consistently in
    training and as held-out data, and every outer fold is refit. With
    ``alpha_selection="nested"`` (default) the alpha of every fold, feature and
    channel is chosen in each permutation exactly as the sweep chose it on the
    observed data (inner leave-one-run-out CV over the same grid), so the observed
    statistic and the permuted ones come from the same procedure (exchangeable
    under the null). Only the EEG moves, so every (outer and inner) fold's lagged
    gram and its eigendecomposition are shared by all permutations; the lagged
    cross-products of every shift come from one FFT cross-correlation per run and
    feature, with an exact correction of the zero-padded edges (no lag matrices, no
    refits from scratch).

    ``null="fixed"`` (anti-conservative, see Notes): each fold's stored model is kept
    and only its held-out run is shifted.

    ``null="mismatch"``: trial mismatch. Each permutation is a random permutation
    ``pi`` of the runs, and the features of run ``i`` are paired with the EEG of run
    ``pi[i]`` (all permutations of the runs are drawn uniformly, the identity
    included, which keeps the test exact). Runs of different lengths are cropped to
    the shortest one (their first samples), and the observed statistic is
    recomputed on the cropped runs (so ``result.r`` may differ from ``sweep.r``).
    Folds are refit with the observed alphas as for ``"refit"``. With ``n_runs``
    runs there are only ``n_runs!`` pairings; the EEG must not be locked to the
    stimulus across runs (different stimuli per run).

    Parameters
    ----------
    X_runs : list of array | list of scipy.sparse array, shape (n_times, n_features)
        The features given to the sweep.
    Y_runs : list of array, shape (n_times, n_channels)
        The EEG given to the sweep.
    sweep : SweepResult
        The sweep fitted on these runs.
    n_permutations : int
        Number of permutations.
    min_shift_s : float | None
        Shifts whose circular distance from zero is below this (in seconds) are
        excluded. ``None`` uses ``max(|tmin|, |tmax|) + 1`` s: beyond the lag
        window plus one second of EEG autocorrelation (1-8 Hz EEG decorrelates
        within a few hundred ms). Must be below half of the shortest run.
    %(random_state)s
    return_null : bool
        Also return the full null, shape (n_permutations, n_features, n_channels),
        float32, e.g. for :func:`group_permutation_test` with ``"pooled-null"``.
    chunk_size : int
        Features per chunk of results. With ``null="refit"`` and ``n_jobs > 1``
        features run one per thread (BLAS single-threaded); each worker holds the
        float32 cross-correlation tables of one feature,
        ``n_channels * n_times * 4`` bytes per run, plus ``(n_runs + 4)`` MB of
        work space (permutations are processed in blocks). With ``"fixed"`` memory
        is about ``chunk_size * n_channels * n_times * 40`` bytes; ``"mismatch"``
        holds ``n_runs**2 * n_delays * n_channels * 8`` bytes per feature.
    null : ``"refit"`` | ``"fixed"`` | ``"mismatch"``
        How the null is built (see above). ``"fixed"`` warns: it is
        anti-conservative for the fold-mean statistic.
    alpha : float
        The family-wise level the test is meant for: a warning is emitted when the
        smallest attainable p-value, ``1 / (n_permutations + 1)``, is above it.
    rank_tol : float | None
        ``None`` (default): the exact refit. A float in (0, 1), e.g. ``1e-6``
        (``null="refit"`` only): rank-truncated refit, for band-limited features
        (see Notes). The rank used per feature and the number of channels that
        used it are in ``result.provenance["ranks"]`` and ``["lowrank_channels"]``.
    device : str
        Where the ``"refit"`` null is computed: ``"cpu"`` (default, NumPy/SciPy,
        features in threads), ``"cuda"`` or ``"cuda:N"`` (PyTorch on a GPU) or
        ``"torch-cpu"`` (the torch code on the CPU, for testing). The torch
        backend runs the same algorithm in float32 (FFT tables, index gathers,
        one batched product per fold for ``chunk_size`` features at a time; the
        fold operators are built in float64 on the CPU); like the NumPy float32
        null it agrees with the float64 refit to float32 rounding (< 1e-5 in r in
        ``tests/stats/test_refit_torch.py``; ~5e-5 on band-passed features with
        alphas down to 1e-2, ``benchmarks/bench_sweep_null.py``). It supports ``null="refit"`` with
        ``rank_tol=None`` only. Recorded in ``result.provenance["device"]``.
    alpha_selection : ``"nested"`` | ``"observed"``
        How the refit folds of each permutation get their alphas (``"refit"`` and
        ``"mismatch"`` nulls; irrelevant with a single alpha). ``"nested"``
        (default): chosen in every permutation by the same nested CV as in the
        sweep (valid; costs about ``(n_runs - 1) * (n_alphas + 2) / 2`` times the
        ``"observed"`` null, CPU exact refit only). ``"observed"``: held at the
        alphas the sweep chose on the observed data (faster; slightly
        anti-conservative with an alpha grid, see Notes).
    tail : ``"empirical"`` | ``"gpd"``
        ``"empirical"`` (default): p-values count the permutations, so they cannot
        go below ``1 / (n_permutations + 1)``. ``"gpd"``: below the floor, where
        fewer than 10 permutations reach the observed value, the p-value comes from
        a generalised Pareto fit to the tail of the null (Winkler et al. 2016; see
        Notes and :func:`gpd_pvalue`), for ``p_uncorrected`` (hence ``p_fdr``) and
        for ``p_fwe`` (the tail of ``max_null``). Where the fit is poor the
        empirical p-value is kept. Needs at least 300 permutations (1000 or more
        advised). Recorded in ``result.provenance["tail"]``.
    %(n_jobs)s
        With ``null="refit"`` on the CPU, features of a chunk run in ``n_jobs``
        threads (BLAS limited to one thread inside); ``n_jobs=1`` starts no thread.
    shift_step : ``"auto"`` | int
        Shifts are drawn from the multiples of this many samples (uniformly among
        those allowed by ``min_shift_s``; the drawn shifts are in ``result.shifts``).
        ``1``: any sample. ``"auto"`` (default): the kernels' spacing when the sweep
        was fitted in a basis of whole-sample translates
        (``lag_basis(..., placement="inside")``) and the spacing divides every run's
        length, else 1. Such a sweep's refit null then reads every ``spacing``-th
        entry of its cross-correlation tables only, from a spectrum folded
        ``spacing`` times (several times faster; a lattice of shifts ``spacing /
        sfreq`` s apart is as valid a circular-shift null as any sample).
        Recorded in ``result.provenance["shift_step"]``.
    %(verbose)s

    Returns
    -------
    result : PermutationResult
        Observed r, ``p_fwe`` (max-T), uncorrected and FDR p-values, the maxima.

    Notes
    -----
    With an alpha grid the observed statistic had its alphas tuned on the observed
    data. Holding the permutations at those alphas (``alpha_selection="observed"``)
    does not repeat that tuning, which can favour the observed data (a family-wise
    error of 0.058, SE 0.0035, at 0.05 was reported for 5 alphas over 4000 null
    simulations). ``alpha_selection="nested"`` repeats the tuning in every
    permutation, so observed and permuted statistics come from one procedure.
    ``benchmarks/bench_calibration.py`` (4000 null simulations of 3 runs of 3 s,
    99 permutations, seed 20261201; binomial SE 0.0034, valid band [0.04, 0.06])
    measured, at 0.05:

    ========  ===================  ======  =====
    alphas    alpha_selection      FWER    SE
    ========  ===================  ======  =====
    1         either (same test)   0.0597  0.0037
    5         ``"nested"``         0.0587  0.0037
    13        ``"nested"``         0.0583  0.0037
    5         ``"observed"``       0.0607  0.0038
    13        ``"observed"``       0.0590  0.0037
    ========  ===================  ======  =====

    Neither grows with the grid, and most of the excess over 0.05 is already there
    with a single alpha (the circular-shift null on such short runs), but
    ``"observed"`` with 5 alphas leaves the band, so ``"nested"`` stays the default
    and ``"observed"`` is the fast option (about ``(n_runs - 1) * (n_alphas + 2) / 2``
    times cheaper; the SAE-scale null of ``benchmarks/bench_sweep_null.py --scale``
    uses it). The products run in float32 on per-run centred EEG (error in r
    ~1e-6 at moderate alphas, up to ~1e-4 with tiny chosen alphas; far below the
    null's spread); the observed statistic goes through the same code (the
    permutation with no shift), so it is exchangeable with the permuted ones.

    With ``rank_tol`` each feature's refits run in a common basis ``Q`` of its lag
    space, the top ``q`` eigenvectors of the feature's lag covariance ``M`` over all
    runs (globally centred). A channel uses the basis when the discarded
    eigenvalue mass ``lam_perp`` is at most ``rank_tol * min(a_c, lam_1)``
    (``a_c``: the smallest alpha the folds use for that feature and channel;
    ``lam_1``: the top eigenvalue), the other channels run the exact refit; ``q``
    is chosen per feature to minimise the work. Every fold's training and held-out
    grams are dominated by ``M``, so the weights outside ``span(Q)`` are at most
    ``sqrt(lam_perp) ||y_train|| / alpha`` and change the held-out prediction by at
    most ``(1 + sqrt(lam_1 / (4 alpha))) (lam_perp / alpha) ||y_train||``:
    ``O(lam_perp / alpha)``; relative to the prediction itself (each lag
    direction ``i`` contributes ``lam_i / (lam_i + alpha)`` of its correlation
    with the EEG) the error is about ``lam_perp (1 / alpha + 1 / lam_1)``, hence the
    rule. Band-passed features (1-8 Hz, like the EEG) have
    effective rank about ``2 * bandwidth * lag span`` plus a few (plus a floor of
    eigenvalues from the filter's stop band, ~1e-7 to 1e-5 of the top one for
    ``mne.filter.filter_data``), so ``q`` can be a fraction of ``n_lags``; for white
    features nothing can be dropped, ``q = n_lags`` and the result is the exact
    refit. The observed statistic goes through the same basis. Measured agreement
    with the exact refit on band-passed features: ~2e-6 in r at ``rank_tol=1e-4``,
    ~2e-5 at ``1e-3`` (``tests/stats/test_lowrank.py``). The gain depends on the
    chosen alphas: a channel with an alpha below the floor eigenvalues (nearly
    unregularised, as the nested CV often picks under the null with a wide grid)
    cannot drop them and runs the exact path, and the whole feature does when few
    channels could use the basis; at best (all channels at ``q ~ 20`` of 78 lags)
    the null was ~2.7x faster than the exact one.

    ``p_fwe = (1 + #{max_null >= r}) / (1 + n_permutations)`` and
    ``p_uncorrected = (1 + #{null >= r}) / (1 + n_permutations)`` per test (one-sided:
    an encoding effect is a positive r). These cannot go below
    ``1 / (n_permutations + 1)``: with ``m`` tests, Benjamini-Hochberg needs at least
    ``m / (k q)`` permutations to reject ``k`` tests at level ``q``, so at SAE scale
    (14,208 tests) FDR with 1000 permutations finds nothing that max-T misses. A
    warning says so (and how many permutations it would need) when tests sit at
    the floor and BH cannot reject them; ``tail="gpd"`` extrapolates the tail. With ``null="refit"`` the observed r is
    recomputed in float64 from the data and ``sweep.alpha`` (equal to ``sweep.r`` up
    to rounding); with ``"fixed"`` from the stored float32 fold weights.

    .. warning:: The ``"fixed"`` null is anti-conservative for the mean over folds.
       Fold ``j``'s model is trained on the *unshifted* EEG of the other runs, so
       under the null the fold correlations share terms (``r_j`` and ``r_k`` both
       contain ``a_j . K . a_k`` with ``a_i = X_i^T y_i``) and the observed mean has
       about twice the variance of the null built from independent shifts: on null
       data the family-wise error of max-T is about 0.2 at a nominal 0.05 (see
       ``tests/stats/test_permutation.py``). Each single fold's r is tested validly.
       The ``"refit"`` null shifts training and held-out EEG consistently, so the
       observed statistic is exchangeable with the permuted ones (up to the fixed
       hyperparameters).
    """
    validate_type(sweep, SweepResult, "sweep")
    n_permutations = check_int(n_permutations, "n_permutations")
    chunk_size = check_int(chunk_size, "chunk_size")
    validate_type(return_null, bool, "return_null")
    check_option("null", null, ("refit", "fixed", "mismatch"))
    check_option("alpha_selection", alpha_selection, ("nested", "observed"))
    check_option("tail", tail, ("empirical", "gpd"))
    n_jobs = check_n_jobs(n_jobs)
    rank_tol = _check_rank_tol(rank_tol)
    device = check_device(device)
    if device != "cpu" and (null != "refit" or rank_tol is not None):
        raise ValueError(
            f'device={device!r} supports null="refit" with rank_tol=None only, got '
            f"null={null!r} and rank_tol={rank_tol!r}; pass device='cpu' or use "
            f'null="refit" without rank_tol.'
        )
    if rank_tol is not None and null != "refit":
        raise ValueError(
            f'rank_tol applies to null="refit" only, got null={null!r} with '
            f'rank_tol={rank_tol!r}; pass rank_tol=None or use null="refit".'
        )
    if sweep.basis.size and (null == "mismatch" or rank_tol is not None):
        raise ValueError(
            f"The sweep was fitted in a lag basis of {sweep.basis.shape[1]} kernels; "
            f"null={null!r} with rank_tol={rank_tol!r} is not supported for it. Use "
            'null="refit" with rank_tol=None (it refits in the same basis).'
        )
    if sweep.test_runs.size and null != "refit":
        raise ValueError(
            f"The sweep was fitted with test_runs={sweep.test_runs.tolist()} (a predefined "
            f'split); null={null!r} supports leave-one-run-out sweeps only. Use null="refit" '
            "(it refits the split: development runs for training, test runs for r)."
        )
    nested = alpha_selection == "nested" and np.shape(sweep.alphas)[-1] > 1
    if nested and (null == "mismatch" or device != "cpu" or rank_tol is not None):
        what = (
            'null="mismatch"' if null == "mismatch"
            else f"device={device!r}" if device != "cpu" else f"rank_tol={rank_tol!r}"
        )  # fmt: skip
        raise ValueError(
            f'alpha_selection="nested" (the default) runs on the CPU exact refit null '
            f"only, got {what} with a grid of {np.shape(sweep.alphas)[-1]} alphas; pass "
            'alpha_selection="observed" (faster, slightly anti-conservative with a '
            "grid), or null=\"refit\", device='cpu', rank_tol=None, or fit the sweep "
            "with a single alpha."
        )
    _check_n_permutations(n_permutations, alpha)
    if tail == "gpd" and n_permutations < _GPD_MIN_PERMUTATIONS:
        raise ValueError(
            f'tail="gpd" needs at least {_GPD_MIN_PERMUTATIONS} permutations to fit the '
            f"tail of the null (30 exceedances in its top 10 %), got {n_permutations}; "
            'use n_permutations=1000 or more, or tail="empirical".'
        )
    if null == "fixed":
        warn(
            'null="fixed" is anti-conservative for the mean over folds (family-wise '
            'error about 0.2 at a nominal 0.05 on null data); use null="refit".',
        )
    X_runs, Y_runs, _ = check_runs(
        X_runs, Y_runs, allow_sparse=True, x_name="X_runs", y_name="Y_runs"
    )
    n_times = np.array([y.shape[0] for y in Y_runs])
    R, F, C = len(Y_runs), sweep.n_features, sweep.n_channels
    if R != len(sweep.n_times) or np.any(n_times != sweep.n_times):
        raise ValueError(
            f"The runs have {n_times.tolist()} samples but the sweep was fitted on runs of "
            f"{np.asarray(sweep.n_times).tolist()}; pass the X_runs and Y_runs given to the "
            "sweep."
        )
    if X_runs[0].shape[1] != F or Y_runs[0].shape[1] != C:
        raise ValueError(
            f"X_runs/Y_runs have {X_runs[0].shape[1]} features and {Y_runs[0].shape[1]} "
            f"channels but the sweep has {F} and {C}."
        )
    if null == "mismatch":
        res = _mismatch_test(X_runs, Y_runs, sweep, n_permutations, random_state, return_null,
                             tail)  # fmt: skip
        _warn_fdr_floor(res, alpha)
        return res
    if min_shift_s is None:
        min_shift_s = max(abs(sweep.tmin), abs(sweep.tmax)) + 1.0
    check_positive(min_shift_s, "min_shift_s", strict=False)
    min_shift = int(np.ceil(min_shift_s * sweep.sfreq))
    if 2 * min_shift >= n_times.min():
        raise ValueError(
            f"min_shift_s={min_shift_s} s ({min_shift} samples) leaves no allowed shift in "
            f"the shortest run ({n_times.min()} samples at {sweep.sfreq:g} Hz); it must be "
            f"below {n_times.min() / (2 * sweep.sfreq):.3g} s."
        )
    step = _resolve_shift_step(shift_step, sweep, null, n_times, min_shift)
    rng = check_random_state(random_state)
    shifts = _draw_shifts(rng, n_times, min_shift, n_permutations, step)
    logger.info(
        f"Circular-shift {null} null: {n_permutations} permutations, {F} features x {C} "
        f"channels, {R} folds, shifts >= {min_shift} samples"
        + ("" if step == 1 else f", multiples of {step} samples")
    )
    r_obs = np.empty((F, C))
    count = np.zeros((F, C), np.int64)
    max_null = np.full(n_permutations, -np.inf)
    p_tail = np.full((F, C), np.nan)
    out_null = np.empty((n_permutations, F, C), np.float32) if return_null else None
    ranks = np.tile(np.array([len(sweep.delays), 0], np.int64), (F, 1))  # (q, n_low)
    if null == "refit":
        chunks = _refit_chunks(
            X_runs, Y_runs, sweep, shifts, chunk_size, rank_tol, ranks, device, n_jobs, nested
        )  # fmt: skip
    else:
        chunks = _fixed_chunks(X_runs, Y_runs, sweep, shifts, chunk_size)
    n_chunks = -(-F // chunk_size)
    # Many small products: BLAS threads add overhead and stall badly when the cores
    # are shared (measured 10x slower with 2 BLAS threads on a busy 2-core machine);
    # the refit null runs feature chunks in Python threads instead.
    with threadpool_limits(limits=1, user_api="blas"):
        for sl, obs, acc in progress_bar(chunks, total=n_chunks, desc="Null", unit="chunk"):
            # obs (F_chunk, C); acc (F_chunk, C, n_permutations)
            r_obs[sl] = obs
            max_null = np.maximum(max_null, acc.max(axis=(0, 1)))
            count[sl] = np.sum(acc >= obs[..., np.newaxis], axis=-1)
            if tail == "gpd":
                p_tail[sl] = _gpd_chunk(obs, acc, count[sl])
            if return_null:
                out_null[:, sl] = acc.transpose(2, 0, 1)
    extra = dict(n_runs=int(R), device=device, n_jobs=int(n_jobs),
                 alpha_selection=alpha_selection if null != "fixed" else None)  # fmt: skip
    if step != 1:  # absent for shifts on every sample: earlier hashes unchanged
        extra["shift_step"] = step
    if rank_tol is not None:
        extra.update(
            rank_tol=rank_tol, ranks=ranks[:, 0].tolist(), lowrank_channels=ranks[:, 1].tolist()
        )
    res = _make_result(
        sweep, r_obs, count, max_null, shifts, out_null, n_permutations, min_shift_s,
        random_state, null, extra, tail, p_tail,
    )  # fmt: skip
    _warn_fdr_floor(res, alpha)
    return res


def _warn_fdr_floor(res, q):
    """Log (at WARNING) when tests sit at the permutation floor and BH cannot reject them.

    A log message, not a Python warning: the result is valid, only ``p_fdr`` is
    limited; :func:`fdr_correction` with ``n_permutations`` emits the warning.
    """
    if res.provenance.get("tail") == "gpd":
        return
    msg = _fdr_floor_message(res.p_uncorrected, res.n_permutations, q)
    if msg:
        logger.warning(msg + "; p_fwe (max-T) is unaffected.")


def _config_hash(sweep, null, n_permutations, min_shift_s, random_state, rank_tol=None,
                 alpha_selection=None, tail="empirical", shift_step=1):  # fmt: skip
    """Hash of what determines the result (sweep settings and test parameters)."""
    cfg = dict(
        sweep_provenance=sweep.provenance, delays=np.asarray(sweep.delays).tolist(),
        sfreq=float(sweep.sfreq), n_times=np.asarray(sweep.n_times).tolist(),
        alphas_hash=hash_array(np.asarray(sweep.alphas), np.asarray(sweep.alpha)),
        null=null, n_permutations=int(n_permutations), min_shift_s=min_shift_s,
        random_state=_rs_repr(random_state),
    )  # fmt: skip
    if rank_tol is not None:  # absent for the exact refit: earlier hashes unchanged
        cfg["rank_tol"] = rank_tol
    if alpha_selection is not None:
        cfg["alpha_selection"] = alpha_selection
    if tail != "empirical":
        cfg["tail"] = tail
    if shift_step != 1:
        cfg["shift_step"] = int(shift_step)
    return hash_config(cfg)


def _make_result(sweep, r_obs, count, max_null, shifts, out_null, n_permutations,
                 min_shift_s, random_state, null, extra, tail="empirical", p_tail=None):  # fmt: skip
    """p-values with the +1 correction (or the GPD tail) and provenance."""
    nested = extra.get("alpha_selection") == "nested" and np.shape(sweep.alphas)[-1] > 1
    p_unc = (1 + count) / (1 + n_permutations)
    count_max = np.sum(max_null[:, np.newaxis, np.newaxis] >= r_obs, axis=0)
    p_fwe = (1 + count_max) / (1 + n_permutations)
    n_gpd = 0
    if tail == "gpd":
        ok = np.isfinite(p_tail)
        p_unc = np.where(ok, p_tail, p_unc)
        n_gpd = int(ok.sum())
        p_fwe = np.where(count_max < _GPD_MIN_EXCEED, _gpd_many(max_null, r_obs, p_fwe), p_fwe)
    return PermutationResult(
        r=r_obs,
        p_fwe=p_fwe,
        p_uncorrected=p_unc,
        p_fdr=fdr_correction(p_unc, method="bh"),
        max_null=max_null,
        shifts=shifts,
        null=out_null,
        n_permutations=n_permutations,
        min_shift_s=float(min_shift_s),
        random_state=_rs_repr(random_state),
        null_type=_NULL_TYPES[null]
        if not nested
        else _NULL_TYPES[null].replace(
            "with the observed alphas", "with the alphas re-chosen by the nested CV"
        ),
        feature_names=list(sweep.feature_names),
        ch_names=list(sweep.ch_names),
        provenance=dict(
            neuro_sae_version=__version__,
            numpy_version=np.__version__,
            statistic="mean held-out r over folds",
            sided=1,
            tail=tail,
            n_gpd=n_gpd,
            null_type=null,
            hyperparameters=_HYPER[null] if not nested else _HYPER_NESTED,
            config_hash=_config_hash(
                sweep,
                null,
                n_permutations,
                min_shift_s,
                random_state,
                extra.get("rank_tol"),
                extra.get("alpha_selection"),
                tail,
                extra.get("shift_step", 1),
            ),  # fmt: skip
            **extra,
        ),
    )


def _mismatch_test(X_runs, Y_runs, sweep, n_permutations, random_state, return_null,
                   tail="empirical"):  # fmt: skip
    """The trial-mismatch null (see :func:`sweep_permutation_test`)."""
    R = len(Y_runs)
    if R < 3:
        raise ValueError(
            f"null='mismatch' needs at least 3 runs to pair stimuli with other runs' EEG, "
            f"got {R}; use null='refit' (circular shifts)."
        )
    if math.factorial(R) < n_permutations + 1:
        warn(
            f"null='mismatch' with {R} runs has only {math.factorial(R)} pairings but "
            f"n_permutations={n_permutations}: pairings repeat and the smallest p-value "
            f"stays near 1/{math.factorial(R)}; use more runs or null='refit'.",
        )
    rng = check_random_state(random_state)
    perms = np.stack([rng.permutation(R) for _ in range(n_permutations)]).reshape(-1, R)
    _, _, n_min = _crop(X_runs, Y_runs)
    logger.info(
        f"Trial-mismatch null: {n_permutations} pairings, {sweep.n_features} features x "
        f"{sweep.n_channels} channels, {R} runs cropped to {n_min} samples"
    )
    ident = np.arange(R)[np.newaxis]
    null = _mismatch_null(X_runs, Y_runs, sweep, np.concatenate([ident, perms]))
    r_obs, null = null[0], null[1:]
    count = np.sum(null >= r_obs, axis=0)
    max_null = null.reshape(n_permutations, -1).max(1) if n_permutations else np.zeros(0)
    out_null = null.astype(np.float32) if return_null else None
    p_tail = _gpd_chunk(r_obs, null.transpose(1, 2, 0), count) if tail == "gpd" else None
    return _make_result(
        sweep, r_obs, count, max_null, perms, out_null, n_permutations, 0.0, random_state,
        "mismatch", dict(n_runs=int(R), n_times_cropped=int(n_min),
                         alpha_selection="observed"), tail, p_tail,
    )  # fmt: skip


def _refit_chunks(X_runs, Y_runs, sweep, shifts, chunk_size, rank_tol=None, ranks=None,
                  device="cpu", n_jobs=1, nested=False):  # fmt: skip
    """Per feature chunk: slice, observed r (F_chunk, C), null (F_chunk, C, P)."""
    zero = np.zeros((1, shifts.shape[1]), shifts.dtype)
    shifts = np.concatenate([zero, shifts])
    if device == "cpu":
        chunks = _refit_null_iter(
            X_runs, Y_runs, sweep, shifts, chunk_size, n_workers=n_jobs,
            rank_tol=rank_tol, ranks=ranks, nested=nested,
        )  # fmt: skip
    else:
        chunks = _refit_null_iter_torch(X_runs, Y_runs, sweep, shifts, chunk_size, device)
    for sl, null in chunks:
        yield sl, null[0], null[1:].transpose(1, 2, 0)


def _fixed_chunks(X_runs, Y_runs, sweep, shifts, chunk_size):
    """Like :func:`_refit_chunks` for the fixed-model null."""
    R, F = len(Y_runs), sweep.n_features
    # EEG side: centred, spectrum and norm per run (unchanged by circular shifts)
    y_spec, y_norm = [], []
    for y in Y_runs:
        yc = y - y.mean(0)
        y_spec.append(np.conj(sfft.rfft(yc.T, axis=-1)))
        y_norm.append(np.sqrt(np.einsum("tc,tc->c", yc, yc)))
    for start in range(0, F, chunk_size):
        sl = slice(start, min(start + chunk_size, F))
        acc = np.zeros((sl.stop - start, sweep.n_channels, shifts.shape[0]))
        obs = np.zeros((sl.stop - start, sweep.n_channels))
        for j in range(R):
            x = X_runs[j][:, sl]
            x = x.toarray() if hasattr(x, "toarray") else x
            r_all = _shift_r(x, sweep.weights[j, sl].astype(np.float64), sweep.delays,
                             y_spec[j], y_norm[j])  # fmt: skip
            obs += r_all[..., 0]
            acc += r_all[..., shifts[:, j]]
        yield sl, obs / R, acc / R


def _shift_r(x, w, delays, y_spec_conj, y_norm):
    """Held-out r for every circular shift of the EEG: shape (F, C, T).

    ``out[..., s]`` is the r between the prediction and ``np.roll(y, s, axis=0)``.
    """
    n_times = x.shape[0]
    pred = _predict_chunk(x, w, delays)
    pred -= pred.mean(-1, keepdims=True)
    p_norm = np.sqrt(np.einsum("fct,fct->fc", pred, pred))
    spec = sfft.rfft(pred, axis=-1)
    spec *= y_spec_conj
    xc = sfft.irfft(spec, n=n_times, axis=-1)
    den = np.broadcast_to((p_norm * y_norm)[..., np.newaxis], xc.shape)
    return np.divide(xc, den, out=np.zeros_like(xc), where=den > 0)
