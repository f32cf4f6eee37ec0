"""sae.release: the interpret and steer steps read an installed release SAE of the study's
last layer (its identity in their keys and outputs); missing weights fail, never fall back."""

import json

import pytest
import yaml

from neuro_sae.manifest import ManifestError, load_manifest
from tests.pipeline.conftest import _stimuli, _tiny_whisper, tiny_manifest_dict
from tests.sae.release_helpers import install_fake_release, tiny_sae

NAME = "neuro-sae/tiny-test"


@pytest.fixture(scope="module")
def extracted(tmp_path_factory):
    """A tiny study (tiny random Whisper, 2 runs of 4 s) with only step 01 run."""
    from neuro_sae.pipeline import extract_step

    root = tmp_path_factory.mktemp("release_study")
    _tiny_whisper(root / "tiny-whisper")
    runs = _stimuli(root / "stimuli", 2, 4)
    man = tiny_manifest_dict(root, runs)
    (root / "tiny.yaml").write_text(yaml.safe_dump(man))
    extract_step(load_manifest(root / "tiny.yaml"), None, verbose="WARNING")
    return root


def _study(root, monkeypatch, tmp_path, layers=(3,), **sae_kw):
    """Install a release of the tiny Whisper's layers and load the manifest that names it."""
    from neuro_sae.activations import read_activations
    from neuro_sae.pipeline import StudyPaths
    from neuro_sae.pipeline._registry import Study

    man = load_manifest(root / "tiny.yaml")
    acts = read_activations(StudyPaths(man.derivatives).activations("r1"))
    saes = {n: tiny_sae(n, d_in=acts.get(n).shape[1], d_sae=96, backbone=acts.backbone, **sae_kw)
            for n in layers}  # fmt: skip
    folder = install_fake_release(monkeypatch, tmp_path / "site", saes, name=NAME,
                                  backbone=acts.backbone)  # fmt: skip
    man = load_manifest(root / "tiny.yaml", overrides=dict(sae=dict(release=NAME)))
    return Study(man), folder


def test_manifest_names_installed_releases(extracted):
    with pytest.raises(ManifestError, match=r"(?s)'sae.release'.*'neuro-sae/nope' is not an installed "
                                            r"SAE release.*pip install --no-deps"):
        load_manifest(extracted / "tiny.yaml", overrides=dict(sae=dict(release="neuro-sae/nope")))


def test_interpret_uses_the_release(extracted, tmp_path, monkeypatch):
    from neuro_sae.features import read_feature_series
    from neuro_sae.interpret import read_dashboard
    from neuro_sae.pipeline import _interpret_step as IN
    from neuro_sae.pipeline import run_step

    monkeypatch.setattr(IN, "N_DASHBOARD", 4)  # a small dashboard: the test is about the SAE
    monkeypatch.setattr(IN, "N_EXAMPLES", 1)
    study, folder = _study(extracted, monkeypatch, tmp_path)
    assert IN.interpret_producers(study, None)[0][0] == "extract"  # not the EEG chain
    cfg = IN.interpret_config(study, None)["sae_release"]
    assert cfg["name"] == NAME and cfg["layer"] == 3 and cfg["frames_seen"] == 33 * 64
    run_step(study.manifest, "interpret", verbose="WARNING")
    out = IN.interpret_outputs(study, None)
    used = json.loads(out["sae"].read_text())
    assert used["source"] == "release" and used["name"] == NAME and used["layer"] == 3
    assert used["frames_seen"] == 33 * 64 and NAME in used["text"] and "2,112 frames" in used["text"]
    d = IN.interpret_dir(study)
    fs = read_feature_series(d / "release_features" / "r1_features.npz")
    assert fs.data.shape[1] == 96  # the release's dictionary, not the study's
    assert len(read_dashboard(out["dashboard"])["features"]) == 4
    # the release's identity is in the key: new weights, new config slice
    install_fake_release(monkeypatch, tmp_path / "site2", {3: tiny_sae(3, d_in=48, d_sae=96, seed=5,
                         backbone=used["backbone"])}, name=NAME, backbone=used["backbone"])  # fmt: skip
    assert IN.interpret_config(study, None)["sae_release"]["hash"] != cfg["hash"]


def test_steer_fails_without_the_release_weights(extracted, tmp_path, monkeypatch):
    from neuro_sae.pipeline import _steer_step as ST

    study, folder = _study(extracted, monkeypatch, tmp_path)
    assert ST.steer_producers(study, None)[0][0] == "extract"
    assert ST.steer_config(study, None)["sae_release"]["hash"]
    (folder / "layer_3" / "sae.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match=r"(?s)layer_3/sae\.safetensors is missing.*"
                                                r"09b_release_saes\.py.*pip install"):
        ST.steer_run(study, None, {})
    assert not ST.steer_dir(study).exists()  # failed before any work


def test_release_without_the_study_layer(extracted, tmp_path, monkeypatch):
    from neuro_sae.pipeline import _interpret_step as IN

    study, _ = _study(extracted, monkeypatch, tmp_path, layers=(1, 2))
    with pytest.raises(ValueError, match=r"sae.release 'neuro-sae/tiny-test'.*layers \[1, 2\], not of the "
                                         r"study's last SAE layer 3"):
        IN.interpret_config(study, None)
