"""Tests of onsets, preprocessing, feature resampling and subject alignment."""

import mne
import numpy as np
import pytest
from scipy.signal import welch

from neuro_sae.align import (
    AlignedRuns,
    align_subject,
    find_run_onsets,
    preprocess_eeg,
    read_aligned_runs,
    resample_features,
)
from neuro_sae.features import FeatureSeries


def _series(x, offset=0.0, sfreq=50.0, ids=None):
    x = np.asarray(x, float)
    if x.ndim == 1:
        x = x[:, None]
    ids = np.arange(x.shape[1]) + 7 if ids is None else ids
    return FeatureSeries(x, offset + np.arange(len(x)) / sfreq, ids, sfreq=sfreq)


@pytest.mark.parametrize("offset", [0.0, 0.0125])
@pytest.mark.parametrize("t0", [0.0, 0.0031])
def test_resample_sinusoid(offset, t0):
    """A 3 Hz sinusoid at the frame times is the same sinusoid on the EEG grid."""
    n_frames = 1500
    t = offset + np.arange(n_frames) / 50
    s = _series(np.c_[np.sin(2 * np.pi * 3 * t), np.zeros(n_frames), 2 + np.cos(2 * np.pi * 3 * t)], offset)
    n_times = 3700
    y = resample_features(s, 128.0, n_times, t0=t0)
    assert y.shape == (n_times, 3)
    tt = t0 + np.arange(n_times) / 128
    inner = (tt > offset + 0.5) & (tt < t[-1] - 0.5)
    np.testing.assert_allclose(y[inner, 0], np.sin(2 * np.pi * 3 * tt[inner]), atol=1e-2)
    np.testing.assert_allclose(y[inner, 2], 2 + np.cos(2 * np.pi * 3 * tt[inner]), atol=1e-2)
    assert np.all(y[:, 1] == 0)
    # the grid outlasts the frames (3700 / 128 > 1500 / 50): zero-filled after the last frame
    assert np.all(y[tt > t[-1] + 0.011] == 0)


def test_resample_downsampling_antialiased():
    """50 -> 32 Hz removes a 20 Hz component instead of aliasing it to 12 Hz."""
    t = np.arange(6000) / 50
    s = _series(np.sin(2 * np.pi * 20 * t) + np.sin(2 * np.pi * 5 * t))
    y = resample_features(s, 32.0, 3800)[:, 0]
    f, p = welch(y[100:-100], 32.0, nperseg=256)
    p5, p12 = p[np.argmin(np.abs(f - 5))], p[np.argmin(np.abs(f - 12))]
    assert p12 < 1e-3 * p5
    # naive decimation by interpolation aliases it
    naive = np.interp(np.arange(3800) / 32, t, s.to_dense()[:, 0])
    f, p = welch(naive[100:-100], 32.0, nperseg=256)
    assert p[np.argmin(np.abs(f - 12))] > 0.1 * p[np.argmin(np.abs(f - 5))]


@pytest.mark.parametrize("offset", [0.0, 0.0125])
@pytest.mark.parametrize("sfreq_out", [128.0, 100.0, 64.0])
def test_resample_impulse_position(offset, sfreq_out):
    """An impulse at frame time t peaks at EEG sample round(t * sfreq)."""
    x = np.zeros((600, 2))
    for frame in (37, 211, 402):
        x[frame, 0] = 1.0
    s = _series(x, offset)
    y = resample_features(s, sfreq_out, int(12 * sfreq_out))
    for frame in (37, 211, 402):
        t = s.times[frame]
        expect = int(round(t * sfreq_out))
        win = slice(expect - 5, expect + 6)
        assert np.argmax(y[win, 0]) + expect - 5 == expect


def test_resample_errors():
    """Bad inputs raise with the parameter named."""
    s = FeatureSeries(np.ones((5, 1)), [0, 0.02, 0.04, 0.1, 0.12], [0])
    with pytest.raises(ValueError, match="uniform"):
        resample_features(s, 128.0, 10)
    with pytest.raises(TypeError, match="series"):
        resample_features(np.ones((5, 1)), 128.0, 10)
    with pytest.raises(ValueError, match="sfreq_out"):
        resample_features(_series(np.ones(5)), -1.0, 10)


def _raw(n_ch=4, sfreq=256.0, dur=60.0, annots=(), seed=0, first_samp=0):
    rng = np.random.default_rng(seed)
    names = ["Fz", "Cz", "Pz", "Oz", "T7", "T8"][:n_ch]
    info = mne.create_info(names, sfreq, "eeg")
    raw = mne.io.RawArray(rng.normal(size=(n_ch, int(dur * sfreq))) * 1e-5, info, first_samp=first_samp, verbose=False)
    raw.set_montage("biosemi64")
    if annots:
        on, du, de = zip(*annots)
        raw.set_annotations(mne.Annotations(on, du, de))  # onsets from the first sample
    return raw


def test_find_run_onsets():
    """Onsets, durations and sample indices; missing and overlapping runs raise."""
    raw = _raw(annots=[(5.0, 10.0, "stim/b"), (20.0, 12.0, "stim/a"), (40.0, 0.0, "stim/c"), (3.0, 1.0, "BAD_x")], first_samp=1000)
    table = find_run_onsets(raw, ["a", "b", "c"])
    assert list(table["stimulus_id"]) == ["a", "b", "c"]
    np.testing.assert_allclose(table["onset_s"], [20.0, 5.0, 40.0])
    np.testing.assert_allclose(table["duration_s"], [12.0, 10.0, 20.0])  # c runs to the end
    np.testing.assert_array_equal(table["onset_sample"], [5120, 1280, 10240])
    with pytest.raises(ValueError, match=r"'zz'.*'stim/a', 'stim/b', 'stim/c'.*append"):
        find_run_onsets(raw, ["a", "zz"])
    raw2 = _raw(annots=[(5.0, 10.0, "stim/a"), (14.0, 5.0, "stim/b")])
    with pytest.raises(ValueError, match="overlap"):
        find_run_onsets(raw2, ["a", "b"])


def test_preprocess_eeg():
    """Band-pass matches mne.filter.filter_data; resampling and reference are applied to a copy."""
    raw = _raw(annots=[(5.0, 10.0, "stim/a")])
    orig = raw.get_data().copy()
    out = preprocess_eeg(raw, l_freq=1.0, h_freq=8.0, sfreq=128.0, reference="average")
    np.testing.assert_array_equal(raw.get_data(), orig)
    assert out.info["sfreq"] == 128.0
    assert np.allclose(out.get_data().mean(axis=0), 0, atol=1e-12)
    filt = preprocess_eeg(raw, l_freq=1.0, h_freq=8.0)
    ref = mne.filter.filter_data(orig, 256.0, 1.0, 8.0, verbose=False)
    np.testing.assert_allclose(filt.get_data(), ref, atol=1e-12)
    with pytest.raises(ValueError, match="reference"):
        preprocess_eeg(raw, reference=["Xx"])


def _subject(sfreq_eeg=256.0, seed=0, shift=None):
    """Recording with two runs whose EEG is a copy of a feature (delayed by `shift` s)."""
    rng = np.random.default_rng(seed)
    onsets = {"r1": 3.0, "r2": 30.0}
    durs = {"r1": 20.0, "r2": 16.4}
    series = {}
    dur_total = 50.0
    n = int(dur_total * sfreq_eeg)
    data = rng.normal(size=(3, n)) * 0.05
    t_eeg = np.arange(n) / sfreq_eeg
    for k, rid in enumerate(onsets):
        n_frames = int(durs[rid] * 50)
        ft = np.arange(n_frames) / 50
        f0 = np.sin(2 * np.pi * (2.0 + k) * ft) + 0.3 * rng.normal(size=n_frames)
        f1 = np.clip(rng.normal(size=n_frames), 0, None)
        series[rid] = FeatureSeries(np.c_[f0, f1, np.zeros(n_frames)], ft, [11, 22, 33], sfreq=50.0, stimulus_id=rid)
        inside = (t_eeg >= onsets[rid]) & (t_eeg < onsets[rid] + durs[rid])
        data[1, inside] += np.interp(t_eeg[inside] - onsets[rid] - (shift or 0), ft, f0)
    info = mne.create_info(["Fz", "Cz", "Pz"], sfreq_eeg, "eeg")
    raw = mne.io.RawArray(data, info, verbose=False)
    raw.set_montage("biosemi64")
    raw.set_annotations(mne.Annotations(
        [onsets["r1"], onsets["r2"], 10.0], [durs["r1"], durs["r2"] + 1, 1.0], ["stim/r1", "stim/r2", "BAD_blink"]))
    return raw, series


def test_align_subject(tmp_path):
    """Runs are cut, features land on the EEG samples, scaling as documented, round trip."""
    raw, series = _subject()
    # r2's annotation lasts 1 s longer than its stimulus: cut at the stimulus end, with a warning
    with pytest.warns(UserWarning, match=r"Run 'r2': the EEG run lasts 17.400 s, its stimulus 16.380 s"):
        aligned = align_subject(raw, series, sfreq=128.0)
    assert isinstance(aligned, AlignedRuns)
    assert aligned.n_runs == 2 and aligned.run_ids == ["r1", "r2"]
    # 16.4 s -> int(16.4 * 50) = 819 frames = 16.38 s = 2096.64 samples -> 2097 (nearest)
    assert [len(y) for y in aligned.Y] == [2560, 2097]
    assert [r["n_times"] for r in aligned.provenance["runs"]] == [2560, 2097]
    x = aligned.X["sae"]
    assert x[0].shape == (2560, 3) and aligned.feature_names["sae"] == ["sae_11", "sae_22", "sae_33"]
    # max scaling over all runs; the all-zero feature stays zero
    cat = np.concatenate(x)
    np.testing.assert_allclose(np.abs(cat[:, :2]).max(axis=0), 1.0)
    assert np.all(cat[:, 2] == 0)
    # robust scaling of the EEG over good samples
    good = np.concatenate([y[m] for y, m in zip(aligned.Y, aligned.masks)])
    np.testing.assert_allclose(np.median(good, axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(np.subtract(*np.percentile(good, [75, 25], axis=0)), 1.0)
    # the BAD annotation (10-11 s) falls in run r1 at 7-8 s
    m = aligned.masks[0]
    assert not m[int(7 * 128) + 2 : int(8 * 128) - 2].any() and m[: 7 * 128 - 2].all()
    assert aligned.masks[1].all()
    # channel Cz carries feature 0 with no delay: zero-lag correlation is high
    for xi, yi in zip(x, aligned.Y):
        r = np.corrcoef(xi[:, 0], yi[:, 1])[0, 1]
        assert r > 0.95
    with pytest.raises(ValueError, match=r"unequal lengths \('r1': 2560, 'r2': 2097 samples.*unequal='pad'.*unequal='crop'"):
        aligned.to_epochs()
    epochs = aligned.to_epochs(unequal="crop")
    assert len(epochs) == 2 and epochs.get_data().shape == (2, 3, 2097)
    assert list(epochs.metadata["n_times_orig"]) == [2560, 2097]
    fname = aligned.save(tmp_path / "aligned.npz")
    back = read_aligned_runs(fname)
    assert back.run_ids == aligned.run_ids and back.feature_names == aligned.feature_names
    np.testing.assert_array_equal(back.X["sae"][1], x[1])
    np.testing.assert_array_equal(back.masks[0], aligned.masks[0])
    np.testing.assert_allclose(back.info["chs"][1]["loc"][:3], aligned.info["chs"][1]["loc"][:3])
    with pytest.raises(FileExistsError, match="overwrite"):
        aligned.save(fname)


def test_align_subject_delay_and_zscore():
    """A 100 ms delay in the EEG appears as a 13-sample lag at 128 Hz; zscore scaling."""
    raw, series = _subject(shift=0.1)
    with pytest.warns(UserWarning, match="Run 'r2'"):
        aligned = align_subject(raw, series, sfreq=128.0, scale="zscore", feature_ids=[11, 22])
    x, y = aligned.X["sae"][0][:, 0], aligned.Y[0][:, 1]
    lags = np.arange(-30, 31)
    xc = [np.corrcoef(x[max(0, -lag) : len(x) - max(0, lag)], y[max(0, lag) : len(y) - max(0, -lag)])[0, 1] for lag in lags]
    assert lags[int(np.argmax(xc))] == round(0.1 * 128)
    cat = np.concatenate(aligned.X["sae"])
    np.testing.assert_allclose(cat.mean(axis=0), 0, atol=1e-10)
    np.testing.assert_allclose(cat.std(axis=0), 1)


def test_align_subject_errors():
    """EEG shorter than the stimulus beyond the tolerance raises; within it, trimmed."""
    raw, series = _subject()
    onsets, desc = [3.0, 30.0, 10.0], ["stim/r1", "stim/r2", "BAD_blink"]
    raw.set_annotations(mne.Annotations(onsets, [19.0, 17.4, 1.0], desc))
    with pytest.raises(ValueError, match=r"19\.000 s but its stimulus 20\.000 s"):
        align_subject(raw, series)
    raw.set_annotations(mne.Annotations(onsets, [19.7, 16.38, 1.0], desc))
    with pytest.warns(UserWarning, match=r"Run 'r1': the EEG lasts 19.700 s, its stimulus 20.000 s; trimming"):
        aligned = align_subject(raw, series)
    assert len(aligned.Y[0]) == round(19.7 * 128)
    with pytest.raises(ValueError, match="scale"):
        align_subject(raw, series, scale="minmax")
    with pytest.raises(ValueError, match="'r3'"):
        align_subject(raw, {**series, "r3": series["r1"]})


def test_align_simulated_subject():
    """Features resampled to 128 Hz drive a simulation; align_subject lines them up again."""
    from neuro_sae.simulation import simulate_eeg

    rng = np.random.default_rng(5)
    series, feats = {}, {}
    for rid, dur in [("r1", 30.0), ("r2", 26.5)]:
        n_frames = int(dur * 50)
        x = np.zeros((n_frames, 4))
        for j in range(4):
            ev = rng.random(n_frames) < 3 / 50
            x[ev, j] = rng.gamma(2.0, 1.0, ev.sum())
        series[rid] = FeatureSeries(x, np.arange(n_frames) / 50, [3, 5, 8, 13])
        feats[rid] = resample_features(series[rid], 128.0, int(dur * 128))
    planted = [dict(feature=1, latency=0.1, sign=1, center="Cz")]
    raw, truth = simulate_eeg(feats, planted, snr=5.0, random_state=0)
    aligned = align_subject(raw, series, sfreq=128.0)
    assert [len(y) for y in aligned.Y] == [3840, 3392]
    ch = aligned.ch_names.index("Cz")
    x = np.concatenate(aligned.X["sae"])[:, 1]
    y = np.concatenate(aligned.Y)[:, ch]
    lags = np.arange(0, 40)
    xc = [np.corrcoef(x[: len(x) - lag], y[lag:])[0, 1] for lag in lags]
    assert lags[int(np.argmax(xc))] == round(0.1 * 128)
    assert max(xc) > 0.5
