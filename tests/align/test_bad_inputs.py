"""Bad inputs give teaching errors (both numbers, the fix) and leave no output files.

Cases (each a parametrised test; the folder is listed before and after the failing call):

1. Dryad eegData saved transposed (128 x n_times)
2. Dryad header fs disagrees with the expected rate
3. Dryad runs at different rates
4. Dryad mastoids shorter than eegData
5. Dryad file lacking a variable
6. Dryad run that does not exist
7. run table with overlapping runs
8. run table whose run outlasts the recording (EEG shorter than the audio)
9. trigger code absent from the events channel
10. EEG run shorter than its stimulus beyond the tolerance (align_subject)
11. BIDS sidecar SamplingFrequency disagrees with the data
12. BIDS data at another rate than expected
13. two sources of run onsets at once
14. BIDS stim file without the _stim.tsv.gz suffix
15. BIDS stim data with NaN (no half-written pair)
16. new feature set of the wrong length (states both lengths)
17. acoustic baseline from audio with NaN
18. feature series of different frame rates in one subject
19. train_runs naming an unknown run
20. export of a feature set whose name is not a BIDS label
"""

import json

import mne
import numpy as np
import pytest
from scipy.io import savemat

from neuro_sae.align import AlignedRuns, acoustic_envelope, align_subject
from neuro_sae.features import FeatureSeries
from neuro_sae.io import read_bids_runs, read_broderick_dryad, read_raw_runs, write_stim_tsv
from tests.io._fixtures import write_bids, write_dryad


def _files(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def _dryad_run(root, run, n=256, fs=128.0, eeg=None, mast=None, drop=None):
    d = root / "EEG" / "Subject1"
    d.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(run)
    v = dict(eegData=rng.normal(size=(n, 128)) if eeg is None else eeg,
             mastoids=rng.normal(size=(n, 2)) if mast is None else mast, fs=np.array([[fs]]))
    if drop:
        v.pop(drop)
    savemat(d / f"Subject1_Run{run}.mat", v)


def _raw(sfreq=128.0, dur=30.0, stim=True):
    rng = np.random.default_rng(0)
    raw = mne.io.RawArray(rng.normal(size=(3, int(dur * sfreq))) * 1e-6,
                          mne.create_info(["Fz", "Cz", "STI"], sfreq, ["eeg", "eeg", "stim"]), verbose=False)
    return raw


def _series(dur, sfreq=50.0):
    n = int(dur * sfreq)
    return FeatureSeries(np.ones((n, 2)), np.arange(n) / sfreq, [1, 2], sfreq=sfreq)


def _aligned():
    info = mne.create_info(["Fz", "Cz"], 64.0, "eeg")
    return AlignedRuns(["a", "b"], 64.0, {"sae": [np.zeros((100, 1)), np.zeros((90, 1))]},
                       {"sae": ["f0"]}, [np.zeros((100, 2)), np.zeros((90, 2))], info,
                       provenance=dict(l_freq=None, h_freq=None, scale=None))


def case_transposed(root):
    _dryad_run(root, 1, eeg=np.zeros((128, 300)), mast=np.zeros((300, 2)))
    return lambda: read_broderick_dryad(root, 1), ValueError, r"\(n_times, 128\), got \(128, 300\).*transposed"


def case_header_rate(root):
    _dryad_run(root, 1, fs=512.0)
    return lambda: read_broderick_dryad(root, 1, sfreq=128.0), ValueError, r"fs = 512 Hz but sfreq = 128 Hz.*Fix sfreq"


def case_rates_differ(root):
    _dryad_run(root, 1, fs=128.0)
    _dryad_run(root, 2, fs=64.0)
    return lambda: read_broderick_dryad(root, 1), ValueError, r"run 1 is at 128 Hz, run 2 at 64 Hz.*resample"


def case_mastoid_length(root):
    _dryad_run(root, 1, mast=np.zeros((200, 2)))
    return lambda: read_broderick_dryad(root, 1), ValueError, r"\(256, 2\) to match eegData, got \(200, 2\)"


def case_missing_variable(root):
    _dryad_run(root, 1, drop="mastoids")
    return lambda: read_broderick_dryad(root, 1), ValueError, r"lacks the variables \['mastoids'\] \(found \['eegData', 'fs'\]\)"


def case_missing_run(root):
    write_dryad(root, subject=1, runs=(1, 2), durs=(2.0, 2.0))
    return lambda: read_broderick_dryad(root, 1, runs=[1, 5]), FileNotFoundError, r"Runs \[5\].*available runs: \[1, 2\]"


def case_overlap(root):
    raw = _raw()
    raw.save(root / "r_raw.fif", verbose=False)
    table = [dict(onset=1.0, duration=10.0, stimulus_id="a"), dict(onset=8.0, duration=5.0, stimulus_id="b")]
    return lambda: read_raw_runs(root / "r_raw.fif", runs=table), ValueError, r"'a' \(1.000-11.000 s\) and 'b' \(from 8.000 s\) overlap"


def case_eeg_shorter_table(root):
    raw = _raw()
    raw.save(root / "r_raw.fif", verbose=False)
    table = [dict(onset=20.0, duration=12.5, stimulus_id="a")]
    return (lambda: read_raw_runs(root / "r_raw.fif", runs=table), ValueError,
            r"ends at 32.500 s but the recording ends at 30.000 s \(2.500 s short\).*shorter than its audio")


def case_missing_trigger(root):
    raw = _raw()
    raw._data[2, 128:133] = 4
    raw.save(root / "r_raw.fif", verbose=False)
    return (lambda: read_raw_runs(root / "r_raw.fif", event_id={4: "a", 7: "b"}), ValueError,
            r"Trigger code 7 \(stimulus 'b'\) occurs 0 times.*Codes found: \[4\]")


def case_align_short(root):
    raw = _raw()
    raw.set_annotations(mne.Annotations([2.0], [9.0], ["stim/a"]))
    return (lambda: align_subject(raw, {"a": _series(10.0)}, l_freq=None, h_freq=None, sfreq=64.0),
            ValueError, r"EEG lasts 9.000 s but its stimulus 10.000 s.*length_tolerance_s")


def case_bids_sidecar(root):
    write_bids(root, runs=(1,), durs=(2.0,), n_channels=4)
    side = next(root.rglob("*run-1_eeg.json"))
    meta = json.loads(side.read_text())
    meta["SamplingFrequency"] = 500.0
    side.write_text(json.dumps(meta))
    return (lambda: read_bids_runs(root, "001", task="listening"), ValueError,
            r"SamplingFrequency = 500 Hz but the data file is at 512 Hz")


def case_bids_rate(root):
    write_bids(root, runs=(1,), durs=(2.0,), sfreq=256.0, n_channels=4)
    return (lambda: read_bids_runs(root, "001", task="listening", sfreq=512.0), ValueError,
            r"is at 256 Hz but sfreq = 512 Hz was expected")


def case_two_sources(root):
    _raw().save(root / "r_raw.fif", verbose=False)
    return (lambda: read_raw_runs(root / "r_raw.fif", runs=[dict(onset=1.0, stimulus_id="a")], event_id={1: "a"}),
            ValueError, r"at most one source.*\['runs', 'event_id'\]")


def case_stim_suffix(root):
    return (lambda: write_stim_tsv(root / "out" / "sub-01_env.tsv", np.zeros((5, 1)), 64.0, ["e"]), ValueError,
            r"must end in '_stim.tsv.gz'")


def case_stim_nan(root):
    x = np.zeros((5, 2))
    x[2, 1] = np.nan
    return (lambda: write_stim_tsv(root / "out" / "sub-01_stim.tsv.gz", x, 64.0, ["a", "b"]), ValueError,
            r"NaN or infinite")


def case_feature_length(root):
    al = _aligned()
    return (lambda: al.add_feature_set("env", [np.zeros(100), np.zeros(91)], ["e"]), ValueError,
            r"Run 'b': the new set has 91 samples but the EEG 90 at 64 Hz")


def case_audio_nan(root):
    a = np.zeros(16000)
    a[5] = np.nan
    return lambda: acoustic_envelope(a, 16000, 64.0, 50), ValueError, r"audio holds NaN"


def case_series_rates(root):
    raw = _raw()
    raw.set_annotations(mne.Annotations([1.0, 12.0], [10.0, 10.0], ["stim/a", "stim/b"]))
    return (lambda: align_subject(raw, {"a": _series(5.0), "b": _series(5.0, sfreq=49.0)}), ValueError,
            r"Run 'b' has features at 49 Hz but run 'a' at 50 Hz")


def case_train_runs(root):
    raw = _raw()
    raw.set_annotations(mne.Annotations([1.0], [10.0], ["stim/a"]))
    return (lambda: align_subject(raw, {"a": _series(5.0)}, train_runs=["z"]), ValueError,
            r"train_runs must be a non-empty subset of the runs \['a'\]; unknown: \['z'\]")


def case_export_label(root):
    al = _aligned()
    al.X["my_set"] = al.X.pop("sae")
    al.feature_names["my_set"] = al.feature_names.pop("sae")
    return (lambda: al.export_stim(root / "out", subject="01", task="t"), ValueError,
            r"'my_set' cannot be a BIDS recording label")


CASES = [v for k, v in sorted(globals().items()) if k.startswith("case_")]


@pytest.mark.parametrize("case", CASES, ids=[c.__name__[5:] for c in CASES])
def test_bad_input(case, tmp_path):
    """The error names the numbers and the fix; no file appears."""
    func, exc, match = case(tmp_path)
    before = _files(tmp_path)
    with pytest.raises(exc, match=match):
        func()
    assert _files(tmp_path) == before


def test_enough_cases():
    assert len(CASES) >= 10


def test_small_shortfall_trimmed_with_note(caplog):
    """Within length_tolerance_s the run is trimmed to the EEG and the note is logged."""
    raw = _raw()
    raw.set_annotations(mne.Annotations([2.0], [9.8], ["stim/a"]))
    with caplog.at_level("INFO", logger="neuro_sae"):
        aligned = align_subject(raw, {"a": _series(10.0)}, l_freq=None, h_freq=None, sfreq=64.0,
                                verbose="info")
    assert len(aligned.Y[0]) == int(9.8 * 64)
    assert "Run 'a': trimming to the EEG, 9.800 s of 10.000 s" in caplog.text
