"""Tiny randomly initialised encoders shared by the backbone and activation tests."""

from neuro_sae.backbones import Backbone
from neuro_sae.backbones._backbone import _random_init_


def tiny_whisper_config(**kw):
    """A small WhisperConfig: 30 s input (1500 frames) but d_model 40, 3 blocks."""
    from transformers import WhisperConfig

    params = dict(
        d_model=40, encoder_layers=3, encoder_attention_heads=4, encoder_ffn_dim=56,
        decoder_layers=2, decoder_attention_heads=4, decoder_ffn_dim=56, num_mel_bins=80,
        vocab_size=97, max_target_positions=24, max_source_positions=1500,
        pad_token_id=0, bos_token_id=1, eos_token_id=1, decoder_start_token_id=2,
    )
    params.update(kw)
    return WhisperConfig(**params)


def tiny_whisper(seed=0, full=False, **kw):
    """A tiny Whisper encoder (or full model) with deterministic random weights."""
    from transformers import WhisperForConditionalGeneration
    from transformers.models.whisper.modeling_whisper import WhisperEncoder

    cfg = tiny_whisper_config(**kw)
    model = WhisperForConditionalGeneration(cfg) if full else WhisperEncoder(cfg)
    return _random_init_(model, seed).eval()


def tiny_hubert(seed=0, **kw):
    """A tiny HubertModel (group-norm conv stem like HuBERT-base) with random weights."""
    from transformers import HubertConfig, HubertModel

    params = dict(
        hidden_size=36, num_hidden_layers=3, num_attention_heads=4, intermediate_size=52,
        conv_dim=(24,) * 7, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4,
    )
    params.update(kw)
    return _random_init_(HubertModel(HubertConfig(**params)), seed).eval()


def tiny_backbone(kind="whisper", seed=0, **kw):
    """A Backbone around a tiny random model."""
    model = tiny_whisper(seed, **kw) if kind == "whisper" else tiny_hubert(seed, **kw)
    return Backbone.from_model(model, kind=kind, name=f"tiny-{kind}")
