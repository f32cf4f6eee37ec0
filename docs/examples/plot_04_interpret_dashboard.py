"""
Interpreting features and opening the dashboard
===============================================

:mod:`neuro_sae.interpret` says what a feature is: how often it fires in speech, music and
other sounds (and the paper's domain assignment), which clip labels it detects (label
search), and its strongest examples, gathered in a static HTML dashboard. Here the SAE codes
of a few clips are planted by hand so that the answers are known: feature 1 fires on tone
bursts (music), feature 2 on noise bursts (sounds), feature 0 everywhere. On real data the
codes come from :func:`~neuro_sae.interpret.encode_clips` of an SAE over an activation store.
"""

# %%
# Clips with audio and their codes (50 frames per second)
# -------------------------------------------------------
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import soundfile as sf

from neuro_sae.interpret import (
    assign_domains,
    build_dashboard,
    feature_stats,
    label_search,
    make_clip_codes,
    plot_activation_histogram,
)

root = Path(tempfile.mkdtemp(prefix="neuro_sae_interpret_"))
(root / "audio").mkdir()
rng = np.random.default_rng(0)
rows, arrays = [], {}
for i in range(16):
    kind = "tone" if i % 2 == 0 else "noise"
    dur = 2.0 + 0.1 * i
    t = np.arange(int(dur * 16000)) / 16000
    wave = 0.01 * rng.standard_normal(t.size)
    frames = np.arange(int(dur * 50)) / 50
    codes = np.zeros((frames.size, 4), np.float32)
    codes[:, 0] = 0.2  # always on
    for centre in rng.uniform(0.3, dur - 0.3, size=2):
        on, fr = np.abs(t - centre) < 0.1, np.abs(frames - centre) < 0.1
        if kind == "tone":
            wave[on] += 0.4 * np.sin(2 * np.pi * 880 * t[on])
            codes[fr, 1] = rng.uniform(1, 3)
        else:
            wave[on] += 0.3 * rng.standard_normal(on.sum())
            codes[fr, 2] = rng.uniform(1, 3)
    cid = f"{kind}-{i}"
    sf.write(root / "audio" / f"{cid}.wav", wave.astype(np.float32), 16000)
    arrays[cid] = codes
    rows.append(dict(id=cid, path=f"audio/{cid}.wav", duration=dur,
                     domain="music" if kind == "tone" else "sounds", labels=[kind]))
clip_codes = make_clip_codes(arrays, pd.DataFrame(rows), layer=6, root=str(root))
print(clip_codes)

# %%
# Activation frequency per domain and the paper's domain assignment
# -----------------------------------------------------------------
stats = feature_stats(clip_codes)
print(stats.head(8).to_string())
assignment = assign_domains(stats)
print(assignment.to_string())

# %%
# Label search: which features detect which clip labels?
# ------------------------------------------------------
# F1 of "activation above a threshold" against each label, with a permutation null.
hits = label_search(clip_codes, n_permutations=50, random_state=0)
print(hits.sort_values("f1", ascending=False).head(4).to_string())

# %%
# One feature's activations, per domain
# -------------------------------------
fig = plot_activation_histogram(clip_codes, 1, show=False)
plt.show()

# %%
# The dashboard
# -------------
# A self-contained static site: a searchable index and one page per feature with audio
# players, spectrograms of the top examples and the labels it matched. Open
# ``index.html`` in a browser (``python -m webbrowser -t file://.../index.html``).
site = build_dashboard(clip_codes, root / "dashboard", n_features=3, n_examples=2,
                       stats=stats, assignment=assignment, label_hits=hits)
index = Path(site) / "index.html" if Path(site).is_dir() else Path(site)
print(index, sorted(p.name for p in index.parent.iterdir())[:6])
