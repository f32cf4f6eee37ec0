"""Plotting functions: take results, accept ``axes=``/``show=``, return the Figure."""

from ._eeg import plot_alignment_check, plot_filter_check
from ._labels import feature_label, permutation_floor
from ._stats import plot_alpha_choices, plot_null_distribution, plot_run_r, plot_sweep_summary
from ._trf import (
    kernel_to_evoked,
    pick_topomap_times,
    plot_r_topomap,
    plot_r_topomaps,
    plot_trf_joint,
)

__all__ = [
    "feature_label",
    "kernel_to_evoked",
    "permutation_floor",
    "pick_topomap_times",
    "plot_alignment_check",
    "plot_alpha_choices",
    "plot_filter_check",
    "plot_null_distribution",
    "plot_r_topomap",
    "plot_r_topomaps",
    "plot_run_r",
    "plot_sweep_summary",
    "plot_trf_joint",
]
