"""Label search and phones from alignments on planted codes."""

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import f1_score

from neuro_sae.interpret import (
    codes_frame_labels,
    feature_phones,
    frame_labels,
    label_search,
    make_clip_codes,
    phoneme_accuracy,
    phoneme_baselines,
    read_alignment,
    write_hts_lab,
)


def _label_codes():
    """Feature 4 fires exactly on 'whisper' clips; feature 2 on them plus one other clip."""
    rng = np.random.default_rng(0)
    n_clips, n_feat = 23, 7
    whisper = np.zeros(n_clips, bool)
    whisper[[1, 4, 5, 9, 15, 22]] = True
    rows, arrays = [], {}
    for ii in range(n_clips):
        cid = f"c{ii:02d}"
        labs = ["speech"] + (["whisper"] if whisper[ii] else []) + (["loud"] if ii % 3 == 0 else [])
        rows.append(dict(id=cid, domain="speech", labels=labs))
        arr = np.zeros((11 + ii % 5, n_feat))
        arr[:, 0] = rng.random(len(arr)) * (rng.random(len(arr)) < 0.3)  # noise feature
        if whisper[ii]:
            arr[3, 4] = 0.7 + 0.1 * ii  # fires exactly on the label
            arr[2, 2] = 2.0
        else:
            arr[5, 2] = 0.05  # weak everywhere else: found by the threshold steps
        if ii == 7:
            arr[1, 2] = 3.0  # one strong false positive: F1 of feature 2 stays below 1
        if ii % 3 == 0:
            arr[0, 6] = 1.0
        arrays[cid] = arr
    return make_clip_codes(arrays, pd.DataFrame(rows), layer=4, verbose=False), whisper


def test_label_search_clip_level_planted():
    codes, whisper = _label_codes()
    table = label_search(codes, verbose=False)
    w = table[table["label"] == "whisper"].reset_index(drop=True)
    assert w.loc[0, "feature"] == 4 and w.loc[0, "rank"] == 1
    np.testing.assert_allclose(w.loc[0, "f1"], 1.0)
    assert w.loc[0, "hit"] and w.loc[0, "n_positive"] == whisper.sum()
    # feature 2: best threshold above its weak background, one false positive
    f2 = w.set_index("feature").loc[2]
    pooled = codes.pool("max")[:, 2]
    np.testing.assert_allclose(f2["f1"], f1_score(whisper, pooled > f2["threshold"]))
    np.testing.assert_allclose(f2["f1"], 2 * 6 / (2 * 6 + 1))
    assert f2["threshold"] >= 0.05
    # the 'loud' label: feature 6 exactly
    loud = table[table["label"] == "loud"].iloc[0]
    assert loud["feature"] == 6 and loud["f1"] == 1.0
    # a feature that never fires has F1 0 and is no hit
    never = w.set_index("feature").loc[5]
    assert never["f1"] == 0 and not never["hit"]


def test_label_search_frame_level_planted():
    clips = pd.DataFrame(dict(id=["a", "b"], domain=["sounds", "sounds"], labels=[[], []]))
    ta, tb = np.arange(60) / 50, np.arange(45) / 50
    xa, xb = np.zeros((60, 3)), np.zeros((45, 3))
    events = pd.DataFrame(dict(clip_id=["a", "a", "b"], onset=[0.1, 0.6, 0.3],
                               offset=[0.3, 0.7, 0.5], label=["knock"] * 3))
    for x, t, cid in ((xa, ta, "a"), (xb, tb, "b")):
        for _, ev in events[events["clip_id"] == cid].iterrows():
            on = (t >= ev["onset"]) & (t < ev["offset"])
            x[on, 1] = 1.5  # exactly the labelled frames
            x[np.flatnonzero(on)[::2], 0] = 1.0  # half of them
    xa[50, 2] = 1.0
    codes = make_clip_codes(dict(a=xa, b=xb), clips, times=dict(a=ta, b=tb), verbose=False)
    table = label_search(codes, level="frame", frame_labels=events, verbose=False)
    assert table.iloc[0]["feature"] == 1 and table.iloc[0]["f1"] == 1.0
    # threshold on one clip, F1 on the other (frames are not exchangeable: no permutation)
    assert table.iloc[0]["f1_heldout"] == 1.0 and np.isnan(table.iloc[0]["p_fwe"])
    n_pos = 10 + 5 + 10
    assert table.iloc[0]["n_positive"] == n_pos
    half = table.set_index("feature").loc[0]
    np.testing.assert_allclose(half["recall"], 13 / 25)
    np.testing.assert_allclose(half["f1"], 2 * 13 / (13 + 25))
    with pytest.raises(ValueError, match="frame_labels"):
        label_search(codes, level="frame", verbose=False)


PHONES = [(0.10, 0.30, "AA"), (0.30, 0.40, "B"), (0.40, 0.44, "sil"), (0.44, 0.70, "IY")]


def _write_textgrid(fname, end=0.8):
    from praatio import textgrid

    tg = textgrid.Textgrid()
    tg.addTier(textgrid.IntervalTier("phones", PHONES, 0, end))
    tg.addTier(textgrid.IntervalTier("words", [(0.10, 0.40, "ab"), (0.44, 0.70, "ee")], 0, end))
    tg.save(str(fname), format="short_textgrid", includeBlankSpaces=True)


def test_read_alignment_textgrid_and_hts(tmp_path):
    _write_textgrid(tmp_path / "a.TextGrid")
    tg = read_alignment(tmp_path / "a.TextGrid", tier="phones", verbose=False)
    assert tg["label"].tolist() == ["AA", "B", "sil", "IY"]
    np.testing.assert_allclose(tg["onset"], [0.1, 0.3, 0.4, 0.44])
    both = read_alignment(tmp_path / "a.TextGrid", verbose=False)
    assert set(both["tier"]) == {"phones", "words"}
    write_hts_lab(tg, tmp_path / "a.lab")
    assert (tmp_path / "a.lab").read_text().splitlines()[0] == "1000000 3000000 AA"
    lab = read_alignment(tmp_path / "a.lab", verbose=False)
    pd.testing.assert_frame_equal(lab, tg)
    # full-context HTS labels keep the current phone
    (tmp_path / "f.lab").write_text("0 1000000 x^sil-AA+B=y@1\n1000000 2500000 sil^AA-B+IY=z\n")
    assert read_alignment(tmp_path / "f.lab", verbose=False)["label"].tolist() == ["AA", "B"]
    with pytest.raises(ValueError, match="tiers are"):
        read_alignment(tmp_path / "a.TextGrid", tier="phone", verbose=False)


def test_frame_labels_on_the_50hz_clock():
    iv = pd.DataFrame(PHONES, columns=["onset", "offset", "label"])
    t = np.arange(40) * 0.02
    lab = frame_labels(iv, t)
    # frame i at 0.02 i: AA holds frames 5..14, B 15..19, sil (blank) 20..21, IY 22..34
    want = np.array([""] * 5 + ["AA"] * 10 + ["B"] * 5 + [""] * 2 + ["IY"] * 13 + [""] * 5)
    assert lab.tolist() == want.tolist()


def test_feature_phones_and_accuracy_planted(tmp_path):
    _write_textgrid(tmp_path / "a.TextGrid")
    t = np.arange(40) * 0.02
    lab = frame_labels(read_alignment(tmp_path / "a.TextGrid", tier="phones", verbose=False), t)
    x = np.zeros((40, 4))
    x[5:15, 0] = 1.0  # all AA frames -> AA
    x[15:20, 1] = 1.0  # 5 B frames + 3 AA frames -> B (5/8 > 0.5)
    x[12:15, 1] = 1.0
    x[15:20, 2] = 1.0  # 5 B + 5 IY -> no phone (0.5 is not > 0.5)
    x[22:27, 2] = 1.0
    x[0:5, 3] = 1.0  # only unlabelled frames -> no phone
    clips = pd.DataFrame(dict(id=["u"], domain=["speech"], labels=[["speech"]],
                              alignment=["a.TextGrid"]))
    codes = make_clip_codes(dict(u=x), clips, times=dict(u=t), root=str(tmp_path), verbose=False)
    from neuro_sae.interpret import alignment_intervals

    iv = alignment_intervals(codes, verbose=False)
    assert codes_frame_labels(codes, iv).tolist() == lab.tolist()
    fp = feature_phones(codes, lab, verbose=False)
    assert fp["phone"].tolist() == ["AA", "B", None, None]
    np.testing.assert_allclose(fp["share"], [1.0, 5 / 8, 0.5, 0.0])
    assert fp["n_active"].tolist() == [10, 8, 10, 0]
    # right: 10 AA frames (feature 0) + 5 B frames (feature 1); wrong: 13 IY frames
    acc = phoneme_accuracy(codes, lab, fp, verbose=False)
    np.testing.assert_allclose(acc, 15 / 28)


def test_phoneme_baselines_planted():
    """Features that carry phones beat chance; the probe reads the raw activations."""
    rng = np.random.default_rng(1)
    phones = np.array(["AA", "B", "IY", "S"])
    arrays, acts, rows, clips_lab = {}, {}, [], []
    for ii in range(12):
        n = 30 + ii
        lab = phones[rng.integers(0, 4, n)]
        x = np.zeros((n, 9))
        for k, p in enumerate(phones):
            x[lab == p, 2 * k] = 1.0  # features 0, 2, 4, 6 carry the phones
        x[:, 8] = rng.random(n) < 0.5  # a feature active everywhere
        cid = f"s{ii}"
        arrays[cid] = x
        acts[cid] = np.eye(4)[np.searchsorted(phones, lab)] + 0.1 * rng.normal(size=(n, 4))
        rows.append(dict(id=cid, domain="speech", labels=["speech"]))
        clips_lab.append(lab)
    codes = make_clip_codes(arrays, pd.DataFrame(rows), verbose=False)
    labels = np.concatenate(clips_lab)
    res = phoneme_baselines(codes, labels, activations=acts, random_state=0, verbose=False)
    assert res["in_sample"] == 1.0 and res["test"] == 1.0
    assert res["chance"] < 0.6 and res["probe"] > 0.95
    assert res["n_features_labelled"] == 4 and res["n_phones"] == 4


def test_interpret_codes_with_alignments(tmp_path):
    """Frame-level search on the aligned clips only; phones and their baselines."""
    from neuro_sae.interpret import interpret_codes

    _write_textgrid(tmp_path / "a.TextGrid")
    t = np.arange(40) * 0.02
    lab = frame_labels(read_alignment(tmp_path / "a.TextGrid", tier="phones", verbose=False), t)
    arrays, rows = {}, []
    for ii in range(3):
        x = np.zeros((40, 4))
        x[lab == "AA", 0] = 1.0
        x[lab == "IY", 1] = 1.0 + ii
        x[:3, 2] = 1.0
        arrays[f"c{ii}"] = x
        rows.append(dict(id=f"c{ii}", domain="speech", labels=["speech"],
                         alignment="a.TextGrid" if ii < 2 else None))
    arrays["c2"][:, 0] = 1.0  # unaligned clip: would spoil feature 0's frame F1 if searched
    codes = make_clip_codes(arrays, pd.DataFrame(rows), times={c: t for c in arrays},
                            root=str(tmp_path), verbose=False)
    res = interpret_codes(codes, class_prefix=None, random_state=0, verbose=False)
    aa = res["labels_frame"][res["labels_frame"]["label"] == "AA"].iloc[0]
    assert aa["feature"] == 0 and aa["f1"] == 1.0 and aa["n_positive"] == 20
    assert res["phones"].set_index("feature")["phone"].loc[1] == "IY"
    ph = res["summary"]["phonemes"]
    np.testing.assert_allclose(ph["in_sample"], 46 / 56)  # AA and IY right, B (2 x 5) wrong
