"""Bad EEG input: Dryad/BIDS/MNE files, run onsets, channels, montages, the aligned runs."""

import json

import mne
import numpy as np
import soundfile as sf
from scipy.io import savemat

from neuro_sae.align import AlignedRuns, align_subject
from neuro_sae.features import FeatureSeries
from neuro_sae.io import (
    read_bids_runs,
    read_broderick_dryad,
    read_raw_runs,
    read_subject_eeg,
)
from neuro_sae.manifest import load_manifest
from tests.bad_input import BadInput
from tests.io._fixtures import write_bids, write_dryad


def _dryad_run(root, run, n=256, fs=128.0, eeg=None, mast=None, drop=None):
    d = root / "EEG" / "Subject1"
    d.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(run)
    v = dict(eegData=rng.normal(size=(n, 128)) if eeg is None else eeg,
             mastoids=rng.normal(size=(n, 2)) if mast is None else mast, fs=np.array([[fs]]))
    if drop:
        v.pop(drop)
    savemat(d / f"Subject1_Run{run}.mat", v)


def _raw(sfreq=128.0, dur=30.0, names=("Fz", "Cz", "STI"), types=("eeg", "eeg", "stim")):
    rng = np.random.default_rng(0)
    return mne.io.RawArray(rng.normal(size=(len(names), int(dur * sfreq))) * 1e-6,
                           mne.create_info(list(names), sfreq, list(types)), verbose=False)


def _fif(root, raw=None):
    raw = _raw() if raw is None else raw
    fname = root / "r_raw.fif"
    raw.save(fname, verbose=False)
    return fname


def _series(dur, sfreq=50.0):
    n = int(round(dur * sfreq))
    return FeatureSeries(np.ones((n, 2)), np.arange(n) / sfreq, [1, 2], sfreq=sfreq)


def _manifest(root, eeg, subjects=("01",)):
    """A one-run manifest (stimulus a.wav) with the given eeg section."""
    (root / "stim").mkdir(exist_ok=True)
    sf.write(root / "stim" / "a.wav", np.zeros(16000, np.float32), 16000)
    text = (
        "name: t\nderivatives: deriv\nsubjects: [" + ", ".join(f'"{s}"' for s in subjects) + "]\n"
        "stimuli:\n  root: stim\n  runs:\n    - {id: a, file: a.wav}\n"
        "eeg:\n" + "".join(f"  {k}: {json.dumps(v)}\n" for k, v in eeg.items())
    )
    (root / "m.yaml").write_text(text)
    return load_manifest(root / "m.yaml")


# --------------------------------------------------------------------- Dryad layout
def _transposed(root):
    _dryad_run(root, 1, eeg=np.zeros((128, 300)), mast=np.zeros((300, 2)))
    return lambda: read_broderick_dryad(root, 1), None


def _header_rate(root):
    _dryad_run(root, 1, fs=512.0)
    return lambda: read_broderick_dryad(root, 1, sfreq=128.0), None


def _rates_differ(root):
    _dryad_run(root, 1, fs=128.0)
    _dryad_run(root, 2, fs=64.0)
    return lambda: read_broderick_dryad(root, 1), None


def _mastoid_length(root):
    _dryad_run(root, 1, mast=np.zeros((200, 2)))
    return lambda: read_broderick_dryad(root, 1), None


def _missing_variable(root):
    _dryad_run(root, 1, drop="mastoids")
    return lambda: read_broderick_dryad(root, 1), None


def _missing_run(root):
    write_dryad(root, subject=1, runs=(1, 2), durs=(2.0, 2.0))
    return lambda: read_broderick_dryad(root, 1, runs=[1, 5]), None


def _dryad_unknown_bad(root):
    _dryad_run(root, 1)
    return lambda: read_broderick_dryad(root, 1, bads=["A1", "Z9"]), None


def _dryad_both_mastoids_bad(root):
    _dryad_run(root, 1)
    return lambda: read_broderick_dryad(root, 1, reference="mastoids", bads=["M1", "M2"]), None


def _manifest_dryad_bad(root):
    write_dryad(root / "dryad", subject=1, runs=(1,), durs=(2.0,))
    m = _manifest(root, dict(format="dryad", root=str(root / "dryad"), bads={"1": ["a1"]}),
                  subjects=("1",))
    return lambda: read_subject_eeg(m, "1"), None


# --------------------------------------------------------------------- MNE files, onsets
def _eeg_file_missing(root):
    return lambda: read_raw_runs(root / "nope_eeg.fif"), None


def _eeg_file_unreadable(root):
    other = root / "x.edf"
    other.write_bytes(b"0")
    return lambda: read_raw_runs(other), None


def _overlap(root):
    fname = _fif(root)
    table = [dict(onset=1.0, duration=10.0, stimulus_id="a"), dict(onset=8.0, duration=5.0, stimulus_id="b")]
    return lambda: read_raw_runs(fname, runs=table), None


def _eeg_shorter_table(root):
    fname = _fif(root)
    table = [dict(onset=20.0, duration=12.5, stimulus_id="a")]
    return lambda: read_raw_runs(fname, runs=table), None


def _missing_trigger(root):
    raw = _raw()
    raw._data[2, 128:133] = 4
    fname = _fif(root, raw)
    return lambda: read_raw_runs(fname, event_id={4: "a", 7: "b"}), None


def _two_sources(root):
    fname = _fif(root)
    return lambda: read_raw_runs(fname, runs=[dict(onset=1.0, stimulus_id="a")], event_id={1: "a"}), None


def _unknown_bad(root):
    fname = _fif(root)
    return lambda: read_raw_runs(fname, bads=["cz"]), None


def _montage_unmatched(root):
    fname = _fif(root, _raw(names=("Fz", "Cz", "EXG1", "EXG2"), types=("eeg",) * 4))
    return lambda: read_raw_runs(fname, montage="biosemi64"), None


def _montage_name(root):
    fname = _fif(root)
    return lambda: read_raw_runs(fname, montage="biosemi65"), None


def _manifest_montage_unmatched(root):
    fname = _fif(root, _raw(names=("Fz", "Cz", "EXG1"), types=("eeg",) * 3))
    m = _manifest(root, dict(format="mne", files=str(fname), montage="biosemi64"))
    return lambda: read_subject_eeg(m, "01"), None


def _manifest_eeg_missing(root):
    m = _manifest(root, dict(format="fif", files=str(root / "sub-{subject}_eeg.fif")))
    return lambda: read_subject_eeg(m, "01"), None


def _manifest_bads_unknown(root):
    fname = _fif(root)
    m = _manifest(root, dict(format="fif", files=str(fname), bads={"01": ["Oz"]}))
    return lambda: read_subject_eeg(m, "01"), None


# --------------------------------------------------------------------- BIDS
def _bids_sidecar(root):
    write_bids(root, runs=(1,), durs=(2.0,), n_channels=4)
    side = next(root.rglob("*run-1_eeg.json"))
    meta = json.loads(side.read_text())
    meta["SamplingFrequency"] = 500.0
    side.write_text(json.dumps(meta))
    return lambda: read_bids_runs(root, "001", task="listening"), None


def _bids_rate(root):
    write_bids(root, runs=(1,), durs=(2.0,), sfreq=256.0, n_channels=4)
    return lambda: read_bids_runs(root, "001", task="listening", sfreq=512.0), None


# --------------------------------------------------------------------- alignment
def _align_short(root):
    raw = _raw()
    raw.set_annotations(mne.Annotations([2.0], [9.0], ["stim/a"]))
    return lambda: align_subject(raw, {"a": _series(10.0)}, l_freq=None, h_freq=None, sfreq=64.0), None


def _raw_nan(root):
    raw = _raw(dur=40.0)
    raw.set_annotations(mne.Annotations([2.0, 20.0], [10.0, 10.0], ["stim/run01", "stim/run02"]))
    raw._data[1, int(23.5 * 128)] = np.nan  # Cz, 3.5 s into run02
    raw._data[0, int(30.0 * 128)] = np.inf
    return lambda: align_subject(raw, {"run01": _series(10.0), "run02": _series(10.0)}), None


def _all_bad(root):
    raw = _raw()
    raw.info["bads"] = ["Fz", "Cz"]
    raw.set_annotations(mne.Annotations([2.0], [10.0], ["stim/a"]))
    return lambda: align_subject(raw, {"a": _series(10.0)}), None


def _bad_reference(root):
    raw = _raw()
    raw.info["bads"] = ["Cz"]
    raw.set_annotations(mne.Annotations([2.0], [10.0], ["stim/a"]))
    return lambda: align_subject(raw, {"a": _series(10.0)}, reference="Cz"), None


def _to_epochs_unequal(root):
    info = mne.create_info(["Fz", "Cz"], 64.0, "eeg")
    al = AlignedRuns(["run01", "run02"], 64.0, {}, {}, [np.zeros((100, 2)), np.zeros((90, 2))], info)
    return lambda: al.to_epochs(), None


def _info_bads(root):
    info = mne.create_info(["Fz", "Cz"], 64.0, "eeg")
    info["bads"] = ["Cz"]
    return lambda: AlignedRuns(["a"], 64.0, {}, {}, [np.zeros((10, 2))], info), None


CASES = [
    BadInput("dryad-transposed", _transposed, ValueError,
             [r"Subject1_Run1\.mat", r"\(n_times, 128\), got \(128, 300\)", "transposed"],
             "Dryad eegData saved transposed (128 x n_times)"),
    BadInput("dryad-header-rate", _header_rate, ValueError,
             [r"Subject1_Run1\.mat", "fs = 512 Hz but sfreq = 128 Hz", r"eeg\.sfreq_file"],
             "Dryad header fs disagrees with the expected rate"),
    BadInput("dryad-rates-differ", _rates_differ, ValueError,
             ["run 1 is at 128 Hz, run 2 at 64 Hz", "resample"],
             "Dryad runs at different rates"),
    BadInput("dryad-mastoid-length", _mastoid_length, ValueError,
             [r"Subject1_Run1\.mat", r"\(256, 2\) to match eegData, got \(200, 2\)"],
             "Dryad mastoids shorter than eegData"),
    BadInput("dryad-missing-variable", _missing_variable, ValueError,
             [r"Subject1_Run1\.mat", r"lacks the variables \['mastoids'\] \(found \['eegData', 'fs'\]\)"],
             "Dryad file lacking a variable"),
    BadInput("dryad-missing-run", _missing_run, FileNotFoundError,
             [r"Runs \[5\]", r"available runs: \[1, 2\]"],
             "Dryad run that does not exist"),
    BadInput("dryad-unknown-bad", _dryad_unknown_bad, ValueError,
             [r"bads lists channels \['Z9'\]", "A1", "Fix bads"],
             "Dryad bads naming a channel the recording lacks"),
    BadInput("dryad-both-mastoids-bad", _dryad_both_mastoids_bad, ValueError,
             [r"both mastoids \['M1', 'M2'\] are marked bad", "reference='average'"],
             "mastoid reference with both mastoids marked bad"),
    BadInput("manifest-dryad-bads-case", _manifest_dryad_bad, ValueError,
             [r"eeg\.bads\.1 lists channels \['a1'\]", r"differ only in case: \{'a1': 'A1'\}"],
             "eeg.bads naming a Dryad channel in the wrong case"),
    BadInput("eeg-file-missing", _eeg_file_missing, FileNotFoundError,
             [r"EEG file not found: .*nope_eeg\.fif", r"eeg\.files"],
             "EEG recording that does not exist"),
    BadInput("eeg-file-unreadable", _eeg_file_unreadable, ValueError,
             [r"MNE cannot read 'x\.edf'", "BrainVision", "read_broderick_dryad"],
             "EEG file MNE cannot read"),
    BadInput("runs-overlap", _overlap, ValueError,
             [r"'a' \(1\.000-11\.000 s\) and 'b' \(from 8\.000 s\) overlap", "fix the onsets"],
             "run table with overlapping runs"),
    BadInput("run-outlasts-recording", _eeg_shorter_table, ValueError,
             [r"ends at 32\.500 s but the recording ends at 30\.000 s \(2\.500 s short\)",
              "shorter than its audio"],
             "run table whose run outlasts the recording"),
    BadInput("trigger-missing", _missing_trigger, ValueError,
             [r"Trigger code 7 \(stimulus 'b'\) occurs 0 times", r"Codes found: \[4\]", r"eeg\.event_id"],
             "trigger code absent from the events channel"),
    BadInput("two-onset-sources", _two_sources, ValueError,
             [r"at most one source.*\['runs', 'event_id'\]", "annotation_map"],
             "two sources of run onsets at once"),
    BadInput("bads-unknown-channel", _unknown_bad, ValueError,
             [r"bads lists channels \['cz'\] that are not in r_raw\.fif", r"differ only in case: \{'cz': 'Cz'\}"],
             "bads naming a channel in the wrong case"),
    BadInput("montage-unmatched", _montage_unmatched, ValueError,
             [r"2 of the 4 EEG channels of r_raw\.fif have no position", r"\['EXG1', 'EXG2'\]",
              "rename the channels", "on_missing"],
             "montage that does not name every EEG channel"),
    BadInput("montage-unknown-name", _montage_name, ValueError,
             [r"'montage' parameter", "'biosemi64'", "biosemi65"],
             "montage name that MNE does not know"),
    BadInput("manifest-montage-unmatched", _manifest_montage_unmatched, ValueError,
             [r"\['EXG1'\]", r"eeg\.montage", "biosemi64"],
             "eeg.montage not naming a channel of a FIF recording"),
    BadInput("manifest-eeg-file-missing", _manifest_eeg_missing, FileNotFoundError,
             [r"No EEG file for subject '01'", r"eeg\.files", r"sub-01_eeg\.fif", "neuro-sae simulate"],
             "eeg.files pointing to no file"),
    BadInput("manifest-bads-unknown", _manifest_bads_unknown, ValueError,
             [r"eeg\.bads\.01 lists channels \['Oz'\]", r"r_raw\.fif", r"\['Fz', 'Cz', 'STI'\]"],
             "eeg.bads naming a channel the recording lacks"),
    BadInput("bids-sidecar-rate", _bids_sidecar, ValueError,
             [r"_eeg\.json says SamplingFrequency = 500 Hz but the data file is at 512 Hz", "fix the sidecar"],
             "BIDS sidecar SamplingFrequency disagrees with the data"),
    BadInput("bids-rate", _bids_rate, ValueError,
             [r"Run 1 of sub-001 is at 256 Hz but sfreq = 512 Hz", r"eeg\.sfreq_file"],
             "BIDS data at another rate than expected"),
    BadInput("eeg-shorter-than-stimulus", _align_short, ValueError,
             [r"Run 'a'", r"EEG lasts 9\.000 s but its stimulus 10\.000 s", "length_tolerance_s"],
             "EEG run shorter than its stimulus beyond the tolerance"),
    BadInput("raw-nan", _raw_nan, ValueError,
             [r"non-finite value \(nan\) in channel 'Cz' at 23\.500 s", r"3\.500 s into run 'run02'",
              r"\['Fz'\] also", r"eeg\.bads", "interpolate"],
             "NaN in the raw EEG (named before filtering spreads it)"),
    BadInput("all-channels-bad", _all_bad, ValueError,
             [r"no good EEG channels \(all 2 are marked bad: \['Fz', 'Cz'\]\)", r"eeg\.bads"],
             "every EEG channel marked bad"),
    BadInput("reference-channel-bad", _bad_reference, ValueError,
             [r"reference channels \['Cz'\]", r"eeg\.reference", "marked bad", "'average'"],
             "re-referencing to a channel marked bad"),
    BadInput("to-epochs-unequal", _to_epochs_unequal, ValueError,
             [r"'run01': 100, 'run02': 90 samples", "unequal='pad'", "unequal='crop'"],
             "to_epochs on runs of unequal length (no silent crop)"),
    BadInput("aligned-info-bads", _info_bads, ValueError,
             [r"marks the channels \['Cz'\] bad", "provenance\\['bads'\\]"],
             "AlignedRuns whose info keeps a bad channel"),
]
