"""Plots of statistics: sweep summary, max-T null, chosen ridge alphas, per-run held-out r."""

from __future__ import annotations

import numpy as np

from ..utils import check_array, verbose
from ._labels import _quarter


def _new_axes(axes, figsize):
    import matplotlib.pyplot as plt

    if axes is None:
        fig, axes = plt.subplots(figsize=tuple(_quarter(v) for v in figsize), layout="constrained")
        return fig, axes
    return axes.figure, axes


def _check_floor(p_floor):
    if p_floor is None:
        return None
    p_floor = float(p_floor)
    if not 0 < p_floor < 1:
        raise ValueError(
            f"p_floor must be in (0, 1) (1 / (n_permutations + 1) for random permutations), "
            f"got {p_floor}."
        )
    return p_floor


def _at_floor(p, floor):
    """Whether each p-value sits at the permutation floor 1/(n+1) (not below it)."""
    if floor is None:
        return np.zeros(np.shape(p), bool)
    return np.isclose(p, floor, rtol=1e-6, atol=0)


@verbose
def plot_sweep_summary(table, *, planted=None, alpha=0.05, p_floor=None, axes=None, show=True,
                       verbose=None):
    """Summary panel of a group-level feature sweep.

    Parameters
    ----------
    table : pandas.DataFrame
        One row per feature with columns ``feature``, ``r`` (best-channel group
        statistic), ``p_fwe`` and ``significant``.
    planted : array-like of int | array-like of str | None
        Features with planted responses (highlighted; compared with ``feature`` as
        strings).
    alpha : float
        Family-wise level drawn as a line.
    p_floor : float | None
        The smallest p-value the permutations can give (``1 / (n_permutations + 1)`` for
        random permutations, ``1 / n_permutations`` for an exact enumeration): drawn as a
        line, with the number of features sitting on it (their true p-value may be
        smaller; more permutations would resolve them).
    axes : array of matplotlib.axes.Axes | None
        Two axes; created when ``None``.
    show : bool
        Show the figure.
    %(verbose)s

    Returns
    -------
    fig : matplotlib.figure.Figure
        The figure.
    """
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    for col in ("feature", "r", "p_fwe", "significant"):
        if col not in table.columns:
            raise ValueError(f"table needs a {col!r} column; it has {list(table.columns)}.")
    if axes is None:
        fig, axes = plt.subplots(1, 2, figsize=(8.5, 3.75), layout="constrained")
    else:
        fig = np.ravel(axes)[0].figure
    ax_hist, ax_p = np.ravel(axes)[:2]
    planted = set() if planted is None else {str(p) for p in planted}
    is_planted = table["feature"].astype(str).isin(planted).to_numpy()
    r = table["r"].to_numpy(dtype=float)
    bins = np.linspace(min(r.min(), 0), r.max() * 1.05 + 1e-9, 30)
    ax_hist.hist(r[~is_planted], bins=bins, color="0.6", label="other features")
    if is_planted.any():
        ax_hist.hist(r[is_planted], bins=bins, color="C3", label="planted")
    ax_hist.set(xlabel="best-channel group r", ylabel="features")
    ax_hist.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax_hist.legend(frameon=False, fontsize=8)
    p = np.clip(table["p_fwe"].to_numpy(dtype=float), 1e-12, 1)
    floor = _check_floor(p_floor)
    ax_p.scatter(r[~is_planted], -np.log10(p[~is_planted]), s=8, color="0.5", label="features")
    if is_planted.any():
        ax_p.scatter(r[is_planted], -np.log10(p[is_planted]), s=24, color="C3", label="planted")
    ax_p.axhline(-np.log10(alpha), color="k", ls="--", lw=0.8, label=f"p_FWE = {alpha:g}")
    if floor is not None:
        n_floor = int(_at_floor(p, floor).sum())
        ax_p.axhline(
            -np.log10(floor), color="C0", ls=":", lw=1.0,
            label=f"permutation floor p = 1/{round(1 / floor)}: {n_floor} feature(s) on it",
        )
        ax_p.set_ylim(top=max(ax_p.get_ylim()[1], -np.log10(floor) * 1.08))
    ax_p.set(xlabel="best-channel group r", ylabel="-log10 p (FWE)")
    # below the axes: inside, it would cover the floor line and the strongest features
    ax_p.legend(frameon=False, fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2)
    if show:
        plt.show()
    return fig


@verbose
def plot_null_distribution(max_null, observed, *, labels=None, alpha=0.05, xlabel="held-out r",
                           axes=None, show=True, verbose=None):
    """The max-T null distribution with the observed statistics and the FWE threshold.

    Parameters
    ----------
    max_null : array, shape (n_permutations,)
        Maximum over the family (features x channels) of each permutation's statistic.
    observed : array, shape (n_observed,)
        Observed statistics to mark (e.g. the largest r of the top features).
    labels : list of str | None
        Name of each observed value (legend).
    alpha : float
        Family-wise level: the ``1 - alpha`` quantile of the null is drawn.
    xlabel : str
        The statistic and its unit.
    axes : matplotlib.axes.Axes | None
        Where to draw.
    show : bool
        Show the figure.
    %(verbose)s

    Returns
    -------
    fig : matplotlib.figure.Figure
        The figure.
    """
    import matplotlib.pyplot as plt

    max_null = check_array(max_null, "max_null", ndim=1)
    observed = np.atleast_1d(check_array(observed, "observed"))
    if labels is not None and len(labels) != len(observed):
        raise ValueError(f"labels has {len(labels)} entries but observed has {len(observed)}.")
    fig, ax = _new_axes(axes, (6.0, 3.4))
    n = len(max_null)
    ax.hist(max_null, bins=max(10, min(60, n // 10)), color="0.6",
            label=f"null: max over the family ({n} permutations)")
    thr = float(np.quantile(max_null, 1 - alpha))
    ax.axvline(thr, color="k", ls="--", lw=1.0, label=f"FWE threshold ({1 - alpha:.0%} of the null)")
    for k, obs in enumerate(observed):
        name = labels[k] if labels is not None else f"observed {k + 1}"
        ax.axvline(obs, color=f"C{(k + 3) % 10}", lw=1.6, label=f"{name}: {obs:.3f}")
    beyond = int(np.sum(observed > max_null.max()))
    if beyond:
        ax.text(
            0.98, 0.55, f"{beyond} observed value(s) beyond every permutation:\n"
            f"p at the floor 1/({n}+1) = {1 / (n + 1):.2g}",
            transform=ax.transAxes, ha="right", va="center", fontsize=7,
        )
    lo = min(max_null.min(), observed.min())
    hi = max(max_null.max(), observed.max())
    pad = 0.05 * (hi - lo or 1.0)
    ax.set_xlim(lo - pad, hi + pad)
    ax.set(xlabel=xlabel, ylabel="permutations")
    ax.legend(frameon=False, fontsize=7, loc="upper right")
    if show:
        plt.show()
    return fig


@verbose
def plot_alpha_choices(alpha_final, alphas, *, axes=None, show=True, verbose=None):
    """How often each ridge alpha of the grid was chosen, over features x channels.

    Parameters
    ----------
    alpha_final : array, shape (n_features, n_channels)
        The chosen raw alpha of each feature x channel.
    alphas : array, shape (n_features, n_alphas) | (n_alphas,)
        The grid (one row per feature when the grid is relative to each feature).
    axes : matplotlib.axes.Axes | None
        Where to draw.
    show : bool
        Show the figure.
    %(verbose)s

    Returns
    -------
    fig : matplotlib.figure.Figure
        The figure: one bar per grid value, the grid edges coloured.
    """
    import matplotlib.pyplot as plt

    alpha_final = check_array(alpha_final, "alpha_final", ndim=2)
    alphas = check_array(alphas, "alphas")
    if alphas.ndim == 1:
        alphas = np.broadcast_to(alphas, (alpha_final.shape[0], len(alphas)))
    if alphas.ndim != 2 or alphas.shape[0] != alpha_final.shape[0]:
        raise ValueError(
            f"alphas has shape {alphas.shape}; expected ({alpha_final.shape[0]}, n_alphas) or (n_alphas,)."
        )
    n_alphas = alphas.shape[1]
    pos = np.argmin(np.abs(np.log(alpha_final[:, :, None]) - np.log(alphas[:, None, :])), axis=2)
    counts = np.bincount(pos.ravel(), minlength=n_alphas)
    fig, ax = _new_axes(axes, (5.6, 3.2))
    colors = ["0.55"] * n_alphas
    if n_alphas > 1:
        colors[0] = colors[-1] = "C1"
    ax.bar(np.arange(n_alphas), counts, color=colors)
    if np.allclose(alphas, alphas[0]):
        ax.set_xticks(np.arange(n_alphas), [f"{a:.0e}" for a in alphas[0]], rotation=45, fontsize=8)
        ax.set_xlabel("ridge alpha (raw)")
    else:
        ax.set_xticks(np.arange(n_alphas), [str(k + 1) for k in range(n_alphas)])
        ax.set_xlabel("position on each feature's alpha grid (low to high)")
    ax.set_ylabel("feature x channel pairs")
    if n_alphas > 1:
        edge = (counts[0] + counts[-1]) / max(counts.sum(), 1)
        ax.set_title(f"{edge:.0%} on the grid edges (orange)", fontsize=9)
    if show:
        plt.show()
    return fig


@verbose
def plot_run_r(r_runs, run_ids, labels, *, ylabel="held-out r", axes=None, show=True, verbose=None):
    """Held-out r of each run (outer fold), one line per feature or model.

    Parameters
    ----------
    r_runs : array, shape (n_series, n_runs)
        Held-out r of each series when each run is held out.
    run_ids : list of str
        The held-out run of each column.
    labels : list of str
        Name of each series.
    ylabel : str
        The statistic (which channel it is taken on).
    axes : matplotlib.axes.Axes | None
        Where to draw.
    show : bool
        Show the figure.
    %(verbose)s

    Returns
    -------
    fig : matplotlib.figure.Figure
        The figure.
    """
    import matplotlib.pyplot as plt

    r_runs = check_array(r_runs, "r_runs", ndim=2)
    if r_runs.shape != (len(labels), len(run_ids)):
        raise ValueError(
            f"r_runs has shape {r_runs.shape} but there are {len(labels)} labels and "
            f"{len(run_ids)} runs."
        )
    fig, ax = _new_axes(axes, (max(6.0, 0.9 * len(run_ids) + 4.0), 3.25))
    x = np.arange(len(run_ids))
    for k, (row, name) in enumerate(zip(r_runs, labels)):
        ax.plot(x, row, marker="o", ms=4, lw=1.2, color=f"C{k % 10}", label=f"{name} (mean {row.mean():.3f})")
    ax.axhline(0, color="0.5", lw=0.6)
    ax.set_xticks(x, [str(r) for r in run_ids])
    ax.set(xlabel="held-out run", ylabel=ylabel)
    ax.legend(frameon=False, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    if show:
        plt.show()
    return fig
