"""Statistics: permutation nulls, max-T, FDR, group-level tests, clusters, the paper's protocol."""

from ._cluster import (
    ClusterResult,
    channel_adjacency,
    cluster_test,
    read_cluster_result,
    screen_features,
)
from ._group import GroupResult, group_permutation_test, read_group_result
from ._models import group_permuted_ols, layer_mixedlm, layer_statistic
from ._multicomp import fdr_correction, max_t_across
from ._permutation import (
    PermutationResult,
    read_permutation_result,
    sweep_permutation_test,
)
from ._protocol import paper_protocol, protocol_kernels
from ._tail import gpd_pvalue

__all__ = [
    "ClusterResult",
    "GroupResult",
    "PermutationResult",
    "channel_adjacency",
    "cluster_test",
    "fdr_correction",
    "gpd_pvalue",
    "group_permutation_test",
    "group_permuted_ols",
    "layer_mixedlm",
    "layer_statistic",
    "max_t_across",
    "paper_protocol",
    "protocol_kernels",
    "read_cluster_result",
    "read_group_result",
    "read_permutation_result",
    "screen_features",
    "sweep_permutation_test",
]
