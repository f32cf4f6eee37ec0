"""SAE feature time series of stimuli."""

from ._series import FeatureSeries, read_feature_series

__all__ = ["FeatureSeries", "read_feature_series"]
