"""Streaming shuffled batches of frames: from a store or extracted on the fly, with
weighted corpus sampling and a shuffle buffer."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..utils import check_option, check_random_state, fill_doc, logger, validate_type, verbose

# the paper's Table 3 weights (sampling probability of a corpus ~ weight x size);
# data_manifests/corpus_weights_paper.yaml holds the same numbers (a test checks)
PAPER_CORPUS_WEIGHTS = {
    "LibriSpeech": 1.0, "LibriHeavy": 0.1, "MUSAN": 5.0, "WHAM": 2.0, "FSD50K": 5.0,
    "Nonspeech7k": 5.0, "ESD": 6.0, "Expresso": 5.0, "CREMA-D": 4.0, "DEMAND": 3.0,
    "MELD": 3.0, "VGGSound": 1.0, "VocalSound": 3.0, "MTG-Jamendo": 2.0,
}


def _preset_file(name):
    return Path(__file__).resolve().parents[2] / "data_manifests" / f"corpus_weights_{name}.yaml"


@fill_doc
@verbose
def read_corpus_weights(weights, *, verbose=None):
    """Corpus sampling weights from a preset name, a YAML file or a dict.

    The sampling probability of a corpus is proportional to its weight times its
    size (in frames), as in the paper (Table 3).

    Parameters
    ----------
    weights : str | path-like | dict
        ``"paper"`` (the paper's Table 3 weights, also in
        ``data_manifests/corpus_weights_paper.yaml``), a YAML file with a
        ``weights:`` mapping corpus -> weight, or such a dict.
    %(verbose)s

    Returns
    -------
    weights : dict of str to float
        Non-negative weights by corpus name.
    """
    if isinstance(weights, str) and weights == "paper":
        fname = _preset_file("paper")
        weights = fname if fname.is_file() else dict(PAPER_CORPUS_WEIGHTS)
    if isinstance(weights, (str, os.PathLike)):
        import yaml

        fname = Path(weights).expanduser()
        if not fname.is_file():
            raise FileNotFoundError(
                f"corpus_weights={str(weights)!r} is neither the preset 'paper' nor an existing "
                "YAML file; pass 'paper', a YAML path or a dict corpus -> weight."
            )
        with open(fname) as fid:
            content = yaml.safe_load(fid)
        if not isinstance(content, dict) or not isinstance(content.get("weights"), dict):
            raise ValueError(f"{fname} must hold a mapping 'weights: {{corpus: weight}}'.")
        weights = content["weights"]
    validate_type(weights, dict, "corpus_weights", "'paper', a YAML path or a dict")
    out = {}
    for name, w in weights.items():
        w = float(w)
        if not np.isfinite(w) or w < 0:
            raise ValueError(
                f"corpus_weights[{name!r}] must be a finite number >= 0, got {w} instead."
            )
        out[str(name)] = w
    return out


def sampling_probabilities(sizes, weights):
    """Probability of each corpus: weight x size, normalised (dict in, dict out)."""
    missing = sorted(set(sizes) - set(weights))
    if missing:
        raise ValueError(
            f"corpus_weights has no weight for the corpora {missing} (it has "
            f"{sorted(weights)}); add them, with 0 to leave a corpus out."
        )
    unused = sorted(set(weights) - set(sizes))
    if unused:
        logger.info(f"corpus_weights: no data for {unused}; ignored")
    mass = {c: weights[c] * sizes[c] for c in sorted(sizes)}
    total = sum(mass.values())
    if total <= 0:
        raise ValueError("corpus_weights gives zero weight to every corpus with data.")
    return {c: m / total for c, m in mass.items()}


class _FrameStream:
    """A shuffle buffer over a source of chunks (dicts layer -> (n, d) arrays).

    ``take(k)`` returns up to ``k`` frames. The buffer is filled to ``capacity``
    frames from the source, permuted, and its first half (or all of it once the
    source is exhausted) is handed out in order; so every frame of the source is
    returned exactly once. With ``cycle``, a new source pass starts when one ends.
    """

    def __init__(self, make_source, capacity, rng, *, cycle=False):
        self.make_source = make_source
        self.capacity = int(capacity)
        self.rng = rng
        self.cycle = cycle
        self.source = make_source()
        self.pending = []  # chunks not yet shuffled
        self.n_pending = 0
        self.ready = None  # shuffled frames handed out in order
        self.pos = 0
        self.exhausted = False
        self.n_pass = 0  # frames seen in the current pass over the source

    def _fill(self):
        while self.n_pending < self.capacity and not self.exhausted:
            try:
                chunk = next(self.source)
            except StopIteration:
                if not self.cycle:
                    self.exhausted = True
                    break
                if not self.n_pass:
                    raise ValueError(
                        "A corpus gave no frame in a whole pass over its clips (all empty "
                        "or too short); remove it or give it weight 0."
                    ) from None
                self.source = self.make_source()
                self.n_pass = 0
                continue
            n = len(next(iter(chunk.values())))
            self.n_pass += n
            if n:
                self.pending.append(chunk)
                self.n_pending += n
        if not self.n_pending:
            return False
        keys = list(self.pending[0])
        buf = {k: np.concatenate([c[k] for c in self.pending]) for k in keys}
        perm = self.rng.permutation(self.n_pending)
        n_out = self.n_pending if self.exhausted else max(1, self.n_pending // 2)
        out, rest = perm[:n_out], perm[n_out:]
        self.ready = {k: v[out] for k, v in buf.items()}
        self.pending = [{k: v[rest] for k, v in buf.items()}] if len(rest) else []
        self.n_pending = len(rest)
        self.pos = 0
        return True

    def take(self, k):
        parts = []
        while k > 0:
            n_ready = 0 if self.ready is None else len(next(iter(self.ready.values())))
            if self.pos >= n_ready and not self._fill():
                break
            n_ready = len(next(iter(self.ready.values())))
            m = min(k, n_ready - self.pos)
            parts.append({key: v[self.pos : self.pos + m] for key, v in self.ready.items()})
            self.pos += m
            k -= m
        if not parts:
            return None
        return {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}


def _emit(batch, layers, single, output):
    if output == "torch":
        import torch

        batch = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in batch.items()}
    return batch[layers[0]] if single else batch


def _batches(streams, probs, *, batch_size, n_batches, drop_last, layers, single, output, rng):
    """Batches from one stream (an epoch) or several weighted streams (endless)."""
    count = 0
    while n_batches is None or count < n_batches:
        if probs is None:
            batch = streams[0].take(batch_size)
            if batch is None or (drop_last and len(batch[layers[0]]) < batch_size):
                return
        else:
            names = list(probs)
            counts = rng.multinomial(batch_size, [probs[c] for c in names])
            parts = [streams[c].take(int(n)) for c, n in zip(names, counts) if n]
            batch = {k: np.concatenate([p[k] for p in parts]) for k in layers}
            perm = rng.permutation(len(batch[layers[0]]))
            batch = {k: v[perm] for k, v in batch.items()}
        yield _emit(batch, layers, single, output)
        count += 1


def _check_stream_args(batch_size, buffer_batches, n_batches, output):
    validate_type(batch_size, "int", "batch_size")
    validate_type(buffer_batches, "int", "buffer_batches")
    if batch_size < 1 or buffer_batches < 1:
        raise ValueError(
            f"batch_size and buffer_batches must be >= 1, got {batch_size} and "
            f"{buffer_batches} instead."
        )
    validate_type(n_batches, ("int", None), "n_batches")
    check_option("output", output, ("numpy", "torch"))


@fill_doc
@verbose
def iter_store_batches(store, *, layers=None, batch_size=2500, buffer_batches=100,
                       corpus_weights=None, n_batches=None, drop_last=False, output="numpy",
                       random_state=None, verbose=None):
    """Shuffled float32 batches of frames from an activation store.

    Shards are visited in a random order and each shard's frames in a random
    order; a shuffle buffer of ``buffer_batches`` batches mixes frames across
    shards (the paper: 100 batches of 2500 frames). Padding frames are never
    returned.

    - ``corpus_weights=None``: one epoch; every non-padding frame is returned
      exactly once (the last batch may be smaller unless ``drop_last``).
    - ``corpus_weights`` given: an endless stream (bounded by ``n_batches``) in
      which each frame comes from corpus ``c`` with probability
      ``w_c * n_c / sum_j w_j * n_j`` (``n_c`` = its number of frames), i.e. the
      paper's weight x size sampling; each corpus cycles through its own shuffled
      epochs.

    Parameters
    ----------
    store : ActivationStore | path-like
        The store.
    layers : int | list of int | None
        One layer (batches are arrays ``(batch_size, d_model)``) or several
        (dicts layer -> array); ``None``: all stored layers.
    batch_size : int
        Frames per batch.
    buffer_batches : int
        Shuffle buffer size, in batches.
    corpus_weights : dict | str | path-like | None
        See :func:`read_corpus_weights` (``"paper"`` for the paper's weights).
    n_batches : int | None
        Stop after this many batches.
    drop_last : bool
        Drop a last batch smaller than ``batch_size`` (epoch mode).
    output : str
        ``"numpy"`` arrays or ``"torch"`` tensors (float32, CPU).
    %(random_state)s
    %(verbose)s

    Returns
    -------
    batches : generator
        The batches.
    """
    from ._storeio import ActivationStore

    if not isinstance(store, ActivationStore):
        store = ActivationStore(store)
    _check_stream_args(batch_size, buffer_batches, n_batches, output)
    single = isinstance(layers, (int, np.integer)) and not isinstance(layers, bool)
    layers = store.check_layers(layers)
    rng = check_random_state(random_state)
    valid = store.index[~store.index["padding"].to_numpy(bool)]
    capacity = batch_size * buffer_batches

    def make_source_fn(frames, gen):
        by_shard = {int(s): g["row"].to_numpy() for s, g in frames.groupby("shard", sort=True)}
        shards = sorted(by_shard)

        def source():
            for s in gen.permutation(shards):
                rows = np.sort(by_shard[int(s)])
                perm = gen.permutation(len(rows))
                yield {n: np.asarray(store.layer_array(n, int(s))[rows], np.float32)[perm]
                       for n in layers}

        return source

    if corpus_weights is None:
        streams = [_FrameStream(make_source_fn(valid, rng), capacity, rng)]
        probs = None
    else:
        probs = sampling_probabilities(store.corpus_frames, read_corpus_weights(corpus_weights))
        probs = {c: p for c, p in probs.items() if p > 0}
        gens = dict(zip(probs, rng.spawn(len(probs))))
        streams = {
            c: _FrameStream(make_source_fn(valid[valid["corpus"] == c], gens[c]),
                            max(1, int(np.ceil(capacity * probs[c]))), gens[c], cycle=True)
            for c in probs
        }
        logger.info("Corpus sampling probabilities: " + ", ".join(
            f"{c} {p:.3f}" for c, p in probs.items()))
    return _batches(streams, probs, batch_size=batch_size, n_batches=n_batches,
                    drop_last=drop_last, layers=layers, single=single, output=output, rng=rng)
