"""The CLI (``--version``, defaults in ``--help``, steps from the table, errors) and the
tables' names (SAE feature ids, channel names, the inner lag window)."""

import json

import numpy as np
import pandas as pd
import pytest

import neuro_sae
from neuro_sae.encoding import read_sweep_result
from neuro_sae.manifest import load_manifest
from neuro_sae.pipeline import STEPS, StudyPaths
from neuro_sae.pipeline.cli import _parser
from neuro_sae.pipeline.cli import main as cli_main

from .conftest import copy_study


def test_version_and_defaults_in_help(capsys):
    with pytest.raises(SystemExit) as info:
        cli_main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"neuro-sae {neuro_sae.__version__}"
    parser = _parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    # one sub-command per step of the table, plus demo (= run), status and build-corpus
    assert set(sub.choices) == {s.cli for s in STEPS} | {"demo", "run", "status", "build-corpus"}
    help_fit = sub.choices["fit"].format_help()
    assert "(default: INFO)" in help_fit and "--upstream" in help_fit
    help_rep = sub.choices["sae-report"].format_help()
    for default in ("(default: 50)", "(default: [0, 1])", "(default: 0.0002)", "(default: 500)"):
        assert default in help_rep, default


def test_fit_on_empty_derivatives_says_extract_first(built_study, tmp_path, capsys):
    man = built_study / "tiny.yaml"
    empty = tmp_path / "empty"
    code = cli_main(["fit", "--subject", "01", "--manifest", str(man), "--out", str(empty),
                     "--verbose", "WARNING"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2
    assert "extract: has not run" in err
    assert f"neuro-sae extract --manifest {man} --out {empty}" in err
    assert not any(p.is_file() for p in empty.rglob("*"))


@pytest.mark.filterwarnings("ignore:.*FDR cannot reject.*:UserWarning")
def test_status_and_cached_steps_via_cli(built_study, tmp_path, capsys):
    man_file = copy_study(built_study, tmp_path / "study")
    assert cli_main(["status", "--manifest", str(man_file), "--verbose", "WARNING"]) == 0
    out = capsys.readouterr().out
    assert "04_fit_trf-layer-03-sub-02: up to date" in out and "05_group_stats-layer-03: up to date" in out
    assert cli_main(["group", "--manifest", str(man_file), "--verbose", "WARNING"]) == 0
    assert "group_layer-03_results.parquet" in capsys.readouterr().out


def test_tables_name_features_by_sae_id_and_channels_by_name(built_study):
    manifest = load_manifest(built_study / "tiny.yaml")
    paths = StudyPaths(manifest.derivatives_dir())
    alive = json.loads(paths.alive(3).read_text())["feature_ids"]
    assert alive != list(range(len(alive)))  # SAE ids, not positions
    sweep = read_sweep_result(paths.sweep("01", 3))
    sub = pd.read_parquet(paths.subject_table("01", 3))
    assert sub["feature"].dtype.kind == "i"
    assert sorted(set(sub["feature"])) == sorted(alive)
    assert (sub["feature_name"] == "f" + sub["feature"].astype(str)).all()
    assert set(sub["channel"]) == set(sweep.ch_names) and "Fp1" in set(sub["channel"])
    # r of a (feature id, channel) row is the sweep's value at that feature and channel
    fid, ch = alive[-1], sweep.ch_names[5]
    row = sub[(sub["feature"] == fid) & (sub["channel"] == ch)]
    assert row["r"].item() == pytest.approx(sweep.r[alive.index(fid), 5])
    grp = pd.read_parquet(paths.group_table(3))
    assert sorted(set(grp["feature"])) == sorted(alive)
    assert set(grp["channel"]) == set(sweep.ch_names)
    assert (grp["feature_name"] == "f" + grp["feature"].astype(str)).all()
    sig = pd.read_parquet(paths.significant_table(3))
    rec = json.loads(paths.recovery().read_text())
    assert set(rec["hits"]) <= set(sig["feature"]) and set(sig["feature"]) <= set(alive)


def test_fit_window_wider_than_the_shown_one(built_study):
    manifest = load_manifest(built_study / "tiny.yaml")
    trf = manifest.trf
    paths = StudyPaths(manifest.derivatives_dir())
    sweep = read_sweep_result(paths.sweep("02", 3))
    # fitted on [tmin - edge, tmax + edge] = [-0.15, 0.35] at 64 Hz; shown [-0.1, 0.3]
    assert sweep.tmin == pytest.approx(trf.tmin - trf.edge_s)
    assert sweep.tmax == pytest.approx(trf.tmax + trf.edge_s)
    np.testing.assert_array_equal(sweep.delays, np.arange(round(-0.15 * 64), round(0.35 * 64) + 1))
    assert sweep.provenance["inner_tmin"] == trf.tmin and sweep.provenance["inner_tmax"] == trf.tmax
    tab = pd.read_parquet(paths.subject_table("02", 3))
    assert (tab["inner_tmin"] == trf.tmin).all() and (tab["inner_tmax"] == trf.tmax).all()
    assert tab["peak_lag_s"].between(trf.tmin - 1e-9, trf.tmax + 1e-9).all()
    # the reported peak is the largest |weight| within the inner window
    inner = (sweep.times >= trf.tmin - 1e-9) & (sweep.times <= trf.tmax + 1e-9)
    k = np.abs(sweep.coef[..., inner]).argmax(-1)
    np.testing.assert_allclose(tab["peak_lag_s"].to_numpy(), sweep.times[inner][k].ravel())
    amp = np.take_along_axis(sweep.coef[..., inner], k[..., None], -1)[..., 0]
    np.testing.assert_allclose(tab["peak_amplitude"].to_numpy(), amp.ravel())


@pytest.mark.filterwarnings("ignore:.*FDR cannot reject.*:UserWarning",
                            "ignore:.*edge of the alpha grid.*:UserWarning")  # fmt: skip
def test_named_split_reads_only_its_runs(built_study, tmp_path):
    """``eeg.split``: only the split's runs reach the sweep and the null (dev first)."""
    from neuro_sae.pipeline import run_step
    from neuro_sae.stats import read_permutation_result

    split = dict(splits=dict(paper=dict(dev=["r2", "r1"], test=["r4"])), split="paper")
    man_file = copy_study(built_study, tmp_path / "study", eeg=split)
    manifest = load_manifest(man_file)
    paths = StudyPaths(manifest.derivatives_dir())
    run_step(manifest, "fit", subject="01", upstream=True, verbose="WARNING")
    sweep = read_sweep_result(paths.sweep("01", 3))
    assert sweep.provenance["runs"] == ["r2", "r1", "r4"]
    assert len(sweep.n_times) == 3 and sweep.r_folds.shape[0] == 1  # dev -> test r4
    perm = read_permutation_result(paths.permutation("01", 3))
    assert perm.shifts.shape[1] == 3  # one shift per run the sweep saw
    rec = json.loads((paths.cache_dir() / "04_fit_trf-layer-03-sub-01.json").read_text())
    feats = {k for k in rec["inputs"] if "_features.npz" in k}
    assert feats == {f"stimuli/features/layer-03/{r}_features.npz" for r in ("r1", "r2", "r4")}
    assert rec["config"]["eeg"]["split_runs"] == dict(dev=["r2", "r1"], test=["r4"])
