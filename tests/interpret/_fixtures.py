"""Planted clips with audio: tone bursts where feature 1 fires, noise where feature 2 fires."""

import numpy as np
import pandas as pd
import soundfile as sf

from neuro_sae.interpret import make_clip_codes

SFREQ = 16000
TONE_HZ = 2000.0
# clip -> (duration s, burst centre times s)
CLIPS = {"tone-a": (3.0, [1.0, 2.2]), "tone-b": (2.5, [1.4]), "noise-c": (3.5, [])}


def planted_audio_codes(root, random_state=0):
    """Write three WAV clips under ``root`` and return their planted ClipCodes."""
    rng = np.random.default_rng(random_state)
    (root / "audio").mkdir(parents=True, exist_ok=True)
    rows, arrays = [], {}
    for ii, (cid, (dur, bursts)) in enumerate(CLIPS.items()):
        n = int(dur * SFREQ)
        t = np.arange(n) / SFREQ
        x = 0.01 * rng.normal(size=n)
        n_frames = int(dur * 50)
        codes = np.zeros((n_frames, 5), np.float32)
        ft = np.arange(n_frames) / 50
        for jj, c in enumerate(bursts):
            on = np.abs(t - c) < 0.1
            x[on] += 0.5 * np.sin(2 * np.pi * TONE_HZ * t[on])
            codes[np.abs(ft - c) < 0.1, 1] = 2.0 + ii + 0.5 * jj  # peak strengths differ
        if cid.startswith("noise"):
            loud = (t > 1.0) & (t < 2.0)
            x[loud] += 0.3 * rng.normal(size=loud.sum())
            codes[(ft > 1.0) & (ft < 2.0), 2] = 1.0
        codes[:, 0] = 0.1  # always on
        sf.write(root / "audio" / f"{cid}.wav", x.astype(np.float32), SFREQ, subtype="PCM_16")
        arrays[cid] = codes
        rows.append(dict(id=cid, path=f"audio/{cid}.wav", duration=dur,
                         domain="sounds" if cid.startswith("noise") else "music",
                         labels=["noise"] if cid.startswith("noise") else ["tone"]))
    return make_clip_codes(arrays, pd.DataFrame(rows), layer=2, root=str(root), verbose=False)
