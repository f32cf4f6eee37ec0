"""``neuro-sae build-corpus`` reaches the corpus builder's own command line."""

import pytest

from neuro_sae.pipeline.cli import main


def test_build_corpus_subcommand_help(capsys):
    with pytest.raises(SystemExit) as info:
        main(["build-corpus", "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "neuro-sae build-corpus" in out and "--hours" in out


def test_build_corpus_subcommand_needs_out(capsys):
    with pytest.raises(SystemExit) as info:
        main(["build-corpus", "--hours", "0.01"])
    assert info.value.code == 2
    assert "--out" in capsys.readouterr().err
