"""Cache keys that chain: each config section and each input file edited in turn makes
exactly the steps that depend on it stale; a downstream-only command refuses naming the
setting or file and the command to run; ``upstream=True`` reruns the chain."""

import json
import os
import re
import shutil

import numpy as np
import pytest
import soundfile as sf

from neuro_sae.manifest import load_manifest
from neuro_sae.pipeline import StaleError, StudyPaths, run_step, run_study, study_status

from .conftest import copy_study

pytestmark = pytest.mark.filterwarnings(
    # tiny studies: few permutations and alphas on the grid edge are expected
    "ignore:.*FDR cannot reject.*:UserWarning",
    "ignore:.*edge of the alpha grid.*:UserWarning",
)

# the tiny study has one backbone and one SAE layer (the last, 3): one unit per step
EXTRACT, TRAIN, SIM, GROUP = "01_extract", "02_train_sae-layer-03", "03_simulate", "05_group_stats-layer-03"
FITS = {"04_fit_trf-layer-03-sub-01", "04_fit_trf-layer-03-sub-02"}
LAYERS = "05b_layers"  # depends on every fit and group unit: stale whenever one of them is
ALL = {EXTRACT, TRAIN, SIM, GROUP} | FITS
DOWN = {EXTRACT: ALL - {EXTRACT}, TRAIN: FITS | {SIM, GROUP}, SIM: FITS | {GROUP}, GROUP: set(),
        **{f: {GROUP} for f in FITS}}  # fmt: skip


def _stale(manifest):
    stale = {sid for sid, reason in study_status(manifest).items() if reason is not None}
    # the core chain only (steps other parts add to the table, e.g. interpret, left out)
    return {sid for sid in stale if sid.startswith(("01_", "02_", "03_", "04_", "05_"))}


def _record_mtimes(out):
    return {p.stem: p.stat().st_mtime_ns for p in (out / ".cache").glob("*.json")}


def _check(man_file, stale, consumer, patterns, subject=None):
    """``stale`` exactly; ``consumer`` refuses with ``patterns``; upstream reruns them."""
    manifest = load_manifest(man_file)
    out = manifest.derivatives_dir()
    assert _stale(manifest) == stale
    with pytest.raises(StaleError) as info:
        run_step(manifest, consumer, subject=subject)
    msg = str(info.value)
    for pat in [*patterns, r"--upstream"]:
        assert re.search(pat, msg), f"{pat!r} not in:\n{msg}"
    assert f"--manifest {man_file}" in msg
    before = _record_mtimes(out)
    run_step(manifest, "group", upstream=True, verbose="WARNING")
    after = _record_mtimes(out)
    rerun = {sid for sid in after if after[sid] != before.get(sid)}
    # the first stale steps rerun; nothing reruns that neither was stale nor depends on a
    # stale step (a rerun that restores its files exactly spares its consumers, one that
    # does not, e.g. SAE training, makes them rerun too)
    roots = {s for s in stale if not any(s in DOWN[t] for t in stale)}
    assert roots <= rerun
    assert rerun <= stale.union(*(DOWN[s] for s in stale))
    assert _stale(manifest) == set()
    return msg


SECTIONS = [
    ("backbone", {"backbone": {"context_s": 4.0}}, ALL, "fit", "01",
     [r"extract: backbone\.context_s changed from 5\.0 to 4\.0", r"neuro-sae extract --manifest"]),
    ("sae", {"sae": {"n_steps": 20}}, ALL - {EXTRACT}, "group", None,
     [r"train-sae \(layer-03\): sae\.n_steps changed from 30 to 20", r"neuro-sae train-sae --manifest"]),
    ("features", {"features": {"scale": "zscore"}}, FITS | {GROUP}, "group", None,
     [r'fit \(layer-03-sub-01\): features\.scale changed from "max" to "zscore"',
      r"neuro-sae fit --subject 01 --manifest", r"neuro-sae fit --subject 02 --manifest"]),
    ("simulation", {"simulation": {"snr": 0.5}}, {SIM, GROUP} | FITS, "fit", "02",
     [r"simulate: simulation\.snr changed from 0\.3 to 0\.5", r"neuro-sae simulate --manifest"]),
    ("eeg", {"eeg": {"l_freq": 2.0}}, FITS | {GROUP}, "report", "01",
     [r"fit \(layer-03-sub-01\): eeg\.l_freq changed from 1\.0 to 2\.0", r"neuro-sae fit --subject 01"]),
    ("trf", {"trf": {"tmax": 0.25}}, FITS | {GROUP}, "group", None,
     [r"fit \(layer-03-sub-01\): trf\.tmax changed from 0\.3 to 0\.25", r"neuro-sae fit --subject 01"]),
    ("stats", {"stats": {"alpha": 0.1}}, FITS | {GROUP}, "figures", None,
     [r"fit \(layer-03-sub-02\): stats\.alpha changed from 0\.05 to 0\.1", r"neuro-sae group --manifest"]),
]  # fmt: skip


@pytest.mark.parametrize("section, change, stale, consumer, subject, patterns", SECTIONS,
                         ids=[s[0] for s in SECTIONS])  # fmt: skip
def test_config_section_makes_dependents_stale(built_study, tmp_path, section, change, stale,
                                                consumer, subject, patterns):  # fmt: skip
    man_file = copy_study(built_study, tmp_path / "study")
    manifest = load_manifest(man_file)
    assert _stale(manifest) == set()
    merged = {k: {**getattr(manifest, k).model_dump(), **v} for k, v in change.items()}
    copy_man = tmp_path / "study" / "tiny.yaml"
    import yaml

    raw = yaml.safe_load(copy_man.read_text())
    for key, val in merged.items():
        raw[key] = {k: v for k, v in val.items() if k in raw.get(key, {}) or k in change[key]}
    copy_man.write_text(yaml.safe_dump(raw))
    _check(man_file, stale, consumer, patterns, subject)


def _edit_wav(root, paths):
    fname = root / "stimuli" / "r3.wav"
    audio, sfreq = sf.read(fname)
    sf.write(fname, 0.5 * audio, sfreq)


def _edit_activations(root, paths):
    from neuro_sae.activations import read_activations

    fname = paths.activations("r1")
    read_activations(fname).save(fname, dtype=np.float32, overwrite=True)


def _edit_sae(root, paths):
    from safetensors.numpy import load_file, save_file

    fname = paths.sae_dir(3) / "sae.safetensors"
    tensors = load_file(fname)
    key = sorted(tensors)[0]
    tensors[key] = tensors[key] * 1.01
    save_file(tensors, fname)


def _edit_features(root, paths):
    from neuro_sae.features import FeatureSeries, read_feature_series

    fname = paths.features("r2", 3)
    fs = read_feature_series(fname)
    FeatureSeries(data=fs.data * 2, times=fs.times, feature_ids=fs.feature_ids, sfreq=fs.sfreq,
                  stimulus_id=fs.stimulus_id, layer=fs.layer, sae_id=fs.sae_id).save(fname, overwrite=True)  # fmt: skip


def _edit_eeg(root, paths):
    import mne

    fname = paths.subject_dir("02") / "eeg" / "sub-02_task-listen_eeg.fif"
    raw = mne.io.read_raw_fif(fname, preload=True, verbose=False)
    raw._data *= 1.01
    raw.save(fname, overwrite=True, verbose=False)


def _edit_sweep(root, paths):
    from neuro_sae.encoding import read_sweep_result

    fname = paths.sweep("01", 3)
    sweep = read_sweep_result(fname)
    sweep.r = sweep.r + 0.01
    sweep.save(fname, overwrite=True)


FILES = [
    ("stimulus-wav", _edit_wav, ALL, "train-sae", None,
     [r"extract: input stimuli:r3\.wav changed", r"neuro-sae extract --manifest"]),
    ("activations", _edit_activations, ALL, "simulate", None,
     [r"extract: output stimuli/activations/r1_activations\.npz was modified",
      r"neuro-sae extract --manifest"]),
    ("sae-weights", _edit_sae, {TRAIN}, "fit", "01",
     [r"train-sae \(layer-03\): output stimuli/sae/layer-03/sae\.safetensors was modified",
      r"neuro-sae train-sae --manifest"]),
    ("features", _edit_features, ALL - {EXTRACT}, "group", None,
     [r"train-sae \(layer-03\): output stimuli/features/layer-03/r2_features\.npz was modified",
      r"simulate: input stimuli/features/layer-03/r2_features\.npz changed"]),
    ("eeg", _edit_eeg, {SIM, "04_fit_trf-layer-03-sub-02", GROUP}, "group", None,
     [r"simulate: output sub-02/eeg/sub-02_task-listen_eeg\.fif was modified",
      r"fit \(layer-03-sub-02\): input sub-02/eeg/sub-02_task-listen_eeg\.fif changed",
      r"neuro-sae simulate --manifest"]),
    ("sweep", _edit_sweep, {"04_fit_trf-layer-03-sub-01", GROUP}, "figures", None,
     [r"fit \(layer-03-sub-01\): output sub-01/trf/sub-01_layer-03_sweep\.npz was modified",
      r"neuro-sae fit --subject 01 --manifest"]),
]  # fmt: skip


@pytest.mark.parametrize("name, edit, stale, consumer, subject, patterns", FILES,
                         ids=[f[0] for f in FILES])  # fmt: skip
def test_input_file_makes_dependents_stale(built_study, tmp_path, name, edit, stale, consumer,
                                           subject, patterns):  # fmt: skip
    man_file = copy_study(built_study, tmp_path / "study")
    manifest = load_manifest(man_file)
    edit(tmp_path / "study", StudyPaths(manifest.derivatives_dir()))
    _check(man_file, stale, consumer, patterns, subject)


def test_failed_fit_leaves_no_record_and_group_refuses(built_study, tmp_path):
    man_file = copy_study(built_study, tmp_path / "study")
    manifest = load_manifest(man_file)
    paths = StudyPaths(manifest.derivatives_dir())
    # a lag window longer than the runs: the sweep fails
    broken = load_manifest(man_file, overrides={"trf": {"tmin": -20.0, "tmax": 20.0}})
    with pytest.raises(ValueError):
        run_step(broken, "fit", subject="01")
    assert not (paths.cache_dir() / "04_fit_trf-layer-03-sub-01.json").exists()
    # the previous results are still on disk, but the original manifest cannot use them
    assert paths.sweep("01", 3).is_file()
    with pytest.raises(StaleError, match=r"fit \(layer-03-sub-01\): has not run \(or its last run failed\)"):
        run_step(manifest, "group")
    run_step(manifest, "group", upstream=True, verbose="WARNING")
    assert _stale(manifest) == set()


def test_moved_derivatives_stay_valid(built_study, tmp_path):
    man_file = copy_study(built_study, tmp_path / "study")
    manifest = load_manifest(man_file)
    moved = tmp_path / "elsewhere" / "deriv"
    moved.parent.mkdir()
    shutil.move(manifest.derivatives_dir(), moved)
    assert set(study_status(manifest, moved).values()) == {None}
    before = _record_mtimes(moved)
    run_study(manifest, moved, figures=False, verbose="WARNING")
    assert _record_mtimes(moved) == before  # nothing reran
    rec = json.loads((moved / ".cache" / "04_fit_trf-layer-03-sub-01.json").read_text())
    assert not any(os.path.isabs(k) or str(tmp_path) in k for k in [*rec["inputs"], *rec["outputs"]])


def test_same_named_files_in_subfolders_keep_distinct_keys(built_study, tmp_path):
    import yaml

    man_file = copy_study(built_study, tmp_path / "study")
    root = tmp_path / "study"
    for sub, src in (("a", "r1.wav"), ("b", "r3.wav"), ("c", "r4.wav")):
        (root / "stimuli" / sub).mkdir()
        shutil.copy(root / "stimuli" / src, root / "stimuli" / sub / "x.wav")
    raw = yaml.safe_load(man_file.read_text())
    raw["stimuli"]["runs"] = [dict(id=f"r{s}", file=f"{s}/x.wav") for s in "abc"]
    raw["derivatives"] = str(root / "deriv2")
    man_file.write_text(yaml.safe_dump(raw))
    manifest = load_manifest(man_file)
    run_step(manifest, "extract", verbose="WARNING")
    rec = json.loads((root / "deriv2" / ".cache" / "01_extract.json").read_text())
    assert set(rec["inputs"]) == {"stimuli:a/x.wav", "stimuli:b/x.wav", "stimuli:c/x.wav"}
    # b/x.wav takes a/x.wav's content: the one changed file is named, the key changes
    shutil.copy(root / "stimuli" / "a" / "x.wav", root / "stimuli" / "b" / "x.wav")
    status = study_status(manifest)
    assert status[EXTRACT] == "input stimuli:b/x.wav changed"


def test_auto_and_explicit_backbone_share_a_key(tmp_path, monkeypatch, built_study):
    import neuro_sae.backbones as bb
    from neuro_sae.pipeline._registry import Study, current_parts, get_step

    conv = tmp_path / "converted"
    conv.mkdir()
    sha = "ab" * 32

    def fake_convert(name, **kwargs):
        (conv / "neuro_sae_conversion.json").write_text(json.dumps(dict(model_sha256=sha)))
        return conv

    monkeypatch.setattr(bb, "installed_demo_models", lambda **kw: ["whisper-base", "whisper-tiny.en"])
    monkeypatch.setattr(bb, "get_demo_whisper", fake_convert)
    man_file = built_study / "tiny.yaml"

    def key(name):
        m = load_manifest(man_file, overrides={"backbone": {"name": name}})
        return current_parts(Study(m, tmp_path / "d"), get_step("extract"))

    auto, explicit = key("auto"), key("whisper-base")
    assert auto["config"]["backbone"]["resolved"] == dict(name="whisper-base", weights=f"sha256:{sha}")
    assert auto["key"] == explicit["key"]
    assert key("hubert-base-random")["key"] != auto["key"]
    sha = "cd" * 32  # other weights behind the same name: another key
    assert key("auto")["key"] != auto["key"]


def test_pretrained_sae_folder(built_study, tmp_path):
    """``sae.pretrained``: the SAE is read (not trained), its key is the folder's content."""
    import yaml

    from neuro_sae.sae import load_sae

    man_file = copy_study(built_study, tmp_path / "study")
    root = tmp_path / "study"
    manifest = load_manifest(man_file)
    paths = StudyPaths(manifest.derivatives_dir())
    sae = load_sae(paths.sae_dir(3))
    import torch

    with torch.no_grad():
        sae.W_enc.mul_(1.5)
    sae.save(root / "pretrained" / "my-sae")
    raw = yaml.safe_load(man_file.read_text())
    raw["sae"]["pretrained"] = {3: "pretrained/my-sae"}
    man_file.write_text(yaml.safe_dump(raw))
    manifest = load_manifest(man_file)
    status = study_status(manifest)
    assert "input manifest:pretrained/my-sae is new" in status[TRAIN]
    run_step(manifest, "group", upstream=True, verbose="WARNING")
    used = load_sae(paths.sae_dir(3))
    np.testing.assert_array_equal(used.W_enc.detach().numpy(), sae.W_enc.detach().numpy())
    assert _stale(manifest) == set()
    # editing the pretrained folder makes the SAE step stale, naming the folder
    with torch.no_grad():
        sae.W_enc.mul_(2.0)
    sae.save(root / "pretrained" / "my-sae")
    assert study_status(manifest)[TRAIN] == "input manifest:pretrained/my-sae changed"
