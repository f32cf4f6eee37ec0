"""Tests of the spliced-in downstream metrics: planted probe labels on a tiny random
HuBERT, and WER / cross-entropy on the real Whisper-base (requires_model)."""

import numpy as np
import pytest
import torch

from neuro_sae.backbones import Backbone
from neuro_sae.sae.downstream import _normalize_text, probe_splice_accuracy

SFREQ = 16000


def _tiny_hubert(seed=0):
    from transformers import HubertConfig, HubertModel

    from neuro_sae.backbones._backbone import _random_init_

    cfg = HubertConfig(
        hidden_size=36, num_hidden_layers=3, num_attention_heads=4, intermediate_size=52,
        conv_dim=(24,) * 7, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4,
    )
    model = _random_init_(HubertModel(cfg), seed).eval()
    return Backbone.from_model(model, kind="hubert", name="tiny-hubert")


def _clips(n_clips=6, seconds=1.0, seed=0):
    """Clips of alternating loud tone / quiet noise segments; frame label = segment kind."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SFREQ)
    waves, labels = [], []
    for _ in range(n_clips):
        seg = rng.integers(2, size=10)
        kind = np.repeat(seg, n // 10)
        t = np.arange(n) / SFREQ
        wave = np.where(kind == 1, 0.5 * np.sin(2 * np.pi * 300 * t), 0.02 * rng.standard_normal(n))
        waves.append(wave.astype(np.float32))
        centres = np.arange(n // 320) * 320 + 160
        labels.append(kind[np.minimum(centres, n - 1)])
    return waves, labels


def test_probe_identity_zero_and_mean_ablation():
    bb = _tiny_hubert()
    waves, labels = _clips()
    table = probe_splice_accuracy(bb, 2, lambda x: x, waves, labels).set_index("condition")
    # the identity splice changes nothing
    assert table.loc["sae", "accuracy"] == table.loc["clean", "accuracy"]
    # planted labels are linearly readable from the clean frames (large effect)
    assert table.loc["clean", "accuracy"] > 0.8
    # a constant layer carries no information: the probe falls to the majority class
    for cond in ("zero", "mean"):
        assert table.loc[cond, "accuracy"] == pytest.approx(table.loc[cond, "chance"])
    assert (table["n_test"] > 0).all() and (table["n_train"] > table["n_test"]).all()
    # a probe above the spliced layer sees the splice too
    up = probe_splice_accuracy(bb, 1, lambda x: torch.zeros_like(x), waves, labels,
                               probe_layer=3, conditions=["clean", "sae"])
    assert up["accuracy"].iloc[1] < up["accuracy"].iloc[0]
    with pytest.raises(ValueError, match="probe_layer"):
        probe_splice_accuracy(bb, 2, lambda x: x, waves, labels, probe_layer=1)
    with pytest.raises(ValueError, match="conditions"):
        probe_splice_accuracy(bb, 2, lambda x: x, waves, labels, conditions=["noise"])


def test_normalize_text():
    assert _normalize_text("  Alice, was beginning -- to get VERY tired!") == (
        "alice was beginning to get very tired"
    )


@pytest.mark.requires_model
def test_whisper_wer_and_cross_entropy_spliced():
    from importlib.resources import files

    from neuro_sae.backbones import installed_demo_models, load_backbone
    from neuro_sae.io import read_audio
    from neuro_sae.sae.downstream import whisper_splice_metrics

    if "whisper-base" not in installed_demo_models():
        pytest.skip("whisper-base demo weights not installed")
    bb = load_backbone("whisper-base")
    wave, _ = read_audio(files("neuro_sae.data") / "demo_stimuli" / "run01.ogg")
    wave = wave[: 6 * SFREQ]  # the first words of the chapter
    table = whisper_splice_metrics(bb, 3, lambda x: x, [wave]).set_index("condition")
    # identity splice: same transcript, same cross-entropy
    assert table.loc["sae", "wer"] == 0 and table.loc["clean", "wer"] == 0
    assert table.loc["sae", "cross_entropy"] == pytest.approx(
        table.loc["clean", "cross_entropy"], abs=1e-4
    )
    assert "alice" in _normalize_text(table.loc["clean", "transcript"])
    # ablating a layer destroys the transcript (large effects)
    for cond in ("zero", "mean"):
        assert table.loc[cond, "wer"] > 0.5
        assert table.loc[cond, "delta_cross_entropy"] > 1.0
