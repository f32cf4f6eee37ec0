"""The pipeline step record of steering: options, applicability, config and outputs."""

from pathlib import Path
from types import SimpleNamespace

from neuro_sae.pipeline import STEPS


def _study(name, root, **options):
    manifest = SimpleNamespace(backbone=SimpleNamespace(name=name))
    return SimpleNamespace(manifest=manifest, options=options, root=Path(root))


def test_steer_step_record(tmp_path):
    from neuro_sae.pipeline import _steer_step as ST

    step = next(s for s in STEPS if s.cli == "steer")
    assert step.name == "08b_steer" and step.scope == "study" and step.run is ST.steer_run
    assert step.in_study  # the demo runs a small version: a skipped fit set is no error
    assert {flag for flag, _ in step.options} >= {"--corpus", "--ks", "--sae-alphas"}
    # named Whisper models (with a tokenizer) only: a bare model folder is not applicable
    for name, ok in (("auto", True), ("whisper-base", True), ("openai/whisper-small", True),
                     ("hubert-base-random", False), (str(tmp_path / "tiny-whisper"), False)):
        assert step.applies(_study(name, tmp_path).manifest) is ok, name
    assert "{manifest}" in step.not_applicable and "backbone.name" in step.not_applicable
    study = _study("whisper-base", tmp_path, ks=[5, 7], corpus=str(tmp_path / "c"))
    cfg = ST.steer_config(study, None)
    assert cfg["steer"]["ks"] == [5, 7] and cfg["steer"]["sae_alphas"] == [1.0]
    assert cfg["steer"]["presets"] == ["paper"] and cfg["steer"]["max_new_tokens"] == 224
    # the demo's size: 8 music and 11 recorded sound-effect clips of a 0.1 h corpus
    assert cfg["steer"]["n_music"] == [5, 3] and cfg["steer"]["n_sounds"] == [8, 3]
    assert cfg["steer"]["n_speech"] == [3] and cfg["steer"]["corpus_hours"] == 0.1
    assert cfg["steer"]["corpus"] == str((tmp_path / "c").resolve())
    assert cfg["backbone"]["name"] == "whisper-base"
    assert ST.steer_inputs(study, None) == [tmp_path / "c" / "index.parquet"]
    assert ST.steer_inputs(_study("auto", tmp_path), None) == []
    outs = ST.steer_outputs(study, None)
    assert outs["grid"] == tmp_path / "steering" / "grid.parquet"
    assert set(outs) == {"grid", "matched", "figure", "summary"}
