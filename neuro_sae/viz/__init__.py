"""Plotting functions: take results, accept ``axes=``/``show=``, return the Figure."""

from ._trf import kernel_to_evoked, plot_r_topomap, plot_sweep_summary, plot_trf_joint

__all__ = ["kernel_to_evoked", "plot_r_topomap", "plot_sweep_summary", "plot_trf_joint"]
