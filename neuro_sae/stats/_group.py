"""Group-level tests over subjects with max-T family-wise control."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .. import __version__
from ..encoding import SweepResult, check_sweeps_compatible
from ..io import SavedResult, hash_config, read_result
from ..utils import (
    check_array,
    check_int,
    check_names,
    check_option,
    check_random_state,
    fill_doc,
    logger,
    tidy_frame,
    verbose,
)
from ._common import _rs_repr, _save_table
from ._multicomp import _check_n_permutations

_BLOCK = 256  # at most this many permutations per block
_MAX_BYTES = 64e6  # and a block (permutations x features x channels) stays below this


def _block(n_cells):
    """Permutations per block so that a block of the null stays below _MAX_BYTES."""
    return int(max(1, min(_BLOCK, _MAX_BYTES // (8 * max(n_cells, 1)))))


@dataclass(repr=False)
class GroupResult(SavedResult):
    """Results of :func:`group_permutation_test`.

    Attributes
    ----------
    statistic : ndarray, shape (n_features, n_channels[, n_times])
        The group statistic (mean r over subjects, or the one-sample t).
    p_fwe : ndarray, shape (n_features, n_channels[, n_times])
        Family-wise corrected p-values (max-T over every cell: features x channels,
        x times when given).
    p_uncorrected : ndarray, shape (n_features, n_channels[, n_times])
        Uncorrected p-values from the same permutations.
    max_null : ndarray, shape (n_permutations,)
        Maximum over every cell of each permutation (after the tail).
    method : str
        ``"pooled-null"`` or ``"sign-flip"``.
    statistic_name : str
        ``"mean"`` or ``"t"``.
    tail : int
        1 (positive effects), -1 (negative) or 0 (both, on absolute values).
    alpha : float
        Family-wise error level of ``significant``.
    n_subjects, n_permutations : int
        Sizes (``n_permutations`` is ``2 ** n_subjects`` when all sign flips were
        enumerated).
    exact : bool
        Whether all sign flips were enumerated.
    random_state : int | str | None
        The random state given.
    feature_names, ch_names : list of str
        Names of the features and channels (as given to the test or taken from the
        sweeps; positional ``"f0"``, ``"ch0"`` only when none were given).
    times : ndarray, shape (n_times,) | None
        Times (s) of the last axis of per-lag statistics (e.g. kernels), else ``None``.
    provenance : dict
        Versions and the configuration hash.
    """

    statistic: np.ndarray
    p_fwe: np.ndarray
    p_uncorrected: np.ndarray
    max_null: np.ndarray
    method: str = "pooled-null"
    statistic_name: str = "mean"
    tail: int = 1
    alpha: float = 0.05
    n_subjects: int = 0
    n_permutations: int = 0
    exact: bool = False
    random_state: object = None
    feature_names: list = field(default_factory=list)
    ch_names: list = field(default_factory=list)
    provenance: dict = field(default_factory=dict)
    times: np.ndarray | None = None

    _kind = "GroupResult"

    @property
    def significant(self):
        """Boolean mask ``p_fwe < alpha``, shape (n_features, n_channels)."""
        return self.p_fwe < self.alpha

    def __repr__(self):
        return (
            f"<GroupResult | {self.method}, {self.n_subjects} subjects, "
            f"{self.statistic.shape[0]} features x {self.statistic.shape[1]} channels, "
            f"{int(self.significant.sum())} significant at FWE {self.alpha:g}>"
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
            Columns ``feature``, ``channel`` (their names), ``time`` (only for
            per-lag statistics, in s), ``statistic``, ``p_uncorrected``, ``p_fwe``,
            ``significant``.
        """
        cols = dict(
            statistic=self.statistic,
            p_uncorrected=self.p_uncorrected,
            p_fwe=self.p_fwe,
            significant=self.significant,
        )
        if self.times is None:
            return tidy_frame(self.feature_names, self.ch_names, **cols)
        import pandas as pd

        F, C, T = self.statistic.shape
        df = pd.DataFrame(dict(
            feature=np.repeat(np.asarray(self.feature_names, dtype=str), C * T),
            channel=np.tile(np.repeat(np.asarray(self.ch_names, dtype=str), T), F),
            time=np.tile(np.asarray(self.times, dtype=float), F * C),
            **{k: np.asarray(v).ravel() for k, v in cols.items()},
        ))  # fmt: skip
        return df

    def _to_saved(self):
        arrays = {k: np.asarray(getattr(self, k)) for k in _GROUP_ARRAYS}
        if self.times is not None:
            arrays["times"] = np.asarray(self.times, dtype=float)
        return arrays, {k: getattr(self, k) for k in _GROUP_META}

    @classmethod
    def _from_saved(cls, arrays, fields, fname):
        data = {k: arrays[k] for k in _GROUP_ARRAYS}
        data["times"] = arrays["times"] if "times" in arrays else None
        data.update(fields)
        data["feature_names"] = list(data["feature_names"])
        data["ch_names"] = list(data["ch_names"])
        return cls(**data)

    def save_table(self, fname, *, overwrite=False):
        """Write :meth:`to_frame` to parquet (atomic; provenance in the file metadata).

        Parameters
        ----------
        fname : str | os.PathLike
            Destination ending in ``.parquet``.
        overwrite : bool
            Replace an existing file.

        Returns
        -------
        fname : pathlib.Path
            The written path.
        """
        return _save_table(self.to_frame(), fname, self.provenance, overwrite=overwrite)


_GROUP_ARRAYS = ("statistic", "p_fwe", "p_uncorrected", "max_null")
_GROUP_META = (
    "method", "statistic_name", "tail", "alpha", "n_subjects", "n_permutations", "exact",
    "random_state", "feature_names", "ch_names", "provenance",
)  # fmt: skip
fill_doc(GroupResult.to_frame)


@fill_doc
@verbose
def read_group_result(fname, *, verbose=None):
    """Read a :class:`GroupResult` saved with :meth:`GroupResult.save`.

    Parameters
    ----------
    fname : str | os.PathLike
        The ``.npz`` file.
    %(verbose)s

    Returns
    -------
    result : GroupResult
        The result.
    """
    return read_result(fname, GroupResult)


def _tol(observed):
    """Round-off allowance so that a permutation equal to the observed data counts."""
    return 1e-10 * (1.0 + np.abs(observed))


def _apply_tail(x, tail):
    return x if tail == 1 else (-x if tail == -1 else np.abs(x))


@fill_doc
@verbose
def group_permutation_test(
    r_subjects,
    null_subjects=None,
    *,
    method="pooled-null",
    n_permutations=1000,
    tail=1,
    statistic=None,
    alpha=0.05,
    feature_names=None,
    ch_names=None,
    times=None,
    labels=None,
    random_state=None,
    verbose=None,
):
    """Group-level permutation test over subjects with max-T family-wise control.

    Parameters
    ----------
    r_subjects : array, shape (n_subjects, n_features, n_channels[, n_times]) | list of SweepResult
        Per-subject statistics, e.g. ``sweep.r`` of each subject, or per-lag values
        (e.g. kernels) with a last axis of ``n_times`` lags. A list of
        :class:`~neuro_sae.encoding.SweepResult` is checked with
        :func:`~neuro_sae.encoding.check_sweeps_compatible` (same lags, rate,
        feature and channel names), its ``r`` stacked, and its names used.
    null_subjects : list of array, shape (n_permutations_i, n_features, n_channels[, n_times]) | list of PermutationResult | None
        Per-subject nulls (``sweep_permutation_test(..., return_null=True).null``, or
        the results themselves); required by ``"pooled-null"``, ignored by
        ``"sign-flip"``.
    method : str
        ``"pooled-null"``: the group statistic is the mean r over subjects; each null
        draw averages one independently drawn permutation of every subject (their
        shifts are independent), and the maximum over features x channels of each draw
        gives ``p_fwe``. Works with few subjects (3 is fine).
        ``"sign-flip"``: random sign flips of the per-subject values (all ``2 **
        n_subjects`` of them when ``n_permutations`` reaches that number), computed in
        one matrix product per block; the per-subject values must be symmetric around
        zero under the null (e.g. r against a baseline or Fisher z differences).
    n_permutations : int
        Number of null draws (sign flips or pooled draws).
    tail : int
        1 tests positive effects, -1 negative, 0 both (absolute values).
    statistic : str | None
        ``"mean"`` or ``"t"`` (one-sample t). ``None`` means ``"mean"`` for
        ``"pooled-null"`` (its only option) and ``"t"`` for ``"sign-flip"``.
    alpha : float
        Family-wise error level of ``significant``. Sign flipping refuses to run when
        its smallest attainable p-value exceeds ``alpha``.
    feature_names : list of str | None
        Feature names (e.g. the SAE feature ids as str). ``None``: the sweeps' names
        when sweeps are given, else positional ``"f0"``, ...
    ch_names : list of str | None
        Channel names. ``None``: the sweeps' names when given, else ``"ch0"``, ...
    times : array, shape (n_times,) | None
        Times (s) of the last axis when ``r_subjects`` has one (required then).
    labels : list of str | None
        Subject labels for error messages (e.g. ``["sub-01", "sub-02"]``).
    %(random_state)s
    %(verbose)s

    Returns
    -------
    result : GroupResult
        Statistic, ``p_fwe``, ``p_uncorrected``, maxima, provenance.

    Notes
    -----
    With random draws, ``p = (1 + #{null >= observed}) / (1 + n_permutations)``;
    when all sign flips are enumerated (identity included),
    ``p = #{null >= observed} / 2 ** n_subjects``.
    """
    check_option("method", method, ("pooled-null", "sign-flip"))
    check_option("tail", tail, (1, -1, 0))
    n_permutations = check_int(n_permutations, "n_permutations")
    if isinstance(r_subjects, (list, tuple)) and any(
        isinstance(sw, SweepResult) for sw in r_subjects
    ):
        sweeps = check_sweeps_compatible(r_subjects, labels)
        r_subjects = np.stack([sw.r for sw in sweeps])
        feature_names = sweeps[0].feature_names if feature_names is None else feature_names
        ch_names = sweeps[0].ch_names if ch_names is None else ch_names
    if null_subjects is not None:
        null_subjects = [getattr(nu, "null", nu) for nu in null_subjects]
        for ii, nu in enumerate(null_subjects):
            if nu is None:
                who = labels[ii] if labels is not None else f"null_subjects[{ii}]"
                raise ValueError(
                    f"The permutation result of {who} holds no null; rerun "
                    "sweep_permutation_test(..., return_null=True)."
                )
    r = check_array(r_subjects, "r_subjects", ndim=(3, 4))
    S, F, C = r.shape[:3]
    if r.ndim == 4:
        if times is None:
            raise ValueError(
                f"r_subjects has a 4th axis of {r.shape[3]} values (lags) but times is "
                "None; pass times=<the lag of each, in s> (e.g. sweep.times)."
            )
        times = check_array(times, "times", ndim=1)
        if len(times) != r.shape[3]:
            raise ValueError(
                f"times has {len(times)} values but r_subjects has {r.shape[3]} on its "
                "last axis; give one time per lag."
            )
        cell_shape = (F, C, r.shape[3])
        r = r.reshape(S, F, -1)
        if null_subjects is not None:
            null_subjects = [
                np.asarray(nu).reshape(len(nu), F, -1) if np.ndim(nu) == 4 else nu
                for nu in null_subjects
            ]
    elif times is not None:
        raise ValueError(
            "times was given but r_subjects has no lag axis (shape (n_subjects, "
            "n_features, n_channels)); pass times=None or per-lag values."
        )
    else:
        cell_shape = (F, C)
    if statistic is None:
        statistic = "mean" if method == "pooled-null" else "t"
    allowed_stats = ("mean",) if method == "pooled-null" else ("mean", "t")
    check_option("statistic", statistic, allowed_stats, extra=f"(method={method!r})")
    if S < 2:
        raise ValueError(
            f"A group test needs at least 2 subjects, got r_subjects with {S}; test a "
            "single subject with sweep_permutation_test."
        )
    if method == "pooled-null":
        _check_n_permutations(n_permutations, alpha)
    rng = check_random_state(random_state)
    feature_names = check_names(feature_names, F, "f", "feature_names")
    ch_names = check_names(ch_names, C, "ch", "ch_names")
    if method == "pooled-null":
        stat, max_null, count, n_draws, exact = _pooled(r, null_subjects, n_permutations, tail, rng)
    else:
        stat, max_null, count, n_draws, exact = _sign_flip(
            r, n_permutations, tail, statistic, alpha, rng
        )
    observed = _apply_tail(stat, tail)
    n_ge = np.sum(max_null[:, np.newaxis, np.newaxis] >= observed - _tol(observed), axis=0)
    if exact:
        p_fwe, p_unc = n_ge / n_draws, count / n_draws
    else:
        p_fwe, p_unc = (1 + n_ge) / (1 + n_draws), (1 + count) / (1 + n_draws)
    return GroupResult(
        statistic=stat.reshape(cell_shape),
        p_fwe=p_fwe.reshape(cell_shape),
        p_uncorrected=p_unc.reshape(cell_shape),
        max_null=max_null,
        method=method,
        statistic_name=statistic,
        tail=int(tail),
        alpha=float(alpha),
        n_subjects=int(S),
        n_permutations=int(n_draws),
        exact=bool(exact),
        random_state=_rs_repr(random_state),
        feature_names=feature_names,
        ch_names=ch_names,
        times=times,
        provenance=dict(
            neuro_sae_version=__version__,
            config_hash=hash_config(
                dict(
                    method=method,
                    statistic=statistic,
                    tail=int(tail),
                    n_permutations=int(n_permutations),
                    random_state=_rs_repr(random_state),
                )
            ),  # fmt: skip
        ),
    )


def _pooled(r, null_subjects, n_permutations, tail, rng):
    S, F, C = r.shape
    if null_subjects is None or len(null_subjects) != S:
        got = None if null_subjects is None else f"{len(null_subjects)} null(s)"
        raise ValueError(
            f"method='pooled-null' needs one null per subject ({S}), got {got}; run "
            "sweep_permutation_test(..., return_null=True) per subject and pass the "
            "result's .null, or use method='sign-flip'."
        )
    nulls = []
    for ii, nu in enumerate(null_subjects):
        nu = np.asarray(nu)
        if nu.ndim != 3 or nu.shape[1:] != (F, C):
            raise ValueError(
                f"null_subjects[{ii}] has shape {nu.shape} but r_subjects has {F} features "
                f"x {C} channels; expected (n_permutations, {F}, {C})."
            )
        nulls.append(nu)
    logger.info(f"Pooled-null group test: {S} subjects, {n_permutations} draws")
    stat = r.mean(0)
    observed = _apply_tail(stat, tail)
    max_null = np.empty(n_permutations)
    count = np.zeros((F, C), np.int64)
    block = _block(F * C)
    for start in range(0, n_permutations, block):
        nd = min(block, n_permutations - start)
        draw = np.zeros((nd, F, C))
        for nu in nulls:
            draw += nu[rng.integers(0, nu.shape[0], nd)]
        draw = _apply_tail(draw / S, tail)
        max_null[start : start + nd] = draw.reshape(nd, -1).max(1)
        count += np.sum(draw >= observed - _tol(observed), axis=0)
    return stat, max_null, count, n_permutations, False


def _flip_stat(signs, data, sumsq, S, statistic):
    mean = signs @ data / S
    if statistic == "mean":
        return mean
    var = np.maximum(sumsq - S * mean**2, 0.0) / (S - 1)
    se = np.sqrt(var / S)
    return np.divide(mean, se, out=np.zeros_like(mean), where=se > 0)


def _sign_flip(r, n_permutations, tail, statistic, alpha, rng):
    S, F, C = r.shape
    p_min = (2.0 if tail == 0 else 1.0) / 2**S
    if p_min > alpha:
        raise ValueError(
            f"With {S} subjects, sign flipping can reach at best p = {p_min:.3g} "
            f"({'2 / ' if tail == 0 else '1 / '}2**{S}), above alpha={alpha}: no effect "
            "could ever be significant. Add subjects or use method='pooled-null' with "
            "each subject's permutation null."
        )
    if n_permutations < 2**S:
        _check_n_permutations(n_permutations, alpha)
    data = r.reshape(S, -1)
    sumsq = np.einsum("sk,sk->k", data, data)
    exact = n_permutations >= 2**S
    if exact:
        n_draws = 2**S
        bits = (np.arange(n_draws)[:, np.newaxis] >> np.arange(S)) & 1
        all_signs = 1.0 - 2.0 * bits  # row 0 is the identity
    else:
        n_draws = n_permutations
    logger.info(
        f"Sign-flip group test: {S} subjects, {n_draws} "
        f"{'(all) ' if exact else ''}flips, statistic {statistic!r}"
    )
    stat = _flip_stat(np.ones((1, S)), data, sumsq, S, statistic)[0]
    observed = _apply_tail(stat, tail)
    max_null = np.empty(n_draws)
    count = np.zeros(F * C, np.int64)
    block = _block(F * C)
    for start in range(0, n_draws, block):
        nd = min(block, n_draws - start)
        if exact:
            signs = all_signs[start : start + nd]
        else:
            signs = rng.choice(np.array([-1.0, 1.0]), size=(nd, S))
        null = _apply_tail(_flip_stat(signs, data, sumsq, S, statistic), tail)
        max_null[start : start + nd] = null.max(1)
        count += np.sum(null >= observed - _tol(observed), axis=0)
    return stat.reshape(F, C), max_null, count.reshape(F, C), n_draws, exact
