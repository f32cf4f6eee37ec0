"""Bad statistics input: options, permutation counts, incompatible subjects, group shapes."""

from functools import cache

import numpy as np

from neuro_sae.encoding import univariate_sweep
from neuro_sae.stats import group_permutation_test, sweep_permutation_test
from tests.bad_input import BadInput


@cache
def _subject(seed=0, tmax=0.06, alphas=(1.0, 10.0)):
    rng = np.random.default_rng(seed)
    X = [rng.standard_normal((n, 3)) for n in (120, 130, 140)]
    Y = [rng.standard_normal((n, 4)) for n in (120, 130, 140)]
    sw = univariate_sweep(X, Y, sfreq=50.0, tmin=0.0, tmax=tmax, alphas=list(alphas),
                          ch_names=["Fz", "Cz", "Pz", "Oz"], verbose="error")  # fmt: skip
    return X, Y, sw


def _perm(**kw):
    def setup(root):
        X, Y, sw = _subject()
        args = dict(n_permutations=19, alpha=0.1, random_state=0)
        args.update(kw)
        return lambda: sweep_permutation_test(X, Y, sw, **args), None

    return setup


def _runs_not_the_sweeps(root):
    X, Y, sw = _subject()
    return lambda: sweep_permutation_test(X[:2], Y[:2], sw, n_permutations=19, alpha=0.1), None


def _group_lags_differ(root):
    sweeps = [_subject(0)[2], _subject(1)[2], _subject(2, tmax=0.08)[2]]
    return lambda: group_permutation_test(
        sweeps, method="sign-flip", n_permutations=8, alpha=0.2,
        labels=["sub-01", "sub-02", "sub-03"],
    ), None  # fmt: skip


def _group_channels_differ(root):
    a, b = _subject(0)[2], _subject(1)[2]
    import copy

    b = copy.copy(b)
    b.ch_names = ["Fz", "Cz", "Pz", "O1"]
    return lambda: group_permutation_test([a, b], method="sign-flip", n_permutations=4,
                                          alpha=0.3, labels=["sub-01", "sub-09"]), None  # fmt: skip


def _group_kernels_no_times(root):
    k = np.random.default_rng(0).standard_normal((5, 3, 4, 6))
    return lambda: group_permutation_test(k, method="sign-flip", n_permutations=32), None


def _group_times_wrong_length(root):
    k = np.random.default_rng(0).standard_normal((5, 3, 4, 6))
    return lambda: group_permutation_test(k, method="sign-flip", n_permutations=32,
                                          times=np.arange(5) / 50), None  # fmt: skip


def _pooled_without_nulls(root):
    r = np.random.default_rng(0).standard_normal((3, 2, 4))
    return lambda: group_permutation_test(r, n_permutations=99), None


def _pooled_without_saved_null(root):
    X, Y, sw = _subject()
    res = sweep_permutation_test(X, Y, sw, n_permutations=19, alpha=0.1, random_state=0)
    return lambda: group_permutation_test([sw, sw], [res, res], n_permutations=19, alpha=0.1,
                                          labels=["sub-01", "sub-02"]), None  # fmt: skip


def _names_wrong_count(root):
    r = np.random.default_rng(0).standard_normal((6, 2, 4))
    return lambda: group_permutation_test(r, method="sign-flip", n_permutations=64,
                                          ch_names=["Fz", "Cz", "Pz"]), None  # fmt: skip


CASES = [
    BadInput("alpha-selection-unknown", _perm(alpha_selection="inner"), ValueError,
             ["alpha_selection", "inner", "nested", "observed"],
             "sweep_permutation_test(alpha_selection=) not one of the allowed values"),
    BadInput("tail-unknown", _perm(tail="pareto"), ValueError,
             ["tail", "pareto", "empirical", "gpd"], "tail= not one of the allowed values"),
    BadInput("gpd-too-few-permutations", _perm(tail="gpd", n_permutations=99), ValueError,
             [r'tail="gpd" needs at least 300 permutations', "got 99", "n_permutations=1000"],
             "a GPD tail fit asked of 99 permutations"),
    BadInput("n-jobs-zero", _perm(n_jobs=0), ValueError,
             ["n_jobs=0", "None or 1", "-1"], "n_jobs=0"),
    BadInput("nested-with-mismatch-null", _perm(null="mismatch"), ValueError,
             [r'alpha_selection="nested"', 'null="mismatch"', r'pass alpha_selection="observed"'],
             "the nested alpha search asked of the trial-mismatch null"),
    BadInput("runs-not-the-sweeps", _runs_not_the_sweeps, ValueError,
             [r"\[120, 130\] samples", r"\[120, 130, 140\]", "pass the X_runs and Y_runs"],
             "a permutation test on other runs than the sweep's"),
    BadInput("group-lags-differ", _group_lags_differ, ValueError,
             ["sweep of sub-03 does not match the sweep of sub-01", r"0\.08 s", r"0\.06 s",
              "Refit the sweeps"], "subjects' sweeps with different lag windows"),
    BadInput("group-channels-differ", _group_channels_differ, ValueError,
             ["sub-09", "channel names differ", "'O1' instead of 'Oz'", "Refit"],
             "subjects' sweeps with different channels"),
    BadInput("group-kernels-without-times", _group_kernels_no_times, ValueError,
             ["4th axis of 6", "times is None", "pass times="],
             "per-lag group values without their times"),
    BadInput("group-times-wrong-length", _group_times_wrong_length, ValueError,
             ["times has 5 values", "6 on its last axis", "one time per lag"],
             "times of the wrong length"),
    BadInput("pooled-null-without-nulls", _pooled_without_nulls, ValueError,
             ["pooled-null", "one null per subject", "return_null=True", "sign-flip"],
             "pooled-null group test without the subjects' nulls"),
    BadInput("pooled-null-result-without-null", _pooled_without_saved_null, ValueError,
             ["sub-01", "holds no null", "return_null=True"],
             "a permutation result saved without its null given to the pooled group test"),
    BadInput("group-ch-names-count", _names_wrong_count, ValueError,
             ["ch_names has 3 names", "data have 4", "one per column"],
             "ch_names of the wrong length"),
]
