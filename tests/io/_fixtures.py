"""Small datasets written in exactly the Broderick 2018 Dryad layout and the ds004408 BIDS layout."""

import warnings

import mne
import numpy as np
import soundfile as sf
from scipy.io import savemat

from neuro_sae.io._broderick import BIOSEMI128

SFREQ_AUDIO = 16000


def make_audio(dur, seed):
    """Noise bursts with a slow envelope (so envelopes and onsets have structure)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(dur * SFREQ_AUDIO)) / SFREQ_AUDIO
    env = 0.5 * (1 + np.sin(2 * np.pi * 3.0 * t + seed))
    return (0.2 * env * rng.normal(size=t.size)).astype(np.float32)


def write_dryad(root, *, subject=3, runs=(1, 2, 3), durs=(12.0, 9.5, 14.0), sfreq=128.0, seed=0):
    """Write ``EEG/Subject<N>/Subject<N>_Run<M>.mat`` and ``Stimuli/{Audio,Text}``.

    Returns the EEG (µV) and mastoids of each run, and the word onsets.
    """
    rng = np.random.default_rng(seed)
    folder = root / "EEG" / f"Subject{subject}"
    folder.mkdir(parents=True)
    (root / "Stimuli" / "Audio").mkdir(parents=True)
    (root / "Stimuli" / "Text").mkdir(parents=True)
    (root / "Stimuli" / "Envelopes").mkdir(parents=True)
    truth = {}
    for run, dur in zip(runs, durs):
        n = int(dur * sfreq)
        eeg = rng.normal(size=(n, 128)) * 10.0
        mast = rng.normal(size=(n, 2)) * 10.0 + 50.0
        savemat(folder / f"Subject{subject}_Run{run}.mat",
                dict(eegData=eeg, mastoids=mast, fs=np.array([[sfreq]])))
        sf.write(root / "Stimuli" / "Audio" / f"audio{run}.wav", make_audio(dur, run), SFREQ_AUDIO)
        onsets = np.sort(rng.uniform(0.2, dur - 0.5, 7 + run))
        words = np.empty(len(onsets), dtype=object)
        words[:] = [f"w{i}" for i in range(len(onsets))]
        savemat(root / "Stimuli" / "Text" / f"Run{run}.mat",
                dict(wordVec=words[:, None], onset_time=onsets[:, None], offset_time=onsets[:, None] + 0.2))
        env = np.abs(rng.normal(size=n))
        savemat(root / "Stimuli" / "Envelopes" / f"audio{run}_128Hz.mat", dict(env=env[:, None]))
        truth[run] = dict(eeg=eeg, mastoids=mast, onsets=onsets, env=env)
    return truth


def write_bids(root, *, subject="001", runs=(1, 2), durs=(6.0, 7.5), sfreq=512.0, seed=0,
               n_channels=128):
    """Write BrainVision runs at 512 Hz with word events through mne-bids, as in ds004408."""
    from mne_bids import BIDSPath, write_raw_bids

    rng = np.random.default_rng(seed)
    truth = {}
    for run, dur in zip(runs, durs):
        n = int(dur * sfreq)
        info = mne.create_info(BIOSEMI128[:n_channels], sfreq, "eeg")
        data = rng.normal(size=(n_channels, n)) * 1e-5
        raw = mne.io.RawArray(data, info, verbose=False)
        raw.set_meas_date(1_600_000_000 + 1000 * run)
        word_s = np.sort(rng.choice(np.arange(1, int(dur * 4) - 1) / 4, 5, replace=False))
        raw.set_annotations(mne.Annotations(word_s, np.full(5, 0.2), ["word"] * 5))
        bp = BIDSPath(subject=subject, task="listening", run=run, datatype="eeg", root=root)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            write_raw_bids(raw, bp, format="BrainVision", allow_preload=True, overwrite=True,
                           verbose=False)
        truth[run] = dict(data=raw.get_data(), words=word_s)
    return truth
