"""Real whisper-base understands the synthesised speech of a built corpus (WER <= 15%)."""

import pytest

from neuro_sae.corpora import build_corpus, speech_wer

from ..conftest import requires_whisper_weights
from .test_build import needs_tools


@pytest.mark.slow
@pytest.mark.requires_model
@requires_whisper_weights()
@needs_tools
def test_whisper_base_wer_on_synthesised_speech(tmp_path):
    index = build_corpus(tmp_path / "c", hours=0.25, random_state=1, verbose="WARNING")
    res = speech_wer(index, n_clips=10, model="whisper-base", random_state=0,
                     verbose="WARNING")
    assert res["n_clips"] == 10
    assert res["wer"] <= 0.15, res
