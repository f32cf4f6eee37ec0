"""Activation extraction (one stimulus), the on-disk store for corpora, streaming
shuffled batches with weighted corpus sampling, and online noise/music mixing."""

from ._container import Activations, read_activations
from ._extract import extract_activations
from ._mix import AudioMixer, mix_audio, stream_activations
from ._store import build_activation_store
from ._storeio import ActivationStore, read_activation_store
from ._stream import (
    PAPER_CORPUS_WEIGHTS,
    iter_store_batches,
    read_corpus_weights,
    sampling_probabilities,
)

__all__ = [
    "PAPER_CORPUS_WEIGHTS",
    "ActivationStore",
    "Activations",
    "AudioMixer",
    "build_activation_store",
    "extract_activations",
    "iter_store_batches",
    "mix_audio",
    "read_activation_store",
    "read_activations",
    "read_corpus_weights",
    "sampling_probabilities",
    "stream_activations",
]
