"""TRF joint plots and r topomaps: inner window, topomap times at GFP peaks, shared
colour scales, labelled axes and colour bars, no "N_ave"."""

import re

import matplotlib.text
import mne
import numpy as np
import pytest

from neuro_sae.viz import (
    kernel_to_evoked,
    pick_topomap_times,
    plot_r_topomap,
    plot_r_topomaps,
    plot_trf_joint,
)

SFREQ = 100.0
INNER = (-0.1, 0.5)


@pytest.fixture(scope="module")
def info():
    montage = mne.channels.make_standard_montage("easycap-M1")
    names = ["Fp1", "Fp2", "F7", "F3", "Fz", "F4", "F8", "T7", "C3", "Cz", "C4", "T8",
             "P7", "P3", "Pz", "P4", "P8", "O1", "Oz", "O2", "FC1", "FC2", "CP1"]  # fmt: skip
    info = mne.create_info(names, SFREQ, "eeg")
    info.set_montage(montage)
    return info


def _planted_kernel(info, *, edge=40.0, inner_edge=0.0, random_state=0):
    """Two responses (120 ms strong, 300 ms weaker) with huge values on the lags outside
    the inner window (an edge margin of 0.2 s on both sides)."""
    rng = np.random.default_rng(random_state)
    times = np.arange(round(-0.3 * SFREQ), round(0.7 * SFREQ) + 1) / SFREQ
    n_ch = len(info["ch_names"])
    topo1, topo2 = rng.standard_normal(n_ch), rng.standard_normal(n_ch)
    coef = np.outer(topo1, np.exp(-0.5 * ((times - 0.12) / 0.025) ** 2))
    coef += 0.5 * np.outer(topo2, np.exp(-0.5 * ((times - 0.30) / 0.03) ** 2))
    coef += 0.01 * rng.standard_normal(coef.shape)
    outside = (times < INNER[0] - 1e-9) | (times > INNER[1] + 1e-9)
    coef[:, outside] += edge * rng.standard_normal((n_ch, outside.sum()))
    if inner_edge:
        # a decaying artefact entering the window: its largest GFP is the window's first
        # sample, which is not a peak inside the window
        ramp = np.exp(-(times - INNER[0]) / 0.02) * (times >= INNER[0] - 1e-9)
        coef += inner_edge * np.outer(rng.standard_normal(n_ch), ramp)
    return coef, times


def test_topomap_times_inside_inner_window(info):
    coef, times = _planted_kernel(info, inner_edge=3.0)
    # the whole kernel: the largest GFP is on the edge lags
    gfp = coef.std(0)
    assert times[np.argmax(gfp)] < INNER[0] or times[np.argmax(gfp)] > INNER[1]
    t = pick_topomap_times(coef, times, tmin=INNER[0], tmax=INNER[1], n_peaks=2)
    assert len(t) == 2
    assert np.all(t > INNER[0] + 0.5 / SFREQ) and np.all(t < INNER[1] - 0.5 / SFREQ)
    assert abs(t[0] - 0.12) <= 1.0 / SFREQ + 1e-9
    assert abs(t[1] - 0.30) <= 1.0 / SFREQ + 1e-9
    # one peak: the strongest
    (t1,) = pick_topomap_times(coef, times, tmin=INNER[0], tmax=INNER[1], n_peaks=1)
    assert abs(t1 - 0.12) <= 1.0 / SFREQ + 1e-9


def test_topomap_times_channels_and_monotone(info):
    coef, times = _planted_kernel(info, edge=0.0)
    # a GFP restricted to channels that only carry the 300 ms response picks it first
    n_ch = coef.shape[0]
    late_only = np.zeros_like(coef)
    late_only[: n_ch // 2] = coef[: n_ch // 2]
    late_only[n_ch // 2 :] = np.exp(-0.5 * ((times - 0.30) / 0.03) ** 2) * np.linspace(1, 2, n_ch - n_ch // 2)[:, None]
    (t,) = pick_topomap_times(late_only, times, tmin=INNER[0], tmax=INNER[1], n_peaks=1,
                              channels=np.arange(n_ch // 2, n_ch))
    assert abs(t - 0.30) <= 1.0 / SFREQ + 1e-9
    # a GFP rising monotonically to the window's end: never its last sample
    ramp = np.outer(np.linspace(1, 2, n_ch), np.clip(times - INNER[0], 0, None))
    (t,) = pick_topomap_times(ramp, times, tmin=INNER[0], tmax=INNER[1], n_peaks=1)
    assert INNER[0] < t < INNER[1] - 0.5 / SFREQ


def test_window_errors(info):
    coef, times = _planted_kernel(info)
    with pytest.raises(ValueError, match=r"tmin=0\.1, tmax=0\.11.*at least 3"):
        pick_topomap_times(coef, times, tmin=0.1, tmax=0.11)
    with pytest.raises(ValueError, match="must be below"):
        plot_trf_joint(coef, times, info, tmin=0.5, tmax=0.1, show=False)
    with pytest.raises(ValueError, match=r"inside the shown window"):
        plot_trf_joint(coef, times, info, tmin=INNER[0], tmax=INNER[1], topomap_times=[0.6], show=False)
    with pytest.raises(ValueError, match=r"expected \(23, 101\)"):
        plot_trf_joint(coef[:, :-1], times, info, show=False)


def _texts(fig):
    return [t.get_text() for t in fig.findobj(matplotlib.text.Text)]


def test_joint_plot_inner_window_shared_scale_labels(info):
    coef, times = _planted_kernel(info, inner_edge=3.0)
    fig = plot_trf_joint(coef, times, info, tmin=INNER[0], tmax=INNER[1], n_peaks=2,
                         title="feature 7", show=False)
    map_axes = [ax for ax in fig.axes if ax.images]
    assert len(map_axes) == 2
    shown = sorted(float(re.match(r"(-?\d+) ms", ax.get_title()).group(1)) for ax in map_axes)
    assert abs(shown[0] - 120) <= 10 + 1e-6 and abs(shown[1] - 300) <= 10 + 1e-6
    # one colour scale across the panel, symmetric, covering both maps
    clims = {ax.images[0].get_clim() for ax in map_axes}
    assert len(clims) == 1
    lo, hi = clims.pop()
    assert lo == -hi and hi > 0
    i120 = np.argmin(np.abs(times - 0.12))
    i300 = np.argmin(np.abs(times - 0.30))
    assert hi == pytest.approx(np.abs(coef[:, [i120, i300]]).max())
    # the butterfly shows only the inner window and is labelled
    butterfly = fig.axes[-1]
    assert butterfly.get_xlim() == pytest.approx((INNER[0] * 1e3, INNER[1] * 1e3))
    assert "Lag (ms" in butterfly.get_xlabel() and "a.u." in butterfly.get_ylabel()
    for line in butterfly.get_lines():
        x = np.asarray(line.get_xdata(), float)
        assert x.min() >= INNER[0] * 1e3 - 1e-6 and x.max() <= INNER[1] * 1e3 + 1e-6
    # the edge artefacts (40 x the response) are out of the plotted data
    data_max = max(np.abs(np.asarray(ln.get_ydata(), float)).max() for ln in butterfly.get_lines()
                   if len(ln.get_xdata()) > 2)
    inside = (times >= INNER[0] - 1e-9) & (times <= INNER[1] + 1e-9)
    assert data_max == pytest.approx(np.abs(coef[:, inside]).max())
    assert data_max < 0.2 * np.abs(coef[:, ~inside]).max()
    # colour bar labelled with the unit; no N_ave anywhere
    cbar = [ax for ax in fig.axes if ax.get_ylabel() == "TRF weight (a.u.)" and ax is not butterfly]
    assert len(cbar) == 1
    texts = " ".join(_texts(fig))
    assert "ave" not in texts.replace("wave", "")
    assert "feature 7" in texts


def test_joint_plot_explicit_times_and_evoked(info):
    coef, times = _planted_kernel(info, edge=0.0)
    fig = plot_trf_joint(coef, times, info, topomap_times=[0.12], units="\u00b5V", show=False)
    (ax_map,) = [ax for ax in fig.axes if ax.images]
    assert ax_map.get_title() == "120 ms"
    assert any(ax.get_ylabel() == "TRF weight (\u00b5V)" for ax in fig.axes)
    ev = kernel_to_evoked(coef, times, info, comment="f7")
    np.testing.assert_allclose(ev.data, coef * 1e-6)
    np.testing.assert_allclose(ev.times, times, atol=1e-9)


def test_r_topomap_panel_shares_one_scale(info):
    n_ch = len(info["ch_names"])
    rng = np.random.default_rng(1)
    r = np.stack([0.05 * rng.standard_normal(n_ch), 0.02 * rng.standard_normal(n_ch),
                  0.1 * rng.standard_normal(n_ch)])  # fmt: skip
    r[2, 4] = -0.4  # the largest |r| of the panel, on the third map
    masks = np.zeros_like(r, bool)
    masks[2, :3] = True
    fig = plot_r_topomaps(r, info, masks=masks, titles=["a", "b", "c"], show=False)
    maps = [ax for ax in fig.axes if ax.images]
    assert [ax.get_title() for ax in maps] == ["a", "b", "c"]
    assert {ax.images[0].get_clim() for ax in maps} == {(-0.4, 0.4)}
    cbars = [ax for ax in fig.axes if ax.get_ylabel() == "held-out r"]
    assert len(cbars) == 1
    with pytest.raises(ValueError, match=r"masks has shape \(2, 23\)"):
        plot_r_topomaps(r, info, masks=masks[:2], show=False)
    # a single map keeps its own labelled colour bar
    fig = plot_r_topomap(r[0], info, title="one", show=False)
    assert any(ax.get_ylabel() == "held-out r" for ax in fig.axes)


def test_topomap_times_single_selected_channel(info):
    """One significant channel: its |kernel| picks the map, not a zero 'GFP' (which would
    fall back to the window's second sample)."""
    rng = np.random.default_rng(4)
    times = np.arange(round(-0.2 * SFREQ), round(0.6 * SFREQ) + 1) / SFREQ
    coef = 0.05 * rng.standard_normal((len(info["ch_names"]), len(times)))
    coef[9] = -np.exp(-0.5 * ((times - 0.14) / 0.02) ** 2)  # Cz, a negative response
    sig = np.zeros(len(coef), bool)
    sig[9] = True
    (t,) = pick_topomap_times(coef, times, tmin=INNER[0], tmax=INNER[1], n_peaks=1, channels=sig)
    assert abs(t - 0.14) <= 1.0 / SFREQ + 1e-9
    fig = plot_trf_joint(coef, times, info, tmin=INNER[0], tmax=INNER[1], channels=sig, n_peaks=1, show=False)
    (ax_map,) = [ax for ax in fig.axes if ax.images]
    assert ax_map.get_title() == "140 ms"
    legend = [t.get_text() for t in fig.axes[-1].get_legend().get_texts()]
    assert "RMS of the 1 selected channel(s) (picks the maps)" in legend
