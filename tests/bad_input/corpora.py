"""Bad-input cases of neuro_sae.corpora: folders that are not the dataset they are read
as, broken clip indexes, corpus manifests with typos, a bad corpus build."""

from __future__ import annotations

import pandas as pd

from tests.bad_input import BadInput
from tests.corpora._fixtures import LAYOUT_BUILDERS, wav


def _wrong_layout(reader, other, expect):
    def setup(tmp_path):
        from neuro_sae.corpora import READERS

        root = LAYOUT_BUILDERS[other](tmp_path / "data")
        return (lambda: READERS[reader](root, verbose="WARNING")), None

    return BadInput(id=f"{reader}-on-{other}", setup=setup, exc=ValueError,
                    match=[r"data", f"not a {reader} folder", "Expected layout", expect],
                    what=f"a {other} folder read as {reader}")


def _missing_audio(tmp_path):
    from neuro_sae.corpora import read_esc50

    root = LAYOUT_BUILDERS["esc50"](tmp_path / "esc")
    (root / "audio" / "2-100648-A-43.wav").unlink()
    return (lambda: read_esc50(root, verbose="WARNING")), None


def _bad_index(tmp_path):
    from neuro_sae.corpora import write_clip_index

    df = pd.DataFrame(dict(id=["a"], path=["a.wav"], duration=[1.0], sfreq=[16000.0],
                           domain=["speach"], labels=[["x"]], speaker=[None],
                           transcript=[None], alignment=[None], source=["s"], licence=["l"]))
    out = tmp_path / "out"
    return (lambda: write_clip_index(df, out / "index.parquet", verbose="WARNING")), out


def _manifest_typo(tmp_path):
    from neuro_sae.corpora import read_corpus_manifest

    f = tmp_path / "corpora.yaml"
    f.write_text("corpora:\n  - {name: A, reader: librispeach, root: x}\n")
    return (lambda: read_corpus_manifest(f, verbose="WARNING")), None


def _folder_bad_domain(tmp_path):
    from neuro_sae.corpora import read_audio_folder

    root = tmp_path / "f"
    wav(root / "x.wav", 0.3)
    (root / "labels.csv").write_text("path,labels\nx.wav,dog\n")
    return (lambda: read_audio_folder(root, verbose="WARNING")), None


def _build_bad_hours(tmp_path):
    from neuro_sae.corpora import build_corpus

    return (lambda: build_corpus(tmp_path / "c", hours=-1, verbose="WARNING")), None


CASES = [
    _wrong_layout("librispeech", "esc50", r"trans\.txt"),
    _wrong_layout("fsd50k", "librispeech", r"FSD50K\.ground_truth"),
    _wrong_layout("esc50", "librispeech", r"esc50\.csv"),
    _wrong_layout("musan", "wham", r"music/, speech/, noise/"),
    _wrong_layout("mtg_jamendo", "musan", r"autotagging"),
    _wrong_layout("vocalsound", "nonspeech7k", r"audio_16k"),
    BadInput(id="esc50-missing-audio", setup=_missing_audio, exc=ValueError,
             match=[r"esc50\.csv", "2-100648-A-43.wav", "does not exist", "Expected layout"],
             what="ESC-50 meta lists a file that is absent"),
    BadInput(id="clip-index-bad-domain", setup=_bad_index, exc=ValueError,
             match=["domain", "speach", "speech", "music", "sounds"],
             what="a clip index with an unknown domain"),
    BadInput(id="corpus-manifest-reader-typo", setup=_manifest_typo, exc=ValueError,
             match=["corpora.yaml", "librispeach", "Did you mean 'librispeech'"],
             what="corpus manifest names an unknown reader"),
    BadInput(id="folder-csv-no-domain", setup=_folder_bad_domain, exc=ValueError,
             match=["labels.csv", "line 2", "domain", "speech", "sounds"],
             what="a label CSV without domains and no default domain"),
    BadInput(id="build-corpus-negative-hours", setup=_build_bad_hours, exc=ValueError,
             match=["hours", "-1"], what="build_corpus(hours=-1)"),
]
