"""Encoding models: TRF estimator, ridge from sufficient statistics, univariate sweeps,
banded ridge and variance partitioning."""

from ._banded import VariancePartition, variance_partitioning
from ._sweep import SweepResult, read_sweep_result, univariate_sweep
from ._trf import TRF

__all__ = [
    "TRF",
    "SweepResult",
    "VariancePartition",
    "read_sweep_result",
    "univariate_sweep",
    "variance_partitioning",
]
