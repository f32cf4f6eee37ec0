"""
Training an SAE and reading its metrics
=======================================

A sparse autoencoder learns a dictionary of directions such that every frame is a sparse
non-negative mix of a few of them. Here the frames are drawn from a planted dictionary
(:func:`~neuro_sae.simulation.make_sparse_dictionary_data`), so we can check that a BatchTopK
SAE (the paper's architecture) recovers it. On real data the frames come from
:func:`~neuro_sae.activations.extract_activations` of a Whisper or HuBERT layer.
"""

# %%
# Frames with a known dictionary
# ------------------------------
import matplotlib.pyplot as plt
import numpy as np

from neuro_sae.sae import SAEConfig, TrainConfig, metrics, train_sae
from neuro_sae.simulation import make_sparse_dictionary_data

X, atoms, codes = make_sparse_dictionary_data(20_000, d_in=48, n_atoms=96, k=4, noise=0.01,
                                              random_state=0)
print(X.shape, atoms.shape, f"{codes.nnz / codes.shape[0]:.0f} active atoms per frame")

# %%
# Train a BatchTopK SAE
# ---------------------
# ``SAEConfig`` holds the architecture (saved in ``cfg.json``), ``TrainConfig`` the
# optimiser (Adam, linear decay over the last 20% of steps, as in the paper).
sae_config = SAEConfig(d_in=48, d_sae=192, k=4, architecture="batchtopk")
train_config = TrainConfig(n_steps=300, batch_size=256, lr=5e-3, log_every=25)
sae, history = train_sae(X.astype(np.float32), sae_config, train_config, random_state=0,
                         n_threads=1)
print(history[["step", "loss", "l0", "explained_variance", "dead_fraction"]].tail(4))

# %%
# Metrics on all frames
# ---------------------
# :func:`neuro_sae.sae.metrics.evaluate_sae` reports reconstruction (explained variance,
# FVU, cosine, relative bias) and sparsity (L0, dead and dense fractions).
scores = metrics.evaluate_sae(sae, X.astype(np.float32))
for key in ("explained_variance", "fvu", "cosine", "l0", "dead_fraction"):
    print(f"{key:>20}: {scores[key]:.3f}")

# %%
# Did it find the planted atoms?
# ------------------------------
# For every planted atom, the best cosine with any decoder direction.
decoder = sae.W_dec.detach().numpy()
decoder = decoder if decoder.shape[1] == 48 else decoder.T
decoder = decoder / np.linalg.norm(decoder, axis=1, keepdims=True)
best = np.abs(atoms @ decoder.T).max(axis=1)
print(f"atoms recovered (cosine > 0.9): {np.mean(best > 0.9):.0%}")

fig, axes = plt.subplots(1, 2, figsize=(8, 3))
axes[0].plot(history["step"], history["explained_variance"])
axes[0].set(xlabel="step", ylabel="explained variance (batch)")
axes[1].hist(best, bins=20)
axes[1].set(xlabel="best cosine with a decoder atom", ylabel="planted atoms")
fig.tight_layout()
plt.show()
