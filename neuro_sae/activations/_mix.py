"""Online noise/music mixing and extraction on the fly (no store on disk)."""

from __future__ import annotations

import numpy as np

from ..backbones import SFREQ, Backbone, n_frames_for
from ..utils import (
    check_array,
    check_random_state,
    fill_doc,
    logger,
    validate_type,
    verbose,
)
from ._clips import check_clips, clip_seconds, load_clip
from ._extract import _to_mono_16k, extract_activations
from ._stream import (
    _batches,
    _check_stream_args,
    _FrameStream,
    read_corpus_weights,
    sampling_probabilities,
)


@fill_doc
@verbose
def mix_audio(signal, noise, snr_db, *, random_state=None, verbose=None):
    """Add ``noise`` to ``signal`` at a given signal-to-noise ratio.

    The noise is cut at a random offset when longer than the signal and tiled when
    shorter, then scaled by ``g`` so that
    ``10 log10(mean(signal**2) / mean((g * noise)**2)) = snr_db`` over the signal's
    length. A silent signal (zero power) is returned unchanged: no SNR is defined.

    Parameters
    ----------
    signal : array, shape (n_samples,)
        The clean audio.
    noise : array, shape (n_noise_samples,)
        The noise (or music), at the same sampling rate.
    snr_db : float
        Signal-to-noise ratio in dB.
    %(random_state)s
    %(verbose)s

    Returns
    -------
    mixed : ndarray of float32, shape (n_samples,)
        ``signal + g * noise``.
    """
    s = check_array(signal, "signal", ndim=1)
    n = check_array(noise, "noise", ndim=1)
    if not len(n) or not np.any(n):
        raise ValueError("noise is empty or silent; pass a noise clip with non-zero samples.")
    rng = check_random_state(random_state)
    if len(n) > len(s):
        off = int(rng.integers(0, len(n) - len(s) + 1))
        n = n[off : off + len(s)]
    elif len(n) < len(s):
        n = np.tile(n, -(-len(s) // len(n)))[: len(s)]
    p_s, p_n = np.mean(s**2) if len(s) else 0.0, np.mean(n**2) if len(n) else 0.0
    if p_s == 0 or p_n == 0:
        return s.astype(np.float32)
    gain = np.sqrt(p_s / (p_n * 10 ** (float(snr_db) / 10)))
    return (s + gain * n).astype(np.float32)


class AudioMixer:
    """Online augmentation: add noise and/or music at a random SNR (as in the paper).

    Each call adds, independently, a random noise clip with probability
    ``p_noise`` and a random music clip with probability ``p_music``, each at an
    SNR drawn uniformly from ``snr_db`` (the paper: 0.05, 0.025, 0-20 dB).

    Parameters
    ----------
    noise, music : list of array | list of path-like | None
        Pools of 16 kHz mono clips (arrays) or audio files (read at 16 kHz).
    p_noise, p_music : float
        Probabilities in [0, 1].
    snr_db : tuple of float
        ``(low, high)`` of the uniform SNR distribution in dB.
    """

    def __init__(self, noise=None, music=None, *, p_noise=0.05, p_music=0.025,
                 snr_db=(0.0, 20.0)):
        self.pools = {}
        for name, pool, p in (("noise", noise, p_noise), ("music", music, p_music)):
            p = float(p)
            if not 0 <= p <= 1:
                raise ValueError(f"p_{name} must be in [0, 1], got {p} instead.")
            clips = []
            for item in pool or []:
                if isinstance(item, np.ndarray):
                    clips.append(check_array(item, name, ndim=1).astype(np.float32))
                else:
                    x, sr = load_clip(dict(path=item))
                    clips.append(_to_mono_16k(x, sr))
            if p > 0 and not clips:
                raise ValueError(
                    f"p_{name}={p} but the {name} pool is empty; pass {name}=[clips] or "
                    f"p_{name}=0."
                )
            self.pools[name] = (clips, p)
        lo, hi = (float(v) for v in snr_db)
        if not lo <= hi:
            raise ValueError(f"snr_db must be (low, high) with low <= high, got {snr_db}.")
        self.snr_db = (lo, hi)

    def __repr__(self):
        parts = [f"{k}: {len(c)} clips, p={p:g}" for k, (c, p) in self.pools.items()]
        return f"<AudioMixer | {'; '.join(parts)}, SNR {self.snr_db[0]:g}-{self.snr_db[1]:g} dB>"

    def apply(self, audio, rng):
        """Mix one 16 kHz clip; returns ``(mixed, events)``.

        ``events`` lists ``(kind, clip_index, snr_db)`` for each addition.
        """
        events = []
        for name, (clips, p) in self.pools.items():
            if p > 0 and rng.random() < p:
                j = int(rng.integers(len(clips)))
                snr = float(rng.uniform(*self.snr_db))
                audio = mix_audio(audio, clips[j], snr, random_state=rng)
                events.append((name, j, snr))
        return audio, events


@fill_doc
@verbose
def stream_activations(backbone, clips, *, layers=None, batch_size=2500, buffer_batches=100,
                       corpus_weights=None, mixer=None, n_batches=None, drop_last=False,
                       output="numpy", window_s=None, context_s=None, random_state=None,
                       verbose=None):
    """Shuffled batches of frames extracted on the fly (nothing written to disk).

    Clips are read in a random order, optionally mixed with noise/music
    (``mixer``) before extraction, extracted with :func:`extract_activations`,
    and their frames go through a shuffle buffer of ``buffer_batches`` batches.
    Without ``corpus_weights``, one epoch in which every frame of every clip is
    returned once; with them, an endless stream (bounded by ``n_batches``) where a
    frame comes from corpus ``c`` with probability proportional to ``w_c`` times
    its duration, as in :func:`iter_store_batches`.

    Parameters
    ----------
    backbone : Backbone
        The encoder.
    clips : list of dict | list of path-like | pandas.DataFrame
        As in :func:`build_activation_store`.
    layers : int | list of int | None
        One layer (array batches) or several (dict batches); ``None``: all.
    batch_size : int
        Frames per batch.
    buffer_batches : int
        Shuffle buffer size in batches.
    corpus_weights : dict | str | path-like | None
        See :func:`read_corpus_weights`.
    mixer : AudioMixer | None
        Online noise/music augmentation applied to the audio before extraction.
    n_batches : int | None
        Stop after this many batches.
    drop_last : bool
        Drop a last batch smaller than ``batch_size`` (epoch mode).
    output : str
        ``"numpy"`` or ``"torch"`` (float32).
    window_s, context_s : float | None
        Windowing, as in :func:`extract_activations`.
    %(random_state)s
    %(verbose)s

    Returns
    -------
    batches : generator
        Arrays ``(batch_size, d_model)`` or dicts layer -> array.
    """
    validate_type(backbone, Backbone, "backbone")
    validate_type(mixer, (AudioMixer, None), "mixer")
    clips = check_clips(clips)
    _check_stream_args(batch_size, buffer_batches, n_batches, output)
    single = isinstance(layers, (int, np.integer)) and not isinstance(layers, bool)
    layers = backbone.check_layers(layers)
    rng = check_random_state(random_state)
    capacity = batch_size * buffer_batches

    def make_source_fn(sub, gen):
        def source():
            for i in gen.permutation(len(sub)):
                clip = sub[int(i)]
                audio, sfreq = load_clip(clip)
                x = _to_mono_16k(audio, sfreq)
                if mixer is not None:
                    x, events = mixer.apply(x, gen)
                    if events:
                        logger.debug(f"{clip['clip_id']}: mixed {events}")
                if n_frames_for(len(x), backbone.kind) < 1:
                    logger.warning(f"Skipping clip {clip['clip_id']!r}: no frame in "
                                   f"{len(x)} samples at 16 kHz.")
                    continue
                acts = extract_activations(backbone, x, layers=layers, window_s=window_s,
                                           context_s=context_s, verbose="WARNING")
                yield {n: acts.get(n) for n in layers}

        return source

    if corpus_weights is None:
        streams = [_FrameStream(make_source_fn(clips, rng), capacity, rng)]
        probs = None
    else:
        sizes = {}
        for c in clips:
            sizes[c["corpus"]] = sizes.get(c["corpus"], 0.0) + clip_seconds(c) * SFREQ
        probs = sampling_probabilities(sizes, read_corpus_weights(corpus_weights))
        probs = {c: p for c, p in probs.items() if p > 0}
        gens = dict(zip(probs, rng.spawn(len(probs))))
        streams = {
            c: _FrameStream(make_source_fn([x for x in clips if x["corpus"] == c], gens[c]),
                            max(1, int(np.ceil(capacity * probs[c]))), gens[c], cycle=True)
            for c in probs
        }
    return _batches(streams, probs, batch_size=batch_size, n_batches=n_batches,
                    drop_last=drop_last, layers=layers, single=single, output=output, rng=rng)
