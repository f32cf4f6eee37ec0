"""Names of features and channels, positive integers, and feature x channel tables."""

from __future__ import annotations

import numpy as np

from ._check import validate_type


def check_int(value, parameter, *, min_value=1):
    """Validate an integer parameter.

    Parameters
    ----------
    value : int
        The value given.
    parameter : str
        Its name, as the user wrote it (for the error message).
    min_value : int
        The smallest allowed value.

    Returns
    -------
    value : int
        As a Python int.
    """
    validate_type(value, "int", parameter)
    if isinstance(value, bool) or value < min_value:
        what = "a positive int" if min_value == 1 else f"an int >= {min_value}"
        raise ValueError(f"{parameter} must be {what}, got {value!r}.")
    return int(value)


def check_names(names, n, prefix, parameter):
    """Names of ``n`` columns: the given ones as str, or ``prefix0``, ``prefix1``, ...

    Parameters
    ----------
    names : list of str | None
        The names given (``None``: positional defaults).
    n : int
        Number of columns of the data.
    prefix : str
        Prefix of the default names (``"f"``, ``"ch"``).
    parameter : str
        Name of the argument, for the error message.

    Returns
    -------
    names : list of str
        One name per column.
    """
    if names is None:
        return [f"{prefix}{ii}" for ii in range(n)]
    if isinstance(names, str):
        raise TypeError(f"{parameter} must be a list of str, got the str {names!r}.")
    names = [str(nm) for nm in names]
    if len(names) != n:
        raise ValueError(
            f"{parameter} has {len(names)} names but the data have {n}; give one per column."
        )
    return names


def tidy_frame(feature_names, ch_names, **arrays):
    """Tidy table with one row per feature x channel from (n_features, n_channels) arrays.

    Parameters
    ----------
    feature_names : list of str
        Names of the features (rows of the arrays).
    ch_names : list of str
        Names of the channels (columns of the arrays).
    **arrays : ndarray, shape (n_features, n_channels)
        The columns of the table.

    Returns
    -------
    df : pandas.DataFrame
        Columns ``feature``, ``channel`` and one per array.
    """
    import pandas as pd

    F, C = len(feature_names), len(ch_names)
    cols = dict(
        feature=np.repeat(np.asarray(feature_names, dtype=str), C),
        channel=np.tile(np.asarray(ch_names, dtype=str), F),
    )
    for key, val in arrays.items():
        val = np.asarray(val)
        if val.shape != (F, C):
            raise ValueError(f"{key} has shape {val.shape}, expected ({F}, {C}).")
        cols[key] = val.ravel()
    return pd.DataFrame(cols)
