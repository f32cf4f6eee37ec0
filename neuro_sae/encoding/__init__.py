"""Encoding models: TRF estimator, ridge from sufficient statistics, univariate sweeps."""

from ._sweep import SweepResult, read_sweep_result, univariate_sweep
from ._trf import TRF

__all__ = ["TRF", "SweepResult", "read_sweep_result", "univariate_sweep"]
