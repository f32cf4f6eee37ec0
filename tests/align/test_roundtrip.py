"""Resampling round trips, dataset round trips (Dryad/BIDS -> Raw -> AlignedRuns -> Epochs ->
AlignedRuns), BIDS stim export, training-run scaling and alive-feature selection."""

import mne
import numpy as np
import pytest
import soundfile as sf
from scipy.signal import resample_poly

from neuro_sae.align import AlignedRuns, align_subject, resample_features
from neuro_sae.features import FeatureSeries
from neuro_sae.io import read_bids_runs, read_broderick_dryad, read_broderick_stimuli, read_stim_tsv
from tests.io._fixtures import write_bids, write_dryad


def _bandlimited(n, sfreq, fmax, seed, offset=0.0):
    """Sum of sinusoids below fmax with random phases, and its continuous-time formula."""
    rng = np.random.default_rng(seed)
    freqs = rng.uniform(0.3, fmax, 6)
    phases = rng.uniform(0, 2 * np.pi, 6)
    amps = rng.uniform(0.5, 1.5, 6)

    def f(t):
        return np.sum(amps[:, None] * np.sin(2 * np.pi * freqs[:, None] * t[None] + phases[:, None]), axis=0)

    return f(offset + np.arange(n) / sfreq), f


@pytest.mark.parametrize("offset", [0.0, 0.0125])
def test_resample_50_128_50(offset):
    """Content up to 8 Hz (the EEG band): 50 -> 128 Hz equals the continuous signal to 1e-4 x its
    std, 50 -> 128 -> 50 Hz returns it to 1e-3 x its std (interior, 1 s edges), with no time
    shift; 50 -> 128 agrees with mne.filter.resample (FFT and polyphase) and scipy's resample_poly
    to 5e-3 x std (their own error against the continuous signal; note that MNE's FFT method with
    its default npad="auto" pads to a length where 128/50 is inexact and drifts by ~0.3 x std)."""
    n = 1500  # 30 s of frames
    x, f = _bandlimited(n, 50.0, 8.0, seed=3, offset=offset)
    tol = np.std(x)
    s = FeatureSeries(x[:, None], offset + np.arange(n) / 50, [0])
    n128 = int(n / 50 * 128)
    y = resample_features(s, 128.0, n128, t0=0.0)[:, 0]
    t128 = np.arange(n128) / 128
    inner = (t128 > 1.0) & (t128 < 29.0)
    np.testing.assert_allclose(y[inner], f(t128[inner]), atol=1e-4 * tol)  # the continuous signal
    # back to 50 Hz at the original frame times
    back = FeatureSeries(y[:, None], t128, [0], sfreq=128.0)
    z = resample_features(back, 50.0, n, t0=offset)[:, 0]
    tz = offset + np.arange(n) / 50
    inner_z = (tz > 1.0) & (tz < 29.0)
    np.testing.assert_allclose(z[inner_z], x[inner_z], atol=1e-3 * tol)
    # no time shift: the lag maximising the cross-correlation at 1 ms resolution is 0
    shifts = np.arange(-10, 11) * 1e-3
    err = [np.abs(y[inner] - f(t128[inner] + sh)).mean() for sh in shifts]
    assert shifts[int(np.argmin(err))] == 0.0
    if offset == 0.0:
        # independent references (frame 0 at t=0): MNE's FFT resampler and scipy's polyphase
        refs = [
            mne.filter.resample(x, up=128 / 50, npad=100, method="fft", verbose=False),
            mne.filter.resample(x, up=128 / 50, method="polyphase", verbose=False),
            resample_poly(x, 64, 25),
        ]
        for ref in refs:
            assert len(ref) == n128
            np.testing.assert_allclose(y[inner], ref[inner], atol=5e-3 * tol)


def _series_for(dur, seed, ids=(4, 9, 17, 23)):
    rng = np.random.default_rng(seed)
    n = int(dur * 50)
    x = np.zeros((n, len(ids)))
    for j in range(len(ids)):
        on = rng.random(n) < (0.2 if j < 3 else 0.004)  # the last feature fires < 1/s
        x[on, j] = rng.gamma(2.0, 1.0, on.sum())
    return FeatureSeries(x, np.arange(n) / 50, list(ids), sfreq=50.0)


def _check_same(a, b):
    assert a.run_ids == b.run_ids and a.sfreq == b.sfreq
    assert a.feature_names == b.feature_names
    for name in a.X:
        for xa, xb in zip(a.X[name], b.X[name]):
            np.testing.assert_array_equal(xa, xb)
    for ya, yb, ma, mb in zip(a.Y, b.Y, a.masks, b.masks):
        np.testing.assert_array_equal(ya, yb)
        np.testing.assert_array_equal(ma, mb)
    assert a.ch_names == b.ch_names
    np.testing.assert_allclose(a.info["chs"][7]["loc"][:3], b.info["chs"][7]["loc"][:3])
    assert a.provenance == b.provenance


# mne.read_epochs calls DataFrame.set_index(inplace=True), deprecated in pandas 3.1 (MNE's code)
@pytest.mark.filterwarnings("ignore:The inplace keyword in DataFrame.set_index")
def test_dryad_roundtrip(tmp_path):
    """Dryad fixture -> Raw -> AlignedRuns (+ acoustic baselines) -> Epochs -> AlignedRuns."""
    durs = (12.0, 9.5, 14.0)
    write_dryad(tmp_path, durs=durs)
    raw = read_broderick_dryad(tmp_path, 3, reference="mastoids")
    raw.annotations.append(raw.first_time + 12.0 + 2.0, 1.5, "BAD_blink")  # in run02 at 2-3.5 s
    stims = read_broderick_stimuli(tmp_path)
    series = {rid: _series_for(d, k) for k, (rid, d) in enumerate(zip(stims, durs))}
    aligned = align_subject(raw, series, sfreq=64.0, train_runs=["run01", "run02"], min_rate=1.0)
    assert aligned.feature_names["sae"] == ["sae_4", "sae_9", "sae_17"]  # 23 fires < 1/s
    assert [len(y) for y in aligned.Y] == [int(d * 64) for d in durs]
    audio = {rid: sf.read(s["audio"])[0] for rid, s in stims.items()}
    words = {rid: s["words"]["onset"].to_numpy() for rid, s in stims.items()}
    aligned.add_acoustic(audio, kinds=("envelope", "onsets", "spectrogram", "words"), n_mels=6,
                         words_by_run=words)
    assert list(aligned.X) == ["sae", "envelope", "onsets", "spectrogram", "words"]
    assert aligned.X["spectrogram"][2].shape == (int(14.0 * 64), 6)
    m = aligned.masks[1]
    assert not m[2 * 64 + 1 : int(3.5 * 64) - 1].any() and m[: 2 * 64 - 1].all()
    # training-run statistics: robust scaling is exact on the training runs only
    good = np.concatenate([aligned.Y[i][aligned.masks[i]] for i in (0, 1)])
    np.testing.assert_allclose(np.median(good, axis=0), 0, atol=1e-9)
    np.testing.assert_allclose(np.subtract(*np.percentile(good, [75, 25], axis=0)), 1)
    assert np.abs(np.median(aligned.Y[2], axis=0)).max() > 1e-6
    np.testing.assert_allclose(np.abs(np.concatenate(aligned.X["envelope"][:2])).max(), 1.0)
    epochs = aligned.to_epochs(features=True, pad=True)
    assert len(epochs) == 3 and "mask" in epochs.ch_names and "spectrogram:mel_5" in epochs.ch_names
    back = AlignedRuns.from_epochs(epochs)
    _check_same(aligned, back)
    # through a FIF file as well
    epochs.save(tmp_path / "runs-epo.fif", fmt="double", verbose=False)
    _check_same(aligned, AlignedRuns.from_epochs(mne.read_epochs(tmp_path / "runs-epo.fif", verbose=False)))
    # cropped epochs read back cropped, with a warning and the original lengths
    with pytest.warns(UserWarning, match=r"cropped by to_epochs\(unequal='crop'\).*'run01': \[768, 608\]"):
        short = AlignedRuns.from_epochs(aligned.to_epochs(unequal="crop"))
    assert [len(y) for y in short.Y] == [int(9.5 * 64)] * 3 and short.X == {}
    assert short.provenance["cropped"] == {"run01": [768, 608], "run03": [896, 608]}


def test_bids_roundtrip(tmp_path):
    """BIDS fixture (BrainVision 512 Hz) -> Raw -> AlignedRuns -> Epochs -> AlignedRuns; stim export."""
    write_bids(tmp_path, durs=(6.0, 7.5), n_channels=128)
    raw = read_bids_runs(tmp_path, "001", task="listening", sfreq=512.0, montage="biosemi128")
    series = {"run01": _series_for(6.0, 1), "run02": _series_for(7.5, 2)}
    aligned = align_subject(raw, series, sfreq=128.0, scale="zscore", eeg_scaling="zscore")
    assert [len(y) for y in aligned.Y] == [768, 960] and len(aligned.ch_names) == 128
    cat = np.concatenate(aligned.Y)
    np.testing.assert_allclose(cat.mean(axis=0), 0, atol=1e-9)
    back = AlignedRuns.from_epochs(aligned.to_epochs(features=True, pad=True))
    _check_same(aligned, back)
    files = aligned.export_stim(tmp_path / "sub-001" / "eeg", subject="001", task="listening")
    assert [f.name for f in files] == [
        "sub-001_task-listening_run-1_recording-sae_stim.tsv.gz",
        "sub-001_task-listening_run-2_recording-sae_stim.tsv.gz",
    ]
    data, meta = read_stim_tsv(files[1])
    np.testing.assert_allclose(data, aligned.X["sae"][1], rtol=1e-9, atol=1e-12)
    assert meta["SamplingFrequency"] == 128.0 and meta["StartTime"] == 0.0
    assert meta["Columns"] == aligned.feature_names["sae"] and meta["StimulusID"] == "run02"
    with pytest.raises(FileExistsError, match="overwrite"):
        aligned.export_stim(tmp_path / "sub-001" / "eeg", subject="001", task="listening")
    sub = aligned.select_runs(["run02"])
    assert sub.run_ids == ["run02"] and sub.Y[0] is aligned.Y[1]
