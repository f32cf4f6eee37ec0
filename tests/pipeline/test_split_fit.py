"""A named split (``eeg.split``) in the fit step: alphas by leave-one-run-out on the dev
runs, the TRF fitted on the dev runs, r scored on the test runs (by hand)."""

import numpy as np
import pytest

import neuro_sae.encoding
from neuro_sae.encoding import read_sweep_result
from neuro_sae.manifest import load_manifest
from neuro_sae.pipeline import StudyPaths

from ..encoding.test_split import _hand
from .conftest import copy_study


@pytest.mark.filterwarnings("ignore:.*FDR cannot reject.*:UserWarning",
                            "ignore:.*edge of the alpha grid.*:UserWarning")  # fmt: skip
def test_split_fit_r_is_the_test_runs_r(built_study, tmp_path, monkeypatch):
    from neuro_sae.pipeline import run_step

    seen = {}
    sweep_fn = neuro_sae.encoding.univariate_sweep

    def spy(X_runs, Y_runs, **kw):
        seen.update(X=X_runs, Y=Y_runs, kw=kw)
        return sweep_fn(X_runs, Y_runs, **kw)

    monkeypatch.setattr(neuro_sae.encoding, "univariate_sweep", spy)
    split = dict(splits=dict(paper=dict(dev=["r3", "r1", "r2"], test=["r4"])), split="paper")
    manifest = load_manifest(copy_study(built_study, tmp_path / "study", eeg=split))
    run_step(manifest, "fit", subject="01", upstream=True, verbose="WARNING")
    sweep = read_sweep_result(StudyPaths(manifest.derivatives_dir()).sweep("01", 3))
    assert sweep.provenance["runs"] == ["r3", "r1", "r2", "r4"]
    np.testing.assert_array_equal(sweep.test_runs, [3])
    assert sweep.r_folds.shape[0] == 1
    X, Y = seen["X"], seen["Y"]
    grid = np.unique(sweep.alphas, axis=0)
    assert grid.shape[0] == 1  # raw alphas: one grid for all features
    r, alpha, _ = _hand(X, Y, sweep.delays, [3], list(grid[0]))
    np.testing.assert_allclose(sweep.r, r, rtol=0, atol=1e-9)
    np.testing.assert_array_equal(sweep.alpha[0], alpha)
