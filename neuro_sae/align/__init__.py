"""The stimulus-alignment layer: run onsets, EEG preprocessing, features and acoustic
baselines on the EEG grid, scaling, and per-run trials."""

from ._acoustic import (
    acoustic_envelope,
    acoustic_features,
    log_mel_spectrogram,
    mel_filterbank,
    onsets_from_envelope,
    word_onset_series,
)
from ._aligned import AlignedRuns, read_aligned_runs
from ._onsets import find_run_onsets, preprocess_eeg
from ._resample import resample_features
from ._subject import align_subject, eeg_scaling_statistics

__all__ = [
    "eeg_scaling_statistics",
    "AlignedRuns",
    "acoustic_envelope",
    "acoustic_features",
    "align_subject",
    "find_run_onsets",
    "log_mel_spectrogram",
    "mel_filterbank",
    "onsets_from_envelope",
    "preprocess_eeg",
    "read_aligned_runs",
    "resample_features",
    "word_onset_series",
]
