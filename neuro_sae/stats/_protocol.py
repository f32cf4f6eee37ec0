"""The paper's protocol (AudioSAE, EACL 2026): lags on development runs, t-tests on test runs."""

from __future__ import annotations

import numpy as np

from .. import __version__
from ..utils import check_array, check_names, fill_doc, logger, verbose
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
