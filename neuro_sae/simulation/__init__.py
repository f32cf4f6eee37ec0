"""Planted-truth data: simulated EEG driven by real features, synthetic sparse dictionaries,
recovery scoring."""

from ._dictionary import make_sparse_dictionary_data
from ._eeg import simulate_eeg, write_simulated_subject
from ._recovery import feature_correlations, score_recovery

__all__ = [
    "feature_correlations",
    "make_sparse_dictionary_data",
    "score_recovery",
    "simulate_eeg",
    "write_simulated_subject",
]
