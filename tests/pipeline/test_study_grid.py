"""The whole study grid: two backbones x their layers, every step per backbone x layer,
the across-layer step, and the executors (serial, joblib processes, a 2-worker dask
LocalCluster) giving the same files; crash-resume through the cache."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from neuro_sae.manifest import load_manifest
from neuro_sae.pipeline import StudyPaths, run_study, study_status

from .conftest import _stimuli, _tiny_whisper, tiny_manifest_dict

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.filterwarnings(
    "ignore:.*edge of the alpha grid.*:UserWarning",
    "ignore:.*grid edge.*:UserWarning",
    "ignore:.*FDR cannot reject.*:UserWarning",
)


def _tiny_whisper_b(folder):
    """A second tiny backbone: 2 encoder layers, other random weights."""
    import torch
    from transformers import WhisperConfig, WhisperForConditionalGeneration

    cfg = WhisperConfig(
        vocab_size=64, num_mel_bins=80, d_model=32, encoder_layers=2, encoder_attention_heads=4,
        decoder_layers=1, decoder_attention_heads=4, encoder_ffn_dim=64, decoder_ffn_dim=64,
        max_source_positions=1500, max_target_positions=32, pad_token_id=1, bos_token_id=2,
        eos_token_id=3, decoder_start_token_id=2,
    )  # fmt: skip
    gen = torch.Generator().manual_seed(7)
    model = WhisperForConditionalGeneration(cfg)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.2 if p.ndim > 1 else p)
    model.save_pretrained(folder)


GRID_STEPS = ("01_extract", "02_train_sae", "03_simulate", "04_fit_trf", "05_group_stats", "05b_layers")
N_UNITS = 2 + 5 + 1 + 10 + 5 + 1  # extract x2, SAEs, simulate, fits, group tests, layers


def _grid(ids):
    """The record names of the grid's steps (other steps of the table left out)."""
    return {i for i in ids if i.startswith(GRID_STEPS)}


def grid_manifest(root, runs):
    man = tiny_manifest_dict(root, runs)
    man["name"] = "grid"
    man["backbones"] = [str(root / "tiny-whisper"), dict(name=str(root / "tiny-b"), layers=[1, 2])]
    man["sae"].update(layers="all", torch_threads=1)
    man["stats"].update(n_permutations=19, vp_features=2)
    return man


@pytest.fixture(scope="module")
def grid_root(tmp_path_factory):
    """Two backbones (3 + 2 layers), 3 runs of 8 s, 2 simulated subjects; not yet run."""
    root = tmp_path_factory.mktemp("grid")
    _tiny_whisper(root / "tiny-whisper")
    _tiny_whisper_b(root / "tiny-b")
    runs = _stimuli(root / "stimuli", 3, 8)
    (root / "grid.yaml").write_text(yaml.safe_dump(grid_manifest(root, runs)))
    return root


@pytest.fixture(scope="module")
def serial_run(grid_root):
    """The grid study run once with the serial executor (the reference)."""
    out = grid_root / "serial"
    run_study(load_manifest(grid_root / "grid.yaml"), out, figures=False, executor="serial",
              verbose="WARNING")  # fmt: skip
    return out


def _tables(out):
    """The grid's result tables and JSON (not the timing-bearing SAE cfg.json, not the
    outputs of other steps of the table), by relative path."""
    out = Path(out)
    keep = []
    for p in sorted(out.rglob("*")):
        rel = p.relative_to(out).as_posix()
        if ".cache" in p.parts or "interpret" in p.parts or "steering" in p.parts:
            continue
        if p.suffix == ".parquet" or p.name in ("recovery.json", "alive_features.json") or p.name.endswith(
            "_truth.json"
        ):
            keep.append(rel)
    return {rel: out / rel for rel in keep}


def _assert_same_results(a, b):
    ta, tb = _tables(a), _tables(b)
    assert sorted(ta) == sorted(tb)
    for rel in ta:
        if rel.endswith(".parquet"):
            pd.testing.assert_frame_equal(pd.read_parquet(ta[rel]), pd.read_parquet(tb[rel]),
                                          check_exact=False, rtol=1e-6, atol=1e-9)  # fmt: skip
        else:
            _assert_close(json.loads(ta[rel].read_text()), json.loads(tb[rel].read_text()), rel)


def _assert_close(a, b, where):
    if isinstance(a, dict):
        assert isinstance(b, dict) and sorted(a) == sorted(b), where
        for k in a:
            _assert_close(a[k], b[k], f"{where}:{k}")
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_close(x, y, f"{where}[{i}]")
    elif isinstance(a, float):
        assert b == pytest.approx(a, rel=1e-6, abs=1e-9), where
    else:
        assert a == b, where


def test_grid_units_and_outputs(grid_root, serial_run):
    """Every backbone x layer has its SAE, per-subject fits and group table; the layer step
    has curves for both backbones, a mixed-model trend, the paper protocol beside max-T and
    the variance partitioning against the envelope."""
    manifest = load_manifest(grid_root / "grid.yaml")
    status = study_status(manifest, serial_run)
    expected = {"01_extract", "01_extract-model-tiny-b", "03_simulate", "05b_layers"}
    expected |= {f"02_train_sae-layer-0{x}" for x in (1, 2, 3)}
    expected |= {f"02_train_sae-model-tiny-b-layer-0{x}" for x in (1, 2)}
    expected |= {f"05_group_stats-layer-0{x}" for x in (1, 2, 3)}
    expected |= {f"05_group_stats-model-tiny-b-layer-0{x}" for x in (1, 2)}
    expected |= {f"04_fit_trf-layer-0{x}-sub-{s}" for x in (1, 2, 3) for s in ("01", "02")}
    expected |= {f"04_fit_trf-model-tiny-b-layer-0{x}-sub-{s}" for x in (1, 2) for s in ("01", "02")}
    assert _grid(status) == expected and all(v is None for v in status.values())
    second = StudyPaths(serial_run, "tiny-b")
    assert second.sae_dir(2).is_dir() and second.group_table(1).is_file()
    assert second.sweep("02", 2).name == "sub-02_model-tiny-b_layer-02_sweep.npz"
    d = StudyPaths(serial_run).layers_dir()
    curves = pd.read_parquet(d / "layer_curves.parquet")
    per = curves[curves.subject != "group"].groupby("model")["layer"].unique()
    assert sorted(per["primary"]) == [1, 2, 3] and sorted(per["tiny-b"]) == [1, 2]
    # each curve point is its subject table's summary (recomputed here from the tables)
    for row in curves[curves.subject != "group"].itertuples():
        paths = StudyPaths(serial_run, None if row.model == "primary" else row.model)
        tab = pd.read_parquet(paths.subject_table(row.subject, row.layer))
        assert row.best_r == pytest.approx(tab["r"].max())
        assert row.share_significant == pytest.approx((tab.groupby("feature")["p_fwe"].min() < 0.05).mean())
        assert row.n_features == tab["feature"].nunique()
    assert set(curves.backbone) == {"tiny-whisper", "tiny-b"}
    mixed = pd.read_parquet(d / "layer_mixedlm.parquet")
    assert set(mixed.model) == {"primary", "tiny-b"} and set(mixed.term) == {"Intercept", "layer"}
    summary = pd.read_parquet(d / "protocol_vs_maxt.parquet")
    assert len(summary) == 5 and summary[["protocol_fraction", "maxt_fraction"]].notna().all().all()
    prot = pd.read_parquet(d / "paper_protocol.parquet")
    assert set(prot.extremum) == {"max", "min"} and set(prot.channel) == {"Pz"}
    vp = pd.read_parquet(d / "variance_partition.parquet")
    assert len(vp) == 2 * 5 * 64 and {"subject", "model", "layer"} <= set(vp.columns)
    assert (d / "layer_curves.png").stat().st_size > 10_000


@pytest.mark.parametrize("spec", ["processes:2", "dask-local:2"])
def test_executors_give_identical_results(grid_root, serial_run, spec, caplog):
    """processes:2 (joblib) and dask-local:2 (a LocalCluster with 2 worker processes), each
    run uninterrupted on a fresh folder, write the same tables as serial; every unit ran in
    the run, and the dask run shows its progress."""
    from neuro_sae.utils import logger

    manifest = load_manifest(grid_root / "grid.yaml")
    out = grid_root / spec.replace(":", "-")
    logger.addHandler(caplog.handler)  # the package logger does not propagate
    try:
        run_study(manifest, out, figures=False, executor=spec, verbose="INFO")
    finally:
        logger.removeHandler(caplog.handler)
    _assert_same_results(serial_run, out)
    rt = json.loads((out / "runtime.json").read_text())
    assert rt["executor"] == spec and len(_grid(rt["recomputed"])) == N_UNITS
    if spec.startswith("dask"):
        assert "[executor] dask-local:2: dask scheduler" in caplog.text
        assert "[dask] 10/10 done: " in caplog.text  # the fits' progress, one line per task


def test_kill_client_and_worker_then_resume(grid_root, serial_run, caplog):
    """dask-local:2 (a LocalCluster with 2 workers): SIGKILL the client and a worker
    halfway, rerun: results equal the serial run's, and only the units without a record
    are recomputed (the log names them)."""
    out = grid_root / "killed"
    cmd = [sys.executable, "-m", "neuro_sae.pipeline.cli", "run", "--manifest", str(grid_root / "grid.yaml"),
           "--out", str(out), "--executor", "dask-local:2", "--verbose", "WARNING"]  # fmt: skip
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    log = grid_root / "killed.log"
    with open(log, "w") as fid:
        proc = subprocess.Popen(cmd, env=env, start_new_session=True, stdout=fid, stderr=fid)
    cache = out / ".cache"
    deadline = time.time() + 900  # generous: a loaded machine
    while time.time() < deadline and not list(cache.glob("04_fit_trf-*.json")):
        time.sleep(0.2)
    assert proc.poll() is None, f"the run ended before it could be killed:\n{log.read_text()[-3000:]}"
    def children(pid):
        out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
        return [int(p) for p in out]

    tree = children(proc.pid)
    leaves = [c for p in tree for c in children(p)] or tree  # the workers (under their nannies)
    os.kill(leaves[0], signal.SIGKILL)  # a worker ...
    time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGKILL)  # ... then the client and everything it started
    proc.wait(timeout=30)
    done_before = {p.stem for p in cache.glob("*.json")}
    assert 0 < len([d for d in done_before if d.startswith("04_fit_trf")]) < 10
    from neuro_sae.utils import logger

    logger.addHandler(caplog.handler)  # the package logger does not propagate
    try:
        run_study(load_manifest(grid_root / "grid.yaml"), out, figures=False, executor="dask-local:2",
                  verbose="INFO")  # fmt: skip
    finally:
        logger.removeHandler(caplog.handler)
    rt = json.loads((out / "runtime.json").read_text())
    assert set(rt["recomputed"]).isdisjoint(done_before)
    assert len(_grid(rt["recomputed"])) + len(_grid(done_before)) == N_UNITS
    assert f"Recomputed {len(rt['recomputed'])} unit(s): " in caplog.text
    for sid in rt["recomputed"]:
        assert f"[{sid}] has not run" in caplog.text  # the log names each unit it reran
    assert "[dask] " in caplog.text  # the dask run's progress
    _assert_same_results(serial_run, out)


def test_failed_task_names_subject_backbone_and_layer(grid_root, serial_run, tmp_path, monkeypatch):
    """A task that fails on every try stops the study with its subject, backbone and layer;
    the other units are not rerun."""
    import shutil

    import neuro_sae.align

    out = tmp_path / "derivatives"
    shutil.copytree(serial_run, out)
    for s in ("01", "02"):
        (out / ".cache" / f"04_fit_trf-model-tiny-b-layer-02-sub-{s}.json").unlink()
    calls = []

    def broken(*args, **kwargs):
        calls.append(1)
        raise MemoryError("planted failure")

    monkeypatch.setattr(neuro_sae.align, "align_subject", broken)
    with pytest.raises(RuntimeError) as err:
        run_study(load_manifest(grid_root / "grid.yaml"), out, figures=False, executor="serial",
                  retries=1, verbose="WARNING")  # fmt: skip
    msg = str(err.value)
    assert "2 task(s) of step fit failed 2 time(s)" in msg
    for s in ("01", "02"):
        assert f"subject {s}, backbone tiny-b, layer 2: MemoryError: planted failure" in msg
    assert len(calls) == 4  # two units, each tried twice; nothing else ran


def test_max_features_other_layers(grid_root, serial_run):
    """features.max_features_other_layers caps every SAE layer but the primary backbone's
    last one: setting it makes exactly those train-sae units stale (naming the setting),
    and a study without it keeps its records."""
    from neuro_sae.pipeline import Unit, get_step
    from neuro_sae.pipeline._registry import Study, step_status
    from neuro_sae.pipeline._stim_steps import layer_max_features

    train = get_step("train-sae")
    capped = load_manifest(grid_root / "grid.yaml", overrides={"features": {"max_features_other_layers": 3}})
    study = Study(capped, serial_run)
    units = train.all_units(study)
    assert len(units) == 5
    for u in units:
        primary_last = u == Unit(model=None, layer=3)
        assert layer_max_features(study, u) == (6 if primary_last else 3)
        reason = step_status(study, train, u)
        if primary_last:
            assert reason is None
        else:
            assert reason == "features.max_features changed from 6 to 3", (u, reason)
    plain = Study(load_manifest(grid_root / "grid.yaml"), serial_run)
    assert all(step_status(plain, train, u) is None for u in units)
