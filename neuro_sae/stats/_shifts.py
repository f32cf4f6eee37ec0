"""Circular shifts of the permutation nulls: where they may fall and how they are drawn."""

from __future__ import annotations

import numpy as np

from ._translate import _kernel_spacing, _translate_structure


def _draw_shifts(rng, n_times, min_shift, n_permutations, step=1):
    """Shifts in [min_shift, T - min_shift] (circular distance >= min_shift), per run,
    multiples of ``step`` samples (``step=1``: any sample)."""
    cols = []
    for T in n_times:
        lo, hi = -(-min_shift // step), (T - min_shift) // step
        cols.append(step * (lo + rng.integers(0, hi - lo + 1, n_permutations)))
    return np.stack(cols, axis=1)


def _resolve_shift_step(shift_step, sweep, null, n_times, min_shift):
    """The grid of the circular shifts in samples (see ``shift_step``)."""
    if shift_step == "auto":
        if null != "refit" or not np.size(sweep.basis):
            return 1
        trans = _translate_structure(np.asarray(sweep.basis, dtype=float))
        step = _kernel_spacing(trans[1]) if trans is not None else 0
        ok = step > 1 and all(T % step == 0 and (T - 2 * min_shift) // step >= 1
                              for T in n_times)  # fmt: skip
        return step if ok else 1
    if (
        isinstance(shift_step, bool)
        or not isinstance(shift_step, (int, np.integer))
        or (shift_step < 1)
    ):
        raise ValueError(
            f'shift_step must be "auto" or a positive int (samples), got {shift_step!r}; '
            'use shift_step="auto" or 1 (any sample).'
        )
    step = int(shift_step)
    for T in n_times:
        if (T - min_shift) // step < -(-min_shift // step):
            raise ValueError(
                f"shift_step={step} leaves no allowed shift in a run of {T} samples with "
                f"min_shift_s = {min_shift} samples; pass a smaller shift_step."
            )
    return step
