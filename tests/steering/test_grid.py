"""The steering grid end to end on a tiny Whisper: the alpha = 0 cell of the
error-preserving preset equals the unsteered row and that of the paper's preset equals
the SAE spliced in, clip by clip; measures follow their definitions; resumption reads
finished cells back and another SAE invalidates them; truncated transcripts are
flagged; the chosen cells and the frontier figure."""

import matplotlib
import numpy as np
import pandas as pd
import pytest

from neuro_sae.steering import (
    GRID_COLUMNS,
    decode_clips,
    encoder_states,
    matched_wer,
    plot_steering_frontier,
    prepare_steering,
    steering_grid,
)
from tests.steering._fixtures import TOKENS, tiny_full, tiny_sae, waves

matplotlib.use("Agg")


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    bb = tiny_full(seed=6)
    fit_w = waves((0.4, 0.9, 1.3, 1.7, 2.2, 2.8, 3.1, 4.4), seed=1)
    fit_w = [w * a for w, a in zip(fit_w, (0.2, 3, 0.5, 8, 1, 0.05, 2, 5))]
    _, enc = encoder_states(bb, fit_w, [1])
    nsp, _, _ = decode_clips(bb, enc, TOKENS)
    threshold = float(np.median(nsp))  # half the fit clips count as false detections
    fit = {"noise": pd.DataFrame(dict(id=[f"n{i}" for i in range(8)], wave=fit_w))}
    test = {
        "noise_test": pd.DataFrame(dict(id=["a", "b", "c"], wave=waves((0.6, 1.4, 2.5), 2))),
        "speech_test": pd.DataFrame(dict(id=["s1", "s2"], wave=waves((1.2, 0.8), 3),
                                         transcript=["12 40 7", "33 5"])),
    }
    out = tmp_path_factory.mktemp("steer")
    data = prepare_steering(bb, fit, test, [2, 3], out, tokens=TOKENS, tokenizer=False,
                            threshold=threshold, batch_size=2, max_new_tokens=6,
                            verbose="WARNING")
    saes = {2: tiny_sae(2), 3: tiny_sae(3)}
    kw = dict(ks=[4], alphas={"sae": [0.0, 0.8], "svector": [1.5]}, tokens=TOKENS,
              tokenizer=False, batch_size=2, presets=("paper", "error-preserving"),
              verbose="WARNING")
    grid = steering_grid(bb, data, saes, **kw)
    return bb, data, saes, kw, grid, out, threshold


def test_grid_table(setup):
    bb, data, saes, kw, grid, out, threshold = setup
    assert list(grid.columns) == list(GRID_COLUMNS)
    # 1 unsteered + 2 layers x (1 splice + 2 presets x (1 k x 2 alpha + 1 S-vector)) cells,
    # 2 test sets each
    assert len(grid) == (1 + 2 * (1 + 2 * 3)) * 2
    assert set(grid["preset"]) == {"", "paper", "error-preserving"}
    assert set(grid.loc[grid["method"] == "splice", "layer"]) == {2, 3}
    ns = grid[grid["kind"] == "nonspeech"]
    sp = grid[grid["kind"] == "speech"]
    assert ns["fpr"].notna().all() and ns["hallucination_rate"].notna().all()
    assert ns["tpr"].isna().all() and ns["wer"].isna().all()
    assert sp["tpr"].notna().all() and sp["wer"].notna().all() and sp["fpr"].isna().all()
    assert (ns["n_clips"] == 3).all() and (sp["n_clips"] == 2).all()
    base = data["baseline"]
    fit = base[base["role"] == "fit"]
    assert fit["detected"].sum() == 4  # the planted threshold splits the fit clips in half
    assert set(grid["method"]) == {"none", "sae", "svector", "splice"}
    f1 = pd.read_parquet(out / "feature_f1.parquet")
    assert set(f1["k"]) == {4} and set(f1["layer"]) == {2, 3}


def test_alpha_zero_cell_equals_its_baseline_clip_by_clip(setup):
    """Error-preserving alpha = 0 is plain Whisper; the paper's alpha = 0 is the SAE
    spliced in (its reconstruction on every frame), which is not plain Whisper."""
    *_, out, threshold = setup
    clips = pd.read_parquet(out / "clips.parquet")
    none = clips[clips["method"] == "none"].set_index(["set", "id"]).sort_index()
    sae = clips[clips["method"] == "sae"]
    zero = sae[(sae["alpha"] == 0) & (sae["preset"] == "error-preserving")]
    assert zero["layer"].nunique() == 2
    for _, df in zero.groupby(["layer", "k"]):
        df = df.set_index(["set", "id"]).sort_index()
        np.testing.assert_allclose(df["no_speech_prob"], none["no_speech_prob"], rtol=1e-5)
        assert list(df["transcript"].fillna("")) == list(none["transcript"].fillna(""))
    for layer in (2, 3):
        splice = clips[(clips["method"] == "splice") & (clips["layer"] == layer)]
        splice = splice.set_index(["set", "id"]).sort_index()
        pz = sae[(sae["alpha"] == 0) & (sae["preset"] == "paper") & (sae["layer"] == layer)]
        pz = pz.set_index(["set", "id"]).sort_index()
        np.testing.assert_allclose(pz["no_speech_prob"], splice["no_speech_prob"], rtol=1e-6)
        assert np.abs(splice["no_speech_prob"] - none["no_speech_prob"]).max() > 1e-6
    steered = clips[(clips["method"] == "sae") & (clips["alpha"] == 0.8)]
    assert np.abs(steered.groupby(["preset", "layer", "k"])["no_speech_prob"].apply(np.asarray)
                  .map(lambda a: np.abs(a - none["no_speech_prob"].to_numpy()).max())).max() > 0
    # the unsteered rows equal an independent full forward of the test waves
    bb = tiny_full(seed=6)
    for name, ws in (("noise_test", waves((0.6, 1.4, 2.5), 2)),
                     ("speech_test", waves((1.2, 0.8), 3))):
        _, enc = encoder_states(bb, ws, [1])
        np.testing.assert_allclose(none.loc[name, "no_speech_prob"],
                                   decode_clips(bb, enc, TOKENS)[0], rtol=1e-5)
    # decoding ran exactly where the silence rule needs it, and for every speech clip
    ns = clips[clips["kind"] == "nonspeech"]
    np.testing.assert_array_equal(ns["avg_logprob"].notna(), ns["no_speech_prob"] > 0.6)
    assert clips.loc[clips["kind"] == "speech", "transcript"].notna().all()


def test_grid_resumes_from_finished_cells(setup, monkeypatch):
    bb, data, saes, kw, grid, out, _ = setup
    import neuro_sae.steering._grid as g

    def boom(*a, **k):
        raise AssertionError("a finished cell was recomputed")

    monkeypatch.setattr(g, "run_from_layer", boom)
    again = steering_grid(bb, data, saes, **kw)
    pd.testing.assert_frame_equal(again, grid)
    # a new alpha is one new cell per layer and method: it does run
    with pytest.raises(AssertionError, match="recomputed"):
        steering_grid(bb, data, saes, **{**kw, "alphas": {"sae": [0.0, 0.8, 2.0],
                                                          "svector": [1.5]}})
    # another SAE of the same layer in the same folder: its cells are not the first's
    other = {2: tiny_sae(2, seed=11), 3: saes[3]}
    with pytest.raises(AssertionError, match="recomputed"):
        steering_grid(bb, data, other, **kw)
    # the unsteered pass reads its parts back too
    monkeypatch.setattr(g, "encoder_states", boom)
    data2 = prepare_steering(bb, _fit_sets(data), _test_sets(),
                             [2, 3], out, tokens=TOKENS, tokenizer=False,
                             threshold=data["threshold"], batch_size=2, max_new_tokens=6,
                             verbose="WARNING")
    pd.testing.assert_frame_equal(data2["baseline"], data["baseline"])


def _fit_sets(data):
    w = waves((0.4, 0.9, 1.3, 1.7, 2.2, 2.8, 3.1, 4.4), seed=1)
    w = [x * a for x, a in zip(w, (0.2, 3, 0.5, 8, 1, 0.05, 2, 5))]
    return {"noise": pd.DataFrame(dict(id=[f"n{i}" for i in range(8)], wave=w))}


def _test_sets():
    return {
        "noise_test": pd.DataFrame(dict(id=["a", "b", "c"], wave=waves((0.6, 1.4, 2.5), 2))),
        "speech_test": pd.DataFrame(dict(id=["s1", "s2"], wave=waves((1.2, 0.8), 3),
                                         transcript=["12 40 7", "33 5"])),
    }


def test_other_settings_refused_in_same_folder(setup):
    bb, data, *_, out, _ = setup
    with pytest.raises(ValueError, match="pass a new out_dir"):
        prepare_steering(bb, _fit_sets(data), _test_sets(), [3], out, tokens=TOKENS,
                         tokenizer=False, threshold=data["threshold"], verbose="WARNING")


def test_another_sae_gives_other_results_not_the_cached_ones(setup, tmp_path):
    """Must show: two SAEs of one layer steered in the same folder give each its own
    per-clip results (before, the second read the first one's cells back), equal to a
    fresh run of the second in an empty folder."""
    import shutil

    from neuro_sae.steering import load_prepared, sae_fingerprint

    bb, data, saes, kw, grid, out, _ = setup
    other = {2: tiny_sae(2, seed=11), 3: tiny_sae(3, seed=12)}
    assert sae_fingerprint(other[2]) != sae_fingerprint(saes[2])
    assert sae_fingerprint(saes[2])["mode"] == "topk"  # no learned threshold yet
    kw1 = {**kw, "presets": ("error-preserving",), "alphas": {"sae": [0.8]},
           "methods": ("sae",)}
    again = steering_grid(bb, data, other, **kw1).attrs["clips"]
    first = grid.attrs["clips"]
    sel = (first["preset"] == "error-preserving") & (first["method"] == "sae") & (
        first["alpha"] == 0.8)
    a = first[sel].sort_values(["layer", "set", "id"])["no_speech_prob"].to_numpy()
    b = again[again["method"] == "sae"].sort_values(["layer", "set", "id"])[
        "no_speech_prob"].to_numpy()
    assert np.abs(a - b).max() > 1e-6
    fresh_dir = tmp_path / "fresh"
    shutil.copytree(out, fresh_dir, ignore=shutil.ignore_patterns("cells"))
    fresh = steering_grid(bb, load_prepared(fresh_dir), other, **kw1).attrs["clips"]
    c = fresh[fresh["method"] == "sae"].sort_values(["layer", "set", "id"])[
        "no_speech_prob"].to_numpy()
    np.testing.assert_allclose(b, c, rtol=1e-6)
    steering_grid(bb, data, saes, **kw)  # leave the folder's grid as the fixture made it


def test_truncated_transcripts_flagged_and_logged(tmp_path, caplog):
    """A decoder that can never say end of text hits the budget on every decoded clip:
    each is flagged and logged; one that must say it first is never flagged."""
    import logging

    from neuro_sae.steering import WhisperTokens

    bb = tiny_full(seed=6)
    speech = {"speech_test": pd.DataFrame(dict(id=["s1", "s2"], wave=waves((1.2, 0.8), 3),
                                               transcript=["12 40 7", "33 5"]))}
    fit = _fit_sets(None)
    no_eot = WhisperTokens(sot=2, eot=1, no_speech=3, prompt=(2, 4, 5, 6),
                           suppress=(0, 1, 2, 3, 4, 5, 6, 8), begin_suppress=(7,))
    with caplog.at_level(logging.WARNING, logger="neuro_sae"):
        data = prepare_steering(bb, fit, speech, [2], tmp_path / "a", tokens=no_eot,
                                tokenizer=False, max_new_tokens=5, verbose="WARNING")
    sp = data["baseline"][data["baseline"]["set"] == "speech_test"]
    assert sp["truncated"].all() and len(sp) == 2
    assert "2 of 2 decoded clips" in caplog.text and "max_new_tokens=5" in caplog.text
    only_eot = WhisperTokens(sot=2, eot=1, no_speech=3, prompt=(2, 4, 5, 6),
                             suppress=tuple(t for t in range(97) if t != 1),
                             begin_suppress=())
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="neuro_sae"):
        data = prepare_steering(bb, fit, speech, [2], tmp_path / "b", tokens=only_eot,
                                tokenizer=False, max_new_tokens=5, verbose="WARNING")
    assert not data["baseline"]["truncated"].any() and "decoding budget" not in caplog.text


def test_decoding_budget_is_openai_whispers():
    import inspect

    from neuro_sae.pipeline._steer_step import STEER_OPTIONS
    from neuro_sae.steering import steering_experiment

    for fn in (steering_experiment, prepare_steering, decode_clips):
        assert inspect.signature(fn).parameters["max_new_tokens"].default == 224
    assert dict(STEER_OPTIONS)["--max-new-tokens"]["default"] == 224


def test_chosen_cells_and_frontier_figure(setup, tmp_path):
    *_, grid, out, _ = setup
    best = matched_wer(grid, n_boot=100)
    assert set(best.loc[best["role"] == "baseline", "method"]) == {"none", "splice"}
    chosen = best[best["role"] == "chosen"]
    assert set(zip(chosen["preset"], chosen["method"])) == {
        ("paper", "sae"), ("paper", "svector"), ("error-preserving", "sae"),
        ("error-preserving", "svector")}
    # validation and test clips partition each non-speech set (3 clips: 2 + 1 or 1 + 2)
    assert ((chosen["n_val_nonspeech"] + chosen["n_test_nonspeech"]) == 3).all()
    paper_sae = chosen[(chosen["preset"] == "paper") & (chosen["method"] == "sae")].iloc[0]
    assert paper_sae["baseline"] == "SAE spliced in (paper)"
    assert "error-preserving steering" in set(chosen["label"].str.extract(r"\((.*)\)")[0])
    with pytest.raises(ValueError, match="per-clip rows"):
        matched_wer(pd.read_parquet(out / "grid.parquet"))
    fig = plot_steering_frontier(grid, show=False)
    labels = [ax.get_xlabel() for ax in fig.axes]
    assert all("WER" in lab for lab in labels) and all(ax.get_ylabel() for ax in fig.axes)
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert "SAE features (error-preserving steering)" in legend
    assert "SAE features (paper)" in legend and "SAE spliced in (paper)" in legend
    fig.savefig(tmp_path / "f.png")


def test_load_prepared_reads_the_pass_back(setup, tmp_path):
    from neuro_sae.steering import load_prepared

    _, data, *_, out, _ = setup
    again = load_prepared(out)
    pd.testing.assert_frame_equal(again["baseline"], data["baseline"])
    assert again["layers"] == data["layers"] and again["test_sets"] == data["test_sets"]
    assert again["fit_sets"] == data["fit_sets"] and again["threshold"] == data["threshold"]
    for n in data["layers"]:
        for a, b in zip(again["fit_frames"][n]["noise"], data["fit_frames"][n]["noise"]):
            np.testing.assert_array_equal(a, b)
    with pytest.raises(FileNotFoundError, match="holds no unsteered pass"):
        load_prepared(tmp_path / "nothing")


def test_best_layer_chosen_on_validation_clips():
    """A layer whose cell lowers the FPR on every clip wins; a layer that lowers it only
    on the test clips (planted: the choice must not see them) does not."""
    from neuro_sae.steering import best_layer

    rows = []
    ids = [f"n{i}" for i in range(40)]
    split = {cid: "val" if i % 2 else "test" for i, cid in enumerate(ids)}
    sp_ids = [f"s{i}" for i in range(10)]
    for layer, method, alpha, fpr_val, fpr_test in [
            (0, "none", 0.0, 0.5, 0.5), (2, "sae", 1.0, 0.5, 0.0),  # test-only effect
            (3, "sae", 1.0, 0.2, 0.2), (5, "sae", 1.0, 0.45, 0.45)]:
        key = dict(preset="" if method == "none" else "paper", layer=layer, method=method,
                   source="" if method == "none" else "m", k=np.nan if method == "none"
                   else 50.0, alpha=alpha)
        for i, cid in enumerate(ids):
            p = fpr_val if split[cid] == "val" else fpr_test
            rows.append(dict(key, set="music_test", kind="nonspeech", id=cid,
                             split=split[cid], detected=(i // 2) < p * 20,
                             hallucination=False))
        for i, cid in enumerate(sp_ids):
            rows.append(dict(key, set="speech_test", kind="speech", id=cid,
                             split="val" if i % 2 else "test", detected=True,
                             hallucination=False, word_errors=1.0, ref_words=10.0))
    clips = pd.DataFrame(rows)
    layer, table = best_layer(clips)
    assert layer == 3
    assert list(table["layer"]) == [2, 3, 5]
    np.testing.assert_allclose(table["val_fpr"], [0.5, 0.2, 0.45])
    np.testing.assert_allclose(table["fpr"], [0.0, 0.2, 0.45])  # reported on test clips
    with pytest.raises(ValueError, match="no cell of the method 'svector'"):
        best_layer(clips, method="svector")
