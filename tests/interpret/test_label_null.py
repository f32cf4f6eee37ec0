"""Label search's chance control: permutation null, held-out F1, thresholds over the range.

The must-show: on 6,144 random features the permutation-controlled hits occur for
about ``alpha`` of random labels (the in-sample F1 > 0.5 rule flags almost all of them).
"""

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import f1_score

from neuro_sae.interpret import label_search, make_clip_codes


def _pooled_codes(pooled, label_sets):
    """One frame per clip, so the clip max-pool is ``pooled`` itself."""
    rows = [dict(id=f"c{ii:03d}", domain="speech", labels=sorted(ls))
            for ii, ls in enumerate(label_sets)]
    arrays = {r["id"]: pooled[ii:ii + 1] for ii, r in enumerate(rows)}
    return make_clip_codes(arrays, pd.DataFrame(rows), layer=4, verbose=False)


def _random_labels(rng, n_clips, n_labels, n_pos):
    sets = [set() for _ in range(n_clips)]
    for j in range(n_labels):
        for i in rng.choice(n_clips, n_pos, replace=False):
            sets[i].add(f"L{j:02d}")
    return sets


@pytest.mark.parametrize("seed", [0, 1])
def test_false_label_rate_on_6144_random_features(seed):
    rng = np.random.default_rng(seed)
    n_clips, n_feat, n_labels, n_pos = 50, 6144, 40, 5
    active = rng.random((n_clips, n_feat)) < 0.1
    pooled = (rng.exponential(1.0, (n_clips, n_feat)) * active).astype(np.float32)
    sets = _random_labels(rng, n_clips, n_labels, n_pos)
    planted = rng.choice(n_clips, n_pos, replace=False)  # a true label, as positive control
    pooled[:, 0] = 0
    pooled[planted, 0] = 2.0
    for i in planted:
        sets[i].add("true")
    codes = _pooled_codes(pooled, sets)
    table = label_search(codes, n_permutations=39, alpha=0.05, heldout=False,
                         random_state=seed, verbose=False)
    per_label = table.groupby("label").agg(hit=("hit", "any"), in_sample=("hit_in_sample", "any"),
                                           p_min=("p_fwe", "min"), n_pos=("n_positive", "first"))
    assert per_label.loc["true", "hit"] and per_label.loc["true", "p_min"] == 1 / 40
    per_label = per_label.drop(index="true")
    assert len(per_label) == n_labels and (per_label["n_pos"] == n_pos).all()
    # the paper's rule, in sample: with 5 positives almost every random label "has a feature"
    assert per_label["in_sample"].mean() > 0.8
    # with the permutation null: at most alpha of the labels (binomial(40, 0.05): P(>7) < 0.001)
    assert per_label["hit"].mean() <= 7 / n_labels
    # (the max-F1 statistic is discrete: ties make the test conservative, not liberal)
    # per-feature p-values: at most their nominal rate of small p
    assert (table["p_feature"] <= 0.05).mean() <= 0.06


@pytest.mark.parametrize("block", [None, 2])
def test_permutation_p_values_match_a_brute_force_loop(monkeypatch, block):
    if block is not None:  # force several feature blocks of the null
        from neuro_sae.interpret import _labels

        monkeypatch.setattr(_labels, "_BLOCK_ENTRIES", 25 * 10 * block)
    rng = np.random.default_rng(7)
    n_clips, n_feat, n_perm = 25, 6, 30
    pooled = (rng.random((n_clips, n_feat)) * (rng.random((n_clips, n_feat)) < 0.6))
    y = np.zeros(n_clips, bool)
    y[[1, 4, 9, 13, 20, 22]] = True
    pooled[y, 2] += 1.0  # a real effect on feature 2
    codes = _pooled_codes(pooled.astype(np.float32), [{"lab"} if v else set() for v in y])
    seed = 11
    table = label_search(codes, n_permutations=n_perm, heldout=False, random_state=seed,
                         verbose=False).set_index("feature").sort_index()

    pooled = codes.pool("max")  # float32, as the search sees it

    def f1_by_hand(yy, pred):
        tp, fp, fn = np.sum(yy & pred), np.sum(~yy & pred), np.sum(yy & ~pred)
        return 2 * tp / (2 * tp + fp + fn) if tp else 0.0

    def best_f1(yy, f1=f1_by_hand):
        out = np.zeros(n_feat)
        for j in range(n_feat):
            lo, hi = pooled[:, j].min(), pooled[:, j].max()
            for i in range(10):
                thr = np.float32(lo + i / 10 * (hi - lo))
                out[j] = max(out[j], f1(yy, pooled[:, j] > thr))
        return out

    obs = best_f1(y, lambda a, b: f1_score(a, b, zero_division=0))
    np.testing.assert_allclose(best_f1(y), obs)
    np.testing.assert_allclose(table["f1"], obs, atol=1e-6)
    g = np.random.default_rng(seed)  # the search draws its permutations first
    null = np.array([best_f1(g.permutation(y)) for _ in range(n_perm)])
    p_feat = (1 + (null >= obs - 1e-9).sum(0)) / (n_perm + 1)
    p_fwe = (1 + (null.max(1)[:, None] >= obs - 1e-9).sum(0)) / (n_perm + 1)
    np.testing.assert_allclose(table["p_feature"], p_feat)
    np.testing.assert_allclose(table["p_fwe"], p_fwe)
    assert table.loc[2, "p_fwe"] == 1 / (n_perm + 1) and table.loc[2, "hit"]


def test_thresholds_step_over_each_features_range():
    """Values 5.00-5.04 (negatives) and 5.05-5.09 (positives): steps of 0.1 of the maximum
    never separate them; steps of 0.1 of the range (from the minimum) do."""
    rng = np.random.default_rng(3)
    n = 30
    y = np.zeros(n, bool)
    y[rng.choice(n, 8, replace=False)] = True
    x = np.where(y, 5.05 + 0.04 * rng.random(n), 5.0 + 0.04 * rng.random(n))
    x[np.flatnonzero(y)[0]], x[np.flatnonzero(~y)[0]] = 5.09, 5.0  # the range's ends
    pooled = np.column_stack([x, rng.random(n)]).astype(np.float32)
    codes = _pooled_codes(pooled, [{"lab"} if v else set() for v in y])
    row = label_search(codes, n_permutations=0, random_state=0, verbose=False).iloc[0]
    assert row["feature"] == 0 and row["f1"] == 1.0
    assert x[~y].max() - 1e-6 <= row["threshold"] < x[y].min()
    assert np.isnan(row["p_fwe"]) and row["hit"] == row["hit_in_sample"]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_heldout_f1_on_null_and_planted_features(seed):
    rng = np.random.default_rng(seed)
    n_clips, n_feat = 80, 500
    pooled = (rng.exponential(1.0, (n_clips, n_feat))
              * (rng.random((n_clips, n_feat)) < 0.2)).astype(np.float32)
    y = np.zeros(n_clips, bool)
    y[rng.choice(n_clips, 16, replace=False)] = True
    pooled[:, 0] = y * (1 + rng.random(n_clips))  # planted
    codes = _pooled_codes(pooled, [{"lab"} if v else set() for v in y])
    t = label_search(codes, n_permutations=0, random_state=seed, verbose=False)
    t = t.set_index("feature")
    assert t.loc[0, "f1"] == 1.0 and t.loc[0, "f1_heldout"] == 1.0
    noise = t.drop(index=0)
    # the best threshold is picked on the same clips: in-sample F1 is inflated, held-out not
    # (F1 itself has a chance level near 2 p / (1 + p) = 0.33 for predicting every clip)
    assert noise["f1"].mean() - noise["f1_heldout"].mean() > 0.02


def test_label_search_errors():
    codes = _pooled_codes(np.eye(4, dtype=np.float32), [{"a"}, set(), {"a"}, set()])
    with pytest.raises(ValueError, match="alpha"):
        label_search(codes, alpha=1.5, verbose=False)
    with pytest.raises(ValueError, match="n_permutations"):
        label_search(codes, n_permutations=-1, verbose=False)
