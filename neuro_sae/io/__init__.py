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

__all__ = [
    "atomic_dir",
    "atomic_path",
    "hash_array",
    "hash_config",
    "hash_file",
    "save_npz",
    "write_json",
    "write_parquet",
]
