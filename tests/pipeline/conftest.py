"""A tiny study for the pipeline tests: a tiny random Whisper, 4 short runs (one stored as
stereo 44.1 kHz), simulated subjects; built once per session, copied per test."""

import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import yaml


def _tiny_whisper(folder):
    import torch
    from transformers import WhisperConfig, WhisperForConditionalGeneration

    cfg = WhisperConfig(
        vocab_size=64, num_mel_bins=80, d_model=48, encoder_layers=3, encoder_attention_heads=4,
        decoder_layers=1, decoder_attention_heads=4, encoder_ffn_dim=96, decoder_ffn_dim=96,
        max_source_positions=1500, max_target_positions=32, pad_token_id=1, bos_token_id=2,
        eos_token_id=3, decoder_start_token_id=2,
    )  # fmt: skip
    gen = torch.Generator().manual_seed(0)
    model = WhisperForConditionalGeneration(cfg)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.2 if p.ndim > 1 else p)
    model.save_pretrained(folder)


def _stimuli(folder, n_runs, seconds):
    from scipy.signal import resample_poly

    from neuro_sae.data import demo_stimuli_dir
    from neuro_sae.io import read_audio

    folder.mkdir()
    src = sorted(Path(demo_stimuli_dir()).glob("run0*.ogg"))[:n_runs]
    runs = []
    for i, fname in enumerate(src, 1):
        audio, sfreq = read_audio(fname)
        seg = audio[: int(seconds * sfreq)]
        if i == 2:  # one run stored as stereo 44.1 kHz
            seg44 = resample_poly(seg, 441, 160).astype(np.float32)
            sf.write(folder / f"r{i}.wav", np.stack([seg44, 0.5 * seg44], axis=1), 44100)
        else:
            sf.write(folder / f"r{i}.wav", seg, sfreq)
        runs.append(dict(id=f"r{i}", file=f"r{i}.wav"))
    return runs


def tiny_manifest_dict(root, runs, *, subjects=("01", "02"), seconds=12):
    """The manifest of a tiny simulated study (fast settings)."""
    return dict(
        name="tiny",
        derivatives=str(root / "derivatives"),
        subjects=list(subjects),
        stimuli=dict(root="stimuli", runs=runs),
        eeg=dict(simulate=True, sfreq=64.0, l_freq=1.0, h_freq=8.0),
        backbone=dict(name=str(root / "tiny-whisper"), layers="all", context_s=5.0),
        sae=dict(layers="last", expansion=2, k=4, n_steps=30, batch_size=128),
        features=dict(min_rate=0.5, max_features=6),
        trf=dict(tmin=-0.1, tmax=0.3, edge_s=0.05, alphas=[1.0, 1e3]),
        stats=dict(n_permutations=39, alpha=0.05, vp_features=None),
        simulation=dict(n_planted=2, snr=0.3, random_state=3),
    )


@pytest.fixture(scope="session")
def built_study(tmp_path_factory):
    """A tiny simulated study with every step of the chain run (figures excepted).

    Returns the study folder (manifest ``tiny.yaml``, ``stimuli/``, ``tiny-whisper/``,
    ``derivatives/``). Tests copy it with :func:`copy_study` before changing anything.
    """
    from neuro_sae.manifest import load_manifest
    from neuro_sae.pipeline import run_study

    root = tmp_path_factory.mktemp("built")
    _tiny_whisper(root / "tiny-whisper")
    runs = _stimuli(root / "stimuli", 4, 12)
    (root / "tiny.yaml").write_text(yaml.safe_dump(tiny_manifest_dict(root, runs)))
    run_study(load_manifest(root / "tiny.yaml"), figures=False, verbose="WARNING")
    return root


def copy_study(src, dst, **overrides):
    """Copy a built study to ``dst`` (derivatives included), the manifest's paths
    pointing into the copy; ``overrides`` replace manifest sections."""
    shutil.copytree(src, dst)
    man = yaml.safe_load((dst / "tiny.yaml").read_text())
    man["derivatives"] = str(dst / "derivatives")
    man["backbone"]["name"] = str(dst / "tiny-whisper")
    for key, val in overrides.items():
        if isinstance(val, dict):
            man.setdefault(key, {}).update(val)
        else:
            man[key] = val
    (dst / "tiny.yaml").write_text(yaml.safe_dump(man))
    return dst / "tiny.yaml"
