"""End to end on a tiny corpus: slice SAEs of a tiny random Whisper, then interpret_corpus."""

import json

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from neuro_sae.interpret import interpret_corpus, read_dashboard, train_slice_saes
from tests.pipeline.conftest import _tiny_whisper

SFREQ = 16000


def _tiny_corpus(root, rng):
    from praatio import textgrid

    from neuro_sae.corpora import write_clip_index

    (root / "audio").mkdir(parents=True)
    (root / "alignments").mkdir()
    rows = []

    def clip(cid, dur, domain, labels, freq, alignment=None):
        t = np.arange(int(dur * SFREQ)) / SFREQ
        x = 0.3 * np.sin(2 * np.pi * freq * t) + 0.02 * rng.normal(size=len(t))
        sf.write(root / "audio" / f"{cid}.wav", x.astype(np.float32), SFREQ)
        rows.append(dict(id=cid, corpus="tiny", path=f"audio/{cid}.wav", duration=dur,
                         sfreq=float(SFREQ), domain=domain, labels=labels, speaker=None,
                         transcript=None, alignment=alignment, source="test",
                         licence="CC0"))

    for ii, v in enumerate("AEIOU" * 3):
        clip(f"vowel-{ii:02d}", 0.6 + 0.05 * ii, "speech", ["speech", f"vowel-{v}"],
             200 + 150 * "AEIOU".index(v))
    for ii in range(3):
        tg = textgrid.Textgrid()
        tg.addTier(textgrid.IntervalTier(
            "phones", [(0.1, 0.6, "AA"), (0.6, 1.2, "S"), (1.2, 1.7, "IY")], 0, 2.0))
        tg.addTier(textgrid.IntervalTier("words", [(0.1, 1.7, "ahsee")], 0, 2.0))
        tg.save(str(root / "alignments" / f"sp-{ii}.TextGrid"), format="short_textgrid",
                includeBlankSpaces=True)
        clip(f"sp-{ii}", 2.0, "speech", ["speech", "whisper"] if ii else ["speech"], 300 + ii,
             f"alignments/sp-{ii}.TextGrid")
    for ii in range(3):
        clip(f"mu-{ii}", 1.5, "music", ["music"], 440 * (ii + 1))
        clip(f"so-{ii}", 1.2, "sounds", ["sound-event", "siren"], 1500 + 300 * ii)
    write_clip_index(pd.DataFrame(rows), root / "index.parquet", verbose=False)
    return root


@pytest.mark.slow
def test_slice_saes_and_interpret_corpus(tmp_path):
    rng = np.random.default_rng(0)
    _tiny_whisper(tmp_path / "tiny-whisper")
    corpus = _tiny_corpus(tmp_path / "corpus", rng)
    info = train_slice_saes(corpus, tmp_path / "deriv", backbone=str(tmp_path / "tiny-whisper"),
                            minutes_per_domain=0.01, max_aligned=2, expansion=2, k=4,
                            n_steps=5, batch_size=64, threshold_beta=0.5, verbose=False)
    # every labelled clip (vowels, whisper) plus 2 aligned and one clip per other domain
    assert info["layers"] == [1, 2, 3] and info["d_sae"] == 96
    assert info["n_clips"] >= 15 + 2
    assert info["n_steps_done"] == 5  # the stream cycles: not capped by one pass
    out = tmp_path / "interp"
    summary = interpret_corpus(corpus, tmp_path / "deriv", out, layers=[3], n_dashboard=1,
                               erasure_steps=4, probe_ks=[1], verbose=False)
    assert sorted(summary) == ["layer-03"]
    s = json.loads((out / "summary.json").read_text())["layer-03"]
    assert s["erasure"]["target"] == "vowel-A" and s["erasure"]["n_clips"] == 15
    # the paper's protocol: the SAE reconstruction, fractions of d_sae, unpenalised
    assert s["erasure"]["target_mode"] == "reconstruction" and s["erasure"]["C"] is None
    assert s["erasure"]["n_features"] == 96
    assert s["phonemes"]["n_phones"] == 3 and s["phonemes"]["probe"] is not None
    assert s["label_positives"]["whisper"] == 2
    assert s["n_features"] == 96
    dash = read_dashboard(out / "dashboard")
    assert dash["layer"] == 3 and len(dash["features"]) == 1
    for name in ("fig_domains_frame.png", "fig_phonemes.png", "fig_erasure.png",
                 "domain_table.csv"):
        assert (out / name).is_file(), name
    table = pd.read_csv(out / "domain_table.csv")
    assert set(table["layer"]) == {3}
