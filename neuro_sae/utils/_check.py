"""Validation helpers whose messages name the parameter, list what is allowed,
echo the bad value and suggest the fix."""

from __future__ import annotations

import difflib
import numbers
import os
import re
from pathlib import Path

import numpy as np


def _fmt_allowed(allowed):
    allowed = [repr(a) for a in allowed]
    if len(allowed) == 1:
        return allowed[0]
    if len(allowed) == 2:
        return f"{allowed[0]} and {allowed[1]}"
    return ", ".join(allowed[:-1]) + f", and {allowed[-1]}"


def suggest(name, candidates, n=1, cutoff=0.6):
    """Return a ' Did you mean ...?' hint for a misspelt name ('' if none).

    Parameters
    ----------
    name : str
        The bad name.
    candidates : iterable of str
        The valid names.
    n : int
        How many suggestions at most.
    cutoff : float
        Similarity threshold of :func:`difflib.get_close_matches`.

    Returns
    -------
    hint : str
        The hint, starting with a space, or an empty string.
    """
    matches = difflib.get_close_matches(str(name), [str(c) for c in candidates], n=n, cutoff=cutoff)
    if not matches:
        return ""
    return " Did you mean " + " or ".join(repr(m) for m in matches) + "?"


def check_option(parameter, value, allowed, extra=""):
    """Check that ``value`` is one of ``allowed``.

    Parameters
    ----------
    parameter : str
        Name of the parameter (used in the message).
    value : object
        The value given.
    allowed : sequence
        The allowed values.
    extra : str
        Extra text appended to the message.

    Returns
    -------
    value : object
        The value, unchanged.
    """
    if value in allowed:
        return value
    hint = suggest(value, allowed) if isinstance(value, str) else ""
    msg = (
        f"Invalid value for the '{parameter}' parameter. Allowed values are "
        f"{_fmt_allowed(allowed)}, but got {value!r} instead.{hint}"
    )
    if extra:
        msg += " " + extra
    raise ValueError(msg)


def standard_montage(name, parameter="montage"):
    """The MNE standard montage ``name``: every name ``make_standard_montage`` accepts.

    That includes the names :func:`mne.channels.get_builtin_montages` lists and the
    deprecated aliases MNE still accepts (e.g. ``"standard_1020"`` for
    ``"colin27_1020"`` in MNE 1.13), whose FutureWarning MNE emits as usual.

    Parameters
    ----------
    name : str
        The montage name.
    parameter : str
        Name of the parameter (used in the message), e.g. ``"eeg.montage"``.

    Returns
    -------
    montage : mne.channels.DigMontage
        The montage.
    """
    import mne

    validate_type(name, str, parameter)
    try:
        return mne.channels.make_standard_montage(name)
    except ValueError:
        check_option(parameter, name, mne.channels.get_builtin_montages(),
                     extra="Use a standard montage name (mne.channels.get_builtin_montages()).")
        raise


def is_standard_montage(name):
    """Whether ``mne.channels.make_standard_montage(name)`` accepts ``name`` (its warnings,
    e.g. the FutureWarning of a deprecated alias, are emitted)."""
    import mne

    if not isinstance(name, str):
        return False
    if name in mne.channels.get_builtin_montages():
        return True
    try:
        mne.channels.make_standard_montage(name)
    except ValueError:
        return False
    return True


_TYPE_NAMES = {
    "int": (numbers.Integral,),
    "numeric": (numbers.Real,),
    "path-like": (str, os.PathLike),
    "callable": (),
}


def validate_type(value, types, parameter, type_name=None):
    """Check that ``value`` is an instance of ``types``.

    Parameters
    ----------
    value : object
        The value.
    types : type | str | tuple
        Allowed types; the strings ``"int"``, ``"numeric"``, ``"path-like"`` and
        ``"callable"`` and ``None`` are understood.
    parameter : str
        Name of the parameter.
    type_name : str | None
        How to name the allowed types in the message.

    Returns
    -------
    value : object
        The value, unchanged.
    """
    if not isinstance(types, (list, tuple)):
        types = (types,)
    check = []
    names = []
    for t in types:
        if t is None:
            check.append(type(None))
            names.append("None")
        elif t == "callable":
            if callable(value):
                return value
            names.append("callable")
        elif isinstance(t, str):
            check.extend(_TYPE_NAMES[t])
            names.append(t)
        else:
            check.append(t)
            names.append(t.__name__)
    is_bool_as_number = isinstance(value, bool) and bool not in check and (
        "int" in names or "numeric" in names
    )
    if check and isinstance(value, tuple(check)) and not is_bool_as_number:
        return value
    if type_name is None:
        type_name = " or ".join(names)
    raise TypeError(
        f"{parameter} must be an instance of {type_name}, got "
        f"{type(value).__name__} ({value!r}) instead."
    )


def check_positive(value, parameter, strict=True, allow_none=False):
    """Check that a number is positive (``strict``) or non-negative.

    Parameters
    ----------
    value : float | int | None
        The number.
    parameter : str
        Name of the parameter.
    strict : bool
        Require ``> 0`` (else ``>= 0``).
    allow_none : bool
        Let ``None`` through.

    Returns
    -------
    value : float | int | None
        The value, unchanged.
    """
    if value is None and allow_none:
        return value
    validate_type(value, "numeric", parameter)
    ok = value > 0 if strict else value >= 0
    if not ok or not np.isfinite(value):
        bound = "> 0" if strict else ">= 0"
        raise ValueError(f"{parameter} must be a finite number {bound}, got {value!r} instead.")
    return value


def check_fname(fname, parameter, *, must_exist=True, kind="file", hint=""):
    """Validate a path and return it as a :class:`pathlib.Path`.

    Parameters
    ----------
    fname : str | os.PathLike
        The path.
    parameter : str
        Name of the parameter (or manifest key) it came from.
    must_exist : bool
        Raise ``FileNotFoundError`` if it does not exist.
    kind : str
        ``"file"`` or ``"directory"``.
    hint : str
        How to fix a missing path (appended to the message).

    Returns
    -------
    path : pathlib.Path
        The path, with ``~`` expanded.
    """
    validate_type(fname, "path-like", parameter)
    path = Path(fname).expanduser()
    if must_exist:
        exists = path.is_dir() if kind == "directory" else path.is_file()
        if not exists:
            msg = f"The {kind} given as {parameter} does not exist: {path}"
            if path.exists():
                msg = f"{parameter} must be a {kind}, but {path} is not one"
            if hint:
                msg += f". {hint}"
            raise FileNotFoundError(msg)
    return path


def check_array(x, parameter, *, ndim=None, dtype=np.float64, finite=True, copy=False):
    """Convert to a numpy array and check its dimensions and values.

    Parameters
    ----------
    x : array-like
        The data.
    parameter : str
        Name of the parameter.
    ndim : int | tuple of int | None
        Allowed numbers of dimensions.
    dtype : dtype | None
        Convert to this dtype (``None``: keep).
    finite : bool
        Reject NaN and inf.
    copy : bool
        Force a copy.

    Returns
    -------
    x : ndarray
        The array.
    """
    arr = np.array(x, dtype=dtype, copy=True) if copy else np.asarray(x, dtype=dtype)
    if ndim is not None:
        ndims = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if arr.ndim not in ndims:
            raise ValueError(
                f"{parameter} must have {' or '.join(map(str, ndims))} dimension(s), "
                f"got an array of shape {arr.shape} instead."
            )
    if finite and arr.dtype.kind in "fc" and not np.all(np.isfinite(arr)):
        n_bad = int(np.sum(~np.isfinite(arr)))
        raise ValueError(
            f"{parameter} contains {n_bad} non-finite value(s) (NaN or inf); "
            "remove or interpolate them first."
        )
    return arr


def check_device(device, parameter="device"):
    """Validate a compute device string (without importing torch).

    Parameters
    ----------
    device : str
        ``"cpu"`` (NumPy), ``"torch-cpu"`` (torch on the CPU), ``"cuda"`` or ``"cuda:N"``.
    parameter : str
        The parameter name used in the error.

    Returns
    -------
    device : str
        The same string.
    """
    if isinstance(device, str) and (
        device in ("cpu", "torch-cpu", "cuda") or re.fullmatch(r"cuda:\d+", device)
    ):
        return device
    raise ValueError(
        f"Invalid value for the '{parameter}' parameter: {parameter} must be 'cpu' (NumPy), "
        f"'torch-cpu' (torch on the CPU), 'cuda' or 'cuda:N' (N: a GPU index), but got "
        f"{device!r} instead."
    )


def torch_device(device):
    """The ``torch.device`` of a validated non-NumPy ``device`` string.

    Parameters
    ----------
    device : str
        ``"torch-cpu"``, ``"cuda"`` or ``"cuda:N"``.

    Returns
    -------
    device : torch.device
        The device; a clear error when CUDA or the GPU index is not available.
    """
    try:
        import torch
    except ImportError as exc:  # pragma: no cover - torch is a core dependency
        raise ImportError(
            f"device={device!r} needs PyTorch, which could not be imported; install torch "
            f"or pass device='cpu'."
        ) from exc
    if device == "torch-cpu":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise RuntimeError(
            f"device={device!r} was requested but CUDA is not available to torch "
            f"(torch {torch.__version__}, CUDA build {torch.version.cuda}); pass "
            f"device='cpu' or run on a machine with a CUDA GPU."
        )
    dev = torch.device(device)
    n_gpu = torch.cuda.device_count()
    if dev.index is not None and dev.index >= n_gpu:
        raise ValueError(
            f"device={device!r} but only {n_gpu} CUDA device(s) are visible "
            f"(indices 0 ... {n_gpu - 1}); pass one of them or device='cuda'."
        )
    return dev
