"""Labels shared by the figures and the report."""

from __future__ import annotations

import re


def _quarter(inches):
    """A figure size rounded up to a quarter inch: exact in binary, whole pixels at 100 dpi
    (``mne.Report`` reads raw pixel buffers whose shape it computes from the size)."""
    import math

    return math.ceil(float(inches) * 4 - 1e-9) / 4


def feature_label(name):
    """A readable label of a feature name: ``"f123"`` -> ``"feature 123"``.

    Parameters
    ----------
    name : str
        Feature name as stored in the results (``"f<SAE id>"`` for SAE features).

    Returns
    -------
    label : str
        ``"feature <id>"`` for SAE feature names, the name itself otherwise.
    """
    m = re.fullmatch(r"f(\d+)", str(name))
    return f"feature {m.group(1)}" if m else str(name)


def permutation_floor(n_permutations, *, exact=False):
    """The smallest p-value a permutation test can give.

    Parameters
    ----------
    n_permutations : int
        Number of permutations (or, with ``exact``, of enumerated rearrangements,
        the identity included).
    exact : bool
        Whether every rearrangement was enumerated (``p = count / n``) rather than
        drawn at random (``p = (1 + count) / (1 + n)``).

    Returns
    -------
    p_floor : float
        ``1 / n`` when exact, else ``1 / (n + 1)``.
    """
    n = int(n_permutations)
    if n < 1:
        raise ValueError(f"n_permutations must be >= 1, got {n_permutations}.")
    return 1.0 / n if exact else 1.0 / (n + 1)
