"""``random_state`` handling: one parameter name, converted once."""

from __future__ import annotations

import numbers

import numpy as np


def check_random_state(random_state):
    """Turn ``random_state`` into a :class:`numpy.random.Generator`.

    Parameters
    ----------
    random_state : None | int | numpy.random.Generator
        ``None`` gives fresh OS entropy; an int seeds a new generator; a
        Generator is returned as is.

    Returns
    -------
    rng : numpy.random.Generator
        The generator.
    """
    if random_state is None:
        return np.random.default_rng()
    if isinstance(random_state, np.random.Generator):
        return random_state
    if isinstance(random_state, (numbers.Integral, np.integer)) and not isinstance(
        random_state, bool
    ):
        if random_state < 0:
            raise ValueError(
                f"random_state must be a non-negative int, got {random_state}."
            )
        return np.random.default_rng(int(random_state))
    raise TypeError(
        "random_state must be None, an int or a numpy.random.Generator, got "
        f"{type(random_state).__name__} ({random_state!r}) instead."
    )


def derive_seed(random_state):
    """Draw an int seed (e.g. for a ``torch.Generator``) from ``random_state``.

    Parameters
    ----------
    random_state : None | int | numpy.random.Generator
        See :func:`check_random_state`. An int is returned unchanged so that the
        same int always gives the same torch stream.

    Returns
    -------
    seed : int
        A seed in ``[0, 2**63)``.
    """
    if isinstance(random_state, (numbers.Integral, np.integer)) and not isinstance(
        random_state, bool
    ):
        return int(random_state)
    return int(check_random_state(random_state).integers(0, 2**63 - 1))


def torch_generator(random_state, device="cpu"):
    """Make a :class:`torch.Generator` from ``random_state`` without global seeding.

    Parameters
    ----------
    random_state : None | int | numpy.random.Generator
        See :func:`check_random_state`.
    device : str
        Device of the generator.

    Returns
    -------
    gen : torch.Generator
        The seeded generator.
    """
    import torch

    gen = torch.Generator(device=device)
    gen.manual_seed(derive_seed(random_state))
    return gen


class torch_num_threads:
    """Context manager that sets torch's intra-op thread count and restores it.

    Parameters
    ----------
    n_threads : int | None
        Threads inside the block (``None``: unchanged). Small models on a
        loaded 2-core machine often run faster on one thread.
    """

    def __init__(self, n_threads):
        self.n_threads = n_threads
        self._old = None

    def __enter__(self):
        if self.n_threads is not None:
            import torch

            self._old = torch.get_num_threads()
            torch.set_num_threads(int(self.n_threads))
        return self

    def __exit__(self, *exc):
        if self._old is not None:
            import torch

            torch.set_num_threads(self._old)
        return False
