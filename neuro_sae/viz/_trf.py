"""Plots of TRF results: joint plots of kernels, topomaps of held-out r, summary panels."""

from __future__ import annotations

import numpy as np

from ..utils import check_array, verbose


def kernel_to_evoked(coef, times, info, *, comment=""):
    """Wrap one feature's TRF kernel as an :class:`mne.EvokedArray` (times = lags).

    Parameters
    ----------
    coef : array, shape (n_channels, n_delays)
        The kernel of one feature on every channel (EEG units per feature unit).
    times : array, shape (n_delays,)
        Lags in seconds (positive: the response follows the stimulus).
    info : mne.Info
        Channel information (with a montage) of the ``n_channels`` channels.
    comment : str
        Comment stored in the Evoked (e.g. the feature name).

    Returns
    -------
    evoked : mne.EvokedArray
        The kernel, for ``plot_joint`` and ``plot_topomap``.
    """
    import mne

    coef = check_array(coef, "coef", ndim=2)
    times = check_array(times, "times", ndim=1)
    if coef.shape != (len(info["ch_names"]), len(times)):
        raise ValueError(
            f"coef has shape {coef.shape} but info has {len(info['ch_names'])} channels "
            f"and times has {len(times)} lags; expected ({len(info['ch_names'])}, {len(times)})."
        )
    sfreq = info["sfreq"]
    if len(times) > 1 and not np.isclose(np.diff(times).mean(), 1.0 / sfreq, rtol=1e-3):
        raise ValueError(
            f"The lag spacing {np.diff(times).mean():.6f} s does not match info['sfreq'] = "
            f"{sfreq} Hz; pass the Info of the aligned (resampled) EEG."
        )
    # The EEG here is robust-scaled (unitless); MNE expects volts for EEG
    # channels, so kernels are shown in micro-units by scaling with 1e-6.
    return mne.EvokedArray(coef * 1e-6, info, tmin=float(times[0]), comment=comment, nave=1)


@verbose
def plot_trf_joint(coef, times, info, *, title=None, topomap_times="peaks", show=True, verbose=None):
    """Joint plot (butterfly + topomaps at peaks) of one feature's TRF kernel.

    Parameters
    ----------
    coef : array, shape (n_channels, n_delays)
        The kernel.
    times : array, shape (n_delays,)
        Lags in seconds.
    info : mne.Info
        Channel information with a montage.
    title : str | None
        Figure title.
    topomap_times : "peaks" | array-like of float
        Where to draw topomaps (see :meth:`mne.Evoked.plot_joint`).
    show : bool
        Show the figure.
    %(verbose)s

    Returns
    -------
    fig : matplotlib.figure.Figure
        The figure.
    """
    import mne

    evoked = kernel_to_evoked(coef, times, info, comment=title or "")
    with mne.utils.use_log_level("WARNING"):
        fig = evoked.plot_joint(
            times=topomap_times,
            title=title,
            show=show,
            ts_args=dict(units=dict(eeg="a.u."), scalings=dict(eeg=1e6), time_unit="ms"),
            topomap_args=dict(units="a.u.", scalings=dict(eeg=1e6), time_unit="ms"),
        )
    return fig


@verbose
def plot_r_topomap(r, info, *, mask=None, axes=None, title=None, vlim=(None, None), cmap="RdBu_r", show=True, verbose=None):
    """Topomap of held-out prediction correlations (one value per channel).

    Parameters
    ----------
    r : array, shape (n_channels,)
        Held-out Pearson r per channel.
    info : mne.Info
        Channel information with a montage.
    mask : array of bool, shape (n_channels,) | None
        Channels to mark (e.g. significant ones).
    axes : matplotlib.axes.Axes | None
        Where to draw; a new figure when ``None``.
    title : str | None
        Axes title.
    vlim : tuple of float | None
        Colour limits; symmetric around zero by default.
    cmap : str
        Colour map.
    show : bool
        Show the figure.
    %(verbose)s

    Returns
    -------
    fig : matplotlib.figure.Figure
        The figure.
    """
    import matplotlib.pyplot as plt
    import mne

    r = check_array(r, "r", ndim=1)
    if len(r) != len(info["ch_names"]):
        raise ValueError(f"r has {len(r)} values but info has {len(info['ch_names'])} channels.")
    if axes is None:
        fig, axes = plt.subplots(figsize=(3.2, 3.2), layout="constrained")
    else:
        fig = axes.figure
    if vlim == (None, None):
        lim = float(np.max(np.abs(r))) or 1.0
        vlim = (-lim, lim)
    im, _ = mne.viz.plot_topomap(
        r,
        info,
        axes=axes,
        mask=None if mask is None else np.asarray(mask, bool),
        mask_params=dict(marker="o", markerfacecolor="k", markersize=3),
        vlim=vlim,
        cmap=cmap,
        show=False,
        sensors=True,
        contours=4,
    )
    fig.colorbar(im, ax=axes, shrink=0.7, label="held-out r")
    if title:
        axes.set_title(title, fontsize=9)
    if show:
        plt.show()
    return fig


@verbose
def plot_sweep_summary(table, *, planted=None, alpha=0.05, axes=None, show=True, verbose=None):
    """Summary panel of a group-level feature sweep.

    Parameters
    ----------
    table : pandas.DataFrame
        One row per feature with columns ``feature``, ``r`` (best-channel group
        statistic), ``p_fwe`` and ``significant``.
    planted : array-like of int | None
        Features with planted responses (highlighted).
    alpha : float
        Family-wise level drawn as a line.
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

    for col in ("feature", "r", "p_fwe", "significant"):
        if col not in table.columns:
            raise ValueError(f"table needs a {col!r} column; it has {list(table.columns)}.")
    if axes is None:
        fig, axes = plt.subplots(1, 2, figsize=(8, 3.2), layout="constrained")
    else:
        fig = np.ravel(axes)[0].figure
    ax_hist, ax_p = np.ravel(axes)[:2]
    planted = set() if planted is None else {int(p) for p in planted}
    is_planted = table["feature"].astype(int).isin(planted).to_numpy()
    r = table["r"].to_numpy()
    bins = np.linspace(min(r.min(), 0), r.max() * 1.05 + 1e-9, 30)
    ax_hist.hist(r[~is_planted], bins=bins, color="0.6", label="other features")
    if is_planted.any():
        ax_hist.hist(r[is_planted], bins=bins, color="C3", label="planted")
    ax_hist.set(xlabel="best-channel group r", ylabel="features")
    ax_hist.legend(frameon=False, fontsize=8)
    p = np.clip(table["p_fwe"].to_numpy(), 1e-6, 1)
    ax_p.scatter(r[~is_planted], -np.log10(p[~is_planted]), s=8, color="0.5")
    if is_planted.any():
        ax_p.scatter(r[is_planted], -np.log10(p[is_planted]), s=24, color="C3", label="planted")
    ax_p.axhline(-np.log10(alpha), color="k", ls="--", lw=0.8, label=f"p_FWE = {alpha}")
    ax_p.set(xlabel="best-channel group r", ylabel="-log10 p (FWE)")
    ax_p.legend(frameon=False, fontsize=8)
    if show:
        plt.show()
    return fig
