"""Planted-truth data: simulated EEG driven by real features, synthetic sparse dictionaries."""

from ._eeg import simulate_eeg, write_simulated_subject

__all__ = ["simulate_eeg", "write_simulated_subject"]
