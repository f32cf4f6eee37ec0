"""The paper's protocol (AudioSAE, EACL 2026): lags on development runs, t-tests on test runs."""

from __future__ import annotations

import numpy as np

from .. import __version__
from ..align import eeg_scaling_statistics
from ..utils import check_array, check_names, check_option, fill_doc, logger, verbose
from ._models import _check_subjects


@fill_doc
@verbose
def paper_protocol(
    coef_dev,
    coef_test,
    times,
    *,
    ch_names=None,
    channel="Pz",
    feature_names=None,
    tmin=0.0,
    tmax=0.5,
    alpha=0.05,
    verbose=None,
):
    """Reproduce the paper's significance test of SAE features (one TRF per feature).

    For each feature the subject-averaged development kernel gives ``tau_max`` (its
    maximum) and ``tau_min`` (its minimum) within ``[tmin, tmax]``, on each tested
    channel. On the test runs, one-sided t-tests across subjects ask whether the
    kernel at ``tau_max`` is above zero and whether the kernel at ``tau_min`` is
    below zero. All p-values (features x channels x {max, min}) are corrected with
    Holm-Bonferroni (``statsmodels.stats.multitest.multipletests(method="holm")``) at
    ``alpha``; a feature is significant when either of its tests is.

    Parameters
    ----------
    coef_dev : array, shape (n_subjects, n_features, n_channels, n_lags)
        Kernels fitted on each subject's development runs (e.g. ``sweep.coef``).
    coef_test : array, shape (n_subjects, n_features, n_channels, n_lags)
        Kernels fitted on the test runs.
    times : array, shape (n_lags,)
        Lags in seconds.
    ch_names : list of str | None
        Channel names (default ``"ch0"``, ...).
    channel : str | None
        The channel tested (the paper: ``"Pz"``); ``None`` tests every channel.
    feature_names : list of str | None
        Feature names.
    tmin, tmax : float
        Window (s) where ``tau_min`` and ``tau_max`` are searched (the paper: 0-0.5).
    alpha : float
        Holm-Bonferroni family-wise level.
    %(verbose)s

    Returns
    -------
    table : pandas.DataFrame
        One row per feature x channel x extremum: ``feature``, ``channel``,
        ``extremum`` (``"max"``/``"min"``), ``lag`` (s), ``t``, ``p`` (one-sided),
        ``p_holm``, ``significant``. ``table.attrs`` holds the settings and the
        fraction of significant features.
    """
    import pandas as pd
    from scipy import stats
    from statsmodels.stats.multitest import multipletests

    dev = check_array(coef_dev, "coef_dev", ndim=4)
    test = check_array(coef_test, "coef_test", ndim=4)
    S, F, C, L = dev.shape
    _check_subjects(S, "coef_dev")
    if test.shape[1:] != dev.shape[1:] or test.shape[0] < 2:
        raise ValueError(
            f"coef_test has shape {test.shape} but coef_dev has {dev.shape}; both need "
            "(n_subjects >= 2, n_features, n_channels, n_lags) with the same last three."
        )
    times = check_array(times, "times", ndim=1)
    if len(times) != L:
        raise ValueError(f"times has {len(times)} lags but the kernels have {L}.")
    ch_names = check_names(ch_names, C, "ch", "ch_names")
    feature_names = check_names(feature_names, F, "f", "feature_names")
    if channel is None:
        chs = np.arange(C)
    else:
        if channel not in ch_names:
            raise ValueError(
                f"channel={channel!r} is not among the channels ({ch_names[:8]}...); pass "
                "ch_names or channel=None for all channels."
            )
        chs = np.array([ch_names.index(channel)])
    win = np.nonzero((times >= tmin - 1e-12) & (times <= tmax + 1e-12))[0]
    if not len(win):
        raise ValueError(f"No lag in [tmin, tmax] = [{tmin}, {tmax}] s; times span "
                         f"{times[0]:g} ... {times[-1]:g} s.")  # fmt: skip
    avg = dev[:, :, chs][..., win].mean(0)  # (F, C', W)
    i_max = win[np.argmax(avg, axis=-1)]  # (F, C')
    i_min = win[np.argmin(avg, axis=-1)]
    f_idx, c_idx = np.meshgrid(np.arange(F), np.arange(len(chs)), indexing="ij")
    at_max = test[:, f_idx, chs[c_idx], i_max]  # (S, F, C')
    at_min = test[:, f_idx, chs[c_idx], i_min]
    t_max, p_max = stats.ttest_1samp(at_max, 0.0, axis=0, alternative="greater")
    t_min, p_min = stats.ttest_1samp(at_min, 0.0, axis=0, alternative="less")
    p_all = np.concatenate([p_max.ravel(), p_min.ravel()])
    reject, p_holm, _, _ = multipletests(np.nan_to_num(p_all, nan=1.0), alpha=alpha,
                                         method="holm")  # fmt: skip
    n = F * len(chs)
    names = np.asarray(feature_names)
    rows = dict(
        feature=np.concatenate([names[f_idx.ravel()]] * 2),
        channel=np.concatenate([np.asarray(ch_names)[chs[c_idx.ravel()]]] * 2),
        extremum=np.repeat(["max", "min"], n),
        lag=np.concatenate([times[i_max].ravel(), times[i_min].ravel()]),
        t=np.concatenate([t_max.ravel(), t_min.ravel()]),
        p=p_all,
        p_holm=p_holm,
        significant=reject,
    )
    table = pd.DataFrame(rows)
    frac = table.groupby("feature")["significant"].any().mean()
    logger.info(f"Paper protocol: {100 * frac:.1f}% of {F} features significant (Holm {alpha})")
    table.attrs.update(
        protocol="AudioSAE EACL 2026: lags on development runs, one-sided t-tests on test "
        "runs, Holm-Bonferroni",
        channel=channel, tmin=float(tmin), tmax=float(tmax), alpha=float(alpha),
        n_subjects_dev=int(S), n_subjects_test=int(test.shape[0]),
        fraction_significant=float(frac), neuro_sae_version=__version__,
    )  # fmt: skip
    return table


def _index_list(runs, n_runs, parameter):
    vals = [int(i) for i in np.atleast_1d(np.asarray(runs, dtype=object))] if runs is not None else []
    if not vals or len(set(vals)) != len(vals) or min(vals) < 0 or max(vals) >= n_runs:
        raise ValueError(
            f"{parameter} must be a non-empty list of distinct run indices in 0 ... {n_runs - 1}, "
            f"got {runs!r}; pass e.g. {parameter}=[0, 1]."
        )
    return vals


def _scale_eeg_runs(Y_runs, masks, eeg_scaling, dev, scaling_runs):
    """Per-channel centre and spread of the dev runs (or of each run), applied to the runs.

    Median/IQR and mean/std are equivariant under a positive per-channel affine map, so
    EEG already scaled with other runs' statistics ends up exactly as if the unscaled EEG
    had been scaled with these."""

    def stats(idx):
        return eeg_scaling_statistics(Y_runs, masks, idx, eeg_scaling)

    if eeg_scaling is None:
        C = Y_runs[0].shape[1]
        return list(Y_runs), np.zeros((1, C)), np.ones((1, C))
    if scaling_runs == "dev":
        center, denom = stats(dev)
        return [(y - center) / denom for y in Y_runs], center[None], denom[None]
    pairs = [stats([i]) for i in range(len(Y_runs))]
    out = [(y - c) / d for y, (c, d) in zip(Y_runs, pairs)]
    return out, np.stack([c for c, _ in pairs]), np.stack([d for _, d in pairs])


def _scale_feature_runs(X_runs, feature_scale, dev):
    """Feature scaling with statistics of the development runs only (equivariant too)."""
    import scipy.sparse as sp

    F = X_runs[0].shape[1]
    if feature_scale is None:
        return list(X_runs), np.zeros(F), np.ones(F)
    if feature_scale == "max":
        center = np.zeros(F)
        denom = np.max([np.abs(X_runs[i]).max(axis=0).toarray().ravel() if sp.issparse(X_runs[i])
                        else np.abs(X_runs[i]).max(axis=0) for i in dev], axis=0)  # fmt: skip
    else:
        dense = [np.asarray(X_runs[i].todense() if sp.issparse(X_runs[i]) else X_runs[i], float) for i in dev]
        cat = np.concatenate(dense)
        center, denom = cat.mean(axis=0), cat.std(axis=0)
    denom = np.where(denom == 0, 1.0, denom)
    if np.allclose(center, 0.0, rtol=0, atol=1e-12) and np.allclose(denom, 1.0, rtol=1e-12, atol=0):
        return list(X_runs), center, denom  # already scaled by these statistics: no copy
    out = []
    for x in X_runs:
        if sp.issparse(x) and feature_scale == "max":
            out.append(sp.csr_array(x @ sp.diags_array(1.0 / denom)))
        else:
            x = np.asarray(x.todense() if sp.issparse(x) else x, dtype=float)
            out.append((x - center) / denom)
    return out, center, denom


def _ridge_kernels(X_runs, Y_runs, delays, alpha, basis=None):
    """Ridge kernels of each feature alone (with an unpenalised intercept), per channel.

    From the per-run lagged statistics (:func:`neuro_sae.encoding.univariate_run_stats`)
    summed over the given runs and centred. With ``basis`` (n_delays, n_basis) the ridge
    is fitted on the design ``X_lag @ basis`` with penalty ``alpha * ||beta||^2`` (as
    :func:`neuro_sae.encoding.univariate_sweep`) and the kernel is ``basis @ beta``.

    Returns
    -------
    coef : array, shape (n_features, n_channels, n_delays)
    """
    from ..encoding import eigh_psd, univariate_run_stats

    delays = np.asarray(delays)
    G = H = sx = 0.0
    sy, n = 0.0, 0
    for x, y in zip(X_runs, Y_runs):
        y = np.asarray(y, float)
        g, h, s_x = univariate_run_stats(x, y, delays)
        G, H, sx = G + g, H + h, sx + s_x
        sy, n = sy + y.sum(0), n + len(y)
    G = G - sx[:, :, np.newaxis] * sx[:, np.newaxis, :] / n
    H = H - sx[:, :, np.newaxis] * np.asarray(sy)[np.newaxis, np.newaxis, :] / n
    if basis is not None:
        basis = np.asarray(basis, float)
        G = np.einsum("lq,flm,mk->fqk", basis, G, basis, optimize=True)
        H = np.einsum("lq,flc->fqc", basis, H, optimize=True)
    evals, evecs = eigh_psd(G)  # (F, K), (F, K, K)
    proj = np.einsum("flk,flc->fck", evecs, H)  # data in each feature's eigenbasis
    shrunk = proj / (evals[:, np.newaxis, :] + np.asarray(alpha, float)[:, :, np.newaxis])
    coef = np.einsum("fck,flk->fcl", shrunk, evecs)
    return coef if basis is None else coef @ basis.T


@fill_doc
@verbose
def protocol_kernels(
    X_runs,
    Y_runs,
    dev_runs,
    test_runs,
    *,
    sfreq,
    tmin,
    tmax,
    alphas=None,
    basis=None,
    masks=None,
    eeg_scaling="robust",
    scaling_runs="dev",
    feature_scale="max",
    verbose=None,
):
    """Development and test kernels of the paper's protocol, every choice made on dev runs.

    The kernels that :func:`paper_protocol` tests. No statistic of a test run enters a
    development-side decision:

    1. EEG scaling (``eeg_scaling``): per-channel centre and spread from the good
       samples (``masks``) of the development runs, applied to every run
       (``scaling_runs="dev"``), or each run scaled by its own statistics
       (``scaling_runs="each"``). ``Y_runs`` may already be scaled by any per-channel
       positive affine map (e.g. :func:`neuro_sae.align.align_subject` with other
       ``train_runs``): median/IQR and mean/std are equivariant, so the result equals
       scaling the unscaled EEG with these statistics.
    2. Feature scaling (``feature_scale``) from the development runs (equivariant too).
    3. Ridge alpha of each feature x channel: leave-one-run-out CV over the development
       runs (:func:`neuro_sae.encoding.univariate_sweep` with ``test_runs``), in the
       same model as the kernels (the same ``basis`` or none). With one development run
       and several alphas, its two halves serve as the CV folds.
    4. Development kernels: ridge on the development runs with that alpha; test kernels:
       ridge on the test runs with the same alpha and model.

    Parameters
    ----------
    X_runs : list of array | list of scipy.sparse array, shape (n_times, n_features)
        Features per run.
    Y_runs : list of array, shape (n_times, n_channels)
        EEG per run.
    dev_runs, test_runs : list of int
        Indices (into the runs) of the development and test runs (disjoint).
    %(sfreq_features)s
    %(tmin_trf)s
    %(tmax_trf)s
    alphas : array-like of float | None
        Raw ridge penalties tried on the development runs (``None``: the relative grid
        of :func:`neuro_sae.encoding.univariate_sweep`).
    basis : float | array, shape (n_delays, n_basis) | None
        Lag basis of the kernels (see :func:`neuro_sae.encoding.univariate_sweep`);
        alpha is tuned in it. ``None``: one coefficient per lag (mTRF, the paper).
    masks : list of array of bool, shape (n_times,) | None
        Good samples of each run for the EEG scaling statistics (``None``: all).
    eeg_scaling : "robust" | "zscore" | None
        ``"robust"``: zero median, unit interquartile range per channel (the paper);
        ``"zscore"``: zero mean, unit standard deviation; ``None``: as given.
    scaling_runs : "dev" | "each"
        Whose statistics scale the EEG: the development runs' (pooled) or each run's own.
    feature_scale : "max" | "zscore" | None
        Feature scaling from the development runs: unit maximum absolute value (the
        paper), zero mean and unit standard deviation, or none.
    %(verbose)s

    Returns
    -------
    kernels : dict
        ``coef_dev``, ``coef_test`` (n_features, n_channels, n_delays); ``alpha``
        (n_features, n_channels), the alpha of both; ``alphas`` (n_features, n_alphas),
        the grid; ``r_test`` (n_features, n_channels), the held-out r of the development
        model on the test runs; ``delays``, ``times``; ``eeg_center``, ``eeg_scale``
        (1 or n_runs, n_channels) and ``feature_scale`` (n_features,), the scaling
        statistics; ``dev_runs``, ``test_runs``; ``settings`` (a dict of the choices).
    """
    from ..encoding import univariate_sweep

    check_option("eeg_scaling", eeg_scaling, ("robust", "zscore", None))
    check_option("scaling_runs", scaling_runs, ("dev", "each"))
    check_option("feature_scale", feature_scale, ("max", "zscore", None))
    if not isinstance(X_runs, (list, tuple)) or not isinstance(Y_runs, (list, tuple)) \
            or len(X_runs) != len(Y_runs) or not X_runs:  # fmt: skip
        raise ValueError(
            "X_runs and Y_runs must be non-empty lists with one array per run, got "
            f"{type(X_runs).__name__} and {type(Y_runs).__name__} of lengths "
            f"{len(X_runs) if hasattr(X_runs, '__len__') else '?'} and "
            f"{len(Y_runs) if hasattr(Y_runs, '__len__') else '?'}."
        )
    R = len(X_runs)
    dev = _index_list(dev_runs, R, "dev_runs")
    test = _index_list(test_runs, R, "test_runs")
    both = sorted(set(dev) & set(test))
    if both:
        raise ValueError(
            f"dev_runs and test_runs share run(s) {both}; the protocol needs disjoint "
            "development and test runs (e.g. dev_runs=[0, 1], test_runs=[2, 3, 4])."
        )
    Y_runs = [check_array(y, f"Y_runs[{i}]", ndim=2) for i, y in enumerate(Y_runs)]
    if masks is None:
        masks = [np.ones(len(y), bool) for y in Y_runs]
    masks = [np.asarray(m, bool) for m in masks]
    Y, eeg_center, eeg_scale = _scale_eeg_runs(Y_runs, masks, eeg_scaling, dev, scaling_runs)
    X, _, feat_scale = _scale_feature_runs(list(X_runs), feature_scale, dev)
    n_alphas = 9 if alphas is None else len(np.atleast_1d(alphas))
    tune_X, tune_Y = [X[i] for i in dev], [Y[i] for i in dev]
    halves = len(dev) == 1 and n_alphas > 1
    if halves:  # one development run: its two halves are the CV folds
        half = len(tune_Y[0]) // 2
        tune_X = [tune_X[0][:half], tune_X[0][half:]]
        tune_Y = [tune_Y[0][:half], tune_Y[0][half:]]
    n_tune = len(tune_X)
    # alphas by leave-one-run-out over the dev runs only; the test runs enter only r_test
    sweep = univariate_sweep(
        tune_X + [X[i] for i in test], tune_Y + [Y[i] for i in test], sfreq=sfreq, tmin=tmin,
        tmax=tmax, alphas=alphas, basis=basis, return_kernels=False,
        test_runs=list(range(n_tune, n_tune + len(test))),
    )  # fmt: skip
    alpha = sweep.alpha_final
    fit_basis = sweep.basis if sweep.basis.size else None  # (0, 0) without a basis
    coef_dev = _ridge_kernels([X[i] for i in dev], [Y[i] for i in dev], sweep.delays, alpha, fit_basis)
    coef_test = _ridge_kernels([X[i] for i in test], [Y[i] for i in test], sweep.delays, alpha, fit_basis)
    settings = dict(
        alpha_tuning="leave-one-run-out on the development runs"
        + (" (two halves of the one run)" if halves else ""),
        model="lag basis" if fit_basis is not None else "one coefficient per lag",
        eeg_scaling=eeg_scaling, scaling_runs=scaling_runs, feature_scale=feature_scale,
    )  # fmt: skip
    logger.info(
        f"Protocol kernels: {coef_dev.shape[0]} features, dev runs {dev}, test runs {test}; "
        f"alpha by {settings['alpha_tuning']} ({settings['model']}); EEG scaling "
        f"{eeg_scaling} from {'the dev runs' if scaling_runs == 'dev' else 'each run'}"
    )
    return dict(
        coef_dev=coef_dev, coef_test=coef_test, alpha=alpha, alphas=sweep.alphas, r_test=sweep.r,
        delays=sweep.delays, times=sweep.delays / float(sfreq), eeg_center=eeg_center,
        eeg_scale=eeg_scale, feature_scale=feat_scale, dev_runs=dev, test_runs=test,
        settings=settings,
    )  # fmt: skip
