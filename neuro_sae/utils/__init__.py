"""Shared utilities: logging and ``verbose``, progress bars, ``random_state``,
validation, the docdict."""

from ._check import (
    check_array,
    check_device,
    check_fname,
    check_option,
    check_positive,
    suggest,
    torch_device,
    validate_type,
)
from ._logging import logger, set_log_level, use_log_level, verbose, warn
from ._names import check_int, check_names, tidy_frame
from ._parallel import check_n_jobs
from ._progress import progress_bar
from ._random import check_random_state, derive_seed, torch_generator, torch_num_threads
from .docs import docdict, fill_doc

__all__ = [
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
    "set_log_level",
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
