"""Pieces of the across-layer step checked against independent references."""

import pytest


def _manifest(n_runs, split=None, splits=None):
    """The two fields protocol_runs reads (eeg.split/splits, stimuli.runs)."""
    from types import SimpleNamespace

    from neuro_sae.manifest import RunSplit

    runs = [SimpleNamespace(id=f"run{i + 1:02d}") for i in range(n_runs)]
    splits = {k: RunSplit(**v) for k, v in (splits or {}).items()}

    def split_runs(name=None):
        s = splits[split if name is None else name]
        return list(s.dev), list(s.test)

    return SimpleNamespace(eeg=SimpleNamespace(split=split, splits=splits),
                           stimuli=SimpleNamespace(runs=runs), split_runs=split_runs)  # fmt: skip


@pytest.mark.parametrize(("n_runs", "n_dev"), [(2, 1), (3, 2), (5, 2), (10, 4), (20, 8)])
def test_protocol_runs_without_a_split_follow_the_paper_ratio(n_runs, n_dev):
    """eeg.split: null -> the first runs are development runs, in the paper's 6:9 minute
    ratio (2 of 5), never every run (which tuned the protocol on its test runs)."""
    from neuro_sae.pipeline._eeg_steps import protocol_runs

    dev, test = protocol_runs(_manifest(n_runs))
    ids = [f"run{i + 1:02d}" for i in range(n_runs)]
    assert dev == ids[:n_dev] and test == ids[n_dev:]
    assert not set(dev) & set(test)


def test_protocol_runs_named_split_and_too_few_runs():
    from neuro_sae.pipeline._eeg_steps import protocol_runs

    m = _manifest(6, split="paper", splits=dict(paper=dict(dev=["run01", "run02"],
                                                           test=["run03", "run04", "run05"])))  # fmt: skip
    assert protocol_runs(m) == (["run01", "run02"], ["run03", "run04", "run05"])
    with pytest.raises(ValueError, match="at least 2 stimulus runs"):
        protocol_runs(_manifest(1))


def test_unit_labels_and_commands():
    from neuro_sae.pipeline._registry import Unit
    from neuro_sae.pipeline.steps import get_step

    fit = get_step("fit")
    assert fit.step_id(Unit("03", "hubert-base-random", 11)) == "04_fit_trf-model-hubert-base-random-layer-11-sub-03"
    assert fit.step_id(Unit("03", None, 2)) == "04_fit_trf-layer-02-sub-03"
    assert get_step("extract").step_id(Unit()) == "01_extract"
    assert fit.step_id("01") == "04_fit_trf-sub-01"


@pytest.mark.parametrize("spec", ["serial", "processes:2"])
def test_executor_map_keeps_order(spec):
    from neuro_sae.pipeline._executor import Executor

    with Executor(spec) as ex:
        out = ex.map([(pow, (i, 2)) for i in range(7)], label=str)
    assert out == [i**2 for i in range(7)]


def test_layer_trend_uses_a_count_free_statistic():
    """The layers step fits its trend on the best r of the same number of random features
    at every layer of a backbone (not the best r over all of them), reproducibly."""
    from types import SimpleNamespace

    import numpy as np
    import pandas as pd

    from neuro_sae.pipeline._layer_steps import _mixedlm_tables, layer_trend_statistic

    rng = np.random.default_rng(0)
    rows = []
    for model, counts in (("primary", (10, 40, 160)), ("tiny-b", (7, 70))):
        for s in ("01", "02", "03"):
            for layer, n in enumerate(counts, start=1):
                rows.append(pd.DataFrame(dict(model=model, subject=s, layer=layer, feature=np.arange(n) * 3,
                                              r=0.02 * rng.standard_normal(n), p=rng.random(n))))  # fmt: skip
    features = pd.concat(rows, ignore_index=True)
    study = SimpleNamespace(manifest=SimpleNamespace(stats=SimpleNamespace(random_state=0)))
    trend = layer_trend_statistic(study, features)
    assert trend.groupby("model")["n_used"].unique().map(list).to_dict() == {"primary": [10], "tiny-b": [7]}
    pd.testing.assert_frame_equal(trend, layer_trend_statistic(study, features))
    # each value is a max over n_used of the layer's features (<= the best over all)
    best = features.groupby(["model", "subject", "layer"])["r"].max()
    joined = trend.set_index(["model", "subject", "layer"])["value"]
    assert np.all(joined <= best.loc[joined.index] + 1e-15)
    tab = _mixedlm_tables(trend)
    assert set(tab["statistic"]) == {"sample_max"} and set(tab["model"]) == {"primary", "tiny-b"}
    assert tab.set_index(["model", "term"]).loc[("primary", "layer"), "n_sample"] == 10


@pytest.mark.filterwarnings("ignore:.*FDR cannot reject.*:UserWarning",
                            "ignore:.*edge of the alpha grid.*:UserWarning")  # fmt: skip
def test_fit_step_protocol_tuned_on_its_dev_runs_in_the_basis(built_study, tmp_path, monkeypatch):
    """The fit step (eeg.split: null, a lag basis) hands the protocol its derived dev and
    test runs and the sweep's basis, and saves the alpha tuned there."""
    import json

    import numpy as np

    import neuro_sae.stats
    from neuro_sae.manifest import load_manifest
    from neuro_sae.pipeline import StudyPaths, run_step

    from .conftest import copy_study

    seen = {}
    fn = neuro_sae.stats.protocol_kernels

    def spy(X_runs, Y_runs, dev_runs, test_runs, **kw):
        seen.update(X=X_runs, Y=Y_runs, dev=dev_runs, test=test_runs, kw=kw)
        return fn(X_runs, Y_runs, dev_runs, test_runs, **kw)

    monkeypatch.setattr(neuro_sae.stats, "protocol_kernels", spy)
    manifest = load_manifest(copy_study(built_study, tmp_path / "study", trf=dict(basis_width=0.08)))
    assert manifest.eeg.split is None
    run_step(manifest, "fit", subject="01", upstream=True, verbose="WARNING")
    data = np.load(StudyPaths(manifest.derivatives_dir()).protocol_kernels("01", 3))
    runs = [r.id for r in manifest.stimuli.runs]
    n_dev = min(len(runs) - 1, max(2, round(0.4 * len(runs))))
    assert list(data["dev_runs"]) == runs[:n_dev] and list(data["test_runs"]) == runs[n_dev:]
    assert seen["dev"] == list(range(n_dev)) and seen["test"] == list(range(n_dev, len(runs)))
    assert seen["kw"]["basis"] is not None and seen["kw"]["scaling_runs"] == "dev"
    assert json.loads(str(data["settings"]))["model"] == "lag basis"
    ref = fn(seen["X"], seen["Y"], seen["dev"], seen["test"], **seen["kw"])
    np.testing.assert_array_equal(data["alpha"], ref["alpha"])
    np.testing.assert_allclose(data["coef_dev"], ref["coef_dev"])
