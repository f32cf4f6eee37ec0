"""Release SAEs of whisper-base (``neuro-sae/whisper-base``): one BatchTopK sparse
autoencoder per encoder layer, trained by neuro_sae on its offline corpus.

``RELEASE`` is the folder holding ``release.json`` and ``layer_<n>/{cfg.json,
sae.safetensors}``; neuro_sae finds it through the entry point group
``neuro_sae.sae_releases``: ``neuro_sae.sae.load_sae("neuro-sae/whisper-base", layer=6)``.
"""

from pathlib import Path

RELEASE = Path(__file__).parent
