"""Statistics plots: the permutation floor stated, the max-T null with observed values,
the chosen-alpha histogram and per-run r, each checked against planted numbers."""

import matplotlib.text
import numpy as np
import pandas as pd
import pytest

from neuro_sae.viz import plot_alpha_choices, plot_null_distribution, plot_run_r, plot_sweep_summary


def _texts(fig):
    return " ".join(t.get_text() for t in fig.findobj(matplotlib.text.Text))


def test_sweep_summary_marks_permutation_floor():
    n_perm = 999
    floor = 1 / (n_perm + 1)
    rng = np.random.default_rng(0)
    n = 37
    p = rng.uniform(0.06, 1, n)
    p[[3, 8, 20]] = floor  # three features at the floor
    p[11] = 0.01
    table = pd.DataFrame(dict(feature=np.arange(100, 100 + n), r=rng.uniform(0, 0.1, n), p_fwe=p,
                              significant=p < 0.05))
    fig = plot_sweep_summary(table, planted=[103, 108], alpha=0.05, p_floor=floor, show=False)
    ax_hist, ax_p = fig.axes[:2]
    assert ax_p.get_ylabel() == "-log10 p (FWE)" and ax_p.get_xlabel() == "best-channel group r"
    assert ax_hist.get_ylabel() == "features"
    legend = [t.get_text() for t in ax_p.get_legend().get_texts()]
    assert "permutation floor p = 1/1000: 3 feature(s) on it" in legend
    floor_lines = [ln for ln in ax_p.get_lines() if np.allclose(ln.get_ydata(), -np.log10(floor))]
    assert len(floor_lines) == 1
    assert ax_p.get_ylim()[1] > -np.log10(floor)
    # without p_floor no floor is claimed
    fig = plot_sweep_summary(table, show=False)
    assert "floor" not in _texts(fig)
    with pytest.raises(ValueError, match=r"p_floor must be in \(0, 1\).*got 1000"):
        plot_sweep_summary(table, p_floor=1000, show=False)


def test_null_distribution_observed_and_threshold():
    rng = np.random.default_rng(2)
    null = rng.normal(0.05, 0.01, 500)
    obs = np.array([0.2, 0.06])
    fig = plot_null_distribution(null, obs, labels=["f12", "f40"], alpha=0.05, show=False)
    ax = fig.axes[0]
    assert ax.get_xlabel() == "held-out r" and ax.get_ylabel() == "permutations"
    xs = sorted(float(ln.get_xdata()[0]) for ln in ax.get_lines())
    assert xs == pytest.approx(sorted([0.2, 0.06, np.quantile(null, 0.95)]))
    text = _texts(fig)
    assert "f12: 0.200" in text and "f40: 0.060" in text
    assert "1 observed value(s) beyond every permutation" in text and "1/(500+1)" in text
    assert ax.get_xlim()[1] > 0.2
    with pytest.raises(ValueError, match="labels has 1 entries"):
        plot_null_distribution(null, obs, labels=["x"], show=False)


def test_alpha_choices_counts_planted():
    grid = np.array([1.0, 10.0, 100.0, 1000.0])
    counts = np.array([5, 0, 9, 16])
    chosen = np.repeat(grid, counts)
    alpha_final = chosen.reshape(6, 5)
    fig = plot_alpha_choices(alpha_final, grid, show=False)
    ax = fig.axes[0]
    heights = [p.get_height() for p in ax.patches]
    assert heights == list(counts)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1e+00", "1e+01", "1e+02", "1e+03"]
    assert ax.get_ylabel() == "feature x channel pairs" and ax.get_xlabel() == "ridge alpha (raw)"
    assert ax.get_title().startswith(f"{(5 + 16) / 30:.0%}")
    # a grid relative to each feature: positions, not values
    rel = np.outer(np.arange(1, 7), grid)
    fig = plot_alpha_choices(alpha_final * np.arange(1, 7)[:, None], rel, show=False)
    assert [p.get_height() for p in fig.axes[0].patches] == list(counts)
    assert "position" in fig.axes[0].get_xlabel()


def test_run_r_lines():
    r = np.array([[0.1, 0.2, 0.15], [0.01, -0.02, 0.03]])
    fig = plot_run_r(r, ["run01", "run02", "run03"], ["f3", "envelope"], ylabel="held-out r (best channel)",
                     show=False)
    ax = fig.axes[0]
    lines = [ln for ln in ax.get_lines() if len(ln.get_xdata()) == 3]
    np.testing.assert_allclose(lines[0].get_ydata(), r[0])
    np.testing.assert_allclose(lines[1].get_ydata(), r[1])
    assert [t.get_text() for t in ax.get_xticklabels()] == ["run01", "run02", "run03"]
    assert ax.get_ylabel() == "held-out r (best channel)" and ax.get_xlabel() == "held-out run"
    assert "f3 (mean 0.150)" in _texts(fig)
    with pytest.raises(ValueError, match=r"r_runs has shape \(2, 3\)"):
        plot_run_r(r, ["a", "b"], ["f3", "envelope"], show=False)


def test_labels_and_floor():
    from neuro_sae.viz import feature_label, permutation_floor

    assert feature_label("f123") == "feature 123" and feature_label("envelope_broadband") == "envelope_broadband"
    assert permutation_floor(999) == pytest.approx(1e-3)
    assert permutation_floor(8, exact=True) == pytest.approx(1 / 8)
    with pytest.raises(ValueError, match="n_permutations must be >= 1, got 0"):
        permutation_floor(0)
