"""Encoding models: TRF estimator, ridge from sufficient statistics, univariate sweeps,
banded ridge and variance partitioning."""

from ._banded import VariancePartition, variance_partitioning
from ._basis import lag_basis
from ._sweep import (
    SweepResult,
    check_sweeps_compatible,
    read_sweep_result,
    univariate_sweep,
)
from ._trf import TRF
from .numerics import check_runs, eigh_psd, lag_matrix, safe_r, univariate_run_stats

__all__ = [
    "TRF",
    "SweepResult",
    "VariancePartition",
    "check_runs",
    "check_sweeps_compatible",
    "eigh_psd",
    "lag_basis",
    "lag_matrix",
    "safe_r",
    "univariate_run_stats",
    "read_sweep_result",
    "univariate_sweep",
    "variance_partitioning",
]
