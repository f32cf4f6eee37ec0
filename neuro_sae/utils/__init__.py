"""Shared utilities: logging and ``verbose``, progress bars, ``random_state``,
validation, the docdict."""

from ._check import (
    check_array,
    check_device,
    check_fname,
    check_option,
    check_positive,
    is_standard_montage,
    standard_montage,
    suggest,
    torch_device,
    validate_type,
)
from ._logging import logger, set_log_level, use_log_level, verbose, warn
from ._names import check_int, check_names, tidy_frame
from ._parallel import check_n_jobs
from ._progress import progress_bar
from ._random import check_random_state, derive_seed, torch_generator, torch_num_threads
from ._sysdeps import (
    SYSTEM_DEPENDENCIES,
    MissingToolError,
    find_system,
    missing_packages,
    require_system,
    system_dependency,
)
from .docs import docdict, fill_doc

__all__ = [
    "SYSTEM_DEPENDENCIES",
    "MissingToolError",
    "find_system",
    "missing_packages",
    "require_system",
    "system_dependency",
    "check_array",
    "check_device",
    "check_fname",
    "check_int",
    "check_n_jobs",
    "check_names",
    "check_option",
    "check_positive",
    "check_random_state",
    "derive_seed",
    "docdict",
    "fill_doc",
    "logger",
    "progress_bar",
    "is_standard_montage",
    "set_log_level",
    "standard_montage",
    "suggest",
    "tidy_frame",
    "torch_device",
    "torch_generator",
    "torch_num_threads",
    "use_log_level",
    "validate_type",
    "verbose",
    "warn",
]
