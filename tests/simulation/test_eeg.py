"""Tests of the simulated EEG: planted kernels, annotations, montage, truth, calibration."""

import json

import numpy as np
import pytest

from neuro_sae.io._eeg import read_raw_runs
from neuro_sae.simulation import simulate_eeg, write_simulated_subject
from neuro_sae.simulation._eeg import _bandpass

SFREQ = 128.0


def _features(seed, n_features=11, durations=(41.0, 37.5, 45.25)):
    """Sparse, smoothed event features (about 3 events per second per column)."""
    rng = np.random.default_rng(seed)
    out = {}
    for r, dur in enumerate(durations):
        n = int(dur * SFREQ)
        x = np.zeros((n, n_features))
        for j in range(n_features):
            ev = rng.random(n) < 3 / SFREQ
            x[ev, j] = rng.gamma(2.0, 1.0, ev.sum())
            x[:, j] = np.convolve(x[:, j], np.hanning(7), "same")
        out[f"run{r + 1:02d}"] = x
    return out


def _lagged(x, n_lags):
    lagged = np.zeros((len(x), n_lags))
    for k in range(n_lags):
        lagged[k:, k] = x[: len(x) - k]
    return lagged


@pytest.mark.parametrize("seed", [0, 1])
def test_planted_kernels_recovered(seed):
    """Ridge on lagged features (numpy) recovers each kernel's peak latency at high SNR."""
    feats = _features(seed)
    raw, truth = simulate_eeg(feats, snr=3.0, n_planted=3, random_state=seed)
    data = raw.get_data()
    n_lags = int(0.4 * SFREQ) + 1
    for i, p in enumerate(truth["planted"]):
        ch = truth["ch_names"].index(truth["peak_channels"][i])
        xs, ys = [], []
        for run, x in zip(truth["runs"], feats.values()):
            s0 = int(round(run["onset_s"] * SFREQ))
            xs.append(np.concatenate([_lagged(x[:, c], n_lags) for c in [q["feature"] for q in truth["planted"]]], axis=1))
            ys.append(data[ch, s0 : s0 + len(x)])
        X, y = np.concatenate(xs), np.concatenate(ys)
        X -= X.mean(axis=0)
        y = y - y.mean()
        G = X.T @ X
        w = np.linalg.solve(G + 1e-3 * np.trace(G) / len(G) * np.eye(len(G)), X.T @ y)
        w_i = w[i * n_lags : (i + 1) * n_lags]
        peak_lag = int(np.argmax(np.abs(w_i)))
        assert abs(peak_lag - round(p["latency"] * SFREQ)) <= 2
        assert np.sign(w_i[peak_lag]) == p["sign"]
        kernel = np.asarray(truth["kernels"][i])
        assert np.corrcoef(w_i, kernel)[0, 1] > 0.9


def test_annotations_montage_and_truth(tmp_path):
    """One annotation per run with the run's onset and length; montage set; JSON round trip."""
    feats = _features(3)
    raw, truth = simulate_eeg(feats, gap_s=4.0, random_state=7)
    assert len(raw.ch_names) == 64 and raw.get_montage() is not None
    assert raw.info["sfreq"] == SFREQ
    desc = list(raw.annotations.description)
    assert desc == ["stim/run01", "stim/run02", "stim/run03"]
    np.testing.assert_allclose(raw.annotations.duration, [len(x) / SFREQ for x in feats.values()])
    np.testing.assert_allclose(raw.annotations.onset[0], 4.0)
    np.testing.assert_allclose(np.diff(raw.annotations.onset), raw.annotations.duration[:-1] + 4.0)
    assert abs(raw.times[-1] + 1 / SFREQ - (sum(raw.annotations.duration) + 16.0)) < 1e-9
    # planted features are distinct, weakly correlated columns with distinct latencies
    cols = [p["feature"] for p in truth["planted"]]
    assert len(set(cols)) == 5
    stacked = np.concatenate(list(feats.values()))[:, cols]
    r = np.corrcoef(stacked.T)
    assert np.all(np.abs(r[np.triu_indices(5, 1)]) < 0.3)
    assert len({p["latency"] for p in truth["planted"]}) == 5
    for chans, peak in zip(truth["planted_channels"], truth["peak_channels"]):
        assert peak in chans and 1 <= len(chans) < 20
    paths = write_simulated_subject(raw, truth, tmp_path, 1)
    assert paths["eeg"].name == "sub-01_task-listen_eeg.fif"
    assert not list(tmp_path.glob(".tmp*"))
    back = json.loads(paths["truth"].read_text())
    assert back == json.loads(json.dumps(truth))
    assert back["random_state"] == 7
    raw2 = read_raw_runs(paths["eeg"])
    np.testing.assert_allclose(raw2.get_data(), raw.get_data(), rtol=1e-6, atol=1e-12)
    assert list(raw2.annotations.description) == desc
    with pytest.raises(FileExistsError, match="overwrite"):
        write_simulated_subject(raw, truth, tmp_path, "sub-01")
    write_simulated_subject(raw, truth, tmp_path, "01", overwrite=True)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_default_snr_calibration(seed):
    """At the default SNR the noise-free response correlates with the EEG at r ~ 0.08."""
    feats = _features(seed + 10)
    raw, truth = simulate_eeg(feats, random_state=seed)
    assert truth["snr"] == 0.08
    # independent recomputation for the first planted feature
    p = truth["planted"][0]
    ch = truth["ch_names"].index(truth["peak_channels"][0])
    eeg = _bandpass(raw.get_data()[ch], SFREQ)[0]
    drive = np.zeros(len(raw.times))
    x = np.concatenate(list(feats.values()))[:, p["feature"]]
    mu, sd = x.mean(), x.std()
    in_runs = np.zeros(len(raw.times), bool)
    for run, xr in zip(truth["runs"], feats.values()):
        s0 = int(round(run["onset_s"] * SFREQ))
        drive[s0 : s0 + len(xr)] = (xr[:, p["feature"]] - mu) / sd
        in_runs[s0 : s0 + len(xr)] = True
    clean = _bandpass(np.convolve(drive, truth["kernels"][0])[: len(drive)], SFREQ)[0]
    r = np.corrcoef(clean[in_runs], eeg[in_runs])[0, 1]
    np.testing.assert_allclose(r, truth["r_expected"][0], atol=1e-6)
    # about 125 s of data at 128 Hz: the sampling error of r is about 0.02
    assert all(0.0 < r < 0.2 for r in truth["r_expected"])
    assert 0.05 < np.mean(truth["r_expected"]) < 0.12


def test_simulate_errors():
    """Bad inputs raise with the parameter named."""
    feats = _features(0, durations=(20.0, 21.0))
    with pytest.raises(ValueError, match="montage"):
        simulate_eeg(feats, montage="biosemi63")
    with pytest.raises(ValueError, match="same features"):
        simulate_eeg({"a": np.ones((100, 3)), "b": np.ones((100, 4))})
    with pytest.raises(ValueError, match="'feature'"):
        simulate_eeg(feats, planted=[dict(latency=0.1)])
    with pytest.raises(ValueError, match="center"):
        simulate_eeg(feats, planted=[dict(feature=0, center="Xx")])
    with pytest.raises(ValueError, match="n_planted"):
        simulate_eeg(feats, n_planted=9)
    raw, truth = simulate_eeg(feats, planted=[dict(feature=2, latency=0.15, sign=-1, center="Oz")], random_state=0)
    assert truth["planted"][0]["center"] == "Oz" and truth["peak_channels"] == ["Oz"]
