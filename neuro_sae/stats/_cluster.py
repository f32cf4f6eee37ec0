"""Spatio-temporal cluster tests over channels x lags, and screening of many features."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from .. import __version__
from ..io import SavedResult, read_result
from ..utils import check_array, check_int, check_option, fill_doc, logger, verbose
from ._group import group_permutation_test
from ._models import _check_subjects, _seed


@fill_doc
@verbose
def channel_adjacency(info, ch_names=None, *, ch_type="eeg", verbose=None):
    """Channel adjacency from the montage (``mne.channels.find_ch_adjacency``).

    Parameters
    ----------
    info : mne.Info
        Measurement info with a montage (or a known channel layout).
    ch_names : list of str | None
        Channels to keep, in the order of the data (default: those of ``ch_type``).
    ch_type : str
        Channel type passed to MNE.
    %(verbose)s

    Returns
    -------
    adjacency : scipy.sparse.csr_array, shape (n_channels, n_channels)
        Boolean adjacency in the order of ``ch_names``.
    ch_names : list of str
        The channel order.
    """
    import mne

    adj, names = mne.channels.find_ch_adjacency(info, ch_type=ch_type)
    names = list(names)
    if ch_names is None:
        return sp.csr_array(adj), names
    missing = [c for c in ch_names if c not in names]
    if missing:
        raise ValueError(
            f"ch_names has channels without adjacency: {missing[:5]}; pick channels of "
            f"type {ch_type!r} that the montage knows."
        )
    idx = [names.index(c) for c in ch_names]
    adj = sp.csr_array(adj)[idx][:, idx]
    return adj, list(ch_names)


def _check_adjacency(adjacency, n_channels):
    if adjacency is None:
        raise ValueError(
            "adjacency is required: give the channel adjacency (n_channels x n_channels), "
            "e.g. from neuro_sae.stats.channel_adjacency(info)."
        )
    adjacency = sp.csr_array(adjacency)
    if adjacency.shape != (n_channels, n_channels):
        raise ValueError(
            f"adjacency has shape {adjacency.shape} but the data have {n_channels} channels; "
            "build it for the same channels in the same order (channel_adjacency(info, "
            "ch_names))."
        )
    return adjacency


@dataclass
class ClusterResult(SavedResult):
    """Spatio-temporal clusters of one feature's kernels (see :func:`cluster_test`).

    Attributes
    ----------
    t_obs : ndarray, shape (n_lags, n_channels)
        One-sample t (or TFCE scores' underlying t) across subjects.
    clusters : list of ndarray of bool, shape (n_lags, n_channels)
        Cluster masks.
    cluster_p : ndarray, shape (n_clusters,)
        Family-wise corrected cluster p-values (for TFCE: one per lag x channel).
    times : ndarray, shape (n_lags,)
        Lags in seconds.
    ch_names : list of str
        Channels.
    feature : str
        The feature tested.
    provenance : dict
        Settings and versions.
    """

    t_obs: np.ndarray
    clusters: list
    cluster_p: np.ndarray
    times: np.ndarray
    ch_names: list = field(default_factory=list)
    feature: str = ""
    provenance: dict = field(default_factory=dict)

    @verbose
    def significant_mask(self, alpha=0.05, *, verbose=None):
        """Lag x channel mask of the cells in clusters with ``p < alpha``.

        Parameters
        ----------
        alpha : float
            Family-wise level.
        %(verbose)s

        Returns
        -------
        mask : ndarray of bool, shape (n_lags, n_channels)
            Cells of significant clusters (TFCE: cells with ``p < alpha``).
        """
        mask = np.zeros(self.t_obs.shape, bool)
        if self.provenance.get("tfce"):
            return self.cluster_p.reshape(self.t_obs.shape) < alpha
        for c, p in zip(self.clusters, self.cluster_p):
            if p < alpha:
                mask |= c
        return mask

    @verbose
    def to_frame(self, alpha=0.05, *, verbose=None):
        """Tidy table of the clusters (empty for TFCE).

        Parameters
        ----------
        alpha : float
            Family-wise level of the ``significant`` column.
        %(verbose)s

        Returns
        -------
        df : pandas.DataFrame
            One row per cluster: ``feature``, ``cluster``, ``p``, ``tmin``, ``tmax``
            (s), ``n_channels``, ``channels``, ``significant``.
        """
        import pandas as pd

        rows = []
        if not self.provenance.get("tfce"):
            for ii, (c, p) in enumerate(zip(self.clusters, self.cluster_p)):
                lags, chs = np.nonzero(c)
                rows.append(dict(
                    feature=self.feature, cluster=ii, p=float(p),
                    tmin=float(self.times[lags.min()]), tmax=float(self.times[lags.max()]),
                    n_channels=int(len(np.unique(chs))),
                    channels=",".join(self.ch_names[k] for k in np.unique(chs)),
                    significant=bool(p < alpha),
                ))  # fmt: skip
        return pd.DataFrame(rows, columns=["feature", "cluster", "p", "tmin", "tmax",
                                           "n_channels", "channels", "significant"])  # fmt: skip


    _kind = "ClusterResult"

    def _to_saved(self):
        shape = (len(self.clusters),) + self.t_obs.shape
        stacked = np.zeros(shape, bool)
        for ii, c in enumerate(self.clusters):
            stacked[ii] = c
        arrays = dict(
            t_obs=np.asarray(self.t_obs), cluster_masks=stacked,
            cluster_p=np.asarray(self.cluster_p), times=np.asarray(self.times),
        )  # fmt: skip
        fields = dict(ch_names=list(self.ch_names), feature=self.feature,
                      provenance=self.provenance)  # fmt: skip
        return arrays, fields

    @classmethod
    def _from_saved(cls, arrays, fields, fname):
        return cls(
            t_obs=arrays["t_obs"],
            clusters=[np.asarray(m, bool) for m in arrays["cluster_masks"]],
            cluster_p=arrays["cluster_p"],
            times=arrays["times"],
            ch_names=list(fields["ch_names"]),
            feature=str(fields["feature"]),
            provenance=fields["provenance"],
        )


fill_doc(ClusterResult.significant_mask)
fill_doc(ClusterResult.to_frame)


@fill_doc
@verbose
def read_cluster_result(fname, *, verbose=None):
    """Read a :class:`ClusterResult` saved with :meth:`ClusterResult.save`.

    Parameters
    ----------
    fname : str | os.PathLike
        The ``.npz`` file.
    %(verbose)s

    Returns
    -------
    result : ClusterResult
        The result.
    """
    return read_result(fname, ClusterResult)


@fill_doc
@verbose
def cluster_test(
    kernels,
    adjacency,
    *,
    times=None,
    ch_names=None,
    feature="",
    threshold=None,
    tfce=False,
    n_permutations=1024,
    tail=0,
    alpha=0.05,
    random_state=None,
    n_jobs=None,
    verbose=None,
):
    """One-sample spatio-temporal cluster test of TRF kernels across subjects.

    Wraps :func:`mne.stats.spatio_temporal_cluster_1samp_test` (sign flips) with
    the channel adjacency of the montage.

    Parameters
    ----------
    kernels : array, shape (n_subjects, n_lags, n_channels)
        One feature's kernel per subject (e.g. ``sweep.coef[f].T``).
    adjacency : scipy.sparse array, shape (n_channels, n_channels)
        Channel adjacency (:func:`channel_adjacency`).
    times : array, shape (n_lags,) | None
        Lags in seconds (for the table).
    ch_names : list of str | None
        Channel names.
    feature : str
        Name recorded in the result.
    threshold : float | None
        Cluster-forming t threshold (``None``: MNE's default, p < 0.05); ignored when
        ``tfce``.
    tfce : bool
        Threshold-free cluster enhancement (``threshold=dict(start=0, step=0.2)``).
    n_permutations : int
        Sign flips.
    tail : int
        0, 1 or -1.
    alpha : float
        Level checked against the smallest attainable p-value.
    %(random_state)s
    %(n_jobs)s
    %(verbose)s

    Returns
    -------
    result : ClusterResult
        Observed t, clusters and their p-values.
    """
    from mne.stats import spatio_temporal_cluster_1samp_test

    from ._multicomp import _check_n_permutations

    check_option("tail", tail, (0, 1, -1))
    k = check_array(kernels, "kernels", ndim=3)
    S, L, C = k.shape
    _check_subjects(S, "kernels")
    adjacency = _check_adjacency(adjacency, C)
    n_permutations = check_int(n_permutations, "n_permutations")
    _check_n_permutations(min(n_permutations, 2 ** (S - 1)), alpha)
    if tfce:
        threshold = dict(start=0.0, step=0.2)
    seed = _seed(random_state)
    t_obs, clusters, cluster_p, _ = spatio_temporal_cluster_1samp_test(
        k, threshold=threshold, n_permutations=n_permutations, tail=tail,
        adjacency=adjacency, seed=seed, out_type="mask", n_jobs=n_jobs, verbose=False,
    )  # fmt: skip
    times = np.arange(L, dtype=float) if times is None else np.asarray(times, float)
    ch_names = [f"ch{ii}" for ii in range(C)] if ch_names is None else list(ch_names)
    return ClusterResult(
        t_obs=t_obs,
        clusters=[np.asarray(c, bool).reshape(L, C) for c in clusters],
        cluster_p=np.asarray(cluster_p),
        times=times,
        ch_names=ch_names,
        feature=str(feature),
        provenance=dict(
            neuro_sae_version=__version__,
            tfce=bool(tfce),
            n_permutations=n_permutations,
            tail=int(tail),
            seed=seed,
            threshold=None if threshold is None or tfce else float(threshold),
        ),  # fmt: skip
    )


@fill_doc
@verbose
def screen_features(
    r_subjects,
    kernels,
    adjacency,
    *,
    times=None,
    feature_names=None,
    ch_names=None,
    alpha=0.05,
    n_permutations=1000,
    n_cluster_permutations=1024,
    tfce=False,
    random_state=None,
    verbose=None,
):
    """Screen thousands of features: max-T first, cluster tests only for survivors.

    Step 1: sign-flip max-T over features x channels on the per-subject scores
    (:func:`group_permutation_test`, memory bounded by permutation blocks). Step 2:
    for each feature with a cell at ``p_fwe < alpha``, a spatio-temporal cluster
    test of its kernels (:func:`cluster_test`); kernels are read one feature at a time,
    so ``kernels`` can be a memory-mapped array.

    Parameters
    ----------
    r_subjects : array, shape (n_subjects, n_features, n_channels)
        Per-subject scores (e.g. held-out r against a baseline, symmetric under the
        null).
    kernels : array, shape (n_subjects, n_features, n_lags, n_channels)
        Per-subject kernels (may be a ``numpy.memmap``).
    adjacency : scipy.sparse array, shape (n_channels, n_channels)
        Channel adjacency.
    times : array, shape (n_lags,) | None
        Lags in seconds.
    feature_names, ch_names : list of str | None
        Names.
    alpha : float
        Family-wise level of both steps.
    n_permutations : int
        Sign flips of the max-T screen.
    n_cluster_permutations : int
        Sign flips of each cluster test.
    tfce : bool
        TFCE in step 2.
    %(random_state)s
    %(verbose)s

    Returns
    -------
    screen : GroupResult
        The max-T screen.
    clusters : dict of str to ClusterResult
        Cluster tests of the surviving features.
    """
    S, F, C = np.shape(r_subjects)
    if np.ndim(kernels) != 4 or np.shape(kernels)[:2] != (S, F) or np.shape(kernels)[3] != C:
        raise ValueError(
            f"kernels has shape {np.shape(kernels)}; expected (n_subjects={S}, "
            f"n_features={F}, n_lags, n_channels={C}) like r_subjects."
        )
    _check_adjacency(adjacency, C)
    screen = group_permutation_test(
        r_subjects, method="sign-flip", n_permutations=n_permutations, alpha=alpha,
        feature_names=feature_names, ch_names=ch_names, random_state=random_state,
    )  # fmt: skip
    survivors = np.nonzero(np.any(screen.significant, axis=1))[0]
    logger.info(f"Screen: {len(survivors)} of {F} features survive max-T at {alpha:g}")
    out = {}
    for f in survivors:
        name = screen.feature_names[f]
        out[name] = cluster_test(
            np.asarray(kernels[:, f], dtype=np.float64), adjacency, times=times,
            ch_names=screen.ch_names, feature=name, n_permutations=n_cluster_permutations,
            tfce=tfce, alpha=alpha, random_state=random_state,
        )  # fmt: skip
    return screen, out
