"""Bad manifests: unknown keys and montages, invalid windows, splits and SAE folders."""

import yaml

from neuro_sae.manifest import ManifestError, load_manifest
from tests.bad_input import BadInput


def _write(tmp_path, **sections):
    (tmp_path / "stim").mkdir(exist_ok=True)
    (tmp_path / "stim" / "a.wav").write_bytes(b"")
    man = dict(name="bad", subjects=["01"], derivatives=str(tmp_path / "deriv"),
               stimuli=dict(root="stim", runs=[dict(id="a", file="a.wav")]))  # fmt: skip
    for key, val in sections.items():
        man[key] = val
    fname = tmp_path / "study.yaml"
    fname.write_text(yaml.safe_dump(man))
    return fname


def _case(**sections):
    def setup(tmp_path):
        fname = _write(tmp_path, **sections)
        return (lambda: load_manifest(fname, check_files=False)), None

    return setup


CASES = [
    BadInput(
        "manifest-montage-typo", _case(eeg=dict(montage="biosemi46")), ManifestError,
        [r"study\.yaml", r"'eeg\.montage'", r"'biosemi46'", r"Did you mean 'biosemi64'",
         r"Built-in montages: .*biosemi128"],
        "eeg.montage is neither a built-in MNE montage nor a file (typo of biosemi64)",
    ),
    BadInput(
        "manifest-montage-file-missing", _case(eeg=dict(montage="caps/my_cap.elc")), ManifestError,
        [r"'eeg\.montage'", r"caps/my_cap\.elc", r"existing montage file", r"relative to the manifest"],
        "eeg.montage names a montage file that does not exist",
    ),
    BadInput(
        "unknown-key-typo", _case(trf=dict(tmaxx=0.4)), ManifestError,
        [r"unknown key 'trf\.tmaxx'", r"Did you mean 'tmax'", r"Allowed keys here: .*edge_s"],
        "a misspelt key in the trf section",
    ),
    BadInput(
        "edge-negative", _case(trf=dict(edge_s=-0.1)), ManifestError,
        [r"'trf\.edge_s'", r"greater than or equal to 0", r"-0\.1"],
        "trf.edge_s below zero",
    ),
    BadInput(
        "trf-window-reversed", _case(trf=dict(tmin=0.5, tmax=0.1)), ManifestError,
        [r"trf\.tmin \(0\.5\) must be below trf\.tmax \(0\.1\)"],
        "trf.tmin above trf.tmax",
    ),
    BadInput(
        "split-unknown", _case(eeg=dict(split="paper")), ManifestError,
        [r"eeg\.split 'paper' is not one of eeg\.splits"],
        "eeg.split names a split that eeg.splits does not define",
    ),
    BadInput(
        "split-unknown-run",
        _case(eeg=dict(splits=dict(paper=dict(dev=["a"], test=["z9"])))), ManifestError,
        [r"eeg\.splits\.paper names runs \['z9'\]", r"not stimulus run ids"],
        "a split names a run that is not a stimulus run",
    ),
    BadInput(
        "pretrained-layer-not-int", _case(sae=dict(pretrained={"last": "sae_folder"})), ManifestError,
        [r"'sae\.pretrained", r"integer", r"'last'"],
        "sae.pretrained keyed by a name instead of a layer number",
    ),
    BadInput(
        "executor-typo", _case(executor="dask-lcoal:2"), ManifestError,
        [r"'executor'", r"'dask-lcoal:2'", r"'serial', 'processes:N', 'dask-local:N', 'dask:ADDRESS'",
         r"tcp://host:8786"],
        "executor is not one of the four forms",
    ),
    BadInput(
        "executor-zero-workers", _case(executor="processes:0"), ManifestError,
        [r"'executor'", r"'processes:0'", r"positive number of workers"],
        "an executor with zero workers",
    ),
    BadInput(
        "backbones-twice", _case(backbones=["whisper-base", "hubert-base-random", "hubert-base-random"]),
        ManifestError, [r"backbones name the same model twice", r"hubert-base-random", r"list each once"],
        "the same backbone listed twice in backbones",
    ),
    BadInput(
        "sae-layers-word", _case(sae=dict(layers="first")), ManifestError,
        [r"'sae\.layers", r"'last'", r"'all'", r"'first'"],
        "sae.layers is neither a list, 'last' nor 'all'",
    ),
]  # fmt: skip
