"""Audio reading: any file soundfile reads (wav, flac, ogg) to mono float32 at 16 kHz."""

from __future__ import annotations

from math import gcd

import numpy as np

from ..utils import check_fname, check_positive, fill_doc, logger, verbose


@fill_doc
@verbose
def read_audio(fname, *, sfreq=16000, verbose=None):
    """Read an audio file as mono float32 at ``sfreq``.

    Channels are averaged (logged at INFO) and the signal is resampled with
    :func:`scipy.signal.resample_poly` using the rational factor ``sfreq / file_rate``
    reduced by their greatest common divisor (e.g. 44.1 kHz to 16 kHz is up 160, down 441;
    its Kaiser-windowed FIR removes content above the new Nyquist frequency).

    Parameters
    ----------
    fname : str | os.PathLike
        Audio file in a format libsndfile reads (WAV, FLAC, OGG Vorbis, ...).
    sfreq : int
        Output sampling rate in Hz (16000, the rate both encoders expect).
    %(verbose)s

    Returns
    -------
    audio : ndarray of float32, shape (n_samples,)
        The mono signal at ``sfreq`` (values as stored, typically in [-1, 1]).
    sfreq : int
        The sampling rate of ``audio`` in Hz.
    """
    import soundfile as sf

    fname = check_fname(
        fname,
        "fname",
        hint="Fix the path, or the manifest keys that give it: stimuli.root (the folder, "
        "relative to the manifest) and stimuli.runs[id=...].file",
    )
    check_positive(sfreq, "sfreq")
    if int(sfreq) != sfreq:
        raise ValueError(f"sfreq must be an integer number of Hz, got {sfreq!r} instead.")
    sfreq = int(sfreq)
    try:
        audio, sfreq_in = sf.read(fname, dtype="float64", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError) as err:
        raise ValueError(
            f"Could not read {fname} as audio ({err}). Supported formats are those of "
            "libsndfile (WAV, FLAC, OGG Vorbis, AIFF, ...); convert the file, e.g. with "
            "'sox in.mp3 -r 16000 -c 1 out.flac'."
        ) from err
    n_channels = audio.shape[1]
    if n_channels > 1:
        logger.info(f"Averaging {n_channels} audio channels of {fname.name} to mono")
    audio = audio.mean(axis=1)
    if sfreq_in != sfreq:
        g = gcd(int(sfreq_in), sfreq)
        up, down = sfreq // g, int(sfreq_in) // g
        logger.info(f"Resampling {fname.name} from {sfreq_in} Hz to {sfreq} Hz (up {up}, down {down})")
        from scipy.signal import resample_poly

        audio = resample_poly(audio, up, down)
    return np.ascontiguousarray(audio, dtype=np.float32), sfreq
