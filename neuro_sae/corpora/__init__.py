"""Labelled audio corpora: one clip index for every corpus, readers of the paper's
corpora, and an offline corpus built from packaged audio.

The clip index
--------------
One pandas table per corpus (or mixture), stored as parquet
(:func:`write_clip_index`, :func:`read_clip_index`), one row per clip:

============  =========================================================================
column        meaning
============  =========================================================================
id            unique clip id (str), e.g. ``LibriSpeech/84-121123-0000``, ``festival-00012``
corpus        corpus name (str): the key of its sampling weight
path          audio file, relative to the corpus root (POSIX str)
duration      seconds (float > 0)
sfreq         sampling rate of the file in Hz (float)
domain        ``speech`` | ``music`` | ``sounds``
labels        list of str, multi-label (``whisper``, ``vowel-A``, ``letter-A``, ``siren``,
              ``instrument-violin``, ``style-waltz``, FSD50K/ESC-50 classes, ...)
speaker       speaker or voice (str) or null
transcript    text (str) or null
alignment     Praat TextGrid (tiers ``words`` and ``phones``; pauses blank), relative to
              the root, or null
source        where the clip comes from (str)
licence       its licence (str)
sha256        content hash of the audio file (str) or null (readers leave it null)
root          (only in tables that mix corpora) absolute folder of each corpus
============  =========================================================================

A built corpus (:func:`build_corpus`, ``neuro-sae build-corpus --out DIR --hours H``)
keeps its index in ``DIR/index.parquet`` (paths relative to ``DIR``);
``read_clip_index(DIR)`` reads it and :func:`index_to_clips` turns any index into
the clip table of :mod:`neuro_sae.activations` (``build_activation_store``,
``stream_activations`` with ``corpus_weights``).

Readers
-------
:data:`READERS` maps a reader name to a function ``read_<name>(root, ...)`` that
turns a documented folder layout into a clip index: LibriSpeech, LibriTTS, MUSAN,
FSD50K (``speech_free=True`` for clips without a human-voice label), ESC-50, WHAM!,
VocalSound, Nonspeech7k, MTG-Jamendo, and any folder with a CSV of labels. A corpus
manifest (:func:`read_corpus_manifest`) lists corpora (reader, root, weight);
``weights: paper`` gives the paper's Table 3 mixture.
"""

from ..utils import MissingToolError
from ._build import BUILDER_VERSION, CORPUS_SYSTEM_DEPS, build_corpus, plan_corpus
from ._cli import main
from ._index import (
    DOMAINS,
    INDEX_COLUMNS,
    check_clip_index,
    index_to_clips,
    read_clip_index,
    write_clip_index,
)
from ._manifest import (
    CorpusEntry,
    CorpusManifest,
    build_clip_index,
    corpus_manifest_weights,
    manifest_clips,
    read_corpus_manifest,
)
from ._readers import (
    FSD50K_VOICE_LABELS,
    LAYOUTS,
    READERS,
    CorpusLayoutError,
    read_audio_folder,
    read_esc50,
    read_fsd50k,
    read_librispeech,
    read_libritts,
    read_mtg_jamendo,
    read_musan,
    read_nonspeech7k,
    read_vocalsound,
    read_wham,
)
from ._synth import read_textgrid
from ._wer import speech_wer

__all__ = [
    "BUILDER_VERSION",
    "CORPUS_SYSTEM_DEPS",
    "DOMAINS",
    "FSD50K_VOICE_LABELS",
    "INDEX_COLUMNS",
    "LAYOUTS",
    "READERS",
    "CorpusEntry",
    "CorpusLayoutError",
    "CorpusManifest",
    "MissingToolError",
    "build_clip_index",
    "build_corpus",
    "check_clip_index",
    "corpus_manifest_weights",
    "index_to_clips",
    "main",
    "manifest_clips",
    "plan_corpus",
    "read_audio_folder",
    "read_clip_index",
    "read_corpus_manifest",
    "read_esc50",
    "read_fsd50k",
    "read_librispeech",
    "read_libritts",
    "read_mtg_jamendo",
    "read_musan",
    "read_nonspeech7k",
    "read_textgrid",
    "read_vocalsound",
    "read_wham",
    "speech_wer",
    "write_clip_index",
]
