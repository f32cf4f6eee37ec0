"""Bad channels stay out of the aligned EEG, the reference and everything fitted on it."""

import mne
import numpy as np
import pytest

from neuro_sae.align import AlignedRuns, align_subject, read_aligned_runs
from neuro_sae.features import FeatureSeries

NAMES = ["Fz", "Cz", "Pz", "Oz", "C3", "C4"]


def _recording(seed=4, sfreq=200.0, dur=40.0):
    rng = np.random.default_rng(seed)
    n = int(dur * sfreq)
    data = rng.normal(size=(len(NAMES), n)) * 1e-6
    t = np.arange(n) / sfreq
    feat = np.sin(2 * np.pi * 3.0 * t)
    data[1] += 2e-6 * feat  # Cz follows the feature
    # the bad channel: huge noise, 10^5 times the others
    data[4] = rng.normal(size=n) * 1e-1
    raw = mne.io.RawArray(data, mne.create_info(NAMES, sfreq, "eeg"), verbose=False)
    raw.set_montage("biosemi64")
    raw.set_annotations(mne.Annotations([2.0, 20.0], [15.0, 14.0], ["stim/a", "stim/b"]))
    series = {}
    for rid, on, d in (("a", 2.0, 15.0), ("b", 20.0, 14.0)):
        ft = np.arange(int(d * 50)) / 50
        series[rid] = FeatureSeries(np.sin(2 * np.pi * 3.0 * (ft + on))[:, None], ft, [5], sfreq=50.0)
    return raw, series


@pytest.mark.parametrize("reference", [None, "average"])
def test_bad_channel_left_out(reference, tmp_path):
    """With C3 marked bad the aligned EEG equals that of the recording without C3 (so the
    average reference and every fit ignore it), C3 appears nowhere, and the round trip
    keeps the bad list."""
    raw, series = _recording()
    raw.info["bads"] = ["C3"]
    aligned = align_subject(raw, series, sfreq=100.0, reference=reference)
    assert "C3" not in aligned.ch_names and aligned.bads == ["C3"]
    assert aligned.info["bads"] == []
    ref_raw = raw.copy().drop_channels(["C3"])
    ref = align_subject(ref_raw, series, sfreq=100.0, reference=reference)
    assert aligned.ch_names == ref.ch_names == ["Fz", "Cz", "Pz", "Oz", "C4"]
    for y, y_ref in zip(aligned.Y, ref.Y):
        np.testing.assert_allclose(y, y_ref, rtol=0, atol=1e-12)
    # the planted response on Cz is intact (the 1e-1 noise would drown it in an average)
    cz = aligned.ch_names.index("Cz")
    r = np.corrcoef(np.concatenate(aligned.X["sae"])[:, 0], np.concatenate(aligned.Y)[:, cz])[0, 1]
    assert r > 0.5
    back = read_aligned_runs(aligned.save(tmp_path / "al.npz"))
    assert back.bads == ["C3"] and "C3" not in back.ch_names
    # epochs round trip keeps them too
    back = AlignedRuns.from_epochs(aligned.to_epochs(unequal="pad"))
    assert back.bads == ["C3"]


def test_with_bads_kept_in_info_refused():
    """An AlignedRuns whose info marks one of its own channels bad is refused."""
    info = mne.create_info(["Fz", "Cz"], 64.0, "eeg")
    info["bads"] = ["Cz"]
    with pytest.raises(ValueError, match=r"marks the channels \['Cz'\] bad.*Drop them"):
        AlignedRuns(["a"], 64.0, {}, {}, [np.zeros((10, 2))], info)


def test_from_epochs_leaves_bads_out():
    """Epochs with a bad EEG channel come back without it, named in provenance['bads']."""
    info = mne.create_info(["Fz", "Cz", "Pz"], 64.0, "eeg")
    epochs = mne.EpochsArray(np.random.default_rng(0).normal(size=(2, 3, 50)), info, verbose=False)
    epochs.info["bads"] = ["Pz"]
    al = AlignedRuns.from_epochs(epochs)
    assert al.ch_names == ["Fz", "Cz"] and al.bads == ["Pz"]
    np.testing.assert_array_equal(al.Y[1], epochs.get_data(picks="all")[1, :2].T)


def test_length_not_floored():
    """A run of 10.004 s at 64 Hz (640.256 samples) keeps 640; 10.008 s (640.512) keeps 641,
    not the floor 640; the fraction is logged."""
    rng = np.random.default_rng(1)
    raw = mne.io.RawArray(rng.normal(size=(2, 64 * 30)) * 1e-6,
                          mne.create_info(["Fz", "Cz"], 64.0, "eeg"), verbose=False)
    raw.set_annotations(mne.Annotations([1.0, 15.0], [0.0, 0.0], ["stim/a", "stim/b"]))
    series = {
        rid: FeatureSeries(np.ones((n, 1)), np.arange(n) / 250.0, [1], sfreq=250.0)
        for rid, n in (("a", 2501), ("b", 2502))  # 10.004 s and 10.008 s
    }
    al = align_subject(raw, series, l_freq=None, h_freq=None, sfreq=64.0, scale=None)
    assert [len(y) for y in al.Y] == [round(10.004 * 64), round(10.008 * 64)] == [640, 641]
