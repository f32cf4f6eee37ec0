"""Fixtures for the SAE tests."""

import pytest
import torch


@pytest.fixture(autouse=True)
def _torch_one_thread():
    """Run torch single-threaded (restored afterwards).

    The models here are tiny: with several threads, per-op overhead dominates and
    a loaded 2-core machine slows them down tenfold. Results do not depend on it.
    """
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(old)
