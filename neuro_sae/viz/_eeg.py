"""Plots of the EEG side: traces and spectra before and after filtering, the alignment check."""

from __future__ import annotations

import numpy as np

from ..utils import check_array, verbose


def _eeg_picks(raw):
    import mne

    picks = mne.pick_types(raw.info, eeg=True, exclude="bads")
    if len(picks) == 0:
        raise ValueError("The recording has no good EEG channel to plot.")
    return picks


def _traces(ax, raw, names, tmin, duration, title):
    sfreq = raw.info["sfreq"]
    start = int(round(tmin * sfreq))
    stop = min(raw.n_times, start + int(round(duration * sfreq)))
    if stop - start < 2:
        raise ValueError(
            f"tmin={tmin} s leaves no data to plot (the recording lasts {raw.n_times / sfreq:.2f} s)."
        )
    data = raw.get_data(picks=names, start=start, stop=stop) * 1e6
    data = data - data.mean(axis=1, keepdims=True)
    spacing = float(np.max(np.percentile(np.abs(data), 99, axis=1))) * 2.2 or 1.0
    t = tmin + np.arange(data.shape[1]) / sfreq
    for k, row in enumerate(data):
        ax.plot(t, row - k * spacing, color="k", lw=0.6)
    ax.set_yticks(-np.arange(len(names)) * spacing, names, fontsize=7)
    ax.set_xlim(t[0], t[-1])
    ax.set_xlabel("Time in the recording (s)")
    ax.set_ylabel(f"channel (traces {spacing:.3g} \u00b5V apart)")
    ax.set_title(title, fontsize=9)


def _psd(ax, raw, fmax, band, title):
    sfreq = raw.info["sfreq"]
    fmax = min(fmax, sfreq / 2)
    n_fft = int(min(raw.n_times, 2 ** int(np.ceil(np.log2(4 * sfreq)))))
    spec = raw.compute_psd(method="welch", picks=_eeg_picks(raw), fmax=fmax, n_fft=n_fft, verbose=False)
    psd, freqs = spec.get_data(return_freqs=True)
    db = 10 * np.log10(np.maximum(psd, 1e-30) * 1e12)
    for row in db:
        ax.plot(freqs, row, color="0.6", lw=0.4, alpha=0.6)
    ax.plot(freqs, db.mean(axis=0), color="k", lw=1.5, label=f"mean of {len(db)} channels")
    if band is not None and band != (None, None):
        lo = band[0] if band[0] is not None else freqs[0]
        hi = band[1] if band[1] is not None else freqs[-1]
        ax.axvspan(lo, hi, color="C0", alpha=0.12, label=f"pass band {lo:g}-{hi:g} Hz")
    ax.set_xlim(freqs[0], fmax)
    ax.set_xlabel("Frequency (Hz)")
    ax.set_ylabel("PSD (dB re 1 \u00b5V\u00b2/Hz)")
    ax.set_title(title, fontsize=9)
    ax.legend(frameon=False, fontsize=7, loc="upper right")


@verbose
def plot_filter_check(raw_before, raw_after, *, tmin=0.0, duration=5.0, n_channels=8, fmax=60.0, band=None,
                      show=True, verbose=None):
    """EEG traces (a few seconds) and power spectra (every channel) before and after filtering.

    Parameters
    ----------
    raw_before : mne.io.Raw
        The recording as read (volts).
    raw_after : mne.io.Raw
        The same recording after band-pass (and resampling), still in volts, on the same
        time axis (e.g. :func:`neuro_sae.align.preprocess_eeg`).
    tmin : float
        Start of the traces in seconds from the first sample (e.g. a run onset).
    duration : float
        Length of the traces in seconds.
    n_channels : int
        Number of channels traced (spread over the montage's channel order); the spectra
        show every good EEG channel.
    fmax : float
        Highest frequency of the spectra in Hz (capped at each recording's Nyquist).
    band : tuple of float | None
        The pass band ``(l_freq, h_freq)``, shaded on the spectra.
    show : bool
        Show the figure.
    %(verbose)s

    Returns
    -------
    fig : matplotlib.figure.Figure
        2 x 2 panels: traces before / after, spectra before / after.
    """
    import matplotlib.pyplot as plt

    names_before = [raw_before.ch_names[i] for i in _eeg_picks(raw_before)]
    names_after = set(raw_after.ch_names[i] for i in _eeg_picks(raw_after))
    common = [n for n in names_before if n in names_after]
    if not common:
        raise ValueError("raw_before and raw_after share no good EEG channel.")
    k = min(int(n_channels), len(common))
    names = [common[i] for i in np.linspace(0, len(common) - 1, k).round().astype(int)]
    fig, axes = plt.subplots(2, 2, figsize=(8.5, 7.0), layout="constrained")
    sf_b, sf_a = raw_before.info["sfreq"], raw_after.info["sfreq"]
    _traces(axes[0, 0], raw_before, names, tmin, duration, f"As recorded ({sf_b:g} Hz)")
    band_txt = "" if band is None else f"band-pass {band[0]}-{band[1]} Hz, "
    _traces(axes[0, 1], raw_after, names, tmin, duration, f"After filtering ({band_txt}{sf_a:g} Hz)")
    _psd(axes[1, 0], raw_before, fmax, band, "Power spectrum as recorded")
    _psd(axes[1, 1], raw_after, fmax, band, "Power spectrum after filtering")
    axes[1, 1].set_xlim(axes[1, 0].get_xlim())
    lo = min(axes[1, 0].get_ylim()[0], axes[1, 1].get_ylim()[0])
    hi = max(axes[1, 0].get_ylim()[1], axes[1, 1].get_ylim()[1])
    for ax in axes[1]:
        ax.set_ylim(lo, hi)
    if show:
        plt.show()
    return fig


@verbose
def plot_alignment_check(onsets, lags, xcorr, *, recording_s=None, envelopes=None, sfreq=None,
                         show=True, verbose=None):
    """Run onsets found in the recording, and the envelope-to-EEG cross-correlation per run.

    Parameters
    ----------
    onsets : pandas.DataFrame
        One row per run with ``stimulus_id``, ``onset_s`` and ``duration_s`` (as returned by
        :func:`neuro_sae.align.find_run_onsets`).
    lags : array, shape (n_lags,)
        Lags of the EEG after the envelope in seconds.
    xcorr : array, shape (n_runs, n_lags)
        A summary over channels (e.g. the RMS over channels) of the correlation between the
        run's envelope and its EEG at each lag, rows in the order of ``onsets``.
    recording_s : float | None
        Length of the recording in seconds (the time axis of the top panel).
    envelopes : list of ndarray | None
        Each run's envelope on the EEG grid, drawn inside its bar.
    sfreq : float | None
        Rate of ``envelopes`` in Hz.
    show : bool
        Show the figure.
    %(verbose)s

    Returns
    -------
    fig : matplotlib.figure.Figure
        Top: where each run sits in the recording. Bottom: one cross-correlation curve per
        run with its peak marked (a run whose peak is far from the others, or at a negative
        lag, is misaligned).
    """
    import matplotlib.pyplot as plt

    lags = check_array(lags, "lags", ndim=1)
    xcorr = check_array(xcorr, "xcorr", ndim=2)
    if xcorr.shape != (len(onsets), len(lags)):
        raise ValueError(f"xcorr has shape {xcorr.shape}; expected ({len(onsets)}, {len(lags)}).")
    if envelopes is not None and (sfreq is None or len(envelopes) != len(onsets)):
        raise ValueError("envelopes needs one array per run and sfreq.")
    fig, (ax_t, ax_x) = plt.subplots(2, 1, figsize=(8.5, 6.25), layout="constrained",
                                     height_ratios=[0.8, 1.2])
    for k, row in enumerate(onsets.itertuples(index=False)):
        color = f"C{k % 10}"
        ax_t.broken_barh([(row.onset_s, row.duration_s)], (0.05, 0.9), color=color, alpha=0.25)
        ax_t.text(row.onset_s + row.duration_s / 2, 1.02, str(row.stimulus_id), ha="center", va="bottom",
                  fontsize=7)
        if envelopes is not None:
            env = np.ravel(envelopes[k])
            span = np.ptp(env) or 1.0
            t = row.onset_s + np.arange(len(env)) / sfreq
            ax_t.plot(t, 0.1 + 0.8 * (env - env.min()) / span, color=color, lw=0.5)
    end = recording_s if recording_s is not None else float((onsets.onset_s + onsets.duration_s).max())
    ax_t.set_xlim(0, end)
    ax_t.set_ylim(0, 1.25)
    ax_t.set_yticks([])
    ax_t.set_xlabel("Time in the recording (s)")
    ax_t.set_ylabel("runs (envelope)")
    ax_t.set_title("Run onsets found in the recording", fontsize=9)
    ms = lags * 1e3
    for k, (row, curve) in enumerate(zip(onsets.itertuples(index=False), xcorr)):
        i = int(np.argmax(curve))
        ax_x.plot(ms, curve, color=f"C{k % 10}", lw=1.1,
                  label=f"{row.stimulus_id}: peak {ms[i]:.0f} ms (r {curve[i]:.3f})")
        ax_x.plot(ms[i], curve[i], "o", color=f"C{k % 10}", ms=4)
    ax_x.axvline(0, color="0.5", lw=0.6, ls=":")
    ax_x.set_xlim(ms[0], ms[-1])
    ax_x.set_xlabel("Lag of the EEG after the stimulus envelope (ms)")
    ax_x.set_ylabel("RMS over channels of r")
    ax_x.set_title("Envelope-to-EEG cross-correlation per run", fontsize=9)
    ax_x.legend(frameon=False, fontsize=7, ncol=2 if len(onsets) > 6 else 1, loc="upper right")
    if show:
        plt.show()
    return fig
