"""Tests of frame budgets, snapshots and the convergence table against random nulls."""

import numpy as np
import pandas as pd
import pytest
import torch

from neuro_sae.sae import (
    SAEConfig,
    TrainConfig,
    convergence_table,
    extrapolate_budget,
    load_sae,
    log_spaced_frames,
    make_sae,
    plot_convergence,
    read_snapshots,
    train_saes,
)
from neuro_sae.sae._corpus import frames_to_steps
from neuro_sae.sae.consistency import activation_iou_coverage, encode_clips
from neuro_sae.simulation._dictionary import make_sparse_dictionary_data

# distinct sizes on every axis: 18 dims, 30 atoms, 44 latents, k 3, 7 clips
D_IN, N_ATOMS, D_SAE, K = 18, 30, 44, 3


def test_log_spaced_frames():
    assert log_spaced_frames(5e7, start=1e5) == [
        100_000, 200_000, 500_000, 1_000_000, 2_000_000, 5_000_000,
        10_000_000, 20_000_000, 50_000_000,
    ]
    assert log_spaced_frames(3e5, start=1.5e5) == [200_000, 300_000]
    assert log_spaced_frames(7, start=1) == [1, 2, 5, 7]
    with pytest.raises(ValueError, match="n_frames and start"):
        log_spaced_frames(0)
    assert frames_to_steps(5e7, 2500) == 20_000
    assert frames_to_steps(5001, 2500) == 3
    with pytest.raises(ValueError, match="n_frames must be"):
        frames_to_steps(float("nan"), 10)


def _data(n=1500, seed=0):
    X, _, _ = make_sparse_dictionary_data(n, D_IN, N_ATOMS, K, random_state=seed)
    return X.astype(np.float32)


def _tc(n_steps, **kw):
    kw = dict(n_steps=n_steps, batch_size=100, lr=3e-3, lr_decay_start=1.0,
              threshold_start_step=2, threshold_beta=0.9, log_every=5, **kw)
    return TrainConfig(**kw)


def test_snapshots_are_the_shorter_runs_and_checkpoints_are_pruned(tmp_path):
    X = _data()
    cfgs = {4: SAEConfig(d_in=D_IN, d_sae=D_SAE, k=K)}
    saes, _ = train_saes({4: X}, cfgs, _tc(30, checkpoint_every=5), seeds=[0, 2],
                         random_state=1, checkpoint_dir=tmp_path / "run",
                         snapshot_steps=[3, 10, 30], keep_checkpoints=2)
    snaps = read_snapshots(tmp_path / "run")
    assert sorted(snaps) == [3, 10, 30]
    assert sorted(snaps[10]) == [(4, 0), (4, 2)]
    # only the two latest resumable checkpoints are left (30 is the end: "final/")
    left = sorted(p.name for p in (tmp_path / "run").glob("step-*"))
    assert left == ["step-0000020", "step-0000025"]
    # planted truth: without learning-rate decay, the snapshot at step 10 is the model of a
    # run of 10 steps on the same batches
    short, _ = train_saes({4: X}, cfgs, _tc(10), seeds=[0, 2], random_state=1)
    for seed in (0, 2):
        snap = load_sae(snaps[10][(4, seed)], verbose=False)
        assert snap.train_info["n_steps_done"] == 10
        torch.testing.assert_close(snap.W_dec, short[(4, seed)].W_dec, rtol=0, atol=1e-6)
    last = load_sae(snaps[30][(4, 2)], verbose=False)
    torch.testing.assert_close(last.W_enc, saes[(4, 2)].W_enc, rtol=0, atol=1e-6)


def test_snapshot_arguments_are_checked(tmp_path):
    X = _data(300)
    cfgs = {1: SAEConfig(d_in=D_IN, d_sae=D_SAE, k=K)}
    with pytest.raises(ValueError, match=r"snapshot_steps must lie in \[1, n_steps=5\]"):
        train_saes({1: X}, cfgs, _tc(5), checkpoint_dir=tmp_path, snapshot_steps=[6])
    with pytest.raises(ValueError, match="needs a checkpoint_dir"):
        train_saes({1: X}, cfgs, _tc(5), snapshot_steps=[2])
    with pytest.raises(ValueError, match="keep_checkpoints must be"):
        train_saes({1: X}, cfgs, _tc(5), checkpoint_dir=tmp_path, keep_checkpoints=0)
    with pytest.raises(FileNotFoundError, match="No snapshots folder"):
        read_snapshots(tmp_path / "nothing")


def _permuted(sae, seed):
    """The same SAE with its features in another order: a perfect second seed."""
    other = make_sae(sae.cfg, random_state=seed)
    perm = np.random.default_rng(seed).permutation(sae.cfg.d_sae)
    state = {k: v.clone() for k, v in sae.state_dict().items()}
    state["W_dec"] = state["W_dec"][perm]
    state["W_enc"] = state["W_enc"][:, perm]
    state["b_enc"] = state["b_enc"][perm]
    other.load_state_dict(state)
    other.train_info = dict(sae.train_info)
    return other.eval()


def test_convergence_table_planted_agreement_and_nulls():
    X = _data(2100, seed=3)
    cfgs = {2: SAEConfig(d_in=D_IN, d_sae=D_SAE, k=K)}
    saes, _ = train_saes({2: X[:1400]}, cfgs, _tc(400), seeds=[0, 1], random_state=0)
    a, b = saes[(2, 0)], saes[(2, 1)]
    clips = {2: np.array_split(X[1400:], 7)}
    snaps = {20: {(2, 0): a, (2, 5): _permuted(a, 4)}, 400: {(2, 0): a, (2, 1): b}}
    table = convergence_table(snaps, clips, None, random_state=0)
    assert list(table["step"]) == [20, 400]
    assert list(table["frames"]) == [2000, 40000]  # steps x batch size of the record
    same = table.iloc[0]
    # a permuted copy agrees perfectly on both measures; two random dictionaries do not
    codes = encode_clips(a, clips[2])
    alive = np.mean(np.asarray((codes != 0).sum(axis=0)).ravel() > 0)
    assert 0.5 < alive < 1  # features never active on the held-out clips count as uncovered
    assert same["iou_coverage"] == pytest.approx(alive)
    assert same["mcc"] == pytest.approx(1.0, abs=1e-6)
    assert same["shared_07"] == pytest.approx(1.0)
    assert same["mcc_null"] < 0.9 and same["iou_coverage_null"] < 0.9
    assert same["fvu_sd"] == pytest.approx(0.0, abs=1e-6)
    # independent seeds on planted atoms agree more than random dictionaries
    two = table.iloc[1]
    assert two["mcc"] > two["mcc_null"] + 0.1
    cov = [activation_iou_coverage(encode_clips(x, clips[2]), encode_clips(y, clips[2])).fraction
           for x, y in ((a, b), (b, a))]
    assert two["iou_coverage"] == pytest.approx(np.mean(cov), abs=1e-12)  # both directions
    assert set(table["eval_mode"]) == {"threshold"}
    assert 0 < two["fvu"] < 0.5
    fig = plot_convergence(table, title="planted")
    assert len(fig.axes) == 4
    assert all(ax.get_xlabel() and ax.get_ylabel() for ax in fig.axes)
    with pytest.raises(ValueError, match=r"no clips of layer\(s\) \[2\]"):
        convergence_table(snaps, {3: clips[2]}, None)


def test_extrapolate_budget_planted_line():
    frames = np.array([1e5, 1e6, 1e7])
    gap = 0.01 * np.log10(frames) - 0.03  # 0.02, 0.03, 0.04: margin 0.05 at 1e8
    table = pd.DataFrame(dict(layer=6, frames=frames, mcc=0.2 + gap, mcc_null=0.2))
    out = extrapolate_budget(table, "mcc", margin=0.05)
    assert out["frames_needed"] == pytest.approx(1e8, rel=1e-6)
    assert out["slope_per_decade"] == pytest.approx(0.01)
    assert not out["reached"] and out["gap"] == pytest.approx(0.04)
    assert extrapolate_budget(table, "mcc", margin=0.03)["reached"]
    flat = table.assign(mcc=0.21)
    assert extrapolate_budget(flat, "mcc", margin=0.05)["frames_needed"] is None
    with pytest.raises(ValueError, match="pass layer="):
        extrapolate_budget(pd.concat([table, table.assign(layer=5)]), "mcc")
    with pytest.raises(ValueError, match="'iou_coverage'"):
        extrapolate_budget(table, "iou_coverage")


def test_figure_script_merges_runs_and_refuses_overlaps(tmp_path):
    import importlib.util
    from pathlib import Path

    script = Path(__file__).parents[2] / "figures" / "fig_sae_convergence.py"
    spec = importlib.util.spec_from_file_location("fig_sae_convergence", script)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    rows = []
    for layer in (2, 5):
        for step, frames in ((4, 1e5), (40, 1e6)):
            rows.append(dict(step=step, frames=frames, layer=layer, fvu=0.3 / step, l0=50.0,
                             iou_coverage=0.01 * step, iou_coverage_null=0.04,
                             mcc=0.2 + 0.001 * step, mcc_null=0.15))
    t = pd.DataFrame(rows)
    t[t["layer"] == 2].to_parquet(tmp_path / "a.parquet")
    t[t["layer"] == 5].to_parquet(tmp_path / "b.parquet")
    out = tmp_path / "fig.png"
    assert mod.main(["--tables", str(tmp_path / "a.parquet"), str(tmp_path / "b.parquet"),
                     "--out", str(out)]) == 0
    assert out.stat().st_size > 10_000
    with pytest.raises(SystemExit, match="overlap"):
        mod.main(["--tables", str(tmp_path / "a.parquet"), str(tmp_path / "a.parquet"),
                  "--out", str(tmp_path / "x.png")])
    assert not (tmp_path / "x.png").exists()
