"""The single ``neuro_sae`` logger, the ``verbose`` decorator and log-level helpers."""

from __future__ import annotations

import contextlib
import functools
import inspect
import logging

logger = logging.getLogger("neuro_sae")
logger.propagate = False
if not logger.handlers:
    _handler = logging.StreamHandler()
    _handler.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(_handler)
logger.setLevel(logging.WARNING)

_LEVELS = {
    "DEBUG": logging.DEBUG,
    "INFO": logging.INFO,
    "WARNING": logging.WARNING,
    "ERROR": logging.ERROR,
    "CRITICAL": logging.CRITICAL,
}


def _parse_level(verbose):
    """Convert a ``verbose`` value to a :mod:`logging` level."""
    if verbose is None:
        return logger.level
    if isinstance(verbose, bool):
        return logging.INFO if verbose else logging.WARNING
    if isinstance(verbose, str):
        key = verbose.upper()
        if key not in _LEVELS:
            raise ValueError(
                "Invalid value for the 'verbose' parameter. Allowed values are "
                f"None, True, False, an int or one of {sorted(_LEVELS)}, but got "
                f"{verbose!r} instead."
            )
        return _LEVELS[key]
    if isinstance(verbose, int):
        return verbose
    raise TypeError(
        "verbose must be None, bool, int or str (e.g. 'INFO'), got "
        f"{type(verbose).__name__} instead."
    )


def set_log_level(verbose=None, return_old_level=False):
    """Set the level of the ``neuro_sae`` logger.

    Parameters
    ----------
    verbose : bool | str | int | None
        ``True`` is ``'INFO'``, ``False`` is ``'WARNING'``, ``None`` leaves the
        level unchanged.
    return_old_level : bool
        Whether to return the level in force before the call.

    Returns
    -------
    old_level : int | None
        The previous level, if ``return_old_level``.
    """
    old = logger.level
    logger.setLevel(_parse_level(verbose))
    return old if return_old_level else None


@contextlib.contextmanager
def use_log_level(verbose=None):
    """Context manager that sets the log level and restores it in ``finally``.

    Parameters
    ----------
    verbose : bool | str | int | None
        The level to use inside the block (``None``: unchanged).
    """
    old = logger.level
    try:
        logger.setLevel(_parse_level(verbose))
        yield
    finally:
        logger.setLevel(old)


def verbose(function):
    """Decorate a function so that its ``verbose`` argument sets the log level.

    Docstring placeholders (the docdict key in ``%(...)s`` form) are filled.

    The wrapped function must take a keyword ``verbose=None``; a structural test
    checks that every public function with a ``verbose`` parameter is decorated.

    Parameters
    ----------
    function : callable
        The function to wrap.

    Returns
    -------
    wrapped : callable
        The wrapped function.
    """
    if function.__doc__ and "%(" in function.__doc__:
        from .docs import fill_doc

        fill_doc(function)
    sig = inspect.signature(function)
    if "verbose" not in sig.parameters:
        raise RuntimeError(
            f"{function.__qualname__} is decorated with @verbose but has no "
            "'verbose' parameter; add 'verbose=None' as its last keyword."
        )

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        value = kwargs.get("verbose", None)
        if value is None:
            try:
                bound = sig.bind_partial(*args, **kwargs)
            except TypeError:
                bound = None
            if bound is not None:
                value = bound.arguments.get("verbose", None)
        if value is None:
            return function(*args, **kwargs)
        with use_log_level(value):
            return function(*args, **kwargs)

    wrapper.__neuro_sae_verbose__ = True
    return wrapper


@functools.lru_cache(maxsize=1024)
def _resolved(fname):
    """A source file's resolved path (cached: ``warn`` walks the stack on every call)."""
    from pathlib import Path

    return str(Path(fname).resolve())


def warn(message, category=UserWarning, stacklevel=None):
    """Emit a warning through :mod:`warnings` and log it at DEBUG level.

    The warning is attributed to the first frame outside the neuro_sae package (the user's
    line), as MNE does, so ``-W error`` filters and the printed location point at user code.

    Parameters
    ----------
    message : str
        The text.
    category : type
        The warning class.
    stacklevel : int | None
        Passed to :func:`warnings.warn`; ``None`` (default) finds the first caller outside
        the package.
    """
    import inspect
    import warnings
    from pathlib import Path

    logger.debug(message)
    if stacklevel is None:
        root = str(Path(_resolved(__file__)).parents[1])
        frame = inspect.currentframe()
        stacklevel = 2  # 1 is this function, 2 its caller
        try:
            frame = frame.f_back
            while frame is not None and _resolved(frame.f_code.co_filename).startswith(root):
                frame = frame.f_back
                stacklevel += 1
        finally:
            del frame
    else:
        stacklevel += 1
    warnings.warn(message, category, stacklevel=stacklevel)
