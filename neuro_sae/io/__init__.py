"""Input/output: audio, EEG readers, feature-series files, atomic writes, hashes."""

from ._atomic import (
    atomic_dir,
    atomic_path,
    current_umask,
    hash_array,
    hash_config,
    hash_file,
    json_default,
    remove_partial_writes,
    save_npz,
    write_json,
    write_parquet,
)
from ._audio import read_audio
from ._bids import read_bids_runs
from ._broderick import (
    broderick_runs,
    read_broderick_dryad,
    read_broderick_stimuli,
    read_word_onsets,
)
from ._eeg import (
    read_raw_runs,
    read_subject_eeg,
    runs_from_annotations,
    runs_from_events,
    set_run_annotations,
    subject_eeg_files,
)
from ._result import (
    FORMAT_VERSIONS,
    SavedResult,
    make_record,
    read_provenance,
    read_result,
    register_migration,
)
from ._series import FeatureSeries, read_feature_series, select_alive_features
from ._stim import read_stim_tsv, write_stim_tsv

__all__ = [
    "FORMAT_VERSIONS",
    "FeatureSeries",
    "read_feature_series",
    "select_alive_features",
    "SavedResult",
    "current_umask",
    "json_default",
    "make_record",
    "read_provenance",
    "read_result",
    "register_migration",
    "atomic_dir",
    "atomic_path",
    "remove_partial_writes",
    "broderick_runs",
    "hash_array",
    "hash_config",
    "hash_file",
    "read_audio",
    "read_bids_runs",
    "read_broderick_dryad",
    "read_broderick_stimuli",
    "read_raw_runs",
    "read_stim_tsv",
    "read_subject_eeg",
    "subject_eeg_files",
    "read_word_onsets",
    "runs_from_annotations",
    "runs_from_events",
    "save_npz",
    "set_run_annotations",
    "write_json",
    "write_parquet",
    "write_stim_tsv",
]
