"""Plots of TRF kernels and held-out r: joint plots, topomap times, topomap panels."""

from __future__ import annotations

import numpy as np

from ..utils import check_array, logger, verbose
from ._labels import _quarter

_EPS_S = 1e-9


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
        The kernel, for MNE's own plotting and analysis functions. The data are
        the kernel times 1e-6 (MNE reads EEG as volts; the robust-scaled EEG of the
        pipeline is unitless, so plot with ``scalings=dict(eeg=1e6)``). ``nave`` is
        1 because MNE requires one; a kernel is not an average of trials, and
        :func:`plot_trf_joint` does not show it.
    """
    import mne

    coef, times = _check_kernel(coef, times, info)
    sfreq = info["sfreq"]
    if len(times) > 1 and not np.isclose(np.diff(times).mean(), 1.0 / sfreq, rtol=1e-3):
        raise ValueError(
            f"The lag spacing {np.diff(times).mean():.6f} s does not match info['sfreq'] = "
            f"{sfreq} Hz; pass the Info of the aligned (resampled) EEG."
        )
    return mne.EvokedArray(coef * 1e-6, info, tmin=float(times[0]), comment=comment, nave=1, verbose=False)


def _check_kernel(coef, times, info):
    coef = check_array(coef, "coef", ndim=2)
    times = check_array(times, "times", ndim=1)
    n_ch = len(info["ch_names"])
    if coef.shape != (n_ch, len(times)):
        raise ValueError(
            f"coef has shape {coef.shape} but info has {n_ch} channels and times has "
            f"{len(times)} lags; expected ({n_ch}, {len(times)})."
        )
    return coef, times


def _inner_index(times, tmin, tmax, what="the kernel"):
    """Indices of ``times`` inside [tmin, tmax] (None: open end); at least 3 samples."""
    lo = -np.inf if tmin is None else float(tmin)
    hi = np.inf if tmax is None else float(tmax)
    if lo >= hi:
        raise ValueError(f"tmin ({tmin}) must be below tmax ({tmax}).")
    idx = np.flatnonzero((times >= lo - _EPS_S) & (times <= hi + _EPS_S))
    if len(idx) < 3:
        raise ValueError(
            f"The window tmin={tmin}, tmax={tmax} s holds {len(idx)} lags of {what} (lags "
            f"{times[0]:.3f} to {times[-1]:.3f} s); it needs at least 3. Pass a window inside "
            "the fitted lags (the manifest's trf.tmin/trf.tmax)."
        )
    return idx


@verbose
def pick_topomap_times(coef, times, *, tmin=None, tmax=None, n_peaks=3, channels=None,
                       min_distance_s=0.04, min_height=0.2, verbose=None):
    """Lags at which to draw topomaps: peaks of the global field power inside a window.

    The global field power (GFP) is the standard deviation over channels of the kernel at
    each lag; over a subset of channels (``channels``, e.g. the significant ones, maybe a
    single one) it is their root mean square instead, which does not vanish for one channel
    or for channels that move together. Only lags inside ``[tmin, tmax]`` count, and only
    local maxima there (a sample higher than both neighbours inside the window), so neither
    the first nor the last sample of the window is ever chosen: the rising flank of an edge
    artefact is not a peak. Without any local maximum, the largest value strictly inside the
    window is used.

    Parameters
    ----------
    coef : array, shape (n_channels, n_delays)
        The kernel.
    times : array, shape (n_delays,)
        Lags in seconds.
    tmin, tmax : float | None
        The window to search (the inner window of a fit with a wider lag window);
        ``None``: the first/last lag.
    n_peaks : int
        At most this many peaks, the highest first.
    channels : array of bool | array of int | None
        Channels whose root mean square replaces the GFP (e.g. the significant ones);
        ``None``: the GFP of all channels.
    min_distance_s : float
        Smallest distance between two chosen peaks in seconds.
    min_height : float
        Peaks lower than this fraction of the highest peak are dropped.
    %(verbose)s

    Returns
    -------
    peak_times : ndarray, shape (n_chosen,)
        Lags in seconds, increasing (1 to ``n_peaks`` values).
    """
    from scipy.signal import find_peaks

    coef = check_array(coef, "coef", ndim=2)
    times = check_array(times, "times", ndim=1)
    if coef.shape[1] != len(times):
        raise ValueError(f"coef has {coef.shape[1]} lags but times has {len(times)}.")
    if int(n_peaks) < 1:
        raise ValueError(f"n_peaks must be >= 1, got {n_peaks}.")
    if channels is not None:
        channels = np.asarray(channels)
        coef = coef[channels]
        if coef.shape[0] == 0:
            raise ValueError("channels selects no channel; pass None to use all of them.")
    idx = _inner_index(times, tmin, tmax)
    gfp = _field_power(coef[:, idx], subset=channels is not None)
    step = np.median(np.diff(times)) if len(times) > 1 else 1.0
    distance = max(1, int(round(min_distance_s / step)))
    peaks, _ = find_peaks(gfp, distance=distance)
    if len(peaks):
        peaks = peaks[np.argsort(-gfp[peaks], kind="stable")]
        peaks = peaks[gfp[peaks] >= min_height * gfp[peaks[0]]][: int(n_peaks)]
    else:
        peaks = np.array([1 + int(np.argmax(gfp[1:-1]))])
        logger.info(
            f"The GFP has no local maximum between {times[idx[0]]:.3f} and {times[idx[-1]]:.3f} "
            f"s; topomap at its largest value inside the window ({times[idx[peaks[0]]]:.3f} s)"
        )
    return np.sort(times[idx[peaks]])


def _field_power(coef, subset):
    """GFP (SD over channels) of all channels, or the RMS of a subset of channels."""
    return np.sqrt(np.mean(coef**2, axis=0)) if subset else coef.std(axis=0)


def _spatial_colors(info):
    """One RGB colour per channel from its 3D position (grey when positions are missing)."""
    pos = np.array([ch["loc"][:3] for ch in info["chs"]], dtype=float)
    if not np.all(np.isfinite(pos)) or np.allclose(pos, 0):
        return np.full((len(pos), 3), 0.45)
    span = pos.max(0) - pos.min(0)
    span[span == 0] = 1.0
    return 0.1 + 0.8 * (pos - pos.min(0)) / span


@verbose
def plot_trf_joint(coef, times, info, *, tmin=None, tmax=None, topomap_times="peaks", n_peaks=3,
                   channels=None, title=None, units="a.u.", show=True, verbose=None):
    """Joint plot of one feature's TRF kernel: butterfly, GFP and topomaps at its peaks.

    Only the lags inside ``[tmin, tmax]`` are drawn: a fit whose lag window was widened by
    an edge margin (``trf.edge_s``) has artefacts at its first and last lags, and those
    stay out of the figure and out of the topomap times. The topomaps share one colour
    scale (symmetric around 0) and one labelled colour bar.

    Parameters
    ----------
    coef : array, shape (n_channels, n_delays)
        The kernel (EEG units per feature unit).
    times : array, shape (n_delays,)
        Lags in seconds.
    info : mne.Info
        Channel information with a montage.
    tmin, tmax : float | None
        The inner window to show in seconds (the manifest's ``trf.tmin``/``trf.tmax``);
        ``None``: the first/last lag.
    topomap_times : "peaks" | array-like of float
        ``"peaks"``: :func:`pick_topomap_times` inside the window; or lags in seconds (each
        inside the window).
    n_peaks : int
        Number of topomaps for ``"peaks"`` (at most).
    channels : array of bool | array of int | None
        Channels whose root mean square picks the peaks (e.g. the significant ones; drawn
        too); ``None``: the GFP of all channels.
    title : str | None
        Figure title.
    units : str
        Unit of the kernel for the axis and colour-bar labels (``"a.u."``: per unit of a
        max-scaled feature, EEG robust-scaled).
    show : bool
        Show the figure.
    %(verbose)s

    Returns
    -------
    fig : matplotlib.figure.Figure
        The figure: the topomap axes first (titled with their lag), then the colour bar,
        then the butterfly axes.
    """
    import matplotlib.pyplot as plt
    import mne

    coef, times = _check_kernel(coef, times, info)
    idx = _inner_index(times, tmin, tmax)
    coef, times = coef[:, idx], times[idx]
    if isinstance(topomap_times, str):
        if topomap_times != "peaks":
            raise ValueError(f"topomap_times must be 'peaks' or lags in seconds, got {topomap_times!r}.")
        t_maps = pick_topomap_times(coef, times, n_peaks=n_peaks, channels=channels)
    else:
        t_maps = np.atleast_1d(np.asarray(topomap_times, dtype=float))
        outside = t_maps[(t_maps < times[0] - _EPS_S) | (t_maps > times[-1] + _EPS_S)]
        if len(outside) or not len(t_maps):
            raise ValueError(
                f"topomap_times {t_maps.tolist()} must be lags inside the shown window "
                f"{times[0]:.3f} to {times[-1]:.3f} s."
            )
    i_maps = [int(np.argmin(np.abs(times - t))) for t in t_maps]
    n = len(i_maps)
    width = _quarter(max(6.5, 1.9 * n + 1.6))
    fig = plt.figure(figsize=(width, 5.4), layout="constrained")
    gs = fig.add_gridspec(2, 1, height_ratios=[1.0, 1.35])
    # topomaps 1.9 in wide, then a thin colour bar, centred by two empty margins
    side = max(0.05, (width - 1.9 * n - 0.9) / 2)
    top = gs[0].subgridspec(1, n + 3, width_ratios=[side] + [1.9] * n + [0.14, side])
    map_axes = [fig.add_subplot(top[0, k + 1]) for k in range(n)]
    cax = fig.add_subplot(top[0, n + 1])
    ax = fig.add_subplot(gs[1])
    lim = float(np.max(np.abs(coef[:, i_maps]))) or 1.0
    im = None
    for ax_map, i in zip(map_axes, i_maps):
        im, _ = mne.viz.plot_topomap(
            coef[:, i], info, axes=ax_map, vlim=(-lim, lim), cmap="RdBu_r", contours=4,
            sensors=True, show=False,
        )
        ax_map.set_title(f"{times[i] * 1e3:.0f} ms", fontsize=9)
    fig.colorbar(im, cax=cax, label=f"TRF weight ({units})")
    t_ms = times * 1e3
    for c, color in zip(coef, _spatial_colors(info)):
        ax.plot(t_ms, c, color=color, lw=0.6, alpha=0.8)
    ax.plot(t_ms, coef.std(axis=0), color="k", lw=1.8, label="GFP (SD over channels)")
    if channels is not None:
        sel = np.asarray(channels)
        n_sel = int(sel.sum()) if sel.dtype == bool else len(sel)
        ax.plot(t_ms, _field_power(coef[sel], subset=True), color="C3", lw=1.8, ls="--",
                label=f"RMS of the {n_sel} selected channel(s) (picks the maps)")
    ax.axhline(0, color="0.5", lw=0.6)
    if times[0] < 0 < times[-1]:
        ax.axvline(0, color="0.5", lw=0.6, ls=":")
    for i in i_maps:
        ax.axvline(t_ms[i], color="0.3", lw=0.9, ls="--")
    ax.set_xlim(t_ms[0], t_ms[-1])
    ax.set_xlabel("Lag (ms; positive: EEG follows the stimulus)")
    ax.set_ylabel(f"TRF weight ({units})")
    ax.legend(fontsize=8, loc="best", framealpha=0.85)
    if title:
        fig.suptitle(_wrap(title, width), fontsize=10)
    if show:
        plt.show()
    return fig


def _wrap(title, width_in, fontsize=10):
    """Wrap a title to the figure width (about 1.1 characters per point-inch)."""
    import textwrap

    return "\n".join(textwrap.wrap(str(title), width=max(20, int(width_in * 110 / fontsize))))


def _r_vlim(values, vlim):
    if vlim is None or tuple(vlim) == (None, None):
        lim = float(np.nanmax(np.abs(values))) if np.size(values) else 0.0
        lim = lim or 1.0
        return (-lim, lim)
    return tuple(vlim)


@verbose
def plot_r_topomap(r, info, *, mask=None, axes=None, title=None, vlim=(None, None), cmap="RdBu_r",
                   colorbar=True, label="held-out r", show=True, verbose=None):
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
    colorbar : bool
        Add a colour bar labelled ``label``.
    label : str
        Colour-bar label (the quantity and its unit).
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
        fig, axes = plt.subplots(figsize=(3.5, 3.0), layout="constrained")
    else:
        fig = axes.figure
    im, _ = mne.viz.plot_topomap(
        r,
        info,
        axes=axes,
        mask=None if mask is None else np.asarray(mask, bool),
        mask_params=dict(marker="o", markerfacecolor="k", markersize=3),
        vlim=_r_vlim(r, vlim),
        cmap=cmap,
        show=False,
        sensors=True,
        contours=4,
    )
    if colorbar:
        fig.colorbar(im, ax=axes, shrink=0.7, label=label)
    if title:
        axes.set_title(_wrap(title, 3.0, fontsize=9), fontsize=9)
    if show:
        plt.show()
    return fig


@verbose
def plot_r_topomaps(r, info, *, masks=None, titles=None, vlim=None, cmap="RdBu_r", label="held-out r",
                    suptitle=None, show=True, verbose=None):
    """A row of r topomaps on one colour scale, with one labelled colour bar.

    Parameters
    ----------
    r : array, shape (n_maps, n_channels)
        One value per channel for each map.
    info : mne.Info
        Channel information with a montage.
    masks : array of bool, shape (n_maps, n_channels) | None
        Channels to mark on each map (e.g. ``p_FWE < alpha``).
    titles : list of str | None
        Title of each map.
    vlim : tuple of float | None
        Colour limits of every map; ``None``: symmetric around 0 at the largest
        absolute value over all maps.
    cmap : str
        Colour map.
    label : str
        Colour-bar label (the quantity and its unit).
    suptitle : str | None
        Figure title.
    show : bool
        Show the figure.
    %(verbose)s

    Returns
    -------
    fig : matplotlib.figure.Figure
        The figure (map axes, then the colour bar).
    """
    import matplotlib.pyplot as plt

    r = check_array(r, "r", ndim=2)
    n = r.shape[0]
    if masks is not None and np.shape(masks) != r.shape:
        raise ValueError(f"masks has shape {np.shape(masks)} but r has {r.shape}.")
    if titles is not None and len(titles) != n:
        raise ValueError(f"titles has {len(titles)} entries but r has {n} maps.")
    lims = _r_vlim(r, vlim)
    fig = plt.figure(figsize=(_quarter(2.5 * n + 1.0), 3.25), layout="constrained")
    gs = fig.add_gridspec(1, n + 1, width_ratios=[1.0] * n + [0.07])
    axes = [fig.add_subplot(gs[0, k]) for k in range(n)]
    cax = fig.add_subplot(gs[0, n])
    for k, ax in enumerate(axes):
        plot_r_topomap(
            r[k], info, mask=None if masks is None else masks[k], axes=ax,
            title=None if titles is None else titles[k], vlim=lims, cmap=cmap, colorbar=False,
            show=False,
        )
    im = axes[0].images[0] if axes[0].images else None
    if im is not None:
        fig.colorbar(im, cax=cax, label=label)
    if suptitle:
        fig.suptitle(_wrap(suptitle, 2.5 * n + 1.0, fontsize=9), fontsize=9)
    if show:
        plt.show()
    return fig
