"""Corpus manifest -> one index, weights, and the activations' weighted sampler."""

import pytest

from neuro_sae.activations import PAPER_CORPUS_WEIGHTS, sampling_probabilities
from neuro_sae.corpora import (
    build_clip_index,
    check_clip_index,
    corpus_manifest_weights,
    manifest_clips,
    read_corpus_manifest,
)

from ._fixtures import LAYOUT_BUILDERS


def _manifest(tmp_path, body):
    LAYOUT_BUILDERS["librispeech"](tmp_path / "ls")
    LAYOUT_BUILDERS["musan"](tmp_path / "musan")
    LAYOUT_BUILDERS["fsd50k"](tmp_path / "fsd")
    fname = tmp_path / "corpora.yaml"
    fname.write_text(body)
    return fname


BODY = """
name: test-mixture
weights: paper
corpora:
  - {name: LibriSpeech, reader: librispeech, root: ls}
  - {name: MUSAN, reader: musan, root: musan}
  - {name: FSD50K, reader: fsd50k, root: fsd, options: {speech_free: true}}
  - {name: Extra, reader: folder, root: ls, weight: 0.5, options: {csv_file: none.csv}}
"""


def test_manifest_paper_weights(tmp_path):
    fname = _manifest(tmp_path, BODY.rsplit("  - {name: Extra", 1)[0])
    m = read_corpus_manifest(fname, verbose="WARNING")
    weights = corpus_manifest_weights(m, verbose="WARNING")
    assert weights == {k: PAPER_CORPUS_WEIGHTS[k] for k in ("LibriSpeech", "MUSAN", "FSD50K")}
    index = build_clip_index(m, verbose="WARNING")
    check_clip_index(index)
    assert index.groupby("corpus").size().to_dict() == {"FSD50K": 2, "LibriSpeech": 2,
                                                        "MUSAN": 4}
    clips, w = manifest_clips(fname, verbose="WARNING")
    assert set(clips["corpus"]) == set(w)
    # the sampler's probabilities: weight x size (seconds here) / total
    sizes = index.groupby("corpus")["duration"].sum().to_dict()
    probs = sampling_probabilities(sizes, w)
    total = sum(w[c] * sizes[c] for c in sizes)
    assert probs["MUSAN"] == pytest.approx(5.0 * (2.0 + 1.75 + 1.1 + 0.9) / total, rel=1e-3)
    assert probs["FSD50K"] == pytest.approx(5.0 * (0.6 + 0.8) / total, rel=1e-3)


def test_manifest_errors(tmp_path):
    fname = _manifest(tmp_path, BODY.replace("reader: musan", "reader: musaan"))
    with pytest.raises(ValueError, match="musaan.*Did you mean 'musan'"):
        read_corpus_manifest(fname, verbose="WARNING")
    fname.write_text(BODY.replace("weight: 0.5", "wieght: 0.5"))
    with pytest.raises(ValueError, match="wieght.*Did you mean 'weight'"):
        read_corpus_manifest(fname, verbose="WARNING")
    fname.write_text(BODY.replace("weights: paper\n", ""))
    with pytest.raises(ValueError, match="LibriSpeech.*no weight"):
        corpus_manifest_weights(fname, verbose="WARNING")
