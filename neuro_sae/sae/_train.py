"""SAE training: Adam, unit-norm atoms, geometric-median decoder bias, learned threshold.

Follows the AudioSAE recipe (plain L2 loss on unit-norm frames, no auxiliary
loss; the AuxK loss for dead features is not implemented).
"""

from __future__ import annotations

import dataclasses
import time
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
from ._config import SAEConfig, TrainConfig
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


def _seed_streams(random_state, cfg_seed):
    """One int seed for the run, and independent seeds for init and shuffling."""
    if random_state is None and cfg_seed is not None:
        random_state = cfg_seed
    seed = derive_seed(random_state)
    init_ss, shuffle_ss = np.random.SeedSequence(seed).spawn(2)
    init_seed = int(init_ss.generate_state(1, np.uint64)[0] >> np.uint64(1))
    shuffle_seed = int(shuffle_ss.generate_state(1, np.uint64)[0] >> np.uint64(1))
    return seed, init_seed, shuffle_seed


def _array_batches(x, batch_size, gen, device):
    """Endless shuffled batches of rows (one permutation per epoch, remainder dropped)."""
    n = x.shape[0]
    n_batches = n // batch_size
    while True:
        perm = torch.randperm(n, generator=gen)
        for i in range(n_batches):
            idx = perm[i * batch_size : (i + 1) * batch_size]
            yield x[idx.to(x.device)].to(device, non_blocking=True)


def _iter_batches(data, d_in, device):
    for i, batch in enumerate(data):
        batch = torch.as_tensor(batch, dtype=torch.float32)
        if batch.ndim != 2 or batch.shape[1] != d_in:
            raise ValueError(
                f"Batch {i} of data has shape {tuple(batch.shape)}; every batch must have "
                f"shape (n_frames, d_in={d_in})."
            )
        yield batch.to(device)


def _check_data(data, cfg, train_cfg, device):
    """Return (first batch, batch iterator, n_frames or None, data hash or None)."""
    if isinstance(data, (np.ndarray, torch.Tensor)):
        if isinstance(data, torch.Tensor):
            data = data.detach().cpu().numpy()
        x = check_array(data, "data", ndim=2, dtype=None)
        if x.shape[1] != cfg.d_in:
            raise ValueError(
                f"data has {x.shape[1]} columns but sae_config.d_in is {cfg.d_in}; pass "
                f"activations of width d_in or set d_in={x.shape[1]}."
            )
        if x.shape[0] < train_cfg.batch_size:
            raise ValueError(
                f"data has {x.shape[0]} frames, fewer than batch_size="
                f"{train_cfg.batch_size}; lower batch_size to at most {x.shape[0]}."
            )
        return x, hash_array(x)
    if isinstance(data, (str, bytes, dict)) or not hasattr(data, "__iter__"):
        raise TypeError(
            "data must be an array of shape (n_frames, d_in) or an iterable of such "
            f"batches, got {type(data).__name__} instead."
        )
    return None, None


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
    verbose=None,
):
    """Train a sparse autoencoder on activation frames.

    Each step encodes a batch of frames (scaled to unit norm when
    ``sae_config.normalize_input``), reconstructs it, and takes an Adam step on
    the mean squared L2 error per frame. Before each step the gradient
    component parallel to each decoder atom is removed, after it the atoms are
    scaled back to unit norm. ``b_dec`` starts at the geometric median of the
    first batch. BatchTopK SAEs learn their inference threshold as an
    exponential moving average of the smallest kept activation per batch.

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
        ``train_config.checkpoint_every`` steps) and ``final``.
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
    validate_type(train_config, TrainConfig, "train_config")
    if train_config.checkpoint_every is not None and checkpoint_dir is None:
        raise ValueError(
            f"train_config.checkpoint_every={train_config.checkpoint_every} needs a "
            "checkpoint_dir; pass checkpoint_dir=... or set checkpoint_every=None."
        )
    if checkpoint_dir is not None:
        checkpoint_dir = check_fname(checkpoint_dir, "checkpoint_dir", must_exist=False)
    device = torch.device(device)
    x_arr, data_hash = _check_data(data, sae_config, train_config, device)

    seed, init_seed, shuffle_seed = _seed_streams(random_state, sae_config.seed)
    cfg = dataclasses.replace(sae_config, seed=seed)
    sae = make_sae(cfg, random_state=init_seed).to(device)
    sae.train()

    if x_arr is not None:
        x_t = torch.from_numpy(np.ascontiguousarray(x_arr, dtype=np.float32))
        if device.type != "cpu":
            x_t = x_t.to(device)
        gen = torch.Generator().manual_seed(shuffle_seed)
        batches = _array_batches(x_t, train_config.batch_size, gen, device)
        n_frames = x_arr.shape[0]
    else:
        batches = _iter_batches(data, sae_config.d_in, device)
        n_frames = None

    sparse = train_config.sparse_kernels
    if sparse is None:
        sparse = device.type == "cpu"
    mode = sae.train_mode
    learn_threshold = mode == "batchtopk"
    thr_start = train_config.threshold_start
    beta = train_config.threshold_beta

    opt = torch.optim.Adam(sae.parameters(), lr=train_config.lr, betas=train_config.betas)
    logger.info(
        f"Training {type(sae).__name__} ({cfg.d_in} -> {cfg.d_sae}, k={cfg.k}) for "
        f"{train_config.n_steps:,} steps of {train_config.batch_size:,} frames on {device}"
        + (f" ({n_frames:,} frames)" if n_frames else "")
    )

    history = {
        key: []
        for key in (
            "step",
            "lr",
            "loss",
            "l0",
            "explained_variance",
            "dead_fraction",
            "threshold",
            "elapsed_s",
        )
    }
    zero = torch.zeros((), dtype=torch.float64, device=device)
    acc_loss, acc_ev, acc_nnz, acc_frames, acc_steps = zero.clone(), zero.clone(), 0, 0, 0
    fired = torch.zeros(cfg.d_sae, dtype=torch.bool, device=device)
    t0 = time.perf_counter()
    step = 0
    pbar = progress_bar(total=train_config.n_steps, desc="Training SAE", unit="step")
    try:
        for step in range(train_config.n_steps):
            try:
                batch = next(batches)
            except StopIteration:
                warn(
                    f"data ran out after {step} of {train_config.n_steps} steps; "
                    "training stopped early. Pass more batches or lower n_steps."
                )
                break
            if step == 0:
                with torch.no_grad():
                    x_in, _ = sae._prepare(batch)
                    sae.b_dec.copy_(geometric_median(x_in))
            lr = train_config.lr_at(step)
            for group in opt.param_groups:
                group["lr"] = lr

            out = sae.encode_decode(batch, mode, sparse=sparse)
            err = (out.recon - out.x_in).pow(2).sum(dim=1)
            loss = err.mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            sae.remove_parallel_decoder_grad()
            opt.step()
            sae.normalize_decoder()

            with torch.no_grad():
                val = out.codes.values()
                col = out.codes.col_indices()
                if learn_threshold and step >= thr_start and val.numel():
                    vmin = val.min()
                    if sae.threshold < 0:
                        sae.threshold.copy_(vmin)
                    else:
                        sae.threshold.mul_(beta).add_((1 - beta) * vmin)
                fired[col] = True
                x_in = out.x_in
                mean = x_in.mean(dim=0)
                total_var = x_in.pow(2).sum(dim=1).mean() - mean @ mean
                acc_ev += 1 - loss.detach() / total_var.clamp_min(1e-12)
                acc_loss += loss.detach()
                acc_nnz += val.numel()
                acc_frames += x_in.shape[0]
                acc_steps += 1
            pbar.update(1)

            done = step + 1
            if done % train_config.log_every == 0 or done == train_config.n_steps:
                rec = dict(
                    step=done,
                    lr=lr,
                    loss=float(acc_loss) / acc_steps,
                    l0=acc_nnz / acc_frames,
                    explained_variance=float(acc_ev) / acc_steps,
                    dead_fraction=1.0 - float(fired.float().mean()),
                    threshold=float(sae.threshold),
                    elapsed_s=time.perf_counter() - t0,
                )
                for key, value in rec.items():
                    history[key].append(value)
                pbar.set_postfix(
                    loss=f"{rec['loss']:.4g}",
                    L0=f"{rec['l0']:.1f}",
                    EV=f"{rec['explained_variance']:.3f}",
                    dead=f"{rec['dead_fraction']:.1%}",
                )
                logger.debug(f"step {done}: {rec}")
                acc_loss.zero_()
                acc_ev.zero_()
                acc_nnz = acc_frames = acc_steps = 0
                fired.zero_()
            if (
                train_config.checkpoint_every is not None
                and done % train_config.checkpoint_every == 0
                and done < train_config.n_steps
            ):
                _record(sae, train_config, data_hash, done, history)
                sae.save(Path(checkpoint_dir) / f"step-{done:07d}")
        else:
            step = train_config.n_steps
    finally:
        pbar.close()

    if acc_steps:  # stopped early inside a logging interval
        history["step"].append(step)
        history["lr"].append(train_config.lr_at(max(step - 1, 0)))
        history["loss"].append(float(acc_loss) / acc_steps)
        history["l0"].append(acc_nnz / acc_frames)
        history["explained_variance"].append(float(acc_ev) / acc_steps)
        history["dead_fraction"].append(1.0 - float(fired.float().mean()))
        history["threshold"].append(float(sae.threshold))
        history["elapsed_s"].append(time.perf_counter() - t0)
    n_done = history["step"][-1] if history["step"] else 0
    _record(sae, train_config, data_hash, n_done, history)
    elapsed = time.perf_counter() - t0
    logger.info(
        f"Trained {n_done:,} steps in {elapsed:.1f} s ({n_done / max(elapsed, 1e-9):.1f} "
        f"steps/s); final {sae.train_info['final_metrics']}"
    )
    sae.eval()
    if checkpoint_dir is not None:
        sae.save(Path(checkpoint_dir) / "final")
    return sae, pd.DataFrame(history)


def _record(sae, train_config, data_hash, n_done, history):
    final = {}
    if history["step"]:
        final = {
            key: history[key][-1]
            for key in ("loss", "l0", "explained_variance", "dead_fraction")
        }
    sae.train_info = dict(
        train_config=train_config.to_dict(),
        data_hash=data_hash,
        n_steps_done=int(n_done),
        final_metrics=final,
    )
