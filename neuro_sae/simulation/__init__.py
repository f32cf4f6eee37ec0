"""Planted-truth data: simulated EEG driven by real features, synthetic sparse dictionaries."""

from ._dictionary import make_sparse_dictionary_data
from ._eeg import simulate_eeg, write_simulated_subject

__all__ = ["make_sparse_dictionary_data", "simulate_eeg", "write_simulated_subject"]
