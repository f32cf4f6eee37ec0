"""End-to-end test of analyses/06_sae_report.py on tiny synthetic activations."""

import runpy
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from neuro_sae.activations import Activations
from neuro_sae.sae import load_sae
from neuro_sae.simulation._dictionary import make_sparse_dictionary_data

SCRIPT = Path(__file__).parents[2] / "analyses" / "06_sae_report.py"


def _write_runs(folder, n_runs=3, n_frames=(230, 190, 250), d=(10, 14), seed=0):
    """Runs with two layers of planted sparse activations and some padding frames."""
    rng = np.random.default_rng(seed)
    n_valid = 0
    for r in range(n_runs):
        n = n_frames[r]
        data = {}
        for layer, width in zip((1, 2), d):
            X, _, _ = make_sparse_dictionary_data(n, width, 2 * width, 2, random_state=seed + layer)
            data[layer] = X.astype(np.float32)
        mask = np.ones(n, dtype=bool)
        mask[-rng.integers(5, 20):] = False
        data = {layer: np.where(mask[:, None], x, 1e4) for layer, x in data.items()}  # junk padding
        acts = Activations(data=data, times=np.arange(n) / 50 + 0.01, mask=mask,
                           backbone="synthetic", stimulus_id=f"run{r + 1:02d}")
        acts.save(Path(folder) / f"run{r + 1:02d}_activations.npz")
        n_valid += int(mask.sum())
    return n_valid


def test_report_script_end_to_end(tmp_path):
    acts = tmp_path / "acts"
    n_valid = _write_runs(acts)
    out = tmp_path / "report"
    mod = runpy.run_path(str(SCRIPT))
    args = ["--activations", str(acts), "--out", str(out), "--expansion", "3", "--k", "2",
            "--n-steps", "60", "--batch-size", "128", "--lr", "3e-3", "--verbose", "WARNING"]
    res = mod["main"](args)
    for name in ("sae_metrics.parquet", "sae_consistency.parquet", "sae_history.parquet",
                 "sae_report.png", "sae_report.json"):
        assert (out / name).is_file(), name
    metrics = pd.read_parquet(out / "sae_metrics.parquet")
    assert sorted(zip(metrics["layer"], metrics["seed"])) == [(1, 0), (1, 1), (2, 0), (2, 1)]
    assert set(metrics.loc[metrics["layer"] == 2, "d_sae"]) == {42}
    # padding frames never enter the metrics (junk 1e4 there would ruin the EV)
    assert (metrics["n_frames"] == n_valid).all() and n_valid < 230 + 190 + 250
    assert (metrics["explained_variance"] > 0.5).all()
    np.testing.assert_allclose(metrics["fvu"], 1 - metrics["explained_variance"])
    table = pd.read_parquet(out / "sae_consistency.parquet")
    seeds = table[table["b"] != "random"]
    assert sorted(set(seeds["layer"])) == [1, 2] and len(seeds) == 4  # 2 ordered pairs x 2 layers
    for col in ("iou_coverage", "duplicates", "decoder_shared_0.7", "encoder_shared_0.5"):
        assert col in table and table[col].between(0, 1).all()
    assert len(table[table["b"] == "random"]) == 4
    # the SAEs were saved; a second run reads them instead of training
    sae = load_sae(out / "saes" / "layer-02_seed-1")
    assert sae.cfg.layer == 2 and sae.cfg.seed == 1 and sae.cfg.backbone == "synthetic"
    res2 = mod["main"](args)
    pd.testing.assert_frame_equal(res2["metrics"], res["metrics"])
    assert "history" not in res2["files"]
    assert not torch.equal(load_sae(out / "saes" / "layer-01_seed-0").W_dec,
                           load_sae(out / "saes" / "layer-01_seed-1").W_dec)


def test_report_script_errors(tmp_path):
    mod = runpy.run_path(str(SCRIPT))
    with pytest.raises(SystemExit, match="No \\*_activations.npz"):
        mod["main"](["--activations", str(tmp_path)])
