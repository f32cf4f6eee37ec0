"""The docdict: shared parameter descriptions written once and spliced in with
:func:`fill_doc`."""

from __future__ import annotations

import inspect

docdict: dict[str, str] = {}

docdict["verbose"] = """
verbose : bool | str | int | None
    Control verbosity of the logging output. If ``None``, use the level of the
    ``neuro_sae`` logger (see :func:`neuro_sae.set_log_level`); ``True`` is
    ``'INFO'`` and ``False`` is ``'WARNING'``."""

docdict["axes_show"] = """
axes : matplotlib.axes.Axes | None
    Where to draw.
show : bool
    Show the figure."""

docdict["sae_x"] = """
x : array-like | Tensor, shape (n_frames, d_in)
    Input frames."""

docdict["sae_x_hat"] = """
x_hat : array-like | Tensor, shape (n_frames, d_in)
    Reconstructions."""

docdict["sae_codes"] = """
codes : array-like | Tensor | scipy.sparse array, shape (n_frames, d_sae)
    SAE codes."""

docdict["frame_mask"] = """
mask : ndarray of bool, shape (n_frames,) | None
    ``True`` for valid (non-padding) frames; ``None``: all frames."""

docdict["manifest"] = """
manifest : Manifest
    The validated study manifest (see :func:`neuro_sae.manifest.load_manifest`)."""

docdict["out"] = """
out : str | os.PathLike
    The derivatives folder of the study (``--out``)."""

docdict["force"] = """
force : bool
    Recompute even when the step's cache record is valid (same input
    content hashes and configuration slice)."""

docdict["runtime"] = """
runtime : dict | None
    If a dict, seconds spent per stage are accumulated into it."""

docdict["n_jobs"] = """
n_jobs : int | None
    Number of jobs to run in parallel (joblib). ``None`` is serial unless a
    :func:`joblib.parallel_config` context says otherwise; ``-1`` uses all
    cores. Parallelism lives at one level at a time."""

docdict["random_state"] = """
random_state : None | int | numpy.random.Generator
    The source of randomness. ``None`` draws fresh entropy, an int makes the
    result reproducible, a Generator is used as is. Nothing is seeded
    globally."""

docdict["device"] = """
device : str | torch.device
    Torch device for the computation, e.g. ``"cpu"`` or ``"cuda"``."""

docdict["tmin_trf"] = """
tmin : float
    Start of the lag window in seconds. Lags follow MNE:
    ``delays = arange(round(tmin * sfreq), round(tmax * sfreq) + 1)``,
    inclusive; a positive lag means the brain response follows the stimulus
    (the EEG at time t is predicted from the stimulus at t - lag)."""

docdict["tmax_trf"] = """
tmax : float
    End of the lag window in seconds (inclusive; see ``tmin``)."""

docdict["sfreq_features"] = """
sfreq : float
    Sampling rate in Hz of the feature series and the EEG (the EEG rate after
    alignment, e.g. 128.0)."""

docdict["frame_times"] = """
times : ndarray, shape (n_frames,)
    Time of each frame in seconds from the stimulus start: the centre of the
    frame's receptive field (frame i of the Whisper encoder is at
    ``0.02 * i`` s; frame i of HuBERT/wav2vec2 at ``0.02 * i + 0.0125`` s)."""

docdict["layers"] = """
layers : int | list of int | None
    Encoder layers, 1-based: layer n is the output of the n-th transformer
    block and layer 0 the stem output (before the first block). ``None``
    means every block output (1 ... n_layers)."""

docdict["alphas"] = """
alphas : array-like of float
    Ridge penalties to try. Alphas are raw: added to the diagonal of the
    un-normalised lagged covariance ``X^T X`` summed over the training
    samples (no scaling by the number of samples or the sampling rate), so
    the same alpha means less shrinkage on longer recordings."""


def fill_doc(obj):
    """Fill the docdict placeholders (``%(...)s`` with a key) of a docstring.

    Parameters
    ----------
    obj : callable | type
        The function or class to document.

    Returns
    -------
    obj : callable | type
        The same object, with its docstring filled.
    """
    doc = obj.__doc__
    if not doc:
        return obj
    lines = doc.splitlines()
    indent = 4
    for line in lines[1:]:
        stripped = line.lstrip()
        if stripped:
            indent = len(line) - len(stripped)
            break
    pad = " " * indent
    filled = {}
    for key, val in docdict.items():
        body = inspect.cleandoc(val).splitlines()
        filled[key] = body[0] + "".join("\n" + pad + b for b in body[1:])
    try:
        obj.__doc__ = doc % filled
    except (KeyError, ValueError) as err:
        raise RuntimeError(f"Error documenting {obj.__qualname__}: {err}") from err
    return obj
