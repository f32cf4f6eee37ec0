"""The steering frontier figure: false detections against WER, per method."""

from __future__ import annotations

import numpy as np

from ..utils import fill_doc, verbose

_COLORS = {"sae": "C0", "svector": "C1", "none": "k"}
_LABELS = {"sae": "SAE features", "svector": "S-vector", "none": "unsteered"}


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
    for ax, col, name in zip(axes, ("fpr", "hallucination_rate"),
                             ("FPR", "Hallucination rate")):
        for method, df in cells.groupby("method"):
            x = 100 * df["wer"].to_numpy(float)
            y = 100 * df[col].to_numpy(float)
            ok = np.isfinite(x) & np.isfinite(y)
            x, y = x[ok], y[ok]
            kw = dict(color=_COLORS.get(method, "C2"))
            if method == "none":
                ax.plot(x, y, "k*", ms=12, label=_LABELS["none"], zorder=5)
                continue
            ax.scatter(x, y, s=14, alpha=0.45, **kw)
            if len(x):
                idx = _pareto(x, y)
                ax.plot(x[idx], y[idx], "-o", ms=4, label=_LABELS.get(method, method), **kw)
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
