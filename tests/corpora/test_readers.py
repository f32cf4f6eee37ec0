"""Each reader on a fixture folder in its dataset's documented layout; wrong folders fail."""

import pytest

from neuro_sae.corpora import (
    READERS,
    CorpusLayoutError,
    index_to_clips,
    read_clip_index,
    read_fsd50k,
    write_clip_index,
)

from ._fixtures import LAYOUT_BUILDERS

# reader -> {id: (domain, expected labels (subset), duration s, transcript)}
EXPECTED = {
    "librispeech": {
        "LibriSpeech/84-121123-0000": ("speech", {"speech"}, 1.25, "GO DO YOU HEAR"),
        "LibriSpeech/84-121123-0001": ("speech", {"speech"}, 0.75,
                                       "BUT IN LESS THAN FIVE MINUTES"),
    },
    "libritts": {
        "LibriTTS/84_121123_000007_000000": ("speech", {"speech"}, 1.5, "Go, do you hear?"),
        "LibriTTS/84_121123_000008_000001": ("speech", {"speech"}, 0.5,
                                             "But in less than five minutes."),
    },
    "musan": {
        "MUSAN/music/fma/music-fma-0000": ("music", {"music", "rock", "pop", "vocals"}, 2.0, None),
        "MUSAN/music/fma/music-fma-0001": ("music", {"music", "classical"}, 1.75, None),
        "MUSAN/noise/free-sound/noise-free-sound-0000": ("sounds", {"noise"}, 1.1, None),
        "MUSAN/speech/librivox/speech-librivox-0000": ("speech", {"speech"}, 0.9, None),
    },
    "fsd50k": {
        "FSD50K/dev/64760": ("sounds", {"Electric_guitar", "Guitar", "Music", "split-train"},
                             0.6, None),
        "FSD50K/dev/16399": ("sounds", {"Speech", "Human_voice"}, 0.7, None),
        "FSD50K/eval/37199": ("sounds", {"Dog", "Animal"}, 0.8, None),
        "FSD50K/eval/21914": ("sounds", {"Laughter"}, 0.9, None),
    },
    "esc50": {
        "ESC-50/audio/1-100032-A-0": ("sounds", {"dog", "fold-1"}, 1.3, None),
        "ESC-50/audio/2-100648-A-43": ("sounds", {"chirping_birds", "fold-2"}, 0.4, None),
    },
    "wham": {
        "WHAM/tr/01aa010b_0.97482_209a010p_-0.97482": ("sounds", {"noise", "split-tr"}, 1.2,
                                                       None),
        "WHAM/tt/22ga010a_1.2_050c0109_-1.2": ("sounds", {"noise", "split-tt"}, 0.3, None),
    },
    "vocalsound": {
        "VocalSound/audio_16k/f0003_0_cough": ("sounds", {"cough", "paralinguistic"}, 0.45,
                                               None),
        "VocalSound/audio_16k/m0011_1_laughter": ("sounds", {"laughter"}, 1.45, None),
    },
    "nonspeech7k": {
        "Nonspeech7k/train/breath_1": ("sounds", {"breath", "paralinguistic"}, 0.35, None),
        "Nonspeech7k/test/laugh_9": ("sounds", {"laugh"}, 0.65, None),
    },
    "mtg_jamendo": {
        "MTG-Jamendo/track_0000214": ("music", {"music", "genre---punkrock"}, 1.0, None),
        "MTG-Jamendo/track_0000215": ("music", {"genre---metal", "instrument---guitar",
                                                "mood/theme---energetic"}, 1.5, None),
    },
    "folder": {
        "data/a/one": ("speech", {"whisper", "speech"}, 0.55, "hello there"),
        "data/two": ("sounds", {"siren"}, 0.85, None),
    },
}


@pytest.mark.parametrize("reader", sorted(READERS))
def test_reader_on_fixture(reader, tmp_path):
    root = LAYOUT_BUILDERS[reader](tmp_path / "data")
    index = READERS[reader](root, verbose="WARNING")
    expected = EXPECTED[reader]
    assert sorted(index["id"]) == sorted(expected)
    for _, row in index.iterrows():
        domain, labels, duration, transcript = expected[row["id"]]
        assert row["domain"] == domain
        assert labels <= set(row["labels"]), (row["id"], row["labels"])
        assert row["duration"] == pytest.approx(duration, abs=2e-3)
        assert row["transcript"] == transcript
        assert (root / row["path"]).is_file()
    # round trip through parquet and into the activations clip table
    write_clip_index(index, tmp_path / "idx.parquet", verbose="WARNING")
    back = read_clip_index(tmp_path / "idx.parquet", verbose="WARNING")
    assert back.drop(columns=[]).equals(index.reset_index(drop=True))
    clips = index_to_clips(index, verbose="WARNING")
    assert all(p.is_file() for p in clips["path"])


def test_fsd50k_speech_free(tmp_path):
    root = LAYOUT_BUILDERS["fsd50k"](tmp_path / "fsd")
    index = read_fsd50k(root, speech_free=True, verbose="WARNING")
    # the speech clip and the laughter clip carry human-voice labels
    assert sorted(index["id"]) == ["FSD50K/dev/64760", "FSD50K/eval/37199"]


@pytest.mark.parametrize("reader", sorted(READERS))
@pytest.mark.parametrize("other", ["librispeech", "esc50"])
def test_reader_on_wrong_layout(reader, other, tmp_path):
    if reader == other:
        pytest.skip("same layout")
    root = LAYOUT_BUILDERS[other](tmp_path / "other")
    if reader == "folder" and other == "esc50":
        (root / "labels.csv").write_text("file,tags\nx.wav,a\n")
    with pytest.raises(CorpusLayoutError, match="Expected layout") as info:
        READERS[reader](root, verbose="WARNING")
    assert str(root) in str(info.value)
