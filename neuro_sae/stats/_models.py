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


@fill_doc
@verbose
def layer_mixedlm(data, *, formula="z ~ layer", fisher_z=True, reml=True, verbose=None):
    """Layer-wise trend: linear mixed model ``z ~ layer + (1 | subject)`` (statsmodels).

    Parameters
    ----------
    data : pandas.DataFrame
        One row per observation with columns ``subject``, ``layer`` and ``r`` (e.g.
        the mean held-out r of a subject's features at a layer); extra columns can
        enter ``formula``.
    formula : str
        Fixed-effects formula (patsy); ``z`` is ``arctanh(r)`` when ``fisher_z``.
    fisher_z : bool
        Model Fisher-z transformed correlations (otherwise ``z`` is ``r``).
    reml : bool
        Restricted maximum likelihood (statsmodels' default).
    %(verbose)s

    Returns
    -------
    table : pandas.DataFrame
        One row per fixed effect: ``term``, ``estimate``, ``se``, ``z``, ``p``,
        ``ci_low``, ``ci_high``; ``table.attrs`` holds ``group_var`` (random
        intercept variance), ``n_subjects``, ``n_obs``, ``converged``,
        ``fit_warnings`` (statsmodels' warnings, e.g. a boundary fit when the random
        intercept variance is small in absolute terms) and the formula.
    """
    import pandas as pd
    import statsmodels.formula.api as smf
    from statsmodels.tools.sm_exceptions import ConvergenceWarning

    if not isinstance(data, pd.DataFrame):
        raise TypeError(f"data must be a pandas.DataFrame, got {type(data).__name__}.")
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
        # statsmodels warns on boundary fits (zero random-effect variance); recorded
        # in attrs["converged"] and logged instead of raised
        warnings.simplefilter("always", ConvergenceWarning)
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
    )
    return table
