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


@pytest.mark.parametrize("name", ["broderick2018_dryad", "broderick2018_bids"])
def test_broderick_manifests_parse(name):
    """The Broderick manifests parse offline (data not present) and carry the paper's split."""
    m = load_manifest(ROOT / "data_manifests" / f"{name}.yaml", check_files=False)
    assert len(m.subjects) == 19 and len(m.stimuli.runs) == 20
    assert m.eeg.format == name.split("_")[1]
    assert m.eeg.sfreq == 128.0 and (m.eeg.l_freq, m.eeg.h_freq) == (1.0, 8.0)
    dev, test = m.split_runs("paper")
    assert dev == ["run01", "run02"] and test == ["run03", "run04", "run05"]
    assert m.split_runs() == ([r.id for r in m.stimuli.runs],) * 2  # no split selected: all runs
    m2 = load_manifest(ROOT / "data_manifests" / f"{name}.yaml", check_files=False,
                       overrides={"eeg": {"split": "paper"}})
    assert m2.split_runs() == (dev, test)
    assert str(m.resolve(m.eeg.root)).endswith(("broderick2018", "ds004408"))


def test_eeg_section_options(tmp_path):
    """New eeg options validate: unknown split, split runs, formats needing a root/task."""
    content = _minimal(tmp_path)
    content["eeg"] = dict(splits=dict(s=dict(dev=["a"], test=["zz"])))
    with pytest.raises(ManifestError, match=r"eeg.splits.s names runs \['zz'\]"):
        load_manifest(_write(tmp_path, content))
    content["eeg"] = dict(splits=dict(s=dict(dev=["a"], test=["a"])))
    with pytest.raises(ManifestError, match="both dev and test"):
        load_manifest(_write(tmp_path, content))
    content["eeg"] = dict(split="paper")
    with pytest.raises(ManifestError, match="not one of eeg.splits"):
        load_manifest(_write(tmp_path, content))
    content["eeg"] = dict(format="bids", root="x")
    with pytest.raises(ManifestError, match="eeg.task"):
        load_manifest(_write(tmp_path, content))
    content["eeg"] = dict(format="dryad")
    with pytest.raises(ManifestError, match="eeg.root"):
        load_manifest(_write(tmp_path, content))
    content["eeg"] = dict(format="mne", event_id={1: "a"}, bads={"01": ["Cz"]})
    m = load_manifest(_write(tmp_path, content))
    assert m.eeg.event_id == {1: "a"} and m.eeg.bads["01"] == ["Cz"]


def test_read_subject_eeg_dryad(tmp_path):
    """read_subject_eeg dispatches on eeg.format (Dryad fixture, mastoid reference)."""
    from neuro_sae.io import read_subject_eeg
    from tests.io._fixtures import write_dryad

    write_dryad(tmp_path / "data", subject=2, runs=(1, 2), durs=(3.0, 2.5))
    content = dict(
        name="d", subjects=["2"],
        stimuli=dict(root="data/Stimuli", runs=[dict(id="run01", file="Audio/audio1.wav"),
                                                 dict(id="run02", file="Audio/audio2.wav")]),
        eeg=dict(format="dryad", root="data", reference="mastoids", sfreq_file=128.0,
                 bads={"2": ["A3"]}, montage="biosemi128"),
    )
    m = load_manifest(_write(tmp_path, content))
    raw = read_subject_eeg(m, "2")
    assert raw.info["bads"] == ["A3"] and len(raw.ch_names) == 128
    stim = [d for d in raw.annotations.description if d.startswith("stim/")]
    assert stim == ["stim/run01", "stim/run02"]


def test_backbones_layers_and_executor(tmp_path):
    """backbones x layers: the first backbone is the primary one (no tag), the others get
    file-safe tags; per-backbone layers and pretrained fall back to the sae section for the
    primary one only; executor settings are parsed, typos refused."""
    from neuro_sae.manifest import model_tag
    from neuro_sae.pipeline._executor import parse_executor

    content = _minimal(tmp_path)
    content["sae"] = dict(layers="all", pretrained="audiosae/whisper-small")
    content["backbones"] = ["whisper-small", dict(name="openai/whisper-tiny.en", layers=[3, 4]),
                            dict(name="./models/hubert_local/", layers="last")]  # fmt: skip
    content["executor"] = "dask:tcp://10.0.0.5:8786"
    m = load_manifest(_write(tmp_path, content))
    models = m.models()
    assert [s.tag for s in models] == [None, "openai-whisper-tiny.en", "hubert-local"]  # no "_" (BIDS)
    assert [s.layers for s in models] == ["all", [3, 4], "last"]
    assert [s.pretrained for s in models] == ["audiosae/whisper-small", None, None]
    assert model_tag("org/x y") == "org-x-y"
    assert parse_executor(m.executor) == ("dask", "tcp://10.0.0.5:8786")
    assert parse_executor("processes:3") == ("processes", 3)
    assert parse_executor("dask-local:2") == ("dask-local", 2)
    assert parse_executor("serial") == ("serial", None)
    for bad in ("processes", "processes:0", "dask-local:x", "dask:", "threads:2"):
        with pytest.raises(ValueError, match="is not one of 'serial', 'processes:N'"):
            parse_executor(bad)
    # without backbones: the one of backbone.name, with sae.layers
    del content["backbones"]
    m = load_manifest(_write(tmp_path, content))
    assert m.models() == [(None, "auto", "all", "audiosae/whisper-small")]
