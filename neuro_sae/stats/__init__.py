"""Statistics: circular-shift permutation nulls, max-T, FDR, group-level tests."""

from ._group import GroupResult, group_permutation_test, read_group_result
from ._multicomp import fdr_correction
from ._permutation import (
    PermutationResult,
    read_permutation_result,
    sweep_permutation_test,
)

__all__ = [
    "GroupResult",
    "PermutationResult",
    "fdr_correction",
    "group_permutation_test",
    "read_group_result",
    "read_permutation_result",
    "sweep_permutation_test",
]
