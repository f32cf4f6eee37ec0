"""Fisher scores, top-k probing/unlearning and concept erasure on planted data."""

import numpy as np
import pytest

from neuro_sae.interpret import concept_erasure, fisher_scores, plot_erasure, probe_curve


def test_fisher_score_hand_computation():
    x = np.array([[1.0, 0.0, 4.0], [2.0, 0.0, 4.0], [3.0, 0.0, 4.0], [5.0, 0.0, 9.0],
                  [7.0, 0.0, 9.0]])
    y = np.array(["a", "a", "a", "b", "b"])
    s = fisher_scores(x, y)
    # column 0: means 2 and 6, overall 3.6; between 3 * 1.6^2 + 2 * 2.4^2 = 19.2;
    # within 3 * 2/3 + 2 * 1 = 4
    np.testing.assert_allclose(s[0], 19.2 / 4)
    assert s[1] == 0.0 and s[2] == np.inf


def _planted(m, random_state):
    """Class A carried by exactly m features; B and C by 2 each; 'rest' by none."""
    rng = np.random.default_rng(random_state)
    sizes = {"A": 42, "B": 56, "C": 49, "rest": 91}
    y = np.concatenate([[c] * n for c, n in sizes.items()])
    n = len(y)
    cols = []
    for c, k in (("A", m), ("B", 2), ("C", 2)):
        for _ in range(k):
            cols.append((y == c) * (1.0 + 0.2 * rng.random(n)) + 0.05 * rng.random(n))
    for _ in range(5):
        cols.append(rng.random(n))  # noise
    x = np.stack(cols, 1)
    perm = rng.permutation(x.shape[1])  # carriers are not the first columns
    return x[:, perm], y, np.argsort(perm)[:m]


def test_concept_erasure_after_exactly_m_removals():
    m = 3
    x, y, carriers = _planted(m, 0)
    res = concept_erasure(x, y, "A", random_state=0, verbose=False)
    assert set(res.order[:m]) == set(carriers)
    assert res.erased_at == m
    np.testing.assert_allclose(res.erased_fraction, m / x.shape[1])
    tgt = res.curve[res.curve["class"] == "A"].set_index("n_removed")["mcc"]
    assert (tgt.loc[: m - 1] > 0.9).all()  # not before
    assert tgt.loc[m] <= 0.2
    # B and C stay readable while A is erased
    oth = res.curve[res.curve["class"].isin(["B", "C"])].groupby("n_removed")["mcc"].min()
    assert oth.loc[m] > 0.9
    assert res.others_at is not None and res.others_at >= m
    fig = plot_erasure(res, verbose=False)
    assert "MCC" in fig.axes[0].get_ylabel()
    import matplotlib.pyplot as plt

    plt.close("all")
    with pytest.raises(ValueError, match="classes are"):
        concept_erasure(x, y, "Z", verbose=False)


def test_probe_and_unlearn_against_random():
    rng = np.random.default_rng(3)
    n, n_feat = 160, 40
    y = np.repeat(["m", "f"], [90, 70])
    x = rng.random((n, n_feat))
    carry = [7, 23]
    for j in carry:
        x[:, j] = (y == "f") + 0.1 * rng.random(n)
    probe = probe_curve(x, y, ks=[2, 40], kind="probe", n_random=4, random_state=0,
                        verbose=False)
    fish = probe[(probe["selection"] == "fisher") & (probe["k"] == 2)]["accuracy"].item()
    rand = probe[(probe["selection"] == "random") & (probe["k"] == 2)]["accuracy"].mean()
    assert fish == 1.0 and rand < 0.8
    un = probe_curve(x, y, ks=[0, 2], kind="unlearn", n_random=4, random_state=0, verbose=False)
    assert un[(un["k"] == 0)]["accuracy"].min() == 1.0
    fish_un = un[(un["selection"] == "fisher") & (un["k"] == 2)]["accuracy"].item()
    rand_un = un[(un["selection"] == "random") & (un["k"] == 2)]["accuracy"].mean()
    assert fish_un < 0.75 and rand_un > 0.95
