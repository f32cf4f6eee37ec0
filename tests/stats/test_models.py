"""Tests of permuted OLS with covariates and the layer-wise mixed model."""

import warnings

import numpy as np
import pandas as pd
import pytest

from neuro_sae.stats import group_permuted_ols, layer_mixedlm


def test_permuted_ols_parity_with_nilearn():
    """The wrapper returns nilearn's t and FWE p-values exactly (same seed)."""
    from nilearn.mass_univariate import permuted_ols

    rng = np.random.default_rng(0)
    S, F, C = 11, 4, 3
    age = rng.standard_normal(S)
    r = 0.02 * rng.standard_normal((S, F, C))
    r[:, 1, 2] += 0.3  # group effect
    r[:, 3, 0] += 0.1 * age  # covariate effect
    res = group_permuted_ols(r, covariates=age, n_permutations=500, random_state=3)
    ref = permuted_ols(
        np.ones((S, 1)), np.arctanh(r).reshape(S, -1), confounding_vars=age[:, None],
        n_perm=500, two_sided_test=False, random_state=3, verbose=0,
    )  # fmt: skip
    np.testing.assert_allclose(res.statistic.ravel(), ref["t"][0])
    np.testing.assert_allclose(res.p_fwe.ravel(), 10 ** -ref["logp_max_t"][0])
    assert res.significant[1, 2] and res.significant.sum() <= 2
    # t of the intercept equals statsmodels OLS with the covariate
    import statsmodels.api as sm

    ols = sm.OLS(np.arctanh(r[:, 1, 2]), sm.add_constant(age)).fit()
    assert res.statistic[1, 2] == pytest.approx(ols.tvalues[0], rel=1e-8)
    assert res.p_uncorrected[1, 2] == pytest.approx(ols.pvalues[0] / 2, rel=1e-6)
    # a tested regressor (age) with no covariates
    res_age = group_permuted_ols(r, tested=age, n_permutations=500, random_state=3)
    assert res_age.p_fwe[3, 0] < 0.05
    assert res_age.provenance["tested"] == "regressor"


def test_mixedlm_layer_trend():
    """A planted layer slope in Fisher z is recovered; equals statsmodels directly."""
    import statsmodels.formula.api as smf

    rng = np.random.default_rng(1)
    rows = []
    for s in range(9):
        offset = 0.05 * rng.standard_normal()
        for layer in range(1, 7):
            z = 0.02 + 0.015 * layer + offset + 0.005 * rng.standard_normal()
            rows.append(dict(subject=f"sub-{s:02d}", layer=layer, r=np.tanh(z)))
    df = pd.DataFrame(rows)
    table = layer_mixedlm(df)
    slope = table.set_index("term").loc["layer"]
    assert slope.estimate == pytest.approx(0.015, abs=0.003)
    assert slope.p < 1e-6 and slope.ci_low < 0.015 < slope.ci_high
    df["z"] = np.arctanh(df["r"])
    with warnings.catch_warnings():
        # statsmodels flags a "boundary" fit from an absolute variance threshold (0.01)
        warnings.simplefilter("ignore")
        ref = smf.mixedlm("z ~ layer", df, groups=df["subject"]).fit()
    np.testing.assert_allclose(table["estimate"], ref.fe_params.to_numpy(), rtol=1e-10)
    assert table.attrs["n_subjects"] == 9 and table.attrs["n_obs"] == 54


def test_group_models_bad_input():
    """Fewer than 2 subjects and missing columns are refused with a clear message."""
    r = np.zeros((1, 2, 3))
    with pytest.raises(ValueError, match="at least 2 subjects"):
        group_permuted_ols(r)
    df = pd.DataFrame(dict(subject=["a"] * 3, layer=[1, 2, 3], r=[0.1, 0.2, 0.3]))
    with pytest.raises(ValueError, match="at least 2 subjects"):
        layer_mixedlm(df)
    with pytest.raises(ValueError, match=r"lacks the column\(s\) \['r'\]"):
        layer_mixedlm(df.drop(columns="r"))
    rng = np.random.default_rng(2)
    with pytest.warns(UserWarning, match="smallest attainable p-value is 1/\\(10 \\+ 1\\)"):
        group_permuted_ols(rng.standard_normal((5, 2, 2)), n_permutations=10, random_state=0)
