"""SAE feature time series of stimuli: encoding and alive-feature selection.

The container, :class:`FeatureSeries`, lives in :mod:`neuro_sae.io` (the neuroscience half
reads feature series without importing the SAE half) and is re-exported here.
"""

from ..io import FeatureSeries, read_feature_series, select_alive_features
from ._encode import encode_array, encode_features

__all__ = [
    "FeatureSeries",
    "encode_array",
    "encode_features",
    "read_feature_series",
    "select_alive_features",
]
