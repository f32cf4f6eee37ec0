"""SAE feature time series of stimuli: encoding, alive-feature selection, the container."""

from ._encode import encode_array, encode_features, select_alive_features
from ._series import FeatureSeries, read_feature_series

__all__ = [
    "FeatureSeries",
    "encode_array",
    "encode_features",
    "read_feature_series",
    "select_alive_features",
]
