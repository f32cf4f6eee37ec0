"""Bad encoding input: predefined splits, lag bases, solvers, and the nulls they allow."""

from functools import cache

import numpy as np

from neuro_sae.encoding import TRF, lag_basis, univariate_sweep
from neuro_sae.stats import sweep_permutation_test
from tests.bad_input import BadInput

KW = dict(sfreq=50.0, tmin=0.0, tmax=0.1, alphas=[1.0, 10.0], verbose="error")


@cache
def _runs():
    rng = np.random.default_rng(0)
    X = [rng.standard_normal((n, 2)) for n in (120, 130, 140, 150)]
    Y = [rng.standard_normal((n, 3)) for n in (120, 130, 140, 150)]
    return X, Y


def _sweep(**kw):
    def setup(root):
        X, Y = _runs()
        return lambda: univariate_sweep(X, Y, **{**KW, **kw}), None

    return setup


def _split_fixed_null(root):
    X, Y = _runs()
    sw = univariate_sweep(X, Y, test_runs=[3], **KW)
    return lambda: sweep_permutation_test(X, Y, sw, null="fixed", n_permutations=19,
                                          alpha=0.1), None  # fmt: skip


def _trf(**kw):
    def setup(root):
        X, Y = _runs()
        return lambda: TRF(tmin=0.0, tmax=0.1, sfreq=50.0, **kw).fit(X, Y), None

    return setup


CASES = [
    BadInput("sweep-test-runs-out-of-range", _sweep(test_runs=[4]), ValueError,
             [r"test_runs must be distinct run indices in 0 \.\.\. 3", r"\[4\]",
              "test_runs=\\[3\\]"], "a test run index beyond the 4 runs"),
    BadInput("sweep-test-runs-leave-one-dev-run", _sweep(test_runs=[0, 1, 2]), ValueError,
             ["at least 2 development run", "with 2 alpha"],
             "an alpha grid needs two development runs for its inner CV"),
    BadInput("sweep-basis-wrong-shape", _sweep(basis=np.ones((4, 2))), ValueError,
             [r"n_delays=6", r"shape \(4, 2\)", "lag_basis"], "a basis with 4 rows for 6 lags"),
    BadInput("sweep-basis-too-narrow", _sweep(basis=0.02), ValueError,
             [r"width=0\.02 s is 1 samples", r"width >= 0\.04"], "a kernel of one sample"),
    BadInput("lag-basis-kind", lambda root: (lambda: lag_basis(50.0, 0.0, 0.1, 0.06,
                                                               kind="gauss"), None),
             ValueError, ["kind", "hann", "hamming"], "an unknown window"),
    BadInput("split-sweep-fixed-null", _split_fixed_null, ValueError,
             [r"test_runs=\[3\]", "null='fixed'", 'null="refit"'],
             "the fixed-model null of a predefined split"),
    BadInput("trf-solver-unknown", _trf(solver="qr"), ValueError,
             ["solver", "auto", "cholesky"], "an unknown solver"),
]  # fmt: skip
