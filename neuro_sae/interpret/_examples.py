"""Top-activating examples, log-mel averages and activation traces over spectrograms."""

from __future__ import annotations

import numpy as np

from ..utils import check_int, fill_doc, logger, verbose

MEL_RATE = 100.0  # log-mel frames per second
SFREQ = 16000


def _column(codes, feature):
    """Column index of a feature id."""
    where = np.flatnonzero(codes.feature_ids == int(feature))
    if not len(where):
        raise ValueError(
            f"feature {feature!r} is not among the codes' features "
            f"({codes.feature_ids.min()}..{codes.feature_ids.max()})."
        )
    return int(where[0])


@fill_doc
@verbose
def top_examples(codes, feature, *, n=5, per_clip=1, min_gap_s=1.0, verbose=None):
    """The strongest activations of a feature, as (clip, time) examples.

    Parameters
    ----------
    codes : ClipCodes
        The codes.
    feature : int
        Feature id.
    n : int
        Number of examples.
    per_clip : int
        At most this many examples from one clip.
    min_gap_s : float
        Examples of one clip lie at least this far apart.
    %(verbose)s

    Returns
    -------
    examples : pandas.DataFrame
        ``rank``, ``clip_id``, ``time`` (s from the clip start), ``activation``,
        strongest first.
    """
    import pandas as pd

    n, per_clip = check_int(n, "n"), check_int(per_clip, "per_clip")
    col = codes.codes[:, [_column(codes, feature)]].tocoo()
    order = np.argsort(-col.data, kind="stable")
    rows_ = col.row[order]
    vals = col.data[order]
    clip_ids = np.asarray(codes.frames["clip_id"]).astype(str)
    times = codes.frames["time"].to_numpy(float)
    picked, taken = [], {}
    for r, v in zip(rows_, vals):
        if v <= 0:
            break
        cid, t = clip_ids[r], times[r]
        prev = taken.setdefault(cid, [])
        if len(prev) >= per_clip or any(abs(t - p) < min_gap_s for p in prev):
            continue
        prev.append(t)
        picked.append(dict(clip_id=cid, time=float(t), activation=float(v)))
        if len(picked) == n:
            break
    out = pd.DataFrame(picked, columns=["clip_id", "time", "activation"])
    out.insert(0, "rank", np.arange(1, len(out) + 1))
    logger.info(f"{len(out)} top examples of feature {feature}")
    return out


def _clip_audio(codes, clip_id, cache=None):
    from ..io import read_audio

    if cache is not None and clip_id in cache:
        return cache[clip_id]
    path = codes.path_of(clip_id)
    if path is None:
        raise ValueError(f"clip {clip_id!r} has no audio path (column 'path' of the clip index).")
    audio, _ = read_audio(path, sfreq=SFREQ, verbose=False)
    if cache is not None:
        cache[clip_id] = audio
    return audio


def mel_frequencies(n_mels, fmin=50.0, fmax=8000.0):
    """Centre frequencies (Hz) of the HTK mel bands of :func:`neuro_sae.align.log_mel_spectrogram`."""
    mel = 2595.0 * np.log10(1 + np.array([fmin, fmax]) / 700.0)
    edges = 700.0 * (10 ** (np.linspace(mel[0], mel[1], n_mels + 2) / 2595.0) - 1)
    return edges[1:-1]


def _log_mel(audio, n_mels, fmin=50.0, fmax=8000.0, win_s=0.025):
    """log10 mel power, shape (n_mels, n_frames) at MEL_RATE, frame i centred on i / MEL_RATE."""
    from numpy.lib.stride_tricks import sliding_window_view

    from ..align import mel_filterbank

    win, hop = int(round(win_s * SFREQ)), int(round(SFREQ / MEL_RATE))
    n_frames = len(audio) // hop + 1
    padded = np.concatenate([np.zeros(win // 2), np.asarray(audio, float), np.zeros(win)])
    frames = sliding_window_view(padded, win)[::hop][:n_frames]
    power = np.abs(np.fft.rfft(frames * np.hanning(win + 2)[1:-1], axis=1)) ** 2
    mel = power @ mel_filterbank(n_mels, win, SFREQ, fmin, fmax, verbose=False)
    return np.log10(mel + 1e-10 * max(mel.max(), np.finfo(float).tiny)).T


@fill_doc
@verbose
def mel_average(codes, feature, *, n=20, window_s=1.0, n_mels=40, examples=None,
                verbose=None):
    """Average log-mel spectrogram of windows centred on a feature's strongest activations.

    Parameters
    ----------
    codes : ClipCodes
        The codes (clips with audio paths).
    feature : int
        Feature id.
    n : int
        Number of windows (the strongest activations, one per clip).
    window_s : float
        Window length in seconds (1 s in the paper).
    n_mels : int
        Mel bands.
    examples : pandas.DataFrame | None
        The windows' centres (``clip_id``, ``time``); ``None``: :func:`top_examples`.
    %(verbose)s

    Returns
    -------
    mel : ndarray, shape (n_mels, n_times)
        Mean log10 power (parts of windows beyond a clip's edges are left out).
    times : ndarray, shape (n_times,)
        Seconds from the activation.
    freqs : ndarray, shape (n_mels,)
        Centre frequency of each band (Hz).
    """
    if examples is None:
        examples = top_examples(codes, feature, n=n, verbose=False)
    half = int(round(window_s * MEL_RATE / 2))
    total = np.zeros((n_mels, 2 * half + 1))
    count = np.zeros(2 * half + 1)
    for cid, t in examples[["clip_id", "time"]].itertuples(index=False):
        spec = _log_mel(_clip_audio(codes, cid), n_mels)
        c = int(round(t * MEL_RATE))
        lo, hi = c - half, c + half + 1
        a, b = max(lo, 0), min(hi, spec.shape[1])
        if b <= a:
            continue
        total[:, a - lo:b - lo] += spec[:, a:b]
        count[a - lo:b - lo] += 1
    with np.errstate(invalid="ignore"):
        mel = total / count
    logger.info(f"Log-mel average of feature {feature} over {len(examples)} windows")
    return mel, np.arange(-half, half + 1) / MEL_RATE, mel_frequencies(n_mels)


@fill_doc
@verbose
def plot_mel_average(mel, times, freqs, *, feature=None, axes=None, show=False, verbose=None):
    """Draw a log-mel average (the paper's mel interpretation).

    Parameters
    ----------
    mel, times, freqs : ndarray
        The outputs of :func:`mel_average`.
    feature : int | None
        Feature id for the title.
    %(axes_show)s
    %(verbose)s

    Returns
    -------
    fig : matplotlib.figure.Figure
        The figure.
    """
    import matplotlib.pyplot as plt

    if axes is None:
        fig, axes = plt.subplots(figsize=(4, 3), layout="constrained")
    fig = axes.figure
    im = axes.pcolormesh(times, np.arange(len(freqs)), mel, shading="nearest", cmap="magma")
    ticks = np.linspace(0, len(freqs) - 1, 5).round().astype(int)
    axes.set_yticks(ticks, [f"{freqs[i]:.0f}" for i in ticks])
    axes.axvline(0, color="w", lw=0.8, ls="--")
    axes.set(xlabel="time from activation peak (s)", ylabel="mel band centre (Hz)",
             title="mean log-mel" + ("" if feature is None else f", feature {feature}"))
    fig.colorbar(im, ax=axes, label="log10 power")
    if show:
        plt.show()
    return fig


@fill_doc
@verbose
def plot_feature_examples(codes, feature, *, examples=None, n=3, context_s=1.5, n_mels=40,
                          show=False, verbose=None):
    """Activation traces over the spectrograms of a feature's top examples (Figs. 5, 6, 21).

    Parameters
    ----------
    codes : ClipCodes
        The codes (clips with audio paths).
    feature : int
        Feature id.
    examples : pandas.DataFrame | None
        Examples to draw (``clip_id``, ``time``); ``None``: the top ``n``.
    n : int
        Number of examples when ``examples`` is None.
    context_s : float
        Seconds drawn on each side of the peak.
    n_mels : int
        Mel bands.
    show : bool
        Show the figure.
    %(verbose)s

    Returns
    -------
    fig : matplotlib.figure.Figure
        One row per example.
    """
    import matplotlib.pyplot as plt

    if examples is None:
        examples = top_examples(codes, feature, n=n, verbose=False)
    n_ex = max(len(examples), 1)
    fig, axs = plt.subplots(n_ex, 1, figsize=(6.5, 2.0 * n_ex), layout="constrained",
                            squeeze=False)
    col = _column(codes, feature)
    freqs = mel_frequencies(n_mels)
    for ax, (cid, t) in zip(axs[:, 0], examples[["clip_id", "time"]].itertuples(index=False)):
        audio = _clip_audio(codes, cid)
        spec = _log_mel(audio, n_mels)
        st = np.arange(spec.shape[1]) / MEL_RATE
        keep = (st >= t - context_s) & (st <= t + context_s)
        if not keep.any():
            raise ValueError(
                f"the audio of clip {cid!r} ({len(audio) / SFREQ:.2f} s) ends before the "
                f"example at {t:.2f} s: the audio file is not the one that was encoded "
                "(was the corpus rebuilt after extraction?)."
            )
        ax.pcolormesh(st[keep], np.arange(n_mels), spec[:, keep], shading="nearest", cmap="magma")
        ticks = np.linspace(0, n_mels - 1, 4).round().astype(int)
        ax.set_yticks(ticks, [f"{freqs[i]:.0f}" for i in ticks])
        ax.set(ylabel="Hz", title=f"{cid} (peak {t:.2f} s)")
        sl = codes.clip_slice(cid)
        ft = codes.frames["time"].to_numpy(float)[sl]
        act = codes.codes[sl][:, [col]].toarray()[:, 0]
        win = (ft >= t - context_s) & (ft <= t + context_s)
        tw = ax.twinx()
        tw.plot(ft[win], act[win], color="cyan", lw=1.5)
        tw.set_ylabel(f"feature {feature}", color="cyan")
        tw.set_ylim(0, max(float(act.max()), 1e-6) * 1.1)
    axs[-1, 0].set_xlabel("time in clip (s)")
    if show:
        plt.show()
    return fig


@fill_doc
@verbose
def plot_activation_histogram(codes, feature, *, axes=None, show=False, verbose=None):
    """Histogram of a feature's non-zero activations, per domain.

    Parameters
    ----------
    codes : ClipCodes
        The codes.
    feature : int
        Feature id.
    %(axes_show)s
    %(verbose)s

    Returns
    -------
    fig : matplotlib.figure.Figure
        The figure.
    """
    import matplotlib.pyplot as plt

    col = codes.codes[:, [_column(codes, feature)]].tocoo()
    dom = codes.frame_domain()[col.row]
    if axes is None:
        fig, axes = plt.subplots(figsize=(4, 2.6), layout="constrained")
    fig = axes.figure
    vals = col.data
    bins = np.linspace(0, float(vals.max()) if len(vals) else 1.0, 31)
    for d in sorted(set(dom)):
        axes.hist(vals[dom == d], bins=bins, alpha=0.6, label=f"{d} ({(dom == d).sum()})")
    axes.set(xlabel="activation (non-zero frames)", ylabel="frames",
             title=f"feature {feature}: {len(vals)} active frames")
    if len(vals):
        axes.legend(fontsize=7, frameon=False)
    if show:
        plt.show()
    return fig
