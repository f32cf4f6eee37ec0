"""
The permutation test and max-T
==============================

Many features times many channels make a large family of tests. neuro_sae fits one TRF per
feature and channel (:func:`~neuro_sae.encoding.univariate_sweep`) and tests every held-out r
against a circular-shift null (:func:`~neuro_sae.stats.sweep_permutation_test`): each
permutation shifts every run's EEG against its stimulus, refits every fold (alphas re-chosen
as on the observed data) and keeps the maximum r over the whole family. Comparing each
observed r with that max-T null controls the family-wise error.
"""

# %%
# Twelve features, two of which drive the EEG
# -------------------------------------------
import matplotlib.pyplot as plt
import numpy as np

from neuro_sae.encoding import univariate_sweep
from neuro_sae.stats import sweep_permutation_test
from neuro_sae.viz import plot_null_distribution

sfreq, n_runs, n_times, n_features, n_channels = 64.0, 4, 2560, 12, 8
rng = np.random.default_rng(1)
lags = np.arange(0, 0.3, 1 / sfreq)
kernel = np.sin(np.pi * lags / 0.3)
planted = {3: [0, 1, 2], 7: [4, 5]}  # feature -> channels it drives

X_runs, Y_runs = [], []
for _ in range(n_runs):
    X = np.stack([np.convolve(rng.standard_normal(n_times), np.hanning(12), mode="same")
                  for _ in range(n_features)], axis=1)
    Y = rng.standard_normal((n_times, n_channels))
    for feat, chans in planted.items():
        Y[:, chans] += 0.05 * np.convolve(X[:, feat], kernel)[:n_times, None]
    X_runs.append(X)
    Y_runs.append(Y)

# %%
# The sweep: one TRF per feature x channel, nested leave-one-run-out CV
# ---------------------------------------------------------------------
sweep = univariate_sweep(X_runs, Y_runs, sfreq=sfreq, tmin=0.0, tmax=0.3,
                         alphas=np.logspace(0, 4, 3),
                         feature_names=[f"f{i}" for i in range(n_features)],
                         ch_names=[f"EEG{i:02d}" for i in range(n_channels)])
print(sweep)

# %%
# The permutation test
# --------------------
# 399 permutations keep this example fast; use 1,000 or more for a study (p-values below
# 1 / (n_permutations + 1) are not resolved).
perm = sweep_permutation_test(X_runs, Y_runs, sweep, n_permutations=399, random_state=0)
table = perm.to_frame().sort_values("p_fwe")
print(table.head(8).to_string())

# %%
# Which tests survive?
# --------------------
# Only the planted feature x channel pairs should have ``p_fwe < 0.05``.
significant = np.argwhere(perm.p_fwe < 0.05)
print("significant (feature, channel):", [tuple(map(int, ij)) for ij in significant])

# %%
# The max-T null beside the observed statistics
# ---------------------------------------------
best = perm.r.max(axis=1)
top = np.argsort(best)[::-1][:3]
fig, ax = plt.subplots(figsize=(6, 3.5))
plot_null_distribution(perm.max_null, best[top], labels=[f"f{i}" for i in top], axes=ax,
                       show=False)
plt.show()
