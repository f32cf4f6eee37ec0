"""Helpers shared by the stats modules (no stats module imports another's internals
in a cycle: ``_group``, ``_permutation``, ``_models`` all import from here)."""

from __future__ import annotations

import json
import numbers

import numpy as np

from ..io import json_default, write_parquet
from ..utils import check_fname


def _rs_repr(random_state):
    """JSON-friendly record of a random_state."""
    if random_state is None or isinstance(random_state, (numbers.Integral, np.integer)):
        return None if random_state is None else int(random_state)
    return type(random_state).__name__


def _save_table(df, fname, provenance, *, overwrite=True):
    """Tidy table to parquet, provenance as JSON in ``df.attrs`` (kept by pyarrow)."""
    fname = check_fname(fname, "fname", must_exist=False)
    if fname.suffix != ".parquet":
        raise ValueError(
            f"fname must end with '.parquet', got {fname.name!r}; e.g. "
            f"{fname.with_suffix('.parquet').name!r}."
        )
    if fname.exists() and not overwrite:
        raise FileExistsError(f"{fname} exists; pass overwrite=True to replace it.")
    df.attrs["provenance"] = json.dumps(provenance, default=json_default)
    write_parquet(df, fname)
    return fname
