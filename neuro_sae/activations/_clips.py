"""Clip lists for corpus extraction: validation, audio loading and content hashes."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..io import hash_array, hash_file
from ..utils import check_positive

_CLIP_KEYS = ("clip_id", "path", "audio", "sfreq", "corpus", "domain")


def check_clips(clips):
    """Normalise a clip list into a list of dicts.

    Each clip has ``clip_id`` (str, unique), either ``path`` (an audio file) or
    ``audio`` (an array) with ``sfreq`` (Hz, default 16000), ``corpus`` (default
    ``"default"``) and ``domain`` (default ``"unknown"``). ``clips`` may be a list
    of dicts, a list of paths, or a :class:`pandas.DataFrame` with those columns.
    """
    try:
        import pandas as pd

        if isinstance(clips, pd.DataFrame):
            clips = clips.to_dict("records")
    except ImportError:  # pragma: no cover
        pass
    if isinstance(clips, (str, os.PathLike, dict)) or not hasattr(clips, "__iter__"):
        raise TypeError(
            "clips must be a list of dicts (clip_id, path or audio + sfreq, corpus, domain), a "
            f"list of audio paths or a pandas DataFrame, got {type(clips).__name__} instead."
        )
    out, seen = [], set()
    for i, clip in enumerate(clips):
        if isinstance(clip, (str, os.PathLike)):
            clip = dict(path=clip)
        if not isinstance(clip, dict):
            raise TypeError(
                f"clips[{i}] must be a dict or an audio path, got {type(clip).__name__} instead."
            )
        bad = sorted(set(clip) - set(_CLIP_KEYS) - {"id"})
        if bad:
            raise ValueError(
                f"clips[{i}] has unknown key(s) {bad}; allowed keys are {list(_CLIP_KEYS)}."
            )
        has_path = clip.get("path") is not None and not (
            isinstance(clip.get("path"), float) and np.isnan(clip["path"])
        )
        has_audio = clip.get("audio") is not None and not (
            isinstance(clip.get("audio"), float) and np.isnan(clip["audio"])
        )
        if has_path == has_audio:
            raise ValueError(
                f"clips[{i}] must have exactly one of 'path' (an audio file) and 'audio' (an "
                f"array), got {'both' if has_path else 'neither'}."
            )
        cid = clip.get("clip_id", clip.get("id"))
        if cid is None:
            cid = Path(clip["path"]).stem if has_path else f"clip{i:06d}"
        cid = str(cid)
        if cid in seen:
            raise ValueError(f"clip_id {cid!r} appears more than once in clips; ids must be unique.")
        seen.add(cid)
        sfreq = clip.get("sfreq")
        sfreq = 16000.0 if sfreq is None or (isinstance(sfreq, float) and np.isnan(sfreq)) \
            else float(sfreq)
        check_positive(sfreq, f"clips[{i}]['sfreq']")
        item = dict(
            clip_id=cid,
            corpus=str(clip.get("corpus") or "default"),
            domain=str(clip.get("domain") or "unknown"),
            sfreq=sfreq,
        )
        if has_path:
            path = Path(clip["path"]).expanduser()
            if not path.is_file():
                raise FileNotFoundError(f"clips[{i}] ({cid!r}): audio file {path} does not exist.")
            item["path"] = path
        else:
            item["audio"] = np.asarray(clip["audio"])
        out.append(item)
    if not out:
        raise ValueError("clips is empty; pass at least one clip.")
    return out


def clip_hash(clip):
    """Content hash of a clip (file bytes, or array bytes and rate)."""
    if "path" in clip:
        return hash_file(clip["path"])[:32]
    return hash_array(np.asarray(clip["audio"]), np.asarray(clip["sfreq"]))[:32]


def load_clip(clip):
    """Audio of a clip as (array, sfreq); files are read as mono at 16 kHz."""
    if "path" in clip:
        from ..io import read_audio

        return read_audio(clip["path"])
    return clip["audio"], clip["sfreq"]


def clip_seconds(clip):
    """Duration of a clip in seconds (from the file header for paths)."""
    if "path" in clip:
        import soundfile as sf

        info = sf.info(str(clip["path"]))
        return info.frames / info.samplerate
    audio = np.asarray(clip["audio"])
    n = max(audio.shape) if audio.ndim == 2 else audio.shape[0] if audio.ndim else 0
    return n / clip["sfreq"]
