"""Audio reading: any file soundfile reads (wav, flac, ogg) to mono float32 at 16 kHz."""

from __future__ import annotations

from math import gcd

import numpy as np

from ..utils import check_fname, check_positive, fill_doc, logger, verbose


def _wav_declared_frames(fname):
    """Frames the RIFF/WAVE header declares and frames the file holds (None when not WAV).

    Returns ``None`` for other formats and for headers that declare no length (streamed
    WAVs write 0 or 0xFFFFFFFF as the data size).
    """
    import struct

    size = fname.stat().st_size
    with open(fname, "rb") as fid:
        head = fid.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None
        block = None
        pos = 12
        while pos + 8 <= size:
            fid.seek(pos)
            cid, csize = struct.unpack("<4sI", fid.read(8))
            if cid == b"fmt ":
                fmt = fid.read(16)
                if len(fmt) < 16:
                    return None
                block = struct.unpack("<HHIIHH", fmt)[4]
            elif cid == b"data":
                if not block or csize in (0, 0xFFFFFFFF):
                    return None
                return csize // block, max(size - pos - 8, 0) // block
            pos += 8 + csize + (csize & 1)
    return None


def _check_complete(fname, n_read, sfreq_in, info):
    """Raise when the file holds less audio than its header declares (a cut file)."""
    declared = _wav_declared_frames(fname)
    slack = 0
    if declared is not None:
        n_header, n_held = declared
    else:  # other formats: the header's frame count against what could be decoded
        n_header, n_held = int(info.frames), int(n_read)
        if n_header <= 0 or n_header >= 2**62:  # unknown length
            return
        slack = int(0.1 * sfreq_in)  # compressed formats may state an estimated length
    if n_header > n_held + slack:
        raise ValueError(
            f"{fname} is truncated: its header declares {n_header / sfreq_in:.3f} s of audio "
            f"({n_header} frames at {sfreq_in:g} Hz) but the file holds only "
            f"{n_held / sfreq_in:.3f} s ({n_held} frames). The file was cut short (an "
            "interrupted copy, download or export): copy or export it again; if the short "
            "audio is really the stimulus, rewrite it with a consistent header (e.g. "
            "'sox in.wav out.wav'; sox is the Debian package sox, installed by make sysdeps)."
        )


@fill_doc
@verbose
def read_audio(fname, *, sfreq=16000, return_info=False, verbose=None):
    """Read an audio file as mono float32 at ``sfreq``.

    Channels are averaged (logged at INFO) and the signal is resampled with
    :func:`scipy.signal.resample_poly` using the rational factor ``sfreq / file_rate``
    reduced by their greatest common divisor (e.g. 44.1 kHz to 16 kHz is up 160, down 441;
    its Kaiser-windowed FIR removes content above the new Nyquist frequency).

    A file that holds less audio than its header declares (a WAV cut short by an
    interrupted copy: libsndfile would quietly return the part that is there) raises an
    error naming the file and both durations.

    Parameters
    ----------
    fname : str | os.PathLike
        Audio file in a format libsndfile reads (WAV, FLAC, OGG Vorbis, ...).
    sfreq : int
        Output sampling rate in Hz (16000, the rate both encoders expect).
    return_info : bool
        Also return what the file was before the conversion (for provenance).
    %(verbose)s

    Returns
    -------
    audio : ndarray of float32, shape (n_samples,)
        The mono signal at ``sfreq`` (values as stored, typically in [-1, 1]).
    sfreq : int
        The sampling rate of ``audio`` in Hz.
    info : dict
        Only with ``return_info=True``: ``orig_sfreq`` (Hz), ``orig_n_channels``,
        ``orig_n_samples``, ``duration_s``, ``format`` and ``subtype`` (libsndfile's
        names) and ``fname`` (the path as a string).
    """
    import soundfile as sf

    fname = check_fname(fname, "fname", must_exist=False)
    if not fname.is_file():
        raise FileNotFoundError(
            f"Audio file not found: {fname}. Fix the path, or the manifest keys that give it: "
            "stimuli.root (the folder, relative to the manifest) and stimuli.runs[id=...].file."
        )
    check_positive(sfreq, "sfreq")
    if int(sfreq) != sfreq:
        raise ValueError(f"sfreq must be an integer number of Hz, got {sfreq!r} instead.")
    sfreq = int(sfreq)
    try:
        file_info = sf.info(str(fname))
        audio, sfreq_in = sf.read(fname, dtype="float64", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError) as err:
        raise ValueError(
            f"Could not read {fname} as audio ({err}). Supported formats are those of "
            "libsndfile (WAV, FLAC, OGG Vorbis, AIFF, ...); convert the file, e.g. with "
            "'sox in.mp3 -r 16000 -c 1 out.flac' (Debian package sox). A file that decoded partly may be "
            "truncated: copy or export it again."
        ) from err
    _check_complete(fname, len(audio), sfreq_in, file_info)
    n_channels = audio.shape[1]
    info = dict(
        fname=str(fname), orig_sfreq=float(sfreq_in), orig_n_channels=int(n_channels),
        orig_n_samples=int(audio.shape[0]), duration_s=audio.shape[0] / float(sfreq_in),
        format=str(file_info.format), subtype=str(file_info.subtype),
    )
    if n_channels > 1:
        logger.info(f"Averaging {n_channels} audio channels of {fname.name} to mono")
    audio = audio.mean(axis=1)
    if sfreq_in != sfreq:
        g = gcd(int(sfreq_in), sfreq)
        up, down = sfreq // g, int(sfreq_in) // g
        logger.info(f"Resampling {fname.name} from {sfreq_in} Hz to {sfreq} Hz (up {up}, down {down})")
        from scipy.signal import resample_poly

        audio = resample_poly(audio, up, down)
    audio = np.ascontiguousarray(audio, dtype=np.float32)
    if return_info:
        return audio, sfreq, info
    return audio, sfreq
