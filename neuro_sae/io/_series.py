"""The :class:`FeatureSeries` container: sparse SAE codes of one stimulus with frame times."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from ..utils import check_positive, fill_doc, logger, validate_type, verbose
from ._result import SavedResult, read_result


@dataclass(repr=False)
class FeatureSeries(SavedResult):
    """SAE feature time series of one stimulus.

    Parameters
    ----------
    data : scipy.sparse.csr_array | ndarray, shape (n_frames, n_features)
        Feature activations (non-negative, mostly zero), stored sparse.
    times : ndarray, shape (n_frames,)
        Frame times in seconds from the stimulus start (centre of the
        receptive field). Only valid (non-padding) frames are kept.
    feature_ids : ndarray of int, shape (n_features,)
        Index of each column in the SAE dictionary.
    sfreq : float
        Frame rate in Hz (50.0).
    stimulus_id : str | None
        Identifier of the stimulus.
    layer : int | None
        1-based encoder layer the SAE reads.
    sae_id : str
        Identifier of the SAE (e.g. its folder name or config hash).
    provenance : dict
        Encode mode, backbone, versions.
    """

    data: object
    times: np.ndarray
    feature_ids: np.ndarray
    sfreq: float = 50.0
    stimulus_id: str | None = None
    layer: int | None = None
    sae_id: str = ""
    provenance: dict = field(default_factory=dict)

    def __post_init__(self):
        self.data = sp.csr_array(self.data, dtype=np.float32)
        self.times = np.asarray(self.times, dtype=np.float64)
        self.feature_ids = np.asarray(self.feature_ids, dtype=np.int64)
        n_frames, n_features = self.data.shape
        if self.times.shape != (n_frames,):
            raise ValueError(
                f"times has shape {self.times.shape} but data has {n_frames} frames."
            )
        if self.feature_ids.shape != (n_features,):
            raise ValueError(
                f"feature_ids has shape {self.feature_ids.shape} but data has "
                f"{n_features} features."
            )

    @property
    def n_frames(self):
        """Number of frames."""
        return self.data.shape[0]

    @property
    def n_features(self):
        """Number of features (columns)."""
        return self.data.shape[1]

    @property
    def duration(self):
        """Duration covered in seconds (``n_frames / sfreq``)."""
        return self.n_frames / self.sfreq

    def firing_rate(self):
        """Mean number of active frames per second, per feature.

        Returns
        -------
        rate : ndarray, shape (n_features,)
            Activations per second.
        """
        active = (self.data != 0).sum(axis=0)
        return np.asarray(active, dtype=np.float64).ravel() / max(self.duration, 1e-12)

    def to_dense(self):
        """Dense array of the codes.

        Returns
        -------
        x : ndarray, shape (n_frames, n_features)
            The codes.
        """
        return self.data.toarray()

    def select(self, feature_ids):
        """Keep only the given dictionary features (in the given order).

        Parameters
        ----------
        feature_ids : array-like of int
            Dictionary indices to keep.

        Returns
        -------
        series : FeatureSeries
            A new object.
        """
        feature_ids = np.asarray(feature_ids, dtype=np.int64)
        pos = {int(f): i for i, f in enumerate(self.feature_ids)}
        missing = [int(f) for f in feature_ids if int(f) not in pos]
        if missing:
            raise KeyError(f"Features {missing[:10]} are not in this series.")
        cols = np.array([pos[int(f)] for f in feature_ids], dtype=np.int64)
        return FeatureSeries(
            data=self.data[:, cols],
            times=self.times,
            feature_ids=feature_ids,
            sfreq=self.sfreq,
            stimulus_id=self.stimulus_id,
            layer=self.layer,
            sae_id=self.sae_id,
            provenance=dict(self.provenance),
        )

    def __repr__(self):
        nnz = self.data.nnz
        dens = nnz / max(1, self.n_frames * self.n_features)
        return (
            f"<FeatureSeries | stimulus {self.stimulus_id!r}, layer {self.layer}, "
            f"{self.n_frames} frames at {self.sfreq:g} Hz, {self.n_features} features, "
            f"density {dens:.2%}>"
        )

    _kind = "FeatureSeries"

    def _to_saved(self):
        csr = self.data.tocsr()
        arrays = dict(
            values=csr.data.astype(np.float32),
            indices=csr.indices.astype(np.int32),
            indptr=csr.indptr.astype(np.int64),
            times=self.times,
            feature_ids=self.feature_ids,
        )
        fields = dict(
            sfreq=self.sfreq, stimulus_id=self.stimulus_id, layer=self.layer,
            sae_id=self.sae_id, provenance=self.provenance, shape=list(self.data.shape),
        )  # fmt: skip
        return arrays, fields

    @classmethod
    def _from_saved(cls, arrays, fields, fname):
        data = sp.csr_array(
            (arrays["values"], arrays["indices"], arrays["indptr"]), shape=tuple(fields["shape"])
        )
        return cls(
            data=data,
            times=arrays["times"],
            feature_ids=arrays["feature_ids"],
            sfreq=fields["sfreq"],
            stimulus_id=fields["stimulus_id"],
            layer=fields["layer"],
            sae_id=fields["sae_id"],
            provenance=fields["provenance"],
        )


@fill_doc
@verbose
def read_feature_series(fname, *, verbose=None):
    """Read a :class:`FeatureSeries` saved with :meth:`FeatureSeries.save`.

    Parameters
    ----------
    fname : str | os.PathLike
        The ``.npz`` file.
    %(verbose)s

    Returns
    -------
    series : FeatureSeries
        The series.
    """
    return read_result(fname, FeatureSeries)


@fill_doc
@verbose
def select_alive_features(series, *, min_rate=1.0, max_features=None, return_rates=False,
                          verbose=None):
    """Features whose mean firing rate over all series reaches ``min_rate``.

    The rate is the number of active frames over all series divided by their
    total duration (the AudioSAE EEG protocol keeps features active at least
    once per second on average).

    Parameters
    ----------
    series : FeatureSeries | list of FeatureSeries
        Feature series with the same ``feature_ids``.
    min_rate : float
        Minimum mean number of active frames per second.
    max_features : int | None
        Keep at most this many alive features: the most active ones (highest
        rate; ties broken by the smaller feature id), a deterministic,
        data-driven choice. ``None``: keep every alive feature.
    return_rates : bool
        Also return the firing rate of each returned feature and the number of
        alive features before the cap.
    %(verbose)s

    Returns
    -------
    feature_ids : ndarray of int, shape (n_kept,)
        Sorted dictionary indices of the kept alive features.
    rates : ndarray of float, shape (n_kept,)
        Their firing rates per second (only with ``return_rates=True``).
    n_alive : int
        Number of alive features before ``max_features`` (only with
        ``return_rates=True``).
    """
    if isinstance(series, FeatureSeries):
        series = [series]
    validate_type(series, (list, tuple), "series")
    if not series:
        raise ValueError("series is empty; pass at least one FeatureSeries.")
    for i, s in enumerate(series):
        validate_type(s, FeatureSeries, f"series[{i}]")
    check_positive(min_rate, "min_rate", strict=False)
    if max_features is not None:
        validate_type(max_features, "int", "max_features")
        check_positive(max_features, "max_features")
    validate_type(return_rates, bool, "return_rates")
    ids = series[0].feature_ids
    counts = np.zeros(ids.shape[0], dtype=np.float64)
    duration = 0.0
    for i, s in enumerate(series):
        if not np.array_equal(s.feature_ids, ids):
            raise ValueError(
                f"series[{i}] has different feature_ids from series[0] "
                f"({s.n_features} vs {ids.shape[0]} features); encode all stimuli with "
                "the same SAE and feature selection."
            )
        counts += np.asarray((s.data != 0).sum(axis=0), dtype=np.float64).ravel()
        duration += s.duration
    if duration <= 0:
        raise ValueError("The series hold no frames; cannot compute firing rates.")
    rate = counts / duration
    keep = np.flatnonzero(rate >= min_rate)
    n_alive = keep.size
    if max_features is not None and keep.size > max_features:
        # most active first; np.lexsort sorts by its last key first, so ties go to the
        # smaller feature id
        order = np.lexsort((ids[keep], -rate[keep]))
        keep = keep[order[:max_features]]
    keep = keep[np.argsort(ids[keep], kind="stable")]
    alive = ids[keep]
    logger.info(
        f"{n_alive:,} of {ids.size:,} features fire at >= {min_rate:g} per second "
        f"over {duration:.1f} s"
        + ("" if alive.size == n_alive else f"; the {alive.size:,} most active kept")
    )
    if return_rates:
        return alive, rate[keep], int(n_alive)
    return alive
