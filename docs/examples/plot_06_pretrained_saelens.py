"""
A pretrained SAE by name, exported to SAELens
=============================================

:func:`neuro_sae.sae.load_sae` accepts a checkpoint folder in any supported layout (neuro_sae's
``cfg.json`` + ``sae.safetensors``, the AudioSAE/dictionary_learning ``layer_<n>/ae.pt``,
SAELens) or the name of a released SAE, fetched through huggingface_hub's cache:
``load_sae("audiosae/whisper-small", layer=12)`` reads the paper's SAE of Whisper-small's
12th layer. These machines have no internet, so this example first writes a small SAE in the
released layout into a local hub cache (as ``huggingface_hub`` would after a download); with
``HF_HUB_OFFLINE=1`` only that cache is read. Online, skip that step.
"""

# %%
# A hub cache holding one snapshot of the release
# -----------------------------------------------
import json
import tempfile
from pathlib import Path

import numpy as np
import torch

from neuro_sae.sae import PRETRAINED_SAES, export_saelens, load_sae, read_saelens

release = PRETRAINED_SAES["audiosae/whisper-small"]
print(release)

d_in, d_sae, k, layer = 64, 256, 8, 12
g = torch.Generator().manual_seed(0)
decoder = torch.randn(d_in, d_sae, generator=g)
decoder /= decoder.norm(dim=0, keepdim=True)
state = {"encoder.weight": decoder.t().clone(), "encoder.bias": torch.zeros(d_sae),
         "decoder.weight": decoder, "b_dec": torch.zeros(d_in), "k": torch.tensor(k),
         "threshold": torch.tensor(0.2)}  # the learned inference threshold
config = {"trainer": {"dict_class": "BatchTopKSAE", "activation_dim": d_in, "dict_size": d_sae,
                      "k": k, "lm_name": "openai/whisper-small", "layer": layer}}

cache = Path(tempfile.mkdtemp(prefix="hub_"))
repo = cache / ("models--" + release.repo_id.replace("/", "--"))
commit = "0" * 40
snapshot = repo / "snapshots" / commit / f"layer_{layer}"
snapshot.mkdir(parents=True)
(repo / "refs").mkdir()
(repo / "refs" / "main").write_text(commit)
torch.save(state, snapshot / "ae.pt")
(snapshot / "config.json").write_text(json.dumps(config))

# %%
# Load it by name
# ---------------
sae = load_sae("audiosae/whisper-small", layer=layer, cache_dir=cache)
print(sae)
print(sae.cfg)

# %%
# Encode frames
# -------------
frames = torch.randn(100, d_in, generator=g)
codes = sae.encode(frames)
print(f"codes {tuple(codes.shape)}, {float((codes > 0).sum(1).float().mean()):.1f} active per frame")

# %%
# Export to SAELens and read it back
# ----------------------------------
# :func:`~neuro_sae.sae.export_saelens` writes SAELens's folder layout
# (``cfg.json`` + ``sae_weights.safetensors``), which ``sae_lens.SAE.load_from_disk`` loads
# with SAELens's own classes (the test suite checks that they agree).
folder = export_saelens(sae, Path(tempfile.mkdtemp()) / "whisper-small-layer12-saelens")
print(sorted(p.name for p in Path(folder).iterdir()))
back = read_saelens(folder, k=k)
with torch.no_grad():
    err = (back(frames) - sae(frames)).abs().max()
print(f"largest difference after the round trip: {float(err):.2e}")
assert np.isfinite(float(err))
