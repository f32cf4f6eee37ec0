"""The stimulus-alignment layer: run onsets, EEG preprocessing, features on the EEG grid,
scaling, and per-run trials."""

from ._aligned import AlignedRuns, align_subject, read_aligned_runs
from ._onsets import find_run_onsets, preprocess_eeg
from ._resample import resample_features

__all__ = [
    "AlignedRuns",
    "align_subject",
    "find_run_onsets",
    "preprocess_eeg",
    "read_aligned_runs",
    "resample_features",
]
