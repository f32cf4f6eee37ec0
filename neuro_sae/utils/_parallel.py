"""``n_jobs`` as in MNE: ``None`` is serial unless a joblib ``parallel_config`` says more."""

from __future__ import annotations

import os

from ._check import validate_type


def _n_cpus():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def check_n_jobs(n_jobs, parameter="n_jobs"):
    """The number of workers ``n_jobs`` asks for.

    Parameters
    ----------
    n_jobs : int | None
        ``None``: 1, unless inside a :func:`joblib.parallel_config` context that sets
        ``n_jobs`` (then that value). A positive int: that many workers. ``-1``: every
        usable core; ``-k``: all but ``k - 1`` cores.
    parameter : str
        Name of the argument in error messages.

    Returns
    -------
    n_jobs : int
        At least 1.
    """
    if n_jobs is None:
        from joblib.parallel import get_active_backend

        n_jobs = get_active_backend()[1]
        if n_jobs is None:
            return 1
    validate_type(n_jobs, "int", parameter)
    n_jobs = int(n_jobs)
    if n_jobs == 0:
        raise ValueError(
            f"{parameter}=0 is not allowed; pass None or 1 (serial), a positive number "
            "of workers, or -1 (every core)."
        )
    if n_jobs < 0:
        n_jobs = max(1, _n_cpus() + 1 + n_jobs)
    return n_jobs
