"""Extraction of encoder activations for one stimulus: resampling, windowing with
context, batched inference and stitching."""

from __future__ import annotations

import os
import time
from fractions import Fraction

import numpy as np

from ..backbones import (
    CONV_FIELD,
    CONV_STRIDE,
    LAYER_CONVENTION,
    SFREQ,
    Backbone,
    frame_times,
    n_frames_for,
)
from ..utils import (
    check_array,
    check_positive,
    fill_doc,
    logger,
    progress_bar,
    validate_type,
    verbose,
)
from ._container import Activations

_SAMPLES_PER_FRAME = CONV_STRIDE  # 320 samples = 20 ms for both encoders
# end of frame i's receptive field, in samples after the frame's start sample 320 i.
# Whisper: encoder frame i <- conv2 (k=3, stride 2) <- conv1 (k=3) <- mel frames
# 2i-2 .. 2i+2, each a centred 400-sample STFT window (hop 160), so samples
# [320 i - 520, 320 i + 520). HuBERT/wav2vec2: the conv stem, [320 i, 320 i + 400).
_RF_END = {"whisper": 520, "hubert": CONV_FIELD, "wav2vec2": CONV_FIELD}


class _DeviceSink:
    """Copies the kept frames of each batch from a CUDA device to the host arrays.

    Per batch: the kept rows of every window and layer are gathered on the device into
    one float32 tensor, copied without blocking into one of two pinned host buffers,
    and scattered into the output arrays only when that buffer is needed again (or at
    the end), so the copy and the host-side scatter overlap the next batches' forward.
    """

    def __init__(self, out, layers, cuda=True):
        self.out, self.layers, self.cuda = out, list(layers), cuda
        self.buffers = [None, None]
        self.pending = [None, None]
        self.turn = 0

    def put(self, res, rows):
        import torch

        kept = torch.stack([
            torch.cat([res[n][j, lo - start : hi - start] for j, (start, lo, hi) in enumerate(rows)])
            for n in self.layers
        ]).to(torch.float32)  # (n_layers, n_kept, d_model), on the device  # fmt: skip
        slot = self.turn % 2
        self.turn += 1
        self._drain(slot)
        buf = self.buffers[slot]
        if buf is None or buf.numel() < kept.numel():
            buf = self.buffers[slot] = torch.empty(kept.numel(), dtype=torch.float32,
                                                   pin_memory=self.cuda)  # fmt: skip
        host = buf[: kept.numel()].view(kept.shape)
        host.copy_(kept, non_blocking=self.cuda)
        event = None
        if self.cuda:
            event = torch.cuda.Event()
            event.record()
        self.pending[slot] = (event, host, [(lo, hi) for _, lo, hi in rows])

    def _drain(self, slot):
        if self.pending[slot] is None:
            return
        event, host, spans = self.pending[slot]
        if event is not None:
            event.synchronize()
        arr = host.numpy()
        for i, n in enumerate(self.layers):
            pos = 0
            for lo, hi in spans:
                self.out[n][lo:hi] = arr[i, pos : pos + hi - lo]
                pos += hi - lo
        self.pending[slot] = None

    def flush(self):
        for k in range(2):
            self._drain((self.turn + k) % 2)


def _sink_for(backbone, out, layers):
    """The overlapped device-to-host copier on a CUDA device, else None (direct copies)."""
    if backbone.device.type == "cuda":
        return _DeviceSink(out, layers)
    return None


def _to_mono_16k(audio, sfreq):
    """Check the audio, average channels and resample to 16 kHz (float32)."""
    from scipy.signal import resample_poly

    x = check_array(audio, "audio", ndim=(1, 2), dtype=np.float64)
    if x.ndim == 2:
        ch_axis = int(np.argmin(x.shape))
        logger.info(
            f"audio has shape {x.shape}: averaging its {x.shape[ch_axis]} channels (axis "
            f"{ch_axis}, the shorter one) to mono"
        )
        x = x.mean(axis=ch_axis)
    check_positive(sfreq, "sfreq")
    if sfreq != SFREQ:
        ratio = Fraction(SFREQ / float(sfreq)).limit_denominator(10_000)
        logger.info(f"Resampling audio from {sfreq:g} Hz to {SFREQ} Hz (x {ratio})")
        x = resample_poly(x, ratio.numerator, ratio.denominator)
    return x.astype(np.float32)


def _plan_windows(n_frames, win, ctx):
    """Window starts and kept frame ranges (all in frames).

    Window k starts at frame ``k * hop`` (``hop = win - 2 * ctx``) and covers frames
    ``[start, start + win)``. It keeps ``[start + ctx, start + win - ctx)``; the first
    keeps from frame 0 and the last up to ``n_frames``. Kept ranges tile the frames
    exactly, and every kept frame has at least ``ctx`` frames of context on each
    side inside its window, except where the audio starts or ends.
    """
    hop = win - 2 * ctx
    n_win = 1 + max(0, -(-(n_frames - win) // hop))
    plan = []
    for k in range(n_win):
        start = k * hop
        lo = 0 if k == 0 else start + ctx
        hi = n_frames if k == n_win - 1 else start + win - ctx
        plan.append((start, lo, hi))
    return plan


def _check_causal(backbone, ctx, step_s):
    """Causal step in frames; the window must fit Whisper's fixed input."""
    check_positive(step_s, "step_s")
    step = max(1, int(round(step_s * backbone.frame_rate)))
    if backbone.kind == "whisper":
        # frames whose receptive field (up to 520 samples after the frame) fits the input
        max_frames = (backbone.window_samples - _RF_END["whisper"]) // _SAMPLES_PER_FRAME + 1
        if ctx + step > max_frames:
            raise ValueError(
                f"context_s + step_s = {(ctx + step) / backbone.frame_rate:g} s does not fit the "
                f"{backbone.window_samples / SFREQ:g} s input of {backbone.name} in causal mode; "
                f"use context_s + step_s <= {max_frames / backbone.frame_rate:g}."
            )
    return step


def _plan_causal(n_frames, step, ctx):
    """Causal windows: kept ranges of ``step`` frames at the end of their window.

    Window k keeps frames ``[lo, hi) = [k * step, min((k + 1) * step, n_frames))``
    and starts at frame ``max(0, lo - ctx)``: up to ``ctx`` frames of past
    context, and the window's audio ends with the last kept frame's receptive field.
    """
    plan = []
    for lo in range(0, n_frames, step):
        plan.append((max(0, lo - ctx), lo, min(lo + step, n_frames)))
    return plan


@fill_doc
@verbose
def extract_activations(
    backbone,
    audio,
    *,
    sfreq=16000,
    layers=None,
    window_s=None,
    context_s=None,
    batch_size=4,
    stimulus_id=None,
    causal=False,
    step_s=0.02,
    audio_info=None,
    verbose=None,
):
    """Extract encoder activations of one stimulus, every requested layer at once.

    Long audio is cut into windows of ``window_s`` that overlap by
    ``2 * context_s``; each window keeps its central part, so every returned frame
    saw at least ``context_s`` of audio on both sides (except near the start and
    end of the stimulus), and the kept parts tile the stimulus exactly. Whisper
    windows are zero-padded to the model's 30 s input by its log-mel feature
    extractor; the frames of that padding are never returned. Audio no longer than
    one window goes through the model in a single pass.

    HuBERT/wav2vec2 windows are not padded (the last one is shorter). Chunking
    changes their activations slightly (attention spans one window only) and, for
    models whose convolutional stem uses group norm over time (HuBERT-base,
    wav2vec2-base), the normalisation statistics become per window, which matters
    for non-stationary audio: there prefer ``window_s`` as long as the stimulus
    (one pass; memory grows with the square of the window length).

    Frames returned: Whisper, the ``ceil(n_samples / 320)`` frames whose centre lies
    inside the audio; HuBERT/wav2vec2, the ``floor((n_samples - 400) / 320) + 1``
    frames of the convolutional stem. So ``mask`` is all True.

    **Causal mode** (``causal=True``, as in the sliding-window analyses of
    Anderson, Davis & Lalor 2024): every output frame only sees past audio. The
    frames are kept in segments of ``step_s`` (default one frame); each segment
    sits at the *end* of its own window, which starts up to ``context_s``
    (default 10 s) before the segment and ends with the receptive field of the
    segment's last frame (Whisper: 520 samples = 32.5 ms after that frame's time;
    HuBERT/wav2vec2: the end of its 400-sample conv window, 12.5 ms after the
    frame's time). The audio after it is never fed: Whisper's feature extractor
    pads the window to the model's 30 s input with zeros (silence, not future
    audio); HuBERT/wav2vec2 windows are not padded, and models that normalise
    their input (``backbone.normalize_audio``) normalise each window on its own
    instead of the whole stimulus. So frame ``i`` depends only on the audio before
    ``rf_end(i) + step_s - 0.02 s`` (with the default step: before the end of
    its own receptive field, ``320 i + 520`` samples for Whisper and
    ``320 i + 400`` for HuBERT/wav2vec2), and on at most ``context_s`` of audio
    before its segment. ``window_s`` is ignored. Frames, ``times`` and ``mask``
    are those of the non-causal mode.

    Cost: one window per segment, i.e. ``ceil(n_frames / (step_s * 50))``
    forward passes (50 per second of audio with the default step, against one per
    ``window_s - 2 * context_s`` non-causal). A Whisper window always costs a
    full 30 s encoder pass, whatever ``context_s``; a HuBERT window costs
    ``context_s + step_s`` of audio. A larger ``step_s`` divides the cost but
    lets frames see up to ``step_s - 0.02`` s of future audio.

    Parameters
    ----------
    backbone : Backbone
        From :func:`neuro_sae.backbones.load_backbone`.
    audio : array, shape (n_samples,) | (n_samples, n_channels) | str | os.PathLike
        The waveform, or an audio file (read with :func:`neuro_sae.io.read_audio`,
        whose original rate and channel count then enter the provenance). Several
        channels are averaged to mono (logged at INFO).
    sfreq : float
        Sampling rate of ``audio`` in Hz; other rates than 16000 are resampled
        with :func:`scipy.signal.resample_poly`. Ignored for a file.
    %(layers)s
        The last layer is the encoder's ``last_hidden_state``: for Whisper, the
        output of the last block followed by the encoder's final layer norm (as in
        transformers' ``hidden_states[-1]``, 4.x and 5.x alike, and the released
        AudioSAE checkpoints). Other layers are raw block outputs.
    window_s : float | None
        Window length in seconds (Whisper: at most its input length, 30 s).
        ``None``: Whisper's input length (30 s for the released models), 30 s
        for HuBERT/wav2vec2.
    context_s : float | None
        Context kept on each side of a window's central part, in seconds
        (``2 * context_s < window_s``); with ``causal=True`` the past context
        before each kept segment. ``None``: ``min(5, window_s / 6)`` s (5 s for
        30 s windows), or 10 s when causal.
    batch_size : int
        Windows per forward pass.
    stimulus_id : str | None
        Identifier stored in the result.
    causal : bool
        If True, each frame only sees past audio (see above).
    step_s : float
        Causal mode only: length of the kept segment of each window, in
        seconds (rounded to whole 20 ms frames, at least one).
    audio_info : dict | None
        What the audio was before it was converted to the array given: the
        ``info`` of ``read_audio(..., return_info=True)`` (``orig_sfreq``,
        ``orig_n_channels``, ``fname``, ...). ``None``: the array is the original
        (its rate ``sfreq`` and channel count are recorded).
    %(verbose)s

    Returns
    -------
    acts : Activations
        ``data[layer]`` float32 arrays of shape ``(n_frames, d_model)``, frame
        ``times`` (see :func:`neuro_sae.backbones.frame_times`), ``mask`` (all
        True) and provenance (backbone, revision, layer convention, dtype,
        windowing: ``causal``, ``context_s``, ``step_s``, ``n_windows``; the
        audio: ``orig_sfreq`` and ``orig_n_channels`` of the original recording,
        ``audio_file`` when known).
    """
    import torch

    validate_type(backbone, Backbone, "backbone")
    validate_type(batch_size, "int", "batch_size")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size} instead.")
    validate_type(stimulus_id, (str, None), "stimulus_id")
    layers = backbone.check_layers(layers)
    validate_type(causal, bool, "causal")
    if window_s is None:
        window_s = 30.0 if backbone.window_samples is None else backbone.window_samples / SFREQ
    check_positive(window_s, "window_s")
    if context_s is None:
        context_s = 10.0 if causal else min(5.0, window_s / 6)
    check_positive(context_s, "context_s", strict=False)
    win = int(round(window_s * backbone.frame_rate))
    ctx = int(round(context_s * backbone.frame_rate))
    if causal:
        step = _check_causal(backbone, ctx, step_s)
    elif backbone.kind == "whisper":
        max_win = backbone.window_samples // _SAMPLES_PER_FRAME
        if win > max_win:
            raise ValueError(
                f"window_s={window_s} is longer than the {max_win / backbone.frame_rate:g} s "
                f"input of {backbone.name}; use window_s <= {max_win / backbone.frame_rate:g}."
            )
    if not causal and win - 2 * ctx < 1:
        raise ValueError(
            f"context_s={context_s} leaves no central part in windows of window_s={window_s} "
            f"(need 2 * context_s < window_s); lower context_s, e.g. context_s={window_s / 6:g}."
        )
    validate_type(audio_info, (dict, None), "audio_info")
    if isinstance(audio, (str, os.PathLike)):
        from ..io import read_audio

        audio, sfreq, audio_info = read_audio(audio, sfreq=SFREQ, return_info=True)
    shape = np.shape(audio)
    x = _to_mono_16k(audio, sfreq)
    audio_info = dict(audio_info or {})
    orig = dict(
        orig_sfreq=float(audio_info.get("orig_sfreq", sfreq)),
        orig_n_channels=int(audio_info.get("orig_n_channels", min(shape) if len(shape) == 2 else 1)),
        audio_file=audio_info.get("fname"),
    )
    if backbone.normalize_audio and not causal:  # causal: per window, below
        x = (x - x.mean()) / np.sqrt(x.var() + 1e-7)
    n_frames = n_frames_for(len(x), backbone.kind)
    if n_frames < 1:
        raise ValueError(
            f"audio is too short: {len(x)} samples at 16 kHz give no {backbone.kind} frame "
            f"(need at least {1 if backbone.kind == 'whisper' else CONV_FIELD} samples, "
            f"{1 / SFREQ if backbone.kind == 'whisper' else CONV_FIELD / SFREQ:g} s)."
        )
    if causal:
        plan = _plan_causal(n_frames, step, ctx)
        # from the window's first frame to the receptive-field end of its last kept frame
        rf_end = _RF_END[backbone.kind]
        segments = [
            x[s * _SAMPLES_PER_FRAME : (hi - 1) * _SAMPLES_PER_FRAME + rf_end] for s, _, hi in plan
        ]
        if backbone.normalize_audio:  # statistics of the window's own (past) audio only
            segments = [(g - g.mean()) / np.sqrt(g.var() + 1e-7) for g in segments]
        win = max(hi - s for s, _, hi in plan)
    else:
        plan = _plan_windows(n_frames, win, ctx)
        # audio span of a window of `win` frames
        span = win * _SAMPLES_PER_FRAME + (
            0 if backbone.kind == "whisper" else CONV_FIELD - CONV_STRIDE
        )
        segments = [x[s * _SAMPLES_PER_FRAME : s * _SAMPLES_PER_FRAME + span] for s, _, _ in plan]
    out = {n: np.empty((n_frames, backbone.d_model), np.float32) for n in layers}
    # group windows of equal input length (HuBERT: the last one is shorter)
    order = sorted(range(len(plan)), key=lambda i: (-len(segments[i]), i))
    batches, cur = [], []
    for i in order:
        if cur and (len(cur) == batch_size or len(segments[i]) != len(segments[cur[0]])):
            batches.append(cur)
            cur = []
        cur.append(i)
    batches.append(cur)
    logger.info(
        f"Extracting layers {layers} of {backbone.name} for {len(x) / SFREQ:.2f} s of audio: "
        f"{n_frames} frames in {len(plan)} {'causal ' if causal else ''}window(s) of "
        f"{'up to ' if causal else ''}{win / backbone.frame_rate:g} s"
    )
    t0 = time.perf_counter()
    sink = _sink_for(backbone, out, layers)
    with progress_bar(total=len(plan), desc=f"{backbone.name} windows", unit="win") as bar:
        for batch in batches:
            inputs = backbone.prepare([segments[i] for i in batch])
            res = backbone.forward_layers(inputs, layers)
            rows = [plan[i] for i in batch]
            if sink is not None:
                sink.put(res, rows)
            else:
                for n, tensor in res.items():
                    arr = tensor.to(device="cpu", dtype=torch.float32).numpy()
                    for j, (start, lo, hi) in enumerate(rows):
                        out[n][lo:hi] = arr[j, lo - start : hi - start]
            bar.update(len(batch))
        if sink is not None:
            sink.flush()
    logger.info(f"Extracted {n_frames} frames in {time.perf_counter() - t0:.1f} s")
    provenance = dict(
        backbone=backbone.name,
        kind=backbone.kind,
        revision=backbone.revision,
        backbone_provenance=backbone.provenance,
        layer_convention=LAYER_CONVENTION,
        dtype=str(backbone.dtype).replace("torch.", ""),
        window_s=win / backbone.frame_rate,
        context_s=ctx / backbone.frame_rate,
        causal=causal,
        step_s=step / backbone.frame_rate if causal else None,
        n_windows=len(plan),
        input_sfreq=float(sfreq),
        n_samples_16k=len(x),
        normalize_audio=backbone.normalize_audio,
        **orig,
    )
    return Activations(
        data=out,
        times=frame_times(n_frames, backbone.kind),
        mask=np.ones(n_frames, bool),
        sfreq=backbone.frame_rate,
        backbone=backbone.name,
        stimulus_id=stimulus_id,
        provenance=provenance,
    )
