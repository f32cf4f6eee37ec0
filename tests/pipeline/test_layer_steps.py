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
