"""End-to-end test of the demo chain at tiny scale: a tiny randomly initialised
Whisper, four short runs (one of them a stereo 44.1 kHz wav), three simulated
subjects with planted responses, group statistics, recovery and figures."""

import json
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import yaml

from neuro_sae.io import read_audio
from neuro_sae.manifest import load_manifest
from neuro_sae.pipeline import StudyPaths, fit_subject_step, run_study
from neuro_sae.pipeline.cli import main as cli_main

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.filterwarnings(
    # tiny random models and short runs legitimately put alphas on the grid edge
    "ignore:.*edge of the alpha grid.*:UserWarning",
    "ignore:.*grid edge.*:UserWarning",
    "ignore:.*FDR cannot reject.*:UserWarning",
)


@pytest.fixture(scope="module")
def tiny_study(tmp_path_factory):
    """A study folder with a tiny Whisper, 4 short stimuli and a manifest."""
    from transformers import WhisperConfig, WhisperForConditionalGeneration

    root = tmp_path_factory.mktemp("study")
    cfg = WhisperConfig(
        vocab_size=64,
        num_mel_bins=80,
        d_model=48,
        encoder_layers=3,
        encoder_attention_heads=4,
        decoder_layers=1,
        decoder_attention_heads=4,
        encoder_ffn_dim=96,
        decoder_ffn_dim=96,
        max_source_positions=1500,
        max_target_positions=32,
        pad_token_id=1,
        bos_token_id=2,
        eos_token_id=3,
        decoder_start_token_id=2,
    )
    import torch

    gen = torch.Generator().manual_seed(0)
    model = WhisperForConditionalGeneration(cfg)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.2 if p.ndim > 1 else p)
    model.save_pretrained(root / "tiny-whisper")

    # four 24 s runs cut from the shipped demo stimuli; one stored as stereo 44.1 kHz
    stim = root / "stimuli"
    stim.mkdir()
    from neuro_sae.data import demo_stimuli_dir

    src = sorted(Path(demo_stimuli_dir()).glob("run0*.ogg"))[:4]
    runs = []
    for i, fname in enumerate(src, 1):
        audio, sfreq = read_audio(fname)
        seg = audio[: int(24 * sfreq)]
        if i == 2:
            from scipy.signal import resample_poly

            seg44 = resample_poly(seg, 441, 160).astype(np.float32)
            sf.write(stim / f"r{i}.wav", np.stack([seg44, 0.5 * seg44], axis=1), 44100)
        else:
            sf.write(stim / f"r{i}.wav", seg, sfreq)
        runs.append(dict(id=f"r{i}", file=f"r{i}.wav"))
    manifest = dict(
        name="tiny",
        derivatives=str(root / "derivatives"),
        subjects=["01", "02", "03"],
        stimuli=dict(root="stimuli", runs=runs),
        eeg=dict(simulate=True, sfreq=64.0, l_freq=1.0, h_freq=8.0),
        backbone=dict(name=str(root / "tiny-whisper"), layers="all", context_s=5.0),
        sae=dict(layers="last", expansion=4, k=8, n_steps=150, batch_size=256),
        features=dict(min_rate=0.5, max_features=20),
        trf=dict(tmin=-0.1, tmax=0.5, alphas=[1.0, 1e2, 1e4, 1e6]),
        stats=dict(n_permutations=200, alpha=0.05, vp_features=None),
        simulation=dict(n_planted=3, snr=0.2, random_state=3),
    )
    fname = root / "tiny.yaml"
    fname.write_text(yaml.safe_dump(manifest))
    return fname


@pytest.mark.slow
def test_demo_chain(tiny_study, capsys):
    manifest = load_manifest(tiny_study)
    out = manifest.derivatives_dir()
    # the CLI runs the whole chain and prints the summary
    assert cli_main(["demo", "--manifest", str(tiny_study), "--verbose", "WARNING"]) == 0
    summary = capsys.readouterr().out
    assert "recovered (group level)" in summary
    paths = StudyPaths(out)
    rec = json.loads(paths.recovery().read_text())
    for key in ("planted", "hits", "misses", "false_positives", "explained_by_planted"):
        assert key in rec
    # timings live outside recovery.json (an output of the group step)
    runtime = json.loads((out / "runtime.json").read_text())["runtime_s"]
    for stage in ("extract", "sae_train", "simulate", "trf_sweep", "permutations", "group_stats", "figures"):
        assert runtime[stage] >= 0
    # planted truth: strong planted responses are found at group level
    assert len(rec["planted"]) == 3
    assert len(rec["hits"]) >= 2, rec
    assert len(rec["false_positives"]) <= 1, rec
    assert set(rec["subjects"]) == {"01", "02", "03"}
    for sub in rec["subjects"].values():
        assert set(sub["planted_channels_r"]) == {str(p) for p in rec["planted"]}
    # per-subject results, group tables, figures (PNG and PDF)
    import pandas as pd

    tab = pd.read_parquet(paths.subject_table("01", 3))
    assert {"feature", "channel", "r", "alpha"} <= set(tab.columns)
    assert tab["channel"].nunique() == 64
    sig = pd.read_parquet(paths.significant_table(3))
    assert set(rec["hits"]) <= set(sig["feature"])
    figs = sorted(p.name for p in paths.figures_dir().iterdir())
    assert any(f.startswith("fig_trf_joint") and f.endswith(".png") for f in figs)
    assert any(f.startswith("fig_trf_joint") and f.endswith(".pdf") for f in figs)
    assert "fig_r_topomap_top.png" in figs and "fig_summary.pdf" in figs
    # one mne.Report per subject
    for s in ("01", "02", "03"):
        html = (out / f"sub-{s}" / f"sub-{s}_report.html").read_text()
        assert "Significant features" in html and "Planted truth" in html
    # no temporary files left anywhere
    leftovers = [p for p in out.rglob("*") if ".tmp" in p.name]
    assert not leftovers, leftovers

    # a rerun is a no-op (every step cached) ...
    sweep_mtime = os.path.getmtime(paths.sweep("01", 3))
    run_study(manifest, out, figures=False)
    assert os.path.getmtime(paths.sweep("01", 3)) == sweep_mtime
    # ... a changed TRF window reruns only the TRF steps
    act_mtime = os.path.getmtime(paths.activations("r1"))
    changed = load_manifest(tiny_study, overrides={"trf": {"tmax": 0.4}})
    fit_subject_step(changed, out, "01")
    assert os.path.getmtime(paths.sweep("01", 3)) > sweep_mtime
    assert os.path.getmtime(paths.activations("r1")) == act_mtime

    # the analysis scripts are thin wrappers over the same steps (cached: fast)
    import subprocess
    import sys

    for script, extra in (("04_fit_trf.py", ["--subject", "01"]), ("05_group_stats.py", [])):
        res = subprocess.run(
            [sys.executable, str(ROOT / "analyses" / script), "--manifest", str(tiny_study),
             "--verbose", "WARNING", *extra],
            capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"},
        )
        assert res.returncode == 0, res.stderr
        assert "sub-01_layer-03_sweep.npz" in res.stdout or "group_layer-03" in res.stdout


@pytest.mark.slow
def test_short_eeg_and_missing_onset_errors(tiny_study, tmp_path):
    """An EEG recording shorter than its stimulus, or a run missing from the
    annotations, stops step 04 with a message naming the numbers, and leaves
    nothing half-written."""
    import mne

    # the recording is read, not simulated: edited EEG files are inputs, not stale outputs
    manifest = load_manifest(tiny_study, overrides={"eeg": {"simulate": False}})
    out = manifest.derivatives_dir()
    paths = StudyPaths(out)
    if not paths.alive(3).is_file():
        pytest.skip("needs test_demo_chain to have run first")
    eeg = manifest.eeg_file("02", out)
    raw = mne.io.read_raw_fif(eeg, preload=True, verbose=False)
    # work on a copy of the study so the other test's outputs stay valid
    import shutil

    copy = tmp_path / "deriv"
    shutil.copytree(out, copy)
    eeg_copy = manifest.eeg_file("02", copy)
    last = raw.annotations[-1]
    cropped = raw.copy().crop(tmax=last["onset"] - raw.first_time + last["duration"] - 3.0)
    cropped.save(eeg_copy, overwrite=True, verbose=False)
    trf_dir = copy / "sub-02" / "trf"
    shutil.rmtree(trf_dir, ignore_errors=True)
    with pytest.raises(ValueError, match=r"shorter"):
        fit_subject_step(manifest, copy, "02")
    assert not trf_dir.exists() or not any(trf_dir.iterdir())

    missing = raw.copy()
    missing.set_annotations(raw.annotations[:-1])
    missing.save(eeg_copy, overwrite=True, verbose=False)
    with pytest.raises(ValueError, match=r"r4"):
        fit_subject_step(manifest, copy, "02")
    assert not trf_dir.exists() or not any(trf_dir.iterdir())


@pytest.mark.slow
def test_sae_report_subcommand(tiny_study, capsys):
    """``neuro-sae sae-report`` trains layers x 2 seeds from the study's activations and
    writes the metrics and consistency tables and the figure; a missing extraction is a
    clear error."""
    import pandas as pd

    manifest = load_manifest(tiny_study)
    out = manifest.derivatives_dir()
    paths = StudyPaths(out)
    if not paths.activations("r1").is_file():
        pytest.skip("needs test_demo_chain to have run first")
    args = ["sae-report", "--manifest", str(tiny_study), "--verbose", "WARNING",
            "--layers", "1", "2", "--expansion", "2", "--k", "4", "--n-steps", "20",
            "--batch-size", "128", "--lr", "1e-3"]  # fmt: skip
    assert cli_main(args) == 0
    printed = capsys.readouterr().out
    report = out / "stimuli" / "sae_report"
    metrics = pd.read_parquet(report / "sae_metrics.parquet")
    assert sorted(set(zip(metrics.layer, metrics.seed))) == [(1, 0), (1, 1), (2, 0), (2, 1)]
    cons = pd.read_parquet(report / "sae_consistency.parquet")
    assert set(cons.layer) == {1, 2} and "iou_coverage" in cons
    assert "sae_metrics.parquet" in printed and (report / "sae_report.png").is_file()


def test_sae_report_needs_activations(tmp_path, capsys):
    from neuro_sae.pipeline import StaleError, sae_report_step

    manifest = load_manifest(ROOT / "data_manifests" / "demo.yaml")
    with pytest.raises(StaleError, match=r"(?s)extract: has not run.*neuro-sae extract --manifest"):
        sae_report_step(manifest, tmp_path / "empty")
    assert not (tmp_path / "empty" / ".cache").exists()
