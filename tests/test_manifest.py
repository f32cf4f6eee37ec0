"""Tests of manifest validation and path resolution."""

from pathlib import Path

import pytest
import yaml

from neuro_sae.manifest import Manifest, ManifestError, load_manifest

ROOT = Path(__file__).resolve().parents[1]


def _write(tmp_path, content, name="study.yaml"):
    fname = tmp_path / name
    fname.write_text(yaml.safe_dump(content))
    return fname


def _minimal(tmp_path):
    (tmp_path / "stim").mkdir(exist_ok=True)
    (tmp_path / "stim" / "a.wav").write_bytes(b"")
    return dict(
        name="mini",
        subjects=["01", "02"],
        stimuli=dict(root="stim", runs=[dict(id="a", file="a.wav")]),
    )


def test_demo_manifest_loads():
    m = load_manifest(ROOT / "data_manifests" / "demo.yaml")
    assert isinstance(m, Manifest)
    assert len(m.stimuli.runs) >= 5 and len(m.subjects) >= 3
    files = m.stimulus_files()
    assert all(f.is_file() for f in files.values())


def test_paths_relative_to_manifest(tmp_path):
    fname = _write(tmp_path, _minimal(tmp_path))
    m = load_manifest(fname)
    assert m.stimulus_files()["a"] == (tmp_path / "stim" / "a.wav").resolve()
    assert m.eeg_file("01", tmp_path / "d") == tmp_path / "d" / "sub-01" / "eeg" / "sub-01_task-listen_eeg.fif"
    with pytest.raises(ValueError, match="Subject '1' is not in the manifest.*Did you mean '01'"):
        m.eeg_file("1", tmp_path)


def test_typo_suggestion(tmp_path):
    content = _minimal(tmp_path)
    content["trf"] = dict(tmni=-0.1)
    content["subjcts"] = ["01"]
    with pytest.raises(ManifestError) as err:
        load_manifest(_write(tmp_path, content))
    msg = str(err.value)
    assert "unknown key 'trf.tmni'. Did you mean 'tmin'?" in msg
    assert "unknown key 'subjcts'. Did you mean 'subjects'?" in msg
    assert "study.yaml" in msg


def test_missing_file_named(tmp_path):
    content = _minimal(tmp_path)
    content["stimuli"]["runs"].append(dict(id="b", file="missing.wav"))
    with pytest.raises(FileNotFoundError, match=r"stimuli.runs\[id='b'\].file does not exist.*missing.wav"):
        load_manifest(_write(tmp_path, content))


def test_bad_values(tmp_path):
    content = _minimal(tmp_path)
    content["eeg"] = dict(l_freq=9.0, h_freq=8.0)
    with pytest.raises(ManifestError, match="l_freq"):
        load_manifest(_write(tmp_path, content))
    content["eeg"] = dict(h_freq=70.0, sfreq=128.0)
    with pytest.raises(ManifestError, match="Nyquist"):
        load_manifest(_write(tmp_path, content))
    content = _minimal(tmp_path)
    content["stimuli"]["runs"].append(dict(id="a", file="a.wav"))
    with pytest.raises(ManifestError, match="unique"):
        load_manifest(_write(tmp_path, content))


def test_overrides(tmp_path):
    m = load_manifest(_write(tmp_path, _minimal(tmp_path)), overrides={"stats": {"n_permutations": 99}})
    assert m.stats.n_permutations == 99
    assert m.stats.alpha == 0.05
