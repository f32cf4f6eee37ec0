"""Clip sets from a clip index and the SAEs trained for steering."""

import numpy as np
import pandas as pd
import pytest

from neuro_sae.steering import check_sae, corpus_clip_sets, train_steering_saes
from tests.corpora._fixtures import wav


def _index(root):
    rows = []

    def add(i, domain, labels, dur, transcript=None):
        path = f"audio/{domain}/{i}.wav"
        wav(root / path, dur)
        rows.append(dict(id=i, path=path, domain=domain, labels=labels, duration=dur,
                         transcript=transcript))

    for j in range(7):
        add(f"m{j}", "music", ["music"], 31.0 if j == 0 else 0.5 + 0.1 * j)
    for j in range(9):
        add(f"fx{j}", "sounds", ["sound-effect", f"x{j}"], 0.3 + 0.05 * j)
    for j in range(4):
        add(f"syn{j}", "sounds", ["synthetic", "beep"], 0.4)
    for j in range(6):
        add(f"sp{j}", "speech", ["speech", "tts"], 0.6 + 0.1 * j, f"text {j}")
    add("wh", "speech", ["speech", "whisper"], 0.7, "whispered")
    add("notext", "speech", ["speech"], 0.7, None)
    return pd.DataFrame(rows)


def test_corpus_clip_sets_split_and_selection(tmp_path):
    index = _index(tmp_path)
    fit, test = corpus_clip_sets(index, root=tmp_path, n_music=(3, 4), n_sounds=(5, 4),
                                 n_speech=(2, 3), random_state=1)
    assert {k: len(v) for k, v in fit.items()} == dict(music=3, sounds=5, speech_sae=2)
    assert {k: len(v) for k, v in test.items()} == dict(music_test=4, sounds_test=4,
                                                         speech_test=3)
    for a, b in (("music", "music_test"), ("sounds", "sounds_test"),
                 ("speech_sae", "speech_test")):
        assert not set(fit[a]["id"]) & set(test[b]["id"])  # fit and test clips are disjoint
    assert set(fit["sounds"]["id"]) | set(test["sounds_test"]["id"]) <= {
        f"fx{j}" for j in range(9)}  # recorded sound effects only, no synthetic tones
    assert set(fit["speech_sae"]["id"]) | set(test["speech_test"]["id"]) <= {
        f"sp{j}" for j in range(6)}  # transcribed, not whispered
    assert test["speech_test"]["transcript"].notna().all()
    assert fit["music"]["transcript"].isna().all()
    lens = {i: len(w) for s in (fit["music"], test["music_test"]) for i, w in
            zip(s["id"], s["wave"])}
    assert max(lens.values()) <= 30 * 16000 and len(lens) == 7
    assert lens["m0"] == 30 * 16000  # the 31 s clip is cut to its first 30 s
    again, _ = corpus_clip_sets(index, root=tmp_path, n_music=(3, 4), n_sounds=(5, 4),
                                n_speech=(2, 3), random_state=1)
    assert list(again["music"]["id"]) == list(fit["music"]["id"])
    with pytest.raises(ValueError, match="recorded sound effects: asked for 12 clips"):
        corpus_clip_sets(index, root=tmp_path, n_sounds=(6, 6), n_music=(1, 1),
                         n_speech=(1, 1))


def test_train_steering_saes_records_layer_and_backbone(tmp_path):
    from neuro_sae.backbones import Backbone
    from tests.backbones._tiny import tiny_whisper

    bb = Backbone.from_model(tiny_whisper(0, full=True), kind="whisper", name="tiny-whisper")
    rng = np.random.default_rng(0)
    frames = {n: {"music": [rng.standard_normal((300 + 7 * n, 40)).astype(np.float32)]}
              for n in (1, 3)}
    data = dict(layers=[1, 3], fit_frames=frames)
    saes = train_steering_saes(bb, data, tmp_path / "saes", d_sae=48, k=4, n_steps=15,
                               batch_size=64)
    for n in (1, 3):
        assert saes[n].cfg.layer == n and saes[n].cfg.backbone == "tiny-whisper"
        assert saes[n].cfg.d_sae == 48
        check_sae(tmp_path / "saes" / f"layer_{n}", bb, n)
        with pytest.raises(ValueError, match=f"trained on layer {n}"):
            check_sae(tmp_path / "saes" / f"layer_{n}", bb, 2)
    w = saes[1].W_dec.detach().clone()
    again = train_steering_saes(bb, data, tmp_path / "saes", d_sae=48, k=4, n_steps=15,
                                batch_size=64)
    assert np.array_equal(again[1].W_dec.detach().numpy(), w.numpy())  # read back
    # other settings, or other training frames: the saved SAE is refused, not reused
    with pytest.raises(ValueError, match=r"'k' parameter.*k=4.*k=8 is requested"):
        train_steering_saes(bb, data, tmp_path / "saes", d_sae=48, k=8, n_steps=15,
                            batch_size=64)
    with pytest.raises(ValueError, match=r"'n_steps'.*n_steps=15.*n_steps=30"):
        train_steering_saes(bb, data, tmp_path / "saes", d_sae=48, k=4, n_steps=30,
                            batch_size=64)
    moved = dict(layers=[1, 3], fit_frames={n: {"music": [f[0] * 2 for f in [v["music"]]]}
                                             for n, v in frames.items()})
    with pytest.raises(ValueError, match="'data_hash'"):
        train_steering_saes(bb, moved, tmp_path / "saes", d_sae=48, k=4, n_steps=15,
                            batch_size=64)


def _tiny_experiment(tmp_path, n_detected, caplog):
    """steering_experiment on a tiny Whisper whose threshold plants ``n_detected`` false
    detections among 8 fit clips."""
    import json
    import logging

    from neuro_sae.steering import decode_clips, encoder_states, steering_experiment
    from tests.steering._fixtures import TOKENS, tiny_full, tiny_sae, waves

    bb = tiny_full(seed=6)
    fit_w = waves((0.4, 0.9, 1.3, 1.7, 2.2, 2.8, 3.1, 4.4), seed=1)
    fit_w = [w * a for w, a in zip(fit_w, (0.2, 3, 0.5, 8, 1, 0.05, 2, 5))]
    _, enc = encoder_states(bb, fit_w, [2])
    nsp = np.sort(decode_clips(bb, enc, TOKENS)[0])
    assert np.all(np.diff(nsp) > 0)
    threshold = float(nsp[n_detected - 1] + nsp[n_detected]) / 2
    fit = {"noise": pd.DataFrame(dict(id=[f"n{i}" for i in range(8)], wave=fit_w))}
    test = {"noise_test": pd.DataFrame(dict(id=["a", "b", "c"],
                                            wave=waves((0.6, 1.4, 2.5), 2))),
            "speech_test": pd.DataFrame(dict(id=["s1", "s2"], wave=waves((1.2, 0.8), 3),
                                             transcript=["12 40 7", "33 5"]))}
    out = tmp_path / f"run{n_detected}"
    with caplog.at_level(logging.WARNING, logger="neuro_sae"):
        res = steering_experiment(bb, fit, test, [2], out, saes={2: tiny_sae(2)}, ks=[4],
                                  alphas={"sae": [0.8], "svector": [1.5]}, threshold=threshold,
                                  presets=("error-preserving",),
                                  tokens=TOKENS, tokenizer=False, batch_size=4,
                                  max_new_tokens=4, verbose="WARNING")
    summary = json.loads((out / "summary.json").read_text())
    return res, summary, out


@pytest.mark.parametrize("n_detected", [2, 6])
def test_experiment_skips_a_fit_set_with_too_few_of_a_class(tmp_path, caplog, n_detected):
    """2 false detections (or 2 rejections) among 8 fit clips: no vector, no crash; the
    unsteered model is measured, the skip recorded with its counts and logged."""
    res, summary, out = _tiny_experiment(tmp_path, n_detected, caplog)
    want = [dict(layer=2, source="noise", n_fit=8, n_false_detections=n_detected,
                 n_rejections=8 - n_detected, needs=3)]
    assert res["skipped"] == want and summary["skipped"] == want
    assert set(res["grid"]["method"]) == {"none"}
    assert len(res["grid"]) == 2  # the unsteered row on both test sets
    assert list(res["matched"]["method"]) == ["none"]  # no cell to choose
    assert res["figure"].is_file() and (out / "matched_wer.csv").is_file()
    msg = f"holds {n_detected} false detections and {8 - n_detected} correct rejections"
    assert any(msg in r.getMessage() and "needs >= 3" in r.getMessage()
               for r in caplog.records), caplog.text
    base = pd.read_parquet(out / "baseline" / "noise.parquet")
    assert int(base["detected"].sum()) == n_detected
    assert base["avg_logprob"].isna().all()  # fit clips are never decoded


def test_experiment_steers_with_three_of_each_class(tmp_path, caplog):
    res, summary, out = _tiny_experiment(tmp_path, 3, caplog)
    assert res["skipped"] == [] and summary["skipped"] == []
    assert set(res["grid"]["method"]) == {"none", "sae", "svector"}
    assert len(res["grid"]) == 3 * 2
    assert not any("skipped" in r.getMessage() for r in caplog.records)
