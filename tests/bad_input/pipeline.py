"""Bad pipeline use: steps run out of order, unknown steps and subjects, an SAE of another
backbone."""

from pathlib import Path

import numpy as np

from neuro_sae.manifest import load_manifest
from neuro_sae.pipeline import StaleError, run_step
from tests.bad_input import BadInput

DEMO = Path(__file__).resolve().parents[2] / "data_manifests" / "demo.yaml"


def _demo(tmp_path, **overrides):
    return load_manifest(DEMO, overrides=overrides or None), tmp_path / "deriv"


def _fit_first(tmp_path):
    m, out = _demo(tmp_path)
    return (lambda: run_step(m, "fit", out, subject="01")), out


def _group_first(tmp_path):
    m, out = _demo(tmp_path)
    return (lambda: run_step(m, "group", out)), out


def _unknown_step(tmp_path):
    m, out = _demo(tmp_path)
    return (lambda: run_step(m, "fitt", out)), out


def _unknown_subject(tmp_path):
    m, out = _demo(tmp_path)
    return (lambda: run_step(m, "fit", out, subject="1")), out


def _subject_on_study_step(tmp_path):
    m, out = _demo(tmp_path)
    return (lambda: run_step(m, "group", out, subject="01")), out


def _simulate_real_eeg(tmp_path):
    m, out = _demo(tmp_path, eeg={"simulate": False})
    return (lambda: run_step(m, "simulate", out)), out


def _sae_other_backbone(tmp_path):
    from neuro_sae.activations import Activations
    from neuro_sae.features import encode_features
    from neuro_sae.sae import SAEConfig, make_sae

    sae = make_sae(SAEConfig(d_in=6, d_sae=12, k=2, layer=2, backbone="hubert-base"), random_state=0)
    rng = np.random.default_rng(0)
    acts = Activations(data={2: rng.standard_normal((40, 6)).astype(np.float32)},
                       times=0.02 * np.arange(40), mask=np.ones(40, bool), sfreq=50.0,
                       backbone="whisper-base", stimulus_id="r1")  # fmt: skip
    return (lambda: encode_features(sae, acts)), None


def _bad_executor(tmp_path):
    from neuro_sae.pipeline import run_study

    m, out = _demo(tmp_path)
    return (lambda: run_study(m, out, executor="threads:2", verbose="WARNING")), out


def _cli_fit_empty(tmp_path):
    from neuro_sae.pipeline.cli import main

    out = tmp_path / "deriv"

    def call():
        import contextlib
        import io

        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            code = main(["fit", "--subject", "02", "--manifest", str(DEMO), "--out", str(out),
                         "--verbose", "WARNING"])  # fmt: skip
        raise SystemExit(f"exit {code}: {err.getvalue()}")

    return call, out


CASES = [
    BadInput(
        "fit-before-extract", _fit_first, StaleError,
        [r"Cannot run fit", r"extract: has not run", r"neuro-sae extract --manifest .*demo\.yaml --out ",
         r"--upstream"],
        "neuro-sae fit on an empty derivatives folder: says to run neuro-sae extract first",
    ),
    BadInput(
        "group-before-fit", _group_first, StaleError,
        [r"Cannot run group", r"extract: has not run", r"neuro-sae group --manifest .*demo\.yaml .*--upstream"],
        "neuro-sae group before anything ran (its backbone x layer units come from the activations)",
    ),
    BadInput(
        "cli-fit-empty-derivatives", _cli_fit_empty, SystemExit,
        [r"exit 2", r"neuro-sae fit: error", r"neuro-sae extract --manifest .*demo\.yaml --out"],
        "the CLI on an empty derivatives folder exits 2 naming the first step and the manifest",
    ),
    BadInput(
        "unknown-step", _unknown_step, ValueError,
        [r"Unknown step 'fitt'", r"extract, train-sae, simulate, fit, group", r"fit"],
        "a step name that is not in the step table",
    ),
    BadInput(
        "unknown-subject", _unknown_subject, ValueError,
        [r"Subject '1' is not in the manifest", r"\['01', '02', '03'\]"],
        "a subject the manifest does not list",
    ),
    BadInput(
        "subject-on-study-step", _subject_on_study_step, ValueError,
        [r"'group' covers every subject", r"subject='01'", r"leave it out"],
        "--subject given to a step that covers every subject",
    ),
    BadInput(
        "simulate-real-eeg", _simulate_real_eeg, ValueError,
        [r"eeg\.simulate is false", r"demo\.yaml", r"set eeg\.simulate: true"],
        "neuro-sae simulate on a study that reads recorded EEG",
    ),
    BadInput(
        "executor-unknown", _bad_executor, ValueError,
        [r"executor 'threads:2' is not one of 'serial', 'processes:N', 'dask-local:N' or 'dask:ADDRESS'",
         r"--executor processes:2"],
        "run_study(executor=...) with an executor that does not exist",
    ),
    BadInput(
        "sae-of-another-backbone", _sae_other_backbone, ValueError,
        [r"trained on 'hubert-base'", r"come from 'whisper-base'", r"extract the activations with"],
        "an SAE whose cfg.json names another backbone than the activations",
    ),
]  # fmt: skip
