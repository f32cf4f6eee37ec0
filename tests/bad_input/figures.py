"""Bad input of the figures and the per-subject report: missing results, unknown subject,
a display window outside the fitted lags, mismatched panels."""

import mne
import numpy as np
import soundfile as sf

from neuro_sae.manifest import load_manifest
from tests.bad_input import BadInput


def _manifest(root):
    """A two-subject manifest with an explicit SAE layer (nothing extracted yet)."""
    (root / "stim").mkdir(exist_ok=True)
    sf.write(root / "stim" / "a.wav", np.zeros(16000, np.float32), 16000)
    (root / "m.yaml").write_text(
        "name: t\nderivatives: deriv\nsubjects: ['01', '02']\n"
        "stimuli:\n  root: stim\n  runs:\n    - {id: a, file: a.wav}\n"
        "eeg: {simulate: true}\nsae: {layers: [2]}\n"
    )
    return load_manifest(root / "m.yaml")


def _figures_empty(tmp_path):
    from neuro_sae.pipeline import make_figures

    m = _manifest(tmp_path)
    out = tmp_path / "deriv"
    return (lambda: make_figures(m, out)), tmp_path


def _report_no_fit(tmp_path):
    from neuro_sae.report import make_subject_report

    m = _manifest(tmp_path)
    return (lambda: make_subject_report(m, tmp_path / "deriv", "02")), tmp_path


def _report_unknown_subject(tmp_path):
    from neuro_sae.report import make_subject_report

    m = _manifest(tmp_path)
    return (lambda: make_subject_report(m, tmp_path / "deriv", "2")), tmp_path


def _info():
    info = mne.create_info(["Fz", "Cz", "Pz", "Oz"], 64.0, "eeg")
    info.set_montage("biosemi64", on_missing="ignore")
    return info


def _joint_outside(tmp_path):
    from neuro_sae.viz import plot_trf_joint

    times = np.arange(-13, 39) / 64.0
    coef = np.zeros((4, len(times)))
    return (lambda: plot_trf_joint(coef, times, _info(), tmin=0.7, tmax=0.9, show=False)), None


def _panel_titles(tmp_path):
    from neuro_sae.viz import plot_r_topomaps

    return (lambda: plot_r_topomaps(np.zeros((2, 4)), _info(), titles=["only one"], show=False)), None


CASES = [
    BadInput(
        "figures-before-fit", _figures_empty, FileNotFoundError,
        [r"sub-01_layer-02_sweep\.npz", r"and 3 more", r"neuro-sae fit --manifest .*m\.yaml --subject",
         r"neuro-sae group"],
        "figures drawn on a derivatives folder without fitted results",
    ),
    BadInput(
        "report-before-fit", _report_no_fit, FileNotFoundError,
        [r"sub-02", r"_sweep\.npz", r"neuro-sae fit --manifest .*m\.yaml --subject 02"],
        "a subject report before the subject's fit",
    ),
    BadInput(
        "report-unknown-subject", _report_unknown_subject, ValueError,
        [r"'2' is not in the manifest", r"\['01', '02'\]", r"Did you mean '02'"],
        "a report for a subject the manifest does not list",
    ),
    BadInput(
        "joint-window-outside-lags", _joint_outside, ValueError,
        [r"tmin=0\.7, tmax=0\.9", r"holds 0 lags", r"-0\.203 to 0\.594", r"trf\.tmin/trf\.tmax"],
        "a TRF display window outside the fitted lags",
    ),
    BadInput(
        "topomap-panel-titles", _panel_titles, ValueError,
        [r"titles has 1 entries", r"2 maps"],
        "one title for a panel of two topomaps",
    ),
]  # fmt: skip
