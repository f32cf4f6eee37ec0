"""EEG-side plots: the filter check shows a planted out-of-band line removed; the
alignment check shows each run's planted cross-correlation peak."""

import mne
import numpy as np
import pandas as pd
import pytest

from neuro_sae.align import preprocess_eeg
from neuro_sae.viz import plot_alignment_check, plot_filter_check


def _raw(n_ch=12, sfreq=256.0, seconds=30.0, line_hz=30.0, random_state=0):
    rng = np.random.default_rng(random_state)
    names = mne.channels.make_standard_montage("biosemi32").ch_names[:n_ch]
    t = np.arange(int(seconds * sfreq)) / sfreq
    data = 5e-6 * rng.standard_normal((n_ch, len(t)))
    data += 50e-6 * np.sin(2 * np.pi * line_hz * t)  # a strong out-of-band line
    data += 10e-6 * np.sin(2 * np.pi * 4.0 * t + rng.uniform(0, 6, (n_ch, 1)))  # in band
    info = mne.create_info(names, sfreq, "eeg")
    raw = mne.io.RawArray(data, info, verbose=False)
    raw.set_montage("biosemi32", verbose=False)
    return raw


def test_filter_check_removes_planted_line():
    raw = _raw()
    after = preprocess_eeg(raw, l_freq=1.0, h_freq=8.0, sfreq=64.0, verbose=False)
    fig = plot_filter_check(raw, after, tmin=3.0, duration=4.0, n_channels=5, band=(1.0, 8.0), show=False)
    (tr_b, tr_a), (psd_b, psd_a) = np.reshape(fig.axes[:4], (2, 2))
    for ax in (tr_b, tr_a):
        assert ax.get_xlabel() == "Time in the recording (s)" and "\u00b5V apart" in ax.get_ylabel()
        assert len(ax.get_yticklabels()) == 5
        assert ax.get_xlim() == pytest.approx((3.0, 7.0), abs=0.02)
    for ax in (psd_b, psd_a):
        assert ax.get_xlabel() == "Frequency (Hz)" and ax.get_ylabel() == "PSD (dB re 1 \u00b5V\u00b2/Hz)"
    assert "256 Hz" in tr_b.get_title() and "64 Hz" in tr_a.get_title()

    def mean_db_at(ax, f):
        (mean,) = [ln for ln in ax.get_lines() if ln.get_label().startswith("mean of 12")]
        x, y = np.asarray(mean.get_xdata()), np.asarray(mean.get_ydata())
        return y[np.argmin(np.abs(x - f))]

    # every channel in the spectra; the 30 Hz line is gone after the 1-8 Hz band-pass,
    # the 4 Hz rhythm stays
    assert sum(len(ln.get_xdata()) > 10 for ln in psd_b.get_lines()) == 12 + 1
    assert mean_db_at(psd_b, 30.0) - mean_db_at(psd_a, 30.0) > 30
    assert abs(mean_db_at(psd_b, 4.0) - mean_db_at(psd_a, 4.0)) < 3
    assert psd_b.get_ylim() == psd_a.get_ylim()


def test_alignment_check_peaks():
    onsets = pd.DataFrame(dict(stimulus_id=["r1", "r2", "r3"], onset_s=[5.0, 40.0, 80.0],
                               duration_s=[30.0, 35.0, 20.0]))
    lags = np.arange(-32, 65) / 64
    planted = [0.125, 0.140625, -0.25]  # the third run is misaligned
    xcorr = np.stack([0.1 * np.exp(-0.5 * ((lags - p) / 0.05) ** 2) for p in planted])
    envs = [np.abs(np.sin(np.arange(int(d * 64)) / 10)) for d in onsets.duration_s]
    fig = plot_alignment_check(onsets, lags, xcorr, recording_s=110.0, envelopes=envs, sfreq=64.0, show=False)
    ax_t, ax_x = fig.axes[:2]
    assert ax_t.get_xlim() == (0.0, 110.0) and ax_t.get_xlabel() == "Time in the recording (s)"
    labels = [t.get_text() for t in ax_x.get_legend().get_texts()]
    assert labels == ["r1: peak 125 ms (r 0.100)", "r2: peak 141 ms (r 0.100)", "r3: peak -250 ms (r 0.100)"]
    assert "Lag of the EEG" in ax_x.get_xlabel() and ax_x.get_ylabel() == "RMS over channels of r"
    # each envelope starts at its run's onset
    env_lines = [ln for ln in ax_t.get_lines()]
    assert [float(ln.get_xdata()[0]) for ln in env_lines] == [5.0, 40.0, 80.0]
    with pytest.raises(ValueError, match=r"expected \(3, 97\)"):
        plot_alignment_check(onsets, lags, xcorr[:2], show=False)
