"""Tests of the paper's protocol (lags on development runs, t-tests, Holm)."""

import numpy as np
import pytest

from neuro_sae.stats import paper_protocol


def test_paper_protocol_planted():
    """Planted kernels (peak at 200 ms on Pz) are found; Holm equals statsmodels."""
    from scipy import stats
    from statsmodels.stats.multitest import multipletests

    rng = np.random.default_rng(0)
    S, F, C = 12, 20, 3
    times = np.arange(-6, 33) / 64
    shape = np.exp(-0.5 * ((times - 0.2) / 0.03) ** 2)
    dev = 0.3 * rng.standard_normal((S, F, C, len(times)))
    test = 0.3 * rng.standard_normal((S, F, C, len(times)))
    for f in (3, 11):
        dev[:, f, 1] += 2.0 * shape
        test[:, f, 1] += 2.0 * shape
    table = paper_protocol(dev, test, times, ch_names=["Fz", "Pz", "Oz"])
    assert set(table.channel) == {"Pz"} and len(table) == 2 * F
    sig = table.groupby("feature").significant.any()
    assert set(sig[sig].index) == {"f3", "f11"}
    row = table[(table.feature == "f3") & (table.extremum == "max")].iloc[0]
    assert row.lag == pytest.approx(0.2, abs=1 / 64)
    # the t and p at the chosen lag, and Holm over all tests, from scipy/statsmodels
    k = np.argmin(np.abs(times - row.lag))
    ref = stats.ttest_1samp(test[:, 3, 1, k], 0.0, alternative="greater")
    assert row.t == pytest.approx(ref.statistic) and row.p == pytest.approx(ref.pvalue)
    np.testing.assert_allclose(table.p_holm, multipletests(table.p, method="holm")[1])
    assert table.attrs["fraction_significant"] == pytest.approx(2 / F)
    # all channels
    every = paper_protocol(dev, test, times, channel=None)
    assert len(every) == 2 * F * C


def test_paper_protocol_bad_input():
    rng = np.random.default_rng(1)
    dev = rng.standard_normal((4, 2, 3, 5))
    with pytest.raises(ValueError, match="channel='Pz' is not among"):
        paper_protocol(dev, dev, np.arange(5) / 10)
    with pytest.raises(ValueError, match="at least 2 subjects"):
        paper_protocol(dev[:1], dev[:1], np.arange(5) / 10, channel=None)
    with pytest.raises(ValueError, match="times has 4 lags"):
        paper_protocol(dev, dev, np.arange(4) / 10, channel=None)
