"""Input/output: audio, EEG readers, feature-series files, atomic writes, hashes."""

from ._atomic import (
    atomic_dir,
    atomic_path,
    hash_array,
    hash_config,
    hash_file,
    save_npz,
    write_json,
    write_parquet,
)
from ._audio import read_audio
from ._eeg import read_raw_runs

__all__ = [
    "atomic_dir",
    "atomic_path",
    "hash_array",
    "hash_config",
    "hash_file",
    "read_audio",
    "read_raw_runs",
    "save_npz",
    "write_json",
    "write_parquet",
]
