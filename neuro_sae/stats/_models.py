"""Group models: permuted OLS with covariates (nilearn) and layer-wise mixed models."""

from __future__ import annotations

import numbers
import warnings

import numpy as np

from .. import __version__
from ..io import hash_config
from ..utils import (
    check_array,
    check_int,
    check_names,
    check_option,
    check_random_state,
    fill_doc,
    logger,
    verbose,
)
from ._common import _rs_repr
from ._group import GroupResult
from ._multicomp import _check_n_permutations


def _seed(random_state):
    """An int seed for libraries that take ints (the given int when there is one)."""
    if isinstance(random_state, (numbers.Integral, np.integer)) and not isinstance(
        random_state, bool
    ):
        return int(random_state)
    return int(check_random_state(random_state).integers(0, 2**31 - 1))


def _check_subjects(n_subjects, name):
    if n_subjects < 2:
        raise ValueError(
            f"A group test needs at least 2 subjects, got {name} with {n_subjects}; "
            "test a single subject with sweep_permutation_test."
        )


@fill_doc
@verbose
def group_permuted_ols(
    r_subjects,
    tested=None,
    covariates=None,
    *,
    fisher_z=True,
    n_permutations=1000,
    tail=1,
    alpha=0.05,
    feature_names=None,
    ch_names=None,
    random_state=None,
    n_jobs=1,
    verbose=None,
):
    """Group test with covariates: nilearn's ``permuted_ols`` (max-T over all cells).

    Parameters
    ----------
    r_subjects : array, shape (n_subjects, n_features, n_channels)
        Per-subject statistics (e.g. ``sweep.r``).
    tested : array, shape (n_subjects,) | None
        The tested regressor; ``None`` tests the group mean (intercept, by sign
        flipping).
    covariates : array, shape (n_subjects, n_covariates) | None
        Confounds, fitted but not tested (an intercept is added by nilearn unless
        the tested regressor is the intercept).
    fisher_z : bool
        Test ``arctanh(r)`` (variance-stabilised) instead of ``r``.
    n_permutations : int
        Number of permutations (nilearn's ``n_perm``).
    tail : int
        1 (positive effects) or 0 (two-sided).
    alpha : float
        Family-wise level of ``significant`` (also checked against the smallest
        attainable p-value).
    feature_names, ch_names : list of str | None
        Names.
    %(random_state)s
    %(n_jobs)s
    %(verbose)s

    Returns
    -------
    result : GroupResult
        ``statistic`` is nilearn's t, ``p_fwe`` its max-T family-wise p-value,
        ``p_uncorrected`` the parametric one-sided (or two-sided) t-test p-value of
        the same OLS fit; ``method="permuted-ols"``.
    """
    from nilearn.mass_univariate import permuted_ols
    from scipy import stats

    check_option("tail", tail, (1, 0))
    n_permutations = check_int(n_permutations, "n_permutations")
    r = check_array(r_subjects, "r_subjects", ndim=3)
    S, F, C = r.shape
    _check_subjects(S, "r_subjects")
    _check_n_permutations(n_permutations, alpha)
    target = np.arctanh(np.clip(r, -0.999999, 0.999999)) if fisher_z else r
    target = np.ascontiguousarray(target.reshape(S, -1))
    if tested is None:
        tested_vars = np.ones((S, 1))
    else:
        tested_vars = check_array(tested, "tested", ndim=1).reshape(-1, 1)
        if tested_vars.shape[0] != S:
            raise ValueError(f"tested has {tested_vars.shape[0]} values for {S} subjects.")
    conf = None
    if covariates is not None:
        conf = check_array(covariates, "covariates")
        conf = conf.reshape(S, -1) if conf.ndim == 1 or conf.shape[0] == S else conf
        if conf.shape[0] != S:
            raise ValueError(f"covariates has {conf.shape[0]} rows for {S} subjects.")
    seed = _seed(random_state)
    logger.info(f"permuted_ols: {S} subjects, {F * C} tests, {n_permutations} permutations")
    out = permuted_ols(
        tested_vars, target, confounding_vars=conf, model_intercept=True,
        n_perm=n_permutations, two_sided_test=tail == 0, random_state=seed,
        n_jobs=n_jobs, verbose=0,
    )  # fmt: skip
    t = out["t"][0].reshape(F, C)
    p_fwe = 10.0 ** (-out["logp_max_t"][0].reshape(F, C))
    n_reg = 1 + (0 if conf is None else conf.shape[1]) + (0 if tested is None else 1)
    dof = S - n_reg
    p_unc = stats.t.sf(t, dof) if tail == 1 else 2 * stats.t.sf(np.abs(t), dof)
    return GroupResult(
        statistic=t,
        p_fwe=p_fwe,
        p_uncorrected=p_unc,
        max_null=np.asarray(out["h0_max_t"][0]),
        method="permuted-ols",
        statistic_name="t",
        tail=int(tail),
        alpha=float(alpha),
        n_subjects=int(S),
        n_permutations=int(n_permutations),
        exact=False,
        random_state=_rs_repr(random_state),
        feature_names=check_names(feature_names, F, "f", "feature_names"),
        ch_names=check_names(ch_names, C, "ch", "ch_names"),
        provenance=dict(
            neuro_sae_version=__version__,
            nilearn_seed=seed,
            fisher_z=bool(fisher_z),
            tested="intercept" if tested is None else "regressor",
            n_covariates=0 if conf is None else int(conf.shape[1]),
            config_hash=hash_config(
                dict(
                    method="permuted-ols",
                    n_permutations=n_permutations,
                    tail=tail,
                    seed=seed,
                    fisher_z=bool(fisher_z),
                )
            ),  # fmt: skip
        ),
    )


LAYER_STATISTICS = ("sample_max", "mean", "share_significant", "max")


@fill_doc
@verbose
def layer_statistic(data, *, statistic="sample_max", n_sample=None, alpha=0.05, random_state=None,
                    verbose=None):  # fmt: skip
    """One value per subject x layer from per-feature results, for a layer trend.

    A layer trend must not follow the number of features a layer has: the best r over
    all of a layer's features (``"max"``) grows with that number even when no feature
    responds (the maximum of more null draws is larger), so layers with more alive
    features look better. The default draws the same number of features from every
    layer and takes the best r among them, so every layer's null is the maximum of
    ``n_sample`` null draws.

    Parameters
    ----------
    data : pandas.DataFrame
        One row per subject x layer x feature with columns ``subject``, ``layer``,
        ``feature`` and ``r`` (e.g. a feature's held-out r at its best channel; the
        channels are the same at every layer), and ``p`` for
        ``"share_significant"`` (e.g. its family-wise p-value).
    statistic : "sample_max" | "mean" | "share_significant" | "max"
        ``"sample_max"`` (default): the best r among ``n_sample`` features drawn at
        random (without replacement, the same features for every subject) from each
        layer; ``"mean"``: the mean r over all of the layer's features (unbiased, but
        its variance shrinks with the count, so with very different counts the mixed
        model's equal-variance Wald test is liberal: a rate of 0.10 at a nominal 0.05 with 12 ... 768
        features per layer, ``docs/results/eeg_protocol.md``);
        ``"share_significant"``: the fraction of the layer's features with
        ``p < alpha`` (each layer's family-wise control makes its null close to 0 at
        any feature count); ``"max"``: the best r over all features.

        .. warning:: ``"max"`` is confounded with the number of features per layer:
           its null rises with the count (e.g. from about 1.8 to 3.2 null standard
           deviations between 16 and 1024 features), so a layer trend in it can be a
           trend in the number of alive features. Kept only to reproduce earlier
           results.
    n_sample : int | None
        Features drawn per layer for ``"sample_max"`` (``None``: the smallest number of
        features of any layer); at most that smallest number.
    alpha : float
        Significance level of ``"share_significant"``.
    %(random_state)s
    %(verbose)s

    Returns
    -------
    table : pandas.DataFrame
        One row per subject x layer: ``subject``, ``layer``, ``value``,
        ``n_features`` (the layer's features), ``n_used`` (the features the value is
        computed from) and ``statistic``.
    """
    import pandas as pd

    check_option("statistic", statistic, LAYER_STATISTICS)
    if not isinstance(data, pd.DataFrame):
        raise TypeError(f"data must be a pandas.DataFrame, got {type(data).__name__}.")
    need = {"subject", "layer", "feature", "r"} | ({"p"} if statistic == "share_significant" else set())
    missing = need - set(data.columns)
    if missing:
        raise ValueError(
            f"data lacks the column(s) {sorted(missing)}; statistic={statistic!r} needs "
            f"{sorted(need)} (one row per subject x layer x feature)."
        )
    df = data[sorted(need)].copy()
    feats = {layer: np.unique(f.to_numpy()) for layer, f in df.groupby("layer", sort=True)["feature"]}
    counts = {layer: len(f) for layer, f in feats.items()}
    used = counts
    if statistic == "sample_max":
        n_min = min(counts.values())
        n = n_min if n_sample is None else check_int(n_sample, "n_sample")
        if n > n_min:
            small = min(counts, key=counts.get)
            raise ValueError(
                f"n_sample={n} is larger than the {n_min} features of layer {small}; every "
                f"layer needs the same sample size: pass n_sample <= {n_min} (or None)."
            )
        rng = check_random_state(random_state)
        keep = pd.DataFrame(
            [(layer, f) for layer in sorted(feats) for f in rng.choice(feats[layer], n, replace=False)],
            columns=["layer", "feature"],
        )  # fmt: skip
        df = df.merge(keep.astype({"feature": df["feature"].dtype}), on=["layer", "feature"])
        value = df.groupby(["subject", "layer"])["r"].max()
        used = {layer: n for layer in counts}
    elif statistic == "share_significant":
        value = (df["p"] < alpha).groupby([df["subject"], df["layer"]]).mean()
    elif statistic == "mean":
        value = df.groupby(["subject", "layer"])["r"].mean()
    else:
        value = df.groupby(["subject", "layer"])["r"].max()
    out = value.rename("value").reset_index()
    out["n_features"] = out["layer"].map(counts).astype(int)
    out["n_used"] = out["layer"].map(used).astype(int)
    out["statistic"] = statistic
    logger.info(
        f"Layer statistic {statistic!r} over {len(counts)} layers ({min(counts.values())}-"
        f"{max(counts.values())} features; {min(used.values())} used per layer at least)"
    )
    return out


@fill_doc
@verbose
def layer_mixedlm(
    data,
    *,
    statistic="sample_max",
    n_sample=None,
    alpha=0.05,
    formula="z ~ layer",
    fisher_z=True,
    reml=True,
    random_state=None,
    verbose=None,
):
    """Layer-wise trend: linear mixed model ``z ~ layer + (1 | subject)`` (statsmodels).

    Parameters
    ----------
    data : pandas.DataFrame
        Per-feature rows (columns ``subject``, ``layer``, ``feature``, ``r``, and ``p``
        for ``"share_significant"``), reduced to one value per subject x layer with
        :func:`layer_statistic`; or, with ``statistic=None``, one row per subject x
        layer whose ``r`` column is modelled as given. Extra columns can enter
        ``formula`` (with ``statistic=None``).
    statistic : "sample_max" | "mean" | "share_significant" | "max" | None
        The per subject x layer statistic (see :func:`layer_statistic`; the default,
        the best r among the same number of random features from every layer, has a
        null that does not depend on a layer's feature count).

        .. warning:: ``"max"`` (the best r over all features, this function's former
           input) rises with the number of features per layer under the null: its
           trend can be a trend in the number of alive features.
    n_sample : int | None
        Features per layer for ``"sample_max"`` (``None``: the smallest layer's count).
    alpha : float
        Level of ``"share_significant"``.
    formula : str
        Fixed-effects formula (patsy); ``z`` is ``arctanh(r)`` when ``fisher_z`` (the
        share of significant features is modelled untransformed).
    fisher_z : bool
        Model Fisher-z transformed correlations (otherwise ``z`` is ``r``).
    reml : bool
        Restricted maximum likelihood (statsmodels' default).
    %(random_state)s
    %(verbose)s

    Returns
    -------
    table : pandas.DataFrame
        One row per fixed effect: ``term``, ``estimate``, ``se``, ``z``, ``p``,
        ``ci_low``, ``ci_high``; ``table.attrs`` holds ``group_var`` (random
        intercept variance), ``n_subjects``, ``n_obs``, ``converged``,
        ``fit_warnings`` (statsmodels' warnings, e.g. a boundary fit when the random
        intercept variance is small in absolute terms), the formula, ``statistic``
        and ``n_sample``.
    """
    import pandas as pd
    import statsmodels.formula.api as smf
    from statsmodels.tools.sm_exceptions import ModelWarning

    if not isinstance(data, pd.DataFrame):
        raise TypeError(f"data must be a pandas.DataFrame, got {type(data).__name__}.")
    if statistic is not None:
        check_option("statistic", statistic, LAYER_STATISTICS + (None,))
        if "feature" not in data.columns:
            raise ValueError(
                f"statistic={statistic!r} needs per-feature rows (a 'feature' column), but data "
                f"has the columns {list(data.columns)}; pass per-feature rows, or "
                "statistic=None to model data['r'] as one value per subject x layer."
            )
        reduced = layer_statistic(data, statistic=statistic, n_sample=n_sample, alpha=alpha,
                                  random_state=random_state)  # fmt: skip
        n_used = int(reduced["n_used"].min())
        data = reduced.rename(columns={"value": "r"})
        if statistic == "share_significant":
            fisher_z = False
    else:
        n_used = None
    missing = {"subject", "layer", "r"} - set(data.columns)
    if missing:
        raise ValueError(
            f"data lacks the column(s) {sorted(missing)}; it needs 'subject', 'layer' and 'r' "
            "(one row per subject x layer)."
        )
    n_sub = data["subject"].nunique()
    _check_subjects(n_sub, "data")
    df = data.copy()
    df["z"] = np.arctanh(np.clip(df["r"].to_numpy(float), -0.999999, 0.999999)) if fisher_z \
        else df["r"].astype(float)  # fmt: skip
    model = smf.mixedlm(formula, df, groups=df["subject"])
    with warnings.catch_warnings(record=True) as caught:
        # statsmodels warns on boundary fits (zero random-effect variance, a singular
        # random-effects covariance); recorded in attrs and logged instead of raised
        warnings.simplefilter("always", ModelWarning)
        warnings.simplefilter("always", RuntimeWarning)
        fit = model.fit(reml=reml)
    for w in caught:
        logger.info(f"mixedlm: {w.message}")
    fe = fit.fe_params.index
    ci = fit.conf_int().loc[fe]
    table = pd.DataFrame(
        dict(
            term=list(fe),
            estimate=fit.fe_params.to_numpy(),
            se=fit.bse_fe.to_numpy(),
            z=fit.tvalues.loc[fe].to_numpy(),
            p=fit.pvalues.loc[fe].to_numpy(),
            ci_low=ci.iloc[:, 0].to_numpy(),
            ci_high=ci.iloc[:, 1].to_numpy(),
        )
    )
    table.attrs.update(
        group_var=float(np.asarray(fit.cov_re)[0, 0]),
        n_subjects=int(n_sub),
        n_obs=int(len(df)),
        converged=bool(fit.converged),
        fit_warnings=[str(w.message) for w in caught],
        formula=formula + " + (1 | subject)",
        fisher_z=bool(fisher_z),
        statistic="given" if statistic is None else statistic,
        n_sample=n_used,
    )
    return table
