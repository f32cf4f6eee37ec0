"""SAE training: Adam, unit-norm atoms, geometric-median decoder bias, learned threshold.

Follows the AudioSAE recipe (plain L2 loss on unit-norm frames; the AuxK
dead-feature loss is an option). The loop does not know the architecture: each model
owns its training loss (``training_forward``, named losses) and its updates around the
optimiser step (``before_optimizer_step``, ``after_optimizer_step``). Several layers
and seeds train in one pass over one stream of batches (:func:`train_saes`);
periodic atomic checkpoints hold the weights, the Adam state and the training
state (safetensors + JSON, no pickles) and resume bit for bit.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
import zlib
from pathlib import Path

import numpy as np
import torch

from ..io import hash_array
from ..utils import (
    check_array,
    check_fname,
    derive_seed,
    fill_doc,
    logger,
    progress_bar,
    validate_type,
    verbose,
    warn,
)
from ._checkpoint import (
    _KEY,
    _latest_checkpoint,
    _load_checkpoint,
    _prune_checkpoints,
    _record,
    _save_checkpoint,
    _save_snapshot,
)
from ._config import SAEConfig, TrainConfig
from ._distributed import Reducer, _all_reduce_grads, _dist_setup, _gather_rows
from ._model import make_sae


@fill_doc
@verbose
def geometric_median(x, *, max_iter=50, tol=1e-6, verbose=None):
    """Geometric median of points (Weiszfeld's algorithm).

    The point minimising the sum of Euclidean distances to the rows of ``x``.

    Parameters
    ----------
    x : array-like | Tensor, shape (n_points, d)
        The points.
    max_iter : int
        Maximum number of Weiszfeld iterations.
    tol : float
        Stop when the estimate moves less than ``tol`` times the data's scale.
    %(verbose)s

    Returns
    -------
    median : Tensor, shape (d,)
        The geometric median (float64 inside, returned in the input's dtype;
        a numpy input gives a float32 tensor).
    """
    x = torch.as_tensor(x)
    if not x.is_floating_point():
        x = x.float()
    if x.ndim != 2 or x.shape[0] == 0:
        raise ValueError(f"x must have shape (n_points, d) with n_points >= 1, got {tuple(x.shape)}.")
    xd = x.double()
    y = xd.mean(dim=0)
    scale = float(xd.std(dim=0).norm()) or 1.0
    for _ in range(max_iter):
        dist = (xd - y).norm(dim=1).clamp_min(1e-12)
        w = 1.0 / dist
        y_new = (w[:, None] * xd).sum(dim=0) / w.sum()
        moved = float((y_new - y).norm())
        y = y_new
        if moved < tol * scale:
            break
    return y.to(x.dtype)


_HIST_KEYS = (
    "step", "lr", "loss", "l0", "explained_variance", "dead_fraction", "threshold", "elapsed_s",
)


def _seed_from(*entropy):
    """A 63-bit seed derived from integers (independent streams per tuple)."""
    return int(np.random.SeedSequence(list(entropy)).generate_state(1, np.uint64)[0] >> np.uint64(1))


def _seed_streams(random_state, cfg_seed):
    """One int seed for the run, and independent seeds for init and shuffling."""
    if random_state is None and cfg_seed is not None:
        random_state = cfg_seed
    seed = derive_seed(random_state)
    init_ss, shuffle_ss = np.random.SeedSequence(seed).spawn(2)
    init_seed = int(init_ss.generate_state(1, np.uint64)[0] >> np.uint64(1))
    shuffle_seed = int(shuffle_ss.generate_state(1, np.uint64)[0] >> np.uint64(1))
    return seed, init_seed, shuffle_seed


def _array_batches(arrays, batch_size, shuffle_seed, start, device, rank=0, world=1):
    """Endless shuffled batches ``{key: rows}`` from step ``start`` on.

    One permutation per epoch, shared by every key (so all layers see the same
    frames), drawn from a generator seeded by ``(shuffle_seed, epoch)``: the
    batch of any step is known without replaying the earlier ones (resume).
    The remainder of each epoch is dropped. Under DDP each rank takes every
    ``world``-th row of the global batch.
    """
    n = next(iter(arrays.values())).shape[0]
    n_batches = n // batch_size
    step, perm_epoch, perm = start, None, None
    while True:
        epoch, i = divmod(step, n_batches)
        if epoch != perm_epoch:
            gen = torch.Generator().manual_seed(_seed_from(shuffle_seed, epoch))
            perm, perm_epoch = torch.randperm(n, generator=gen), epoch
        idx = perm[i * batch_size : (i + 1) * batch_size][rank::world]
        yield {
            key: x[idx.to(x.device)].to(device, non_blocking=True) for key, x in arrays.items()
        }
        step += 1


def _iter_batches(data, widths, device, skip=0):
    """Validated ``{key: batch}`` dicts of an iterable, the first ``skip`` dropped."""
    for i, batch in enumerate(data):
        if i < skip:
            continue
        if not isinstance(batch, dict):
            raise TypeError(
                f"Batch {i} of data is a {type(batch).__name__}; train_saes needs dicts "
                f"{{layer: array (n_frames, d_in)}} with the layers {list(widths)}."
            )
        out = {}
        for key, d_in in widths.items():
            where = "data" if key == _KEY else f"data[{key!r}]"
            if key not in batch:
                raise ValueError(
                    f"Batch {i} of data has no entry for layer {key!r} (it has {list(batch)}); "
                    "every batch must hold all layers of sae_configs."
                )
            b = torch.as_tensor(batch[key], dtype=torch.float32)
            if b.ndim != 2 or b.shape[1] != d_in:
                raise ValueError(
                    f"Batch {i} of {where} has shape {tuple(b.shape)}; every batch must have "
                    f"shape (n_frames, d_in={d_in})."
                )
            out[key] = b.to(device)
        yield out


def _check_array_data(x, d_in, batch_size, name="data"):
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    x = check_array(x, name, ndim=2, dtype=None)
    if x.shape[1] != d_in:
        cfg_name = "sae_config" if name == "data" else f"sae_configs[{name[5:-1]}]"
        raise ValueError(
            f"{name} has {x.shape[1]} columns but {cfg_name}.d_in is {d_in}; pass "
            f"activations of width d_in or set d_in={x.shape[1]}."
        )
    if x.shape[0] < batch_size:
        raise ValueError(
            f"{name} has {x.shape[0]} frames, fewer than batch_size={batch_size}; lower "
            f"batch_size to at most {x.shape[0]}."
        )
    return x


def _check_iterable(data):
    if isinstance(data, (str, bytes)) or not hasattr(data, "__iter__"):
        raise TypeError(
            "data must be an array of shape (n_frames, d_in) or an iterable of such "
            f"batches, got {type(data).__name__} instead."
        )


class _Run:
    """One model under training: SAE, Adam, threshold/dead-feature state, history."""

    def __init__(self, key, name, sae, train_config):
        self.key, self.name, self.sae = key, name, sae
        self.opt = torch.optim.Adam(sae.parameters(), lr=train_config.lr, betas=train_config.betas)
        device = sae.device
        self.acc = torch.zeros(2, dtype=torch.float64, device=device)  # loss, EV sums
        self.counts = [0, 0, 0]  # nnz, frames, steps in the logging interval
        self.fired = torch.zeros(sae.cfg.d_sae, dtype=torch.bool, device=device)
        self.since_fired = torch.zeros(sae.cfg.d_sae, dtype=torch.int64, device=device)
        self.history = {key: [] for key in _HIST_KEYS}

    # checkpoint state (everything a bit-exact resume needs besides the weights)
    def state_tensors(self):
        out = {
            "acc": self.acc,
            "counts": torch.tensor(self.counts, dtype=torch.int64),
            "fired": self.fired,
            "since_fired": self.since_fired,
        }
        for i, st in self.opt.state_dict()["state"].items():
            for name, t in st.items():
                out[f"opt.{i}.{name}"] = torch.as_tensor(t)
        return {k: t.detach().to("cpu").contiguous() for k, t in out.items()}

    def load_state_tensors(self, ts):
        opt_state = {}
        for key, t in ts.items():
            if key.startswith("opt."):
                _, i, name = key.split(".", 2)
                opt_state.setdefault(int(i), {})[name] = t
        sd = self.opt.state_dict()
        sd["state"] = opt_state
        self.opt.load_state_dict(sd)
        device = self.sae.device
        self.acc.copy_(ts["acc"].to(device))
        self.counts = [int(v) for v in ts["counts"]]
        self.fired.copy_(ts["fired"].to(device))
        self.since_fired.copy_(ts["since_fired"].to(device))


def _interval_record(run, step, lr, t0):
    n_nnz, n_frames, n_steps = run.counts
    return dict(
        step=step,
        lr=lr,
        loss=float(run.acc[0]) / n_steps,
        l0=n_nnz / n_frames,
        explained_variance=float(run.acc[1]) / n_steps,
        dead_fraction=1.0 - float(run.fired.float().mean()),
        threshold=run.sae.threshold_summary(),
        elapsed_s=time.perf_counter() - t0,
    )


def _close_interval(run, rec):
    for key, value in rec.items():
        run.history[key].append(value)
    run.acc.zero_()
    run.counts = [0, 0, 0]
    run.fired.zero_()


def _fit(specs, batches_fn, tc, *, device, checkpoint_dir, resume, distributed, data_hashes,
         desc, snapshot_steps=(), keep_checkpoints=None):
    """The training loop shared by :func:`train_sae` and :func:`train_saes`."""
    import torch.distributed as dist

    dist_on, rank, world = _dist_setup(distributed, device)
    runs = []
    for key, name, cfg, init_seed in specs:
        sae = make_sae(cfg, random_state=init_seed).to(device)
        sae.train()
        runs.append(_Run(key, name, sae, tc))
    start = 0
    if resume:
        folder = _latest_checkpoint(checkpoint_dir)
        if folder is None:
            logger.info(f"No checkpoint in {checkpoint_dir} to resume from; starting afresh")
        else:
            start = _load_checkpoint(folder, runs, tc)
            logger.info(f"Resuming from {folder} at step {start:,}")
    sparse = tc.sparse_kernels
    if sparse is None:  # measured faster on CPUs and on an H200 (3x at 16,384 frames a step)
        sparse = True
    sparse = sparse and not tc.autocast
    reducer = Reducer(dist_on)
    batches = batches_fn(start)
    t0 = time.perf_counter()
    step = start
    pbar = progress_bar(total=tc.n_steps, desc=desc, unit="step", disable=None if rank == 0 else True)
    pbar.update(start)
    try:
        for step in range(start, tc.n_steps):
            try:
                batch = next(batches)
            except StopIteration:
                warn(
                    f"data ran out after {step} of {tc.n_steps} steps; training stopped "
                    "early. Pass more batches or lower n_steps."
                )
                break
            lr = tc.lr_at(step)
            done = step + 1
            for run in runs:
                sae = run.sae
                x = batch[run.key]
                if dist_on:  # this rank's share of the global batch
                    n_rank = torch.tensor([x.shape[0]], dtype=torch.float64, device=x.device)
                    dist.all_reduce(n_rank, op=dist.ReduceOp.SUM)
                    weight = x.shape[0] / float(n_rank)
                if step == 0:
                    with torch.no_grad():
                        x_in, _ = sae._prepare(x)
                        if dist_on:  # the median of the global batch, as in one process
                            x_in = _gather_rows(x_in, world)
                        sae.b_dec.copy_(geometric_median(x_in))
                        if dist_on:
                            dist.broadcast(sae.b_dec.data, 0)
                for group in run.opt.param_groups:
                    group["lr"] = lr
                dead = run.since_fired >= tc.dead_after_steps if tc.auxk_alpha > 0 else None
                out = sae.training_forward(
                    x, train_config=tc, dead=dead, sparse=sparse, reducer=reducer
                )
                run.opt.zero_grad(set_to_none=True)
                out.loss.backward()
                if dist_on:
                    _all_reduce_grads(sae, weight)
                sae.before_optimizer_step()
                run.opt.step()
                sae.after_optimizer_step(out, step=step, train_config=tc, reducer=reducer)
                with torch.no_grad():
                    hit = torch.zeros_like(run.fired)
                    hit[out.col] = True
                    if dist_on:  # dead-feature state follows the global batch on every rank
                        hit_any = hit.to(torch.int32)
                        dist.all_reduce(hit_any, op=dist.ReduceOp.MAX)
                        hit = hit_any.bool()
                    run.fired |= hit
                    run.since_fired += 1
                    run.since_fired[hit] = 0
                    x_in = out.x_in
                    mean = x_in.mean(dim=0)
                    total_var = x_in.pow(2).sum(dim=1).mean() - mean @ mean
                    run.acc[0] += out.loss.detach()
                    run.acc[1] += 1 - out.losses["mse"].detach() / total_var.clamp_min(1e-12)
                    run.counts[0] += out.val.numel()
                    run.counts[1] += x_in.shape[0]
                    run.counts[2] += 1
                if done % tc.log_every == 0 or done == tc.n_steps:
                    rec = _interval_record(run, done, lr, t0)
                    logger.debug(f"{run.name or 'SAE'} step {done}: {rec}")
                    _close_interval(run, rec)
            pbar.update(1)
            if done % tc.log_every == 0 or done == tc.n_steps:
                last = [run.history for run in runs]
                pbar.set_postfix(
                    loss=f"{np.mean([h['loss'][-1] for h in last]):.4g}",
                    L0=f"{np.mean([h['l0'][-1] for h in last]):.1f}",
                    EV=f"{np.mean([h['explained_variance'][-1] for h in last]):.3f}",
                    dead=f"{np.mean([h['dead_fraction'][-1] for h in last]):.1%}",
                )
            if done in snapshot_steps and rank == 0:
                _save_snapshot(Path(checkpoint_dir), runs, done, tc, data_hashes)
            if tc.checkpoint_every is not None and done % tc.checkpoint_every == 0 and (
                done < tc.n_steps
            ):
                if rank == 0:
                    _save_checkpoint(
                        Path(checkpoint_dir) / f"step-{done:07d}", runs, done, tc, data_hashes
                    )
                    _prune_checkpoints(checkpoint_dir, keep_checkpoints)
                if dist_on:
                    dist.barrier()
        else:
            step = tc.n_steps
    finally:
        pbar.close()
    for run in runs:
        if run.counts[2]:  # stopped early inside a logging interval
            _close_interval(run, _interval_record(run, step, tc.lr_at(max(step - 1, 0)), t0))
        n_done = run.history["step"][-1] if run.history["step"] else 0
        _record(run, tc, data_hashes.get(run.key), n_done)
        run.sae.eval()
    elapsed = time.perf_counter() - t0
    n_run = step - start
    logger.info(
        f"Trained {len(runs)} SAE(s) for {n_run:,} steps in {elapsed:.1f} s "
        f"({n_run / max(elapsed, 1e-9):.1f} steps/s)"
    )
    return runs


@contextlib.contextmanager
def _torch_threads(n_threads):
    """Torch intra-op threads set to ``n_threads`` inside, the old number restored after."""
    validate_type(n_threads, ("int", None), "n_threads")
    if n_threads is None:
        yield
        return
    if n_threads < 1:
        raise ValueError(
            f"n_threads must be an int >= 1 or None (torch's default), got {n_threads!r} "
            "instead."
        )
    old = torch.get_num_threads()
    torch.set_num_threads(int(n_threads))
    try:
        yield
    finally:
        torch.set_num_threads(old)


def _check_snapshots(snapshot_steps, keep_checkpoints, checkpoint_dir, train_config):
    validate_type(keep_checkpoints, ("int", None), "keep_checkpoints")
    if keep_checkpoints is not None and keep_checkpoints < 1:
        raise ValueError(
            f"keep_checkpoints must be an int >= 1 or None (keep all), got {keep_checkpoints!r} "
            "instead."
        )
    if snapshot_steps is None:
        return frozenset()
    validate_type(snapshot_steps, (list, tuple, range, np.ndarray), "snapshot_steps")
    steps = []
    for s in snapshot_steps:
        validate_type(s, "int", "snapshot_steps")
        if not 1 <= int(s) <= train_config.n_steps:
            raise ValueError(
                f"snapshot_steps must lie in [1, n_steps={train_config.n_steps}], got {int(s)}; "
                "drop it or raise train_config.n_steps."
            )
        steps.append(int(s))
    if steps and checkpoint_dir is None:
        raise ValueError("snapshot_steps needs a checkpoint_dir to write the snapshots to.")
    return frozenset(steps)


def _check_train_args(train_config, checkpoint_dir, resume):
    validate_type(train_config, TrainConfig, "train_config")
    validate_type(resume, bool, "resume")
    if train_config.checkpoint_every is not None and checkpoint_dir is None:
        raise ValueError(
            f"train_config.checkpoint_every={train_config.checkpoint_every} needs a "
            "checkpoint_dir; pass checkpoint_dir=... or set checkpoint_every=None."
        )
    if resume and checkpoint_dir is None:
        raise ValueError("resume=True needs the checkpoint_dir of the interrupted run.")
    if checkpoint_dir is not None:
        checkpoint_dir = check_fname(checkpoint_dir, "checkpoint_dir", must_exist=False)
    return checkpoint_dir


@fill_doc
@verbose
def train_sae(
    data,
    sae_config,
    train_config,
    *,
    random_state=None,
    device="cpu",
    checkpoint_dir=None,
    resume=False,
    distributed=None,
    n_threads=None,
    verbose=None,
):
    """Train a sparse autoencoder on activation frames.

    Each step encodes a batch of frames (scaled to unit norm when
    ``sae_config.normalize_input``), reconstructs it, and takes an Adam step on
    the model's training loss: the mean squared L2 error per frame plus the
    architecture's own terms (sparsity penalties, nested reconstructions) and
    the optional AuxK loss, as its
    :meth:`~SparseAutoencoder.training_forward` defines them. Before each
    optimiser step the model removes the gradient component parallel to each
    decoder atom; after it the model's
    :meth:`~SparseAutoencoder.after_optimizer_step` scales the atoms back to
    unit norm and updates what the architecture learns outside the gradient
    (e.g. a moving-average inference threshold). ``b_dec``
    starts at the geometric median of the first batch. To train several
    layers and seeds in one pass over the data use :func:`train_saes`.

    Parameters
    ----------
    data : ndarray, shape (n_frames, d_in) | iterable of ndarray
        Training frames (valid frames only: drop padding first). An array is
        drawn in shuffled batches of ``train_config.batch_size`` (one
        permutation per epoch, the remainder of each epoch dropped); an
        iterable yields ready batches of shape (n, d_in) and may stop early.
    sae_config : SAEConfig
        The model configuration.
    train_config : TrainConfig
        The optimisation configuration.
    %(random_state)s
        It fixes the initial dictionary and the batch order. ``None`` uses
        ``sae_config.seed`` when set; the seed used is recorded in
        ``sae.cfg.seed``.
    %(device)s
    checkpoint_dir : str | os.PathLike | None
        Folder for checkpoints ``step-0001000`` (every
        ``train_config.checkpoint_every`` steps; each is a loadable SAE folder
        plus the optimiser and training state) and ``final``.
    resume : bool
        Continue from the latest ``step-*`` checkpoint in ``checkpoint_dir``
        (started afresh if there is none). An iterable ``data`` must yield the
        same batches as in the interrupted run: the ones already used are
        skipped. On the CPU the result equals the uninterrupted run bit for bit.
    distributed : bool | None
        Average gradients over the processes of a ``torch.distributed`` group
        (DDP; ``None``: when the group is initialised or ``WORLD_SIZE > 1``,
        as under ``torchrun``). Each rank takes its share of every array batch;
        an iterable must yield the rank's own batches. Rank 0 writes
        checkpoints.
    n_threads : int | None
        Torch intra-op threads for this call only (``torch.set_num_threads``;
        the previous number is restored when it returns or raises). ``None``
        leaves torch's setting alone. On a loaded machine fewer threads than
        cores can be several times faster.
    %(verbose)s

    Returns
    -------
    sae : SparseAutoencoder
        The trained model, in eval mode, with ``train_info`` filled.
    history : pandas.DataFrame
        One row per ``log_every`` steps: ``step``, ``lr``, ``loss``, ``l0``,
        ``explained_variance`` (per batch, in the unit-norm training scale,
        averaged over the interval), ``dead_fraction`` (features not active in
        the interval), ``threshold`` and ``elapsed_s``.
    """
    import pandas as pd

    validate_type(sae_config, SAEConfig, "sae_config")
    checkpoint_dir = _check_train_args(train_config, checkpoint_dir, resume)
    device = torch.device(device)
    if isinstance(data, (np.ndarray, torch.Tensor)):
        x = _check_array_data(data, sae_config.d_in, train_config.batch_size)
        data_hashes = {_KEY: hash_array(x)}
    else:
        _check_iterable(data)
        x, data_hashes = None, {}
    seed, init_seed, shuffle_seed = _seed_streams(random_state, sae_config.seed)
    cfg = dataclasses.replace(sae_config, seed=seed)
    dist_on, rank, world = _dist_setup(distributed, device)
    if x is not None:
        x_t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
        x_t = x_t if device.type == "cpu" else x_t.to(device)

        def batches_fn(start):
            return _array_batches(
                {_KEY: x_t}, train_config.batch_size, shuffle_seed, start, device, rank, world
            )
    else:

        def batches_fn(start):
            return _iter_batches(({_KEY: b} for b in data), {_KEY: cfg.d_in}, device, start)

    logger.info(
        f"Training {cfg.architecture} SAE ({cfg.d_in} -> {cfg.d_sae}, k={cfg.k}) for "
        f"{train_config.n_steps:,} steps of {train_config.batch_size:,} frames on {device}"
        + (f" ({x.shape[0]:,} frames)" if x is not None else "")
    )
    with _torch_threads(n_threads):
        runs = _fit(
            [(_KEY, "", cfg, init_seed)], batches_fn, train_config, device=device,
            checkpoint_dir=checkpoint_dir, resume=resume, distributed=dist_on,
            data_hashes=data_hashes, desc="Training SAE",
        )
    sae = runs[0].sae
    logger.info(f"Final metrics: {sae.train_info['final_metrics']}")
    if checkpoint_dir is not None and rank == 0:
        sae.save(Path(checkpoint_dir) / "final")
    return sae, pd.DataFrame(runs[0].history)


def _model_name(layer, seed):
    return f"layer-{layer}_seed-{seed}"


@fill_doc
@verbose
def train_saes(
    data,
    sae_configs,
    train_config,
    *,
    seeds=(0,),
    random_state=None,
    device="cpu",
    checkpoint_dir=None,
    resume=False,
    distributed=None,
    n_threads=None,
    snapshot_steps=None,
    keep_checkpoints=None,
    verbose=None,
):
    """Train one SAE per (layer, seed) from one stream of activations, in one pass.

    Every batch feeds all models: each layer's frames go to that layer's SAEs
    (one model and one Adam optimiser per seed, each initialised from its own
    seed), so all layers and seeds see identical frames in identical order,
    as in the AudioSAE recipe. The per-model step is the one of
    :func:`train_sae`.

    Parameters
    ----------
    data : dict | iterable of dict
        ``{layer: ndarray (n_frames, d_in_layer)}`` with the same frames (rows)
        for every layer, drawn in shuffled batches with one permutation shared
        by all layers; or an iterable (e.g. a generator over an activation
        store) of ``{layer: batch (n, d_in_layer)}`` dicts.
    sae_configs : dict
        ``{layer: SAEConfig}``; the keys select the entries of the batches.
        ``layer`` is recorded in the config when it is unset and the key is an
        int.
    train_config : TrainConfig
        The optimisation configuration (shared).
    seeds : sequence of int
        Initialisation seeds; one model per layer and seed (``cfg.seed``).
    %(random_state)s
        It fixes the batch order of array data.
    %(device)s
    checkpoint_dir : str | os.PathLike | None
        Folder for checkpoints ``step-0001000/layer-<l>_seed-<s>/`` (every
        ``train_config.checkpoint_every`` steps, with optimiser and training
        state, and a ``trainer.json``) and ``final/layer-<l>_seed-<s>/``.
    resume : bool
        Continue from the latest checkpoint (see :func:`train_sae`).
    distributed : bool | None
        Average gradients over a ``torch.distributed`` group (see
        :func:`train_sae`).
    n_threads : int | None
        Torch intra-op threads for this call only (``torch.set_num_threads``;
        the previous number is restored when it returns or raises). ``None``
        leaves torch's setting alone. On a loaded machine fewer threads than
        cores can be several times faster.
    snapshot_steps : sequence of int | None
        Steps after which every model is also saved, without optimiser state,
        to ``checkpoint_dir/snapshots/step-<n>/layer-<l>_seed-<s>/`` (loadable
        SAE folders, kept: a convergence curve reads them, see
        :func:`~neuro_sae.sae.convergence_table`). Needs ``checkpoint_dir``.
    keep_checkpoints : int | None
        Keep only this many of the latest resumable checkpoints (each holds
        the Adam state, three times the model's size); ``None``: keep all.
    %(verbose)s

    Returns
    -------
    saes : dict
        ``{(layer, seed): SparseAutoencoder}``, trained, in eval mode.
    history : pandas.DataFrame
        The columns of :func:`train_sae`'s history plus ``layer`` and ``seed``.
    """
    import pandas as pd

    validate_type(sae_configs, dict, "sae_configs")
    if not sae_configs:
        raise ValueError("sae_configs is empty; pass {layer: SAEConfig(...)} for every layer.")
    for layer, cfg in sae_configs.items():
        validate_type(cfg, SAEConfig, f"sae_configs[{layer!r}]")
    validate_type(seeds, (list, tuple, range), "seeds")
    for s in seeds:
        validate_type(s, "int", "seeds")
    seeds = [int(s) for s in seeds]
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be distinct ints, at least one, got {seeds} instead.")
    checkpoint_dir = _check_train_args(train_config, checkpoint_dir, resume)
    snapshot_steps = _check_snapshots(snapshot_steps, keep_checkpoints, checkpoint_dir,
                                      train_config)
    device = torch.device(device)
    dist_on, rank, world = _dist_setup(distributed, device)
    widths = {layer: cfg.d_in for layer, cfg in sae_configs.items()}
    if isinstance(data, dict):
        missing = [layer for layer in sae_configs if layer not in data]
        if missing:
            raise ValueError(
                f"data has no activations for layer(s) {missing} of sae_configs; it has "
                f"{list(data)}."
            )
        arrays = {
            layer: _check_array_data(data[layer], widths[layer], train_config.batch_size,
                                     name=f"data[{layer!r}]")
            for layer in sae_configs
        }
        n = {layer: a.shape[0] for layer, a in arrays.items()}
        if len(set(n.values())) != 1:
            raise ValueError(
                f"The layers of data have different numbers of frames {n}; one-pass training "
                "needs the same frames of every layer."
            )
        data_hashes = {layer: hash_array(a) for layer, a in arrays.items()}
        tensors = {
            layer: torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32)).to(
                device if device.type != "cpu" else "cpu"
            )
            for layer, a in arrays.items()
        }
        shuffle_seed = _seed_from(derive_seed(random_state), 1)

        def batches_fn(start):
            return _array_batches(
                tensors, train_config.batch_size, shuffle_seed, start, device, rank, world
            )
    else:
        _check_iterable(data)
        data_hashes = {}

        def batches_fn(start):
            return _iter_batches(data, widths, device, start)

    specs = []
    for layer, cfg in sae_configs.items():
        over = dict(seed=None)
        if cfg.layer is None and isinstance(layer, (int, np.integer)) and layer >= 0:
            over["layer"] = int(layer)
        for seed in seeds:
            over["seed"] = seed
            specs.append(
                (layer, _model_name(layer, seed), dataclasses.replace(cfg, **over),
                 _seed_from(seed, zlib.crc32(str(layer).encode())))
            )
    logger.info(
        f"Training {len(specs)} SAEs ({len(sae_configs)} layer(s) x {len(seeds)} seed(s)) for "
        f"{train_config.n_steps:,} steps of {train_config.batch_size:,} frames on {device}"
    )
    with _torch_threads(n_threads):
        runs = _fit(
            specs, batches_fn, train_config, device=device, checkpoint_dir=checkpoint_dir,
            resume=resume, distributed=dist_on, data_hashes=data_hashes, desc="Training SAEs",
            snapshot_steps=snapshot_steps, keep_checkpoints=keep_checkpoints,
        )
    saes, frames = {}, []
    for (layer, _, cfg, _), run in zip(specs, runs):
        saes[(layer, cfg.seed)] = run.sae
        frames.append(pd.DataFrame(run.history).assign(layer=layer, seed=cfg.seed))
        if checkpoint_dir is not None and rank == 0:
            run.sae.save(Path(checkpoint_dir) / "final" / run.name, verbose=False)
    history = pd.concat(frames, ignore_index=True)
    history = history[["layer", "seed", *_HIST_KEYS]]
    return saes, history
