"""
TRFs on your own features, with MNE objects
===========================================

The TRF engine of :mod:`neuro_sae.encoding` works on any stimulus features, not only SAE
features: here two made-up features (a slow "envelope" and sparse "onsets") drive a simulated
32-channel EEG. We fit a forward TRF with leave-one-run-out cross-validation, read its held-out
prediction correlation, and turn the kernels into :class:`mne.EvokedArray` objects (times =
lags) for MNE's joint plots and topomaps.
"""

# %%
# Simulated data: three runs of 60 s at 64 Hz
# -------------------------------------------
# Each run is one stimulus presentation: runs are the unit of cross-validation. The brain
# response to each feature is a known kernel times a smooth topography, plus noise.
import matplotlib.pyplot as plt
import mne
import numpy as np

from neuro_sae.encoding import TRF

sfreq, n_runs, run_s = 64.0, 3, 60.0
rng = np.random.default_rng(0)
montage = mne.channels.make_standard_montage("biosemi32")
info = mne.create_info(montage.ch_names, sfreq, ch_types="eeg")
info.set_montage(montage)
pos = np.array([montage.get_positions()["ch_pos"][ch] for ch in montage.ch_names])

lags = np.arange(0, 0.4, 1 / sfreq)
kernels = np.stack([np.sin(2 * np.pi * lags / 0.4) * np.exp(-lags / 0.1),  # envelope: early
                    -np.exp(-((lags - 0.2) ** 2) / 0.002)])  # onsets: negative, at 200 ms
topos = np.stack([np.exp(-np.sum((pos - pos[i]) ** 2, axis=1) / 0.004) for i in (12, 27)])

X_runs, Y_runs = [], []
for _ in range(n_runs):
    n = int(run_s * sfreq)
    envelope = np.convolve(rng.standard_normal(n), np.hanning(16), mode="same")
    onsets = (rng.random(n) < 0.03).astype(float)
    X = np.column_stack([envelope / envelope.std(), onsets / onsets.std()])
    Y = sum(np.convolve(X[:, j], kernels[j])[:n, None] * topos[j] for j in range(2))
    Y += 2.0 * rng.standard_normal(Y.shape)
    X_runs.append(X)
    Y_runs.append(Y)
raws = [mne.io.RawArray(Y.T * 1e-6, info, verbose=False) for Y in Y_runs]  # volts
print(raws[0])

# %%
# Fit the TRF
# -----------
# ``alphas`` is the ridge grid searched by leave-one-run-out cross-validation; the lag
# window is inclusive and a positive lag means the EEG follows the stimulus (MNE's sign).
trf = TRF(tmin=-0.1, tmax=0.5, sfreq=sfreq, alphas=np.logspace(-1, 8, 10))
trf.fit(X_runs, [raw.get_data().T * 1e6 for raw in raws])
print(f"chosen alphas (median over channels): {np.median(trf.alpha_):g}")
# held-out r of every channel at its chosen alpha (mean over the leave-one-run-out folds)
r = trf.cv_scores_.mean(axis=0).max(axis=0)
print(f"held-out r: best channel {r.max():.2f}, median {np.median(r):.2f}")

# %%
# Kernels as MNE Evoked objects
# -----------------------------
# :meth:`~neuro_sae.encoding.TRF.to_evoked` returns one :class:`mne.EvokedArray` per
# feature, so every MNE plot applies.
evokeds = trf.to_evoked(info)
for name, evoked in zip(["envelope", "onsets"], evokeds):
    evoked.plot_joint(times=[0.05, 0.2], title=f"TRF: {name}", show=False)

# %%
# Held-out prediction correlation per channel
# -------------------------------------------
fig, ax = plt.subplots(figsize=(4, 3))
mne.viz.plot_topomap(r, info, axes=ax, show=False)
ax.set_title("held-out r")
plt.show()
