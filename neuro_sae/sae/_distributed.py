"""Data-parallel SAE training across processes (torchrun): set-up and collectives.

Every rank trains the same models on its own shard of each global batch; gradients are
summed with each rank's share of the global batch as weight, so the update equals the
one of a single process on the union (also for shards of different sizes).
"""

from __future__ import annotations

import os

import torch

from ..utils import validate_type


def _dist_setup(distributed, device):
    """(enabled, rank, world size); initialises the process group under torchrun."""
    import torch.distributed as dist

    validate_type(distributed, (bool, None), "distributed")
    if distributed is None:
        distributed = dist.is_available() and (
            dist.is_initialized() or int(os.environ.get("WORLD_SIZE", "1")) > 1
        )
    if not distributed:
        return False, 0, 1
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return True, dist.get_rank(), dist.get_world_size()


def _all_reduce_grads(sae, weight):
    """Sum over ranks of each rank's gradient times its share of the global batch.

    The per-rank losses are means over the rank's frames, so with ``weight =
    n_rank / n_global`` the result is the gradient of the mean over the global
    batch, also when the shards differ in size.
    """
    import torch.distributed as dist

    for p in sae.parameters():
        if p.grad is not None:
            p.grad.mul_(weight)
            dist.all_reduce(p.grad, op=dist.ReduceOp.SUM)


def _gather_rows(x, world):
    """All ranks' rows of ``x`` concatenated in rank order (shards may differ in size)."""
    import torch.distributed as dist

    n = torch.tensor([x.shape[0]], dtype=torch.int64, device=x.device)
    sizes = [torch.zeros_like(n) for _ in range(world)]
    dist.all_gather(sizes, n)
    sizes = [int(s) for s in sizes]
    padded = x.new_zeros((max(sizes), x.shape[1]))
    padded[: x.shape[0]] = x
    parts = [torch.empty_like(padded) for _ in range(world)]
    dist.all_gather(parts, padded)
    return torch.cat([part[:size] for part, size in zip(parts, sizes)])


class Reducer:
    """Reductions over the ranks of a DDP group, in place; the identity in one process.

    The models' training code calls these (the global smallest kept activation,
    the global residual moments of AuxK) without knowing whether it runs under DDP.

    Parameters
    ----------
    enabled : bool
        Whether a process group is in use.
    """

    def __init__(self, enabled=False):
        self.enabled = bool(enabled)

    def _reduce(self, t, op):
        if self.enabled:
            import torch.distributed as dist

            dist.all_reduce(t, op=getattr(dist.ReduceOp, op))
        return t

    def sum_(self, t):
        """Sum of ``t`` over ranks (in place; returned)."""
        return self._reduce(t, "SUM")

    def min_(self, t):
        """Minimum of ``t`` over ranks (in place; returned)."""
        return self._reduce(t, "MIN")

    def max_(self, t):
        """Maximum of ``t`` over ranks (in place; returned)."""
        return self._reduce(t, "MAX")
