"""EEG readers: generic MNE files with events/annotations/tables, Dryad layout, BIDS layout."""

import mne
import numpy as np
import pandas as pd
import pytest

from neuro_sae.io import (
    broderick_runs,
    read_bids_runs,
    read_broderick_dryad,
    read_broderick_stimuli,
    read_raw_runs,
    read_stim_tsv,
    read_word_onsets,
    runs_from_events,
    set_run_annotations,
    write_stim_tsv,
)
from neuro_sae.io._broderick import BIOSEMI128

from ._fixtures import write_bids, write_dryad


def _raw_with_triggers(sfreq=250.0, dur=40.0, seed=1):
    rng = np.random.default_rng(seed)
    n = int(dur * sfreq)
    names = ["Fz", "Cz", "Pz", "Oz", "STI"]
    info = mne.create_info(names, sfreq, ["eeg"] * 4 + ["stim"])
    data = np.r_[rng.normal(size=(4, n)) * 1e-5, np.zeros((1, n))]
    for code, t in [(3, 2.5), (5, 17.0), (9, 30.0)]:
        data[4, int(t * sfreq) : int(t * sfreq) + 5] = code
    return mne.io.RawArray(data, info, first_samp=123, verbose=False)


def _stim(raw, prefix="stim/"):
    a = raw.annotations
    keep = [i for i, d in enumerate(a.description) if d.startswith(prefix)]
    return {a.description[i][len(prefix):]: (a.onset[i] - raw.first_time, a.duration[i]) for i in keep}


def test_read_raw_runs_sources(tmp_path):
    """Events channel, annotation map and onset table give the same run annotations."""
    raw = _raw_with_triggers()
    fname = tmp_path / "rec_raw.fif"
    raw.save(fname, verbose=False)
    durs = {"a": 10.0, "b": 8.0}
    r1 = read_raw_runs(fname, event_id={3: "a", 5: "b", 9: "c"}, durations=durs, montage="biosemi64",
                       bads=["Oz"])
    got = _stim(r1)
    np.testing.assert_allclose([got[k][0] for k in "abc"], [2.5, 17.0, 30.0], atol=1 / 250)
    np.testing.assert_allclose([got[k][1] for k in "abc"], [10.0, 8.0, 40.0 - 30.0], atol=1e-9)
    assert r1.info["bads"] == ["Oz"]
    ref = raw.copy().set_montage("biosemi64")
    np.testing.assert_allclose(r1.info["chs"][1]["loc"][:3], ref.info["chs"][1]["loc"][:3])
    assert np.linalg.norm(r1.info["chs"][1]["loc"][:3]) > 0.05
    # a table of onsets (tsv), same result
    table = runs_from_events(r1, {3: "a", 5: "b", 9: "c"}, durations=durs)
    table.to_csv(tmp_path / "onsets.tsv", sep="\t", index=False)
    r2 = read_raw_runs(fname, runs=tmp_path / "onsets.tsv")
    for k in "abc":
        np.testing.assert_allclose(_stim(r2)[k], got[k])
    # annotations with another naming
    raw3 = raw.copy()
    raw3.set_annotations(mne.Annotations([2.5, 17.0], [10.0, 8.0],  # orig_time None: from the first sample
                                         ["Stimulus/S  3", "Stimulus/S  5"]))
    raw3.save(tmp_path / "rec3_raw.fif", verbose=False)
    r3 = read_raw_runs(tmp_path / "rec3_raw.fif", annotation_map={"Stimulus/S  3": "a", "Stimulus/S  5": "b"})
    np.testing.assert_allclose(_stim(r3)["b"], (17.0, 8.0))


def test_read_raw_runs_brainvision(tmp_path):
    """Any MNE-readable format: a BrainVision file written by pybv."""
    from mne.export import export_raw

    raw = _raw_with_triggers().pick(["Fz", "Cz", "Pz", "Oz"])
    raw.set_annotations(mne.Annotations([4.0], [20.0], ["stim/x"], orig_time=None))
    fname = tmp_path / "rec.vhdr"
    with pytest.warns(RuntimeWarning, match="double"):  # pybv stores float32
        export_raw(fname, raw, fmt="brainvision", verbose=False)
    # BrainVision markers come back as "Comment/<description>": map them to the stimulus id
    back = read_raw_runs(fname, annotation_map={"Comment/stim/x": "x"})
    np.testing.assert_allclose(_stim(back)["x"], (4.0, 20.0), atol=1 / 250)
    np.testing.assert_allclose(back.get_data(), raw.get_data(), rtol=1e-6, atol=1e-11)


def test_dryad_layout(tmp_path):
    """Runs concatenated with their annotations, biosemi128 montage, mastoid reference, µV -> V."""
    truth = write_dryad(tmp_path)
    assert broderick_runs(tmp_path, 3) == [1, 2, 3]
    raw = read_broderick_dryad(tmp_path, "3", runs=[2, 1], reference="mastoids", bads=["B7"])
    assert raw.ch_names == BIOSEMI128 and raw.info["sfreq"] == 128.0 and raw.info["bads"] == ["B7"]
    stim = _stim(raw)
    assert list(stim) == ["run02", "run01"]
    np.testing.assert_allclose(stim["run02"], (0.0, 9.5))
    np.testing.assert_allclose(stim["run01"], (9.5, 12.0))
    n2 = int(9.5 * 128)
    expect = (truth[1]["eeg"] - truth[1]["mastoids"].mean(axis=1, keepdims=True)) * 1e-6
    np.testing.assert_allclose(raw.get_data()[:, n2:].T, expect, rtol=1e-12, atol=1e-18)
    ref = mne.io.RawArray(np.zeros((128, 1)), mne.create_info(BIOSEMI128, 128.0, "eeg"), verbose=False)
    ref.set_montage("biosemi128")
    np.testing.assert_allclose(raw.info["chs"][40]["loc"][:3], ref.info["chs"][40]["loc"][:3])
    assert any(d == "EDGE boundary" for d in raw.annotations.description)
    # no reference: the mastoids stay as misc channels
    raw2 = read_broderick_dryad(tmp_path, 3, runs=[1])
    assert raw2.ch_names[-2:] == ["M1", "M2"] and raw2.get_channel_types()[-1] == "misc"
    np.testing.assert_allclose(raw2.get_data()[:128].T, truth[1]["eeg"] * 1e-6)
    # stimuli folder: audio and word onsets
    stims = read_broderick_stimuli(tmp_path)
    assert sorted(stims) == ["run01", "run02", "run03"]
    assert stims["run03"]["audio"].name == "audio3.wav"
    np.testing.assert_allclose(stims["run03"]["words"]["onset"], truth[3]["onsets"])
    assert list(stims["run01"]["words"]["word"][:2]) == ["w0", "w1"]
    np.testing.assert_allclose(stims["run02"]["envelope"], truth[2]["env"])


def test_bids_layout(tmp_path):
    """ds004408-like BrainVision runs at 512 Hz: one run annotation each, words kept, data exact."""
    truth = write_bids(tmp_path, n_channels=128)
    raw = read_bids_runs(tmp_path, "001", task="listening", sfreq=512.0, montage="biosemi128")
    assert raw.info["sfreq"] == 512.0 and len(raw.ch_names) == 128
    stim = _stim(raw)
    np.testing.assert_allclose(stim["run01"], (0.0, 6.0))
    np.testing.assert_allclose(stim["run02"], (6.0, 7.5))
    words = raw.annotations.onset[raw.annotations.description == "word"] - raw.first_time
    np.testing.assert_allclose(words, np.r_[truth[1]["words"], truth[2]["words"] + 6.0], atol=1e-9)
    n1 = int(6.0 * 512)
    np.testing.assert_allclose(raw.get_data()[:, n1:], truth[2]["data"], atol=1e-9)  # BrainVision resolution
    assert np.isfinite(raw.info["chs"][5]["loc"][:3]).all()
    # word onsets from the events table of a run
    ev = next(tmp_path.rglob("*run-2_events.tsv"))
    np.testing.assert_allclose(read_word_onsets(ev)["onset"], truth[2]["words"])
    np.testing.assert_allclose(read_word_onsets(ev, trial_type="word")["onset"], truth[2]["words"])
    assert len(read_word_onsets(ev, trial_type="phoneme")) == 0
    # one run only; onset_event must name a single event of the run
    raw2 = read_bids_runs(tmp_path, "001", task="listening", runs=[2])
    assert _stim(raw2)["run02"] == pytest.approx((0.0, 7.5))
    with pytest.raises(ValueError, match="onset_event='word' occurs 5 times"):
        read_bids_runs(tmp_path, "001", task="listening", runs=[2], onset_event="word")
    ev.write_text(ev.read_text().replace("word", "audio_start", 1))
    raw3 = read_bids_runs(tmp_path, "001", task="listening", runs=[2], onset_event="audio_start")
    first = truth[2]["words"][0]
    assert _stim(raw3)["run02"] == pytest.approx((first, 0.2))  # the event's duration


def test_stim_tsv_roundtrip(tmp_path):
    """BIDS stim files: values, rate, start time and columns come back."""
    from neuro_sae.features import FeatureSeries

    rng = np.random.default_rng(0)
    x = rng.normal(size=(37, 3))
    fname = write_stim_tsv(tmp_path / "sub-01_task-t_run-1_recording-env_stim.tsv.gz", x, 64.0,
                           ["a", "b", "c"], start_time=0.25)
    data, meta = read_stim_tsv(fname)
    np.testing.assert_allclose(data, x, rtol=1e-9)
    assert meta == dict(SamplingFrequency=64.0, StartTime=0.25, Columns=["a", "b", "c"])
    s = FeatureSeries(np.clip(rng.normal(size=(20, 4)), 0, None), 0.0125 + np.arange(20) / 50, [3, 8, 9, 11],
                      stimulus_id="run01", layer=6)
    f2 = write_stim_tsv(tmp_path / "sub-01_task-t_run-1_recording-sae_stim.tsv.gz", s, None, None)
    data, meta = read_stim_tsv(f2)
    np.testing.assert_allclose(data, s.to_dense(), rtol=1e-6)
    assert meta["StartTime"] == 0.0125 and meta["SamplingFrequency"] == 50.0
    assert meta["Columns"][1] == "feature_8" and meta["StimulusID"] == "run01" and meta["Layer"] == 6
    assert isinstance(pd.read_csv(fname, sep="\t", header=None), pd.DataFrame)


def test_set_run_annotations_zero_duration():
    """Runs without a duration last up to the next run or the end of the data."""
    raw = _raw_with_triggers()
    set_run_annotations(raw, [dict(onset=1.0, stimulus_id="p"), dict(onset=20.0, duration=5.0, stimulus_id="q")])
    assert _stim(raw)["p"] == pytest.approx((1.0, 19.0))


def test_subject_eeg_files_lists_what_is_read(tmp_path):
    """The files hashed by the pipeline are exactly the subject's recordings."""
    from pathlib import Path

    from neuro_sae.io import subject_eeg_files
    from neuro_sae.manifest import load_manifest

    root = Path(__file__).parents[2] / "data_manifests"
    write_dryad(tmp_path / "dryad", subject=3, runs=(1, 2))
    (tmp_path / "dryad" / "EEG" / "Subject13").mkdir()  # a subject whose label contains "3"
    (tmp_path / "dryad" / "EEG" / "Subject13" / "Subject13_Run1.mat").write_bytes(b"")
    m = load_manifest(root / "broderick2018_dryad.yaml", check_files=False,
                      overrides={"eeg": {"root": str(tmp_path / "dryad")}})  # fmt: skip
    files = subject_eeg_files(m, "3")
    assert [f.name for f in files] == ["Subject3_Run1.mat", "Subject3_Run2.mat"]
    write_bids(tmp_path / "bids", subject="001", runs=(1,))
    m = load_manifest(root / "broderick2018_bids.yaml", check_files=False,
                      overrides={"eeg": {"root": str(tmp_path / "bids")}})  # fmt: skip
    files = subject_eeg_files(m, "001")
    assert files and all("sub-001" in str(f) for f in files)
    assert any(f.suffix == ".vhdr" for f in files)
