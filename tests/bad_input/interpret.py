"""Bad-input cases of neuro_sae.interpret: alignments that are not alignments, typos in
options, clip tables without their columns, dashboards that cannot be written."""

from __future__ import annotations

import numpy as np
import pandas as pd

from tests.bad_input import BadInput


def _codes(tmp_path=None):
    from neuro_sae.interpret import make_clip_codes

    clips = pd.DataFrame(dict(id=["a", "b"], domain=["speech", "music"],
                              labels=[["x"], ["y"]]))
    return make_clip_codes(dict(a=np.eye(4)[:, :3], b=np.ones((5, 3))), clips, verbose=False)


def _alignment_txt(tmp_path):
    from neuro_sae.interpret import read_alignment

    f = tmp_path / "clip.txt"
    f.write_text("0 1 a\n")
    return (lambda: read_alignment(f, verbose=False)), None


def _hts_bad_line(tmp_path):
    from neuro_sae.interpret import read_alignment

    f = tmp_path / "clip.lab"
    f.write_text("0 1000000 AA\n1000000 2.5 B\n")
    return (lambda: read_alignment(f, verbose=False)), None


def _tier_typo(tmp_path):
    from praatio import textgrid

    from neuro_sae.interpret import read_alignment

    tg = textgrid.Textgrid()
    tg.addTier(textgrid.IntervalTier("phones", [(0.0, 0.2, "AA")], 0, 0.5))
    f = tmp_path / "clip.TextGrid"
    tg.save(str(f), format="short_textgrid", includeBlankSpaces=True)
    return (lambda: read_alignment(f, tier="phone", verbose=False)), None


def _level_typo(tmp_path):
    from neuro_sae.interpret import label_search

    codes = _codes()
    return (lambda: label_search(codes, level="clips", verbose=False)), None


def _frame_without_labels(tmp_path):
    from neuro_sae.interpret import label_search

    codes = _codes()
    return (lambda: label_search(codes, level="frame", verbose=False)), None


def _clips_without_domain(tmp_path):
    from neuro_sae.interpret import make_clip_codes

    clips = pd.DataFrame(dict(id=["a"], labels=[["x"]]))
    return (lambda: make_clip_codes(dict(a=np.eye(3)), clips, verbose=False)), None


def _frames_of_unknown_clip(tmp_path):
    from neuro_sae.interpret import make_clip_codes

    clips = pd.DataFrame(dict(id=["a"], domain=["speech"], labels=[["x"]]))
    return (lambda: make_clip_codes(dict(a=np.eye(3), zz=np.eye(3)), clips,
                                    verbose=False)), None


def _erasure_target(tmp_path):
    from neuro_sae.interpret import concept_erasure

    x = np.arange(24.0).reshape(8, 3)
    y = np.array(["vowel-A", "vowel-E"] * 4)
    return (lambda: concept_erasure(x, y, "vowel-a", verbose=False)), None


def _probe_without_decoder(tmp_path):
    from neuro_sae.interpret import probe_curve

    y = np.array(["m", "f"] * 4)
    return (lambda: probe_curve(_vowelish(), y, verbose=False)), None


def _probe_target_typo(tmp_path):
    from neuro_sae.interpret import probe_curve

    y = np.array(["m", "f"] * 4)
    return (lambda: probe_curve(_vowelish(), y, target="recon", verbose=False)), None


def _vowelish():
    from neuro_sae.interpret import make_clip_codes

    clips = pd.DataFrame(dict(id=[f"c{i}" for i in range(8)], domain=["speech"] * 8,
                              labels=[[]] * 8))
    return make_clip_codes({f"c{i}": np.eye(3)[: 1 + i % 3] for i in range(8)}, clips,
                           verbose=False)


def _label_alpha(tmp_path):
    from neuro_sae.interpret import label_search

    return (lambda: label_search(_codes(), alpha=5, verbose=False)), None


def _consistency_one_array(tmp_path):
    import torch

    from neuro_sae.sae import SAEConfig, make_sae
    from neuro_sae.sae.consistency import encode_clips

    sae = make_sae(SAEConfig(d_in=8, d_sae=16, k=2), random_state=0)
    return (lambda: encode_clips(sae, torch.zeros(30, 8), verbose=False)), None


def _tau_out_of_range(tmp_path):
    from neuro_sae.interpret import assign_domains, feature_stats

    stats = feature_stats(_codes(), verbose=False)
    return (lambda: assign_domains(stats, frame_thresholds=(20,), verbose=False)), None


def _dashboard_exists(tmp_path):
    from neuro_sae.interpret import build_dashboard

    out = tmp_path / "dash"
    out.mkdir()
    (out / "index.html").write_text("old")
    return (lambda: build_dashboard(_codes(), out, features=[0], verbose=False)), out


def _dashboard_missing_audio(tmp_path):
    from neuro_sae.interpret import build_dashboard, make_clip_codes

    clips = pd.DataFrame(dict(id=["a"], domain=["speech"], labels=[["x"]],
                              path=["audio/a.wav"]))
    codes = make_clip_codes(dict(a=np.eye(3)), clips, root=str(tmp_path / "corpus"),
                            verbose=False)
    out = tmp_path / "site"
    return (lambda: build_dashboard(codes, out / "dash", features=[1], verbose=False)), out


def _corpus_without_saes(tmp_path):
    from neuro_sae.interpret import interpret_corpus

    (tmp_path / "deriv").mkdir()
    out = tmp_path / "out"
    return (lambda: interpret_corpus(tmp_path / "corpus", tmp_path / "deriv", out,
                                     verbose=False)), out


def _no_interpretation(tmp_path):
    from neuro_sae.interpret import read_interpretation

    return (lambda: read_interpretation(tmp_path)), None


CASES = [
    BadInput("alignment-not-textgrid", _alignment_txt, ValueError,
             [r"clip\.txt", "TextGrid", r"\.lab"], "an alignment that is neither TextGrid nor .lab"),
    BadInput("hts-bad-line", _hts_bad_line, ValueError,
             [r"clip\.lab", "line 2", "start end label", "100 ns"],
             "an HTS label file with a non-integer time"),
    BadInput("textgrid-tier-typo", _tier_typo, ValueError, ["'phone'", r"tiers are \['phones'\]"],
             "a TextGrid tier name with a typo"),
    BadInput("label-search-level-typo", _level_typo, ValueError,
             ["level", "'clip'", "'frame'", "'clips'"], "label_search(level='clips')"),
    BadInput("frame-search-without-labels", _frame_without_labels, ValueError,
             ["frame_labels", "clip_id, onset, offset, label"],
             "frame-level label search without time-stamped labels"),
    BadInput("clips-without-domain", _clips_without_domain, ValueError,
             ["clips", "'domain'", "read_clip_index"], "a clip table without the domain column"),
    BadInput("codes-of-unknown-clip", _frames_of_unknown_clip, ValueError,
             ["not in clips", "zz"], "codes of a clip that the clip table lacks"),
    BadInput("erasure-target-typo", _erasure_target, ValueError,
             ["target", "'vowel-a'", "vowel-A"], "an erasure target that is not a class"),
    BadInput("probe-reconstruction-without-decoder", _probe_without_decoder, ValueError,
             ["target='reconstruction'", "decoder=", "target='codes'"],
             "the paper's probing target without the SAE's decoder"),
    BadInput("probe-target-typo", _probe_target_typo, ValueError,
             ["target", "'reconstruction'", "'codes'", "'recon'"], "probe_curve(target='recon')"),
    BadInput("label-search-alpha", _label_alpha, ValueError, ["alpha", "5", "0.05"],
             "a family-wise level of 5"),
    BadInput("consistency-one-array", _consistency_one_array, ValueError,
             ["one array", r"\(30, 8\)", "list of clips", "lengths="],
             "per-clip BatchTopK on one array without clip boundaries"),
    BadInput("domain-threshold-out-of-range", _tau_out_of_range, ValueError,
             ["frame_thresholds", "20", r"\[0, 1\]"], "a domain threshold of 20"),
    BadInput("dashboard-exists", _dashboard_exists, FileExistsError, ["dash", "overwrite=True"],
             "a dashboard folder that exists"),
    BadInput("dashboard-missing-audio", _dashboard_missing_audio, FileNotFoundError,
             [r"a\.wav"], "a dashboard whose clip audio is missing (nothing half-written)"),
    BadInput("corpus-without-saes", _corpus_without_saes, FileNotFoundError,
             ["seed 0", "deriv", "09_corpus_saes"], "interpret_corpus before the SAEs exist"),
    BadInput("no-interpretation", _no_interpretation, FileNotFoundError,
             ["summary.json", "neuro-sae interpret"], "reading an interpretation never written"),
]
