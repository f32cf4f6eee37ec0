"""The steering grid end to end on a tiny Whisper: table shape, the alpha = 0 cell
with the error term equals the unsteered row clip by clip, measures follow their
definitions, resumption reads finished cells back, the frontier figure."""

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
    silence_rule,
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
              tokenizer=False, batch_size=2, verbose="WARNING")
    grid = steering_grid(bb, data, saes, **kw)
    return bb, data, saes, kw, grid, out, threshold


def test_grid_table(setup):
    bb, data, saes, kw, grid, out, threshold = setup
    assert list(grid.columns) == list(GRID_COLUMNS)
    # 1 unsteered + 2 layers x (1 k x 2 alpha + 1 S-vector) cells, 2 test sets each
    assert len(grid) == (1 + 2 * 3) * 2
    ns = grid[grid["kind"] == "nonspeech"]
    sp = grid[grid["kind"] == "speech"]
    assert ns["fpr"].notna().all() and ns["hallucination_rate"].notna().all()
    assert ns["tpr"].isna().all() and ns["wer"].isna().all()
    assert sp["tpr"].notna().all() and sp["wer"].notna().all() and sp["fpr"].isna().all()
    assert (ns["n_clips"] == 3).all() and (sp["n_clips"] == 2).all()
    base = data["baseline"]
    fit = base[base["role"] == "fit"]
    assert fit["detected"].sum() == 4  # the planted threshold splits the fit clips in half
    assert set(grid["method"]) == {"none", "sae", "svector"}
    f1 = pd.read_parquet(out / "feature_f1.parquet")
    assert set(f1["k"]) == {4} and set(f1["layer"]) == {2, 3}


def test_alpha_zero_cell_equals_unsteered_clip_by_clip(setup):
    *_, out, threshold = setup
    clips = pd.read_parquet(out / "clips.parquet")
    none = clips[clips["method"] == "none"].set_index(["set", "id"]).sort_index()
    zero = clips[(clips["method"] == "sae") & (clips["alpha"] == 0)]
    assert zero["layer"].nunique() == 2
    for _, df in zero.groupby(["layer", "k"]):
        df = df.set_index(["set", "id"]).sort_index()
        np.testing.assert_allclose(df["no_speech_prob"], none["no_speech_prob"], rtol=1e-5)
        assert list(df["transcript"].fillna("")) == list(none["transcript"].fillna(""))
    steered = clips[(clips["method"] == "sae") & (clips["alpha"] == 0.8)]
    assert np.abs(steered.groupby(["layer", "k"])["no_speech_prob"].apply(np.asarray)
                  .map(lambda a: np.abs(a - none["no_speech_prob"].to_numpy()).max())).max() > 0
    # the measures follow their definitions on every row
    ns = clips[clips["kind"] == "nonspeech"]
    np.testing.assert_array_equal(ns["detected"], ns["no_speech_prob"] < threshold)
    np.testing.assert_array_equal(
        ns["hallucination"], ~silence_rule(ns["no_speech_prob"], ns["avg_logprob"]))
    # decoding ran exactly where the silence rule needs it, and for every speech clip
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


def test_matched_wer_and_frontier_figure(setup, tmp_path):
    *_, grid, out, _ = setup
    best = matched_wer(grid, max_wer_increase=1.0)
    assert best.iloc[0]["method"] == "none"
    assert set(best["method"]) == {"none", "sae", "svector"}
    assert (best["wer_increase"] <= 1.0 + 1e-12).all()
    base_fpr = best.iloc[0]["fpr"]
    for _, row in best.iloc[1:].iterrows():
        if base_fpr > 0:
            assert row["fpr_reduction"] == pytest.approx(1 - row["fpr"] / base_fpr)
    fig = plot_steering_frontier(grid, show=False)
    labels = [ax.get_xlabel() for ax in fig.axes]
    assert all("WER" in lab for lab in labels) and all(ax.get_ylabel() for ax in fig.axes)
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


def _planted_grid(cells):
    """A grid from (layer, method, alpha, fpr, hallucination, wer) cells on two test sets."""
    rows = []
    for layer, method, alpha, fpr, hal, wer in cells:
        key = dict(layer=layer, method=method, source="" if method == "none" else "m+s",
                   k=np.nan if method != "sae" else 50.0, alpha=alpha)
        rows.append(dict(key, test_set="music_test", kind="nonspeech", n_clips=7, fpr=fpr,
                         hallucination_rate=hal, tpr=np.nan, wer=np.nan))
        rows.append(dict(key, test_set="speech_test", kind="speech", n_clips=5, fpr=np.nan,
                         hallucination_rate=np.nan, tpr=1.0, wer=wer))
    return pd.DataFrame(rows)[list(GRID_COLUMNS)]


def test_best_layer_within_the_wer_bound():
    from neuro_sae.steering import best_layer

    grid = _planted_grid([
        (0, "none", 0.0, 0.60, 0.7, 0.200),
        (2, "sae", 0.1, 0.10, 0.5, 0.260),   # lowest FPR but WER up 6 points
        (3, "sae", 0.1, 0.40, 0.6, 0.205),   # within the bound: the best
        (5, "sae", 0.1, 0.50, 0.2, 0.190),
        (3, "svector", 0.3, 0.05, 0.1, 0.200),  # another method: not considered
    ])
    layer, table = best_layer(grid)
    assert layer == 3
    assert list(table["layer"]) == [2, 3, 5]
    assert list(table["within_wer_bound"]) == [False, True, True]
    np.testing.assert_allclose(table["wer_increase"], [0.06, 0.005, -0.01], atol=1e-12)
    assert best_layer(grid, method="svector")[0] == 3
    assert best_layer(grid, max_wer_increase=0.1)[0] == 2
    # nothing within the bound: the lowest FPR + WER increase (layer 5: 0.45 + 0.05)
    grid2 = _planted_grid([(0, "none", 0.0, 0.6, 0.7, 0.1), (2, "sae", 0.1, 0.1, 0.5, 0.6),
                           (5, "sae", 0.1, 0.45, 0.5, 0.15)])
    assert best_layer(grid2)[0] == 5
    with pytest.raises(ValueError, match="no cell of the method 'svector'"):
        best_layer(grid2, method="svector")
