"""Tests of logging/verbose, random_state, validation helpers and the docdict."""

import logging

import numpy as np
import pytest

from neuro_sae.utils import (
    check_array,
    check_fname,
    check_option,
    check_positive,
    check_random_state,
    fill_doc,
    logger,
    use_log_level,
    validate_type,
    verbose,
)


@verbose
def _fun(x, *, verbose=None):
    logger.info(f"value {x}")
    return logger.level


def test_verbose_sets_and_restores_level(caplog):
    level = logger.level
    assert _fun(1, verbose="DEBUG") == logging.DEBUG
    assert _fun(1, verbose=True) == logging.INFO
    assert _fun(1, verbose=False) == logging.WARNING
    assert logger.level == level
    with use_log_level("ERROR"):
        assert logger.level == logging.ERROR
    assert logger.level == level
    with pytest.raises(ValueError, match="'verbose' parameter.*'DEBUG'"):
        _fun(1, verbose="LOUD")


def test_verbose_requires_parameter():
    def f(x):
        return x

    with pytest.raises(RuntimeError, match="no 'verbose' parameter"):
        verbose(f)


def test_check_random_state():
    a = check_random_state(3).normal(size=5)
    b = check_random_state(3).normal(size=5)
    np.testing.assert_array_equal(a, b)
    g = np.random.default_rng(0)
    assert check_random_state(g) is g
    with pytest.raises(TypeError, match="random_state must be None, an int"):
        check_random_state("zero")
    with pytest.raises(ValueError, match="non-negative"):
        check_random_state(-1)


def test_check_option_message():
    with pytest.raises(ValueError) as err:
        check_option("tail", 2, (-1, 0, 1))
    assert str(err.value) == (
        "Invalid value for the 'tail' parameter. Allowed values are -1, 0, and 1, "
        "but got 2 instead."
    )
    with pytest.raises(ValueError, match="Did you mean 'batchtopk'"):
        check_option("architecture", "batchtopc", ("batchtopk", "topk", "relu"))
    assert check_option("x", "a", ("a", "b")) == "a"


def test_validate_type_and_positive(tmp_path):
    assert validate_type(3, "int", "n") == 3
    with pytest.raises(TypeError, match="n must be an instance of int"):
        validate_type(True, "int", "n")
    with pytest.raises(TypeError, match="got str"):
        validate_type("3", "numeric", "sfreq")
    with pytest.raises(ValueError, match="sfreq must be a finite number > 0, got 0"):
        check_positive(0, "sfreq")
    assert check_positive(0, "n", strict=False) == 0
    with pytest.raises(FileNotFoundError, match="fname does not exist.*Run step 01"):
        check_fname(tmp_path / "nope.npz", "fname", hint="Run step 01.")


def test_check_array():
    with pytest.raises(ValueError, match="X must have 2 dimension"):
        check_array(np.zeros(3), "X", ndim=2)
    with pytest.raises(ValueError, match="1 non-finite"):
        check_array([1.0, np.nan], "y")


def test_fill_doc():
    @fill_doc
    def f(verbose=None):
        """Do it.

        Parameters
        ----------
        %(verbose)s
        """

    assert "verbose : bool | str | int | None" in f.__doc__
    assert "\n            Control verbosity" in f.__doc__


def test_warn_points_at_the_first_frame_outside_the_package():
    """A warning raised deep inside the package is attributed to the user's line."""
    import warnings

    from neuro_sae.encoding import TRF

    rng = np.random.default_rng(0)
    X = [rng.standard_normal((300, 2)) for _ in range(3)]
    Y = [rng.standard_normal((300, 3)) for _ in range(3)]
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        TRF(tmin=0, tmax=0.1, sfreq=50, alphas=[1e-3, 1e-2]).fit(X, Y)  # edge of the grid
    edge = [w for w in rec if "edge of the grid" in str(w.message)]
    assert edge, [str(w.message) for w in rec]
    assert all(w.filename == __file__ for w in edge), [(w.filename, w.lineno) for w in edge]
