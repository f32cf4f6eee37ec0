"""The steering frontier figure: false detections against WER, per method."""

from __future__ import annotations

import numpy as np

from ..utils import fill_doc, verbose

_COLORS = {("paper", "sae"): "C0", ("paper", "svector"): "C1", ("paper", "splice"): "C4",
           ("error-preserving", "sae"): "C2", ("error-preserving", "svector"): "C3",
           ("", "none"): "k"}


def _pareto(x, y):
    """Indices of the lower-left Pareto frontier, sorted by x."""
    order = np.lexsort((y, x))
    keep, best = [], np.inf
    for i in order:
        if y[i] < best:
            keep.append(i)
            best = y[i]
    return np.array(keep, int)


@fill_doc
@verbose
def plot_steering_frontier(grid, *, layer=None, axes=None, show=True, verbose=None):
    """FPR and hallucination rate against WER for every cell, frontier per method.

    Each preset and method is drawn apart: "paper" (``x_hat(f + alpha s)``, the
    SAE spliced in as a diamond) and "error-preserving steering" (the SAE's error
    term kept). The rates pool validation and test clips: the figure describes
    the grid, the chosen cells come from :func:`select_cells`.

    Parameters
    ----------
    grid : pandas.DataFrame
        From :func:`steering_grid` (the mean over the non-speech test sets is
        plotted).
    layer : int | None
        Only this layer's cells (``None``: all).
    axes : array of matplotlib.axes.Axes | None
        Two axes (FPR, hallucination rate); ``None`` makes a figure.
    show : bool
        Show the figure.
    %(verbose)s

    Returns
    -------
    fig : matplotlib.figure.Figure
        The figure.
    """
    import matplotlib.pyplot as plt

    from ._grid import cell_table

    cells = cell_table(grid, verbose=False)
    if layer is not None:
        cells = cells[(cells["layer"] == layer) | (cells["method"] == "none")]
    if axes is None:
        fig, axes = plt.subplots(1, 2, figsize=(9, 3.8), constrained_layout=True)
    else:
        fig = np.ravel(axes)[0].figure
    axes = np.ravel(axes)
    from ._select import _label

    for ax, col, name in zip(axes, ("fpr", "hallucination_rate"),
                             ("FPR", "Hallucination rate")):
        for (preset, method), df in cells.groupby(["preset", "method"]):
            x = 100 * df["wer"].to_numpy(float)
            y = 100 * df[col].to_numpy(float)
            ok = np.isfinite(x) & np.isfinite(y)
            x, y = x[ok], y[ok]
            kw = dict(color=_COLORS.get((preset, method), "C5"))
            label = _label(preset, method)
            if method == "none":
                ax.plot(x, y, "k*", ms=12, label=label, zorder=5)
                continue
            if method == "splice":
                ax.plot(x, y, "D", ms=7, label=label, zorder=5, **kw)
                continue
            ax.scatter(x, y, s=14, alpha=0.45, **kw)
            if len(x):
                idx = _pareto(x, y)
                ax.plot(x[idx], y[idx], "-o", ms=4, label=label, **kw)
        ax.set_xlabel("WER, held-out speech (%)")
        ax.set_ylabel(f"{name}, held-out non-speech (%)")
        ax.grid(alpha=0.3)
    axes[0].legend(loc="best", fontsize=8)
    title = "Steering Whisper away from false speech detection"
    if layer is not None:
        title += f" (layer {layer})"
    fig.suptitle(title)
    if show:
        plt.show()
    return fig
