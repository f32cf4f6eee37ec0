"""Bad stimulus input: stimulus/EEG length mismatches, feature series, stim files, run ids."""

import json

import mne
import numpy as np
import soundfile as sf

from neuro_sae.align import AlignedRuns, align_subject, find_run_onsets
from neuro_sae.features import FeatureSeries
from neuro_sae.io import read_stim_tsv, read_subject_eeg, write_stim_tsv
from neuro_sae.manifest import load_manifest
from tests.bad_input import BadInput


def _raw(sfreq=128.0, dur=80.0):
    rng = np.random.default_rng(0)
    return mne.io.RawArray(rng.normal(size=(2, int(dur * sfreq))) * 1e-6,
                           mne.create_info(["Fz", "Cz"], sfreq, "eeg"), verbose=False)


def _series(dur, sfreq=50.0, ids=(1, 2)):
    n = int(round(dur * sfreq))
    return FeatureSeries(np.ones((n, len(ids))), np.arange(n) / sfreq, list(ids), sfreq=sfreq)


def _aligned():
    info = mne.create_info(["Fz", "Cz"], 64.0, "eeg")
    return AlignedRuns(["a", "b"], 64.0, {"sae": [np.zeros((100, 1)), np.zeros((90, 1))]},
                       {"sae": ["f0"]}, [np.zeros((100, 2)), np.zeros((90, 2))], info,
                       provenance=dict(l_freq=None, h_freq=None, scale=None))


def _stim_400x(root):
    # the EEG run lasts 64 s (its annotation), the stimulus 0.16 s: a cut stimulus file
    raw = _raw()
    raw.set_annotations(mne.Annotations([5.0], [64.0], ["stim/run03"]))
    return lambda: align_subject(raw, {"run03": _series(0.16)}, l_freq=None, h_freq=None), None


def _stim_2x(root):
    raw = _raw()
    raw.set_annotations(mne.Annotations([5.0, 40.0], [20.0, 10.0], ["stim/run01", "stim/run02"]))
    series = {"run01": _series(10.0), "run02": _series(10.0)}
    return lambda: align_subject(raw, series, l_freq=None, h_freq=None), None


def _no_annotation(root):
    raw = _raw()
    raw.set_annotations(mne.Annotations([5.0], [10.0], ["stim/run01"]))
    return lambda: find_run_onsets(raw, ["run01", "run1"]), None


def _series_rates(root):
    raw = _raw()
    raw.set_annotations(mne.Annotations([1.0, 12.0], [10.0, 10.0], ["stim/a", "stim/b"]))
    return lambda: align_subject(raw, {"a": _series(5.0), "b": _series(5.0, sfreq=49.0)}), None


def _feature_ids_differ(root):
    raw = _raw()
    raw.set_annotations(mne.Annotations([1.0, 12.0], [10.0, 10.0], ["stim/a", "stim/b"]))
    return lambda: align_subject(raw, {"a": _series(5.0), "b": _series(5.0, ids=(1, 3))}), None


def _not_a_dict(root):
    raw = _raw()
    return lambda: align_subject(raw, [_series(5.0)]), None


def _train_runs(root):
    raw = _raw()
    raw.set_annotations(mne.Annotations([1.0], [10.0], ["stim/a"]))
    return lambda: align_subject(raw, {"a": _series(5.0)}, train_runs=["z"]), None


def _feature_length(root):
    al = _aligned()
    return lambda: al.add_feature_set("env", [np.zeros(100), np.zeros(91)], ["e"]), None


def _acoustic_missing_run(root):
    al = _aligned()
    return lambda: al.add_acoustic({"a": np.zeros(16000)}), None


def _export_label(root):
    al = _aligned()
    al.X["my_set"] = al.X.pop("sae")
    al.feature_names["my_set"] = al.feature_names.pop("sae")
    return lambda: al.export_stim(root / "out", subject="01", task="t"), root / "out"


def _stim_suffix(root):
    return lambda: write_stim_tsv(root / "out" / "sub-01_env.tsv", np.zeros((5, 1)), 64.0, ["e"]), None


def _stim_nan(root):
    x = np.zeros((5, 2))
    x[2, 1] = np.nan
    return lambda: write_stim_tsv(root / "out" / "sub-01_stim.tsv.gz", x, 64.0, ["a", "b"]), None


def _stim_no_sidecar(root):
    fname = write_stim_tsv(root / "sub-01_recording-env_stim.tsv.gz", np.zeros((5, 1)), 64.0, ["e"])
    fname.with_name("sub-01_recording-env_stim.json").unlink()
    return lambda: read_stim_tsv(fname), None


def _onsets_table_missing(root):
    (root / "stim").mkdir()
    sf.write(root / "stim" / "a.wav", np.zeros(16000, np.float32), 16000)
    raw = _raw()
    raw.save(root / "r_raw.fif", verbose=False)
    eeg = dict(format="mne", files=str(root / "r_raw.fif"), onsets_table="onsets_{subject}.tsv")
    (root / "m.yaml").write_text(
        'name: t\nderivatives: deriv\nsubjects: ["01"]\n'
        "stimuli:\n  root: stim\n  runs:\n    - {id: a, file: a.wav}\n"
        "eeg:\n" + "".join(f"  {k}: {json.dumps(v)}\n" for k, v in eeg.items())
    )
    m = load_manifest(root / "m.yaml")
    return lambda: read_subject_eeg(m, "01"), None


CASES = [
    BadInput("stimulus-400x-shorter", _stim_400x, ValueError,
             [r"Run 'run03'", r"EEG run lasts 64\.000 s but its stimulus only 0\.160 s",
              r"400\.0 times longer", r"stimuli\.runs", "max_length_ratio"],
             "stimulus 400x shorter than its EEG run (a cut audio file)"),
    BadInput("stimulus-2x-shorter", _stim_2x, ValueError,
             [r"Run 'run01'", r"20\.000 s but its stimulus only 10\.000 s", "max_length_ratio=1.5"],
             "stimulus half as long as its annotated EEG run"),
    BadInput("run-without-annotation", _no_annotation, ValueError,
             [r"Stimulus run 'run1' has no annotation 'stim/run1'", r"'stim/run01'", r"stimuli\.runs"],
             "stimulus run id with no run annotation in the recording"),
    BadInput("series-rates-differ", _series_rates, ValueError,
             [r"Run 'b' has features at 49 Hz but run 'a' at 50 Hz", "same backbone"],
             "feature series of different frame rates in one subject"),
    BadInput("feature-ids-differ", _feature_ids_differ, ValueError,
             [r"Run 'b' has different feature_ids from run 'a'", "feature_ids="],
             "feature series of different features in one subject"),
    BadInput("series-not-a-dict", _not_a_dict, TypeError,
             [r"series_by_run must be a non-empty dict.*got list"],
             "feature series given as a list"),
    BadInput("train-runs-unknown", _train_runs, ValueError,
             [r"train_runs must be a non-empty subset of the runs \['a'\]; unknown: \['z'\]"],
             "train_runs naming an unknown run"),
    BadInput("feature-set-length", _feature_length, ValueError,
             [r"Run 'b': the new set has 91 samples but the EEG 90 at 64 Hz", r"provenance\['runs'\]"],
             "new feature set of the wrong length"),
    BadInput("acoustic-missing-run", _acoustic_missing_run, ValueError,
             [r"audio_by_run lacks the runs \['b'\]", r"\['a', 'b'\]"],
             "acoustic baselines without the audio of every run"),
    BadInput("export-label", _export_label, ValueError,
             [r"'my_set' cannot be a BIDS recording label"],
             "export of a feature set whose name is not a BIDS label"),
    BadInput("stim-suffix", _stim_suffix, ValueError,
             [r"must end in '_stim\.tsv\.gz'", r"sub-01_env\.tsv"],
             "BIDS stim file without the _stim.tsv.gz suffix"),
    BadInput("stim-nan", _stim_nan, ValueError, [r"NaN or infinite"],
             "BIDS stim data with NaN (no half-written pair)"),
    BadInput("stim-no-sidecar", _stim_no_sidecar, FileNotFoundError,
             [r"sub-01_recording-env_stim\.json", "sidecar"],
             "BIDS stim file without its .json sidecar"),
    BadInput("manifest-onsets-table-missing", _onsets_table_missing, FileNotFoundError,
             [r"eeg\.onsets_table", r"onsets_01\.tsv", r"\{subject\}"],
             "eeg.onsets_table pointing to no file"),
]
