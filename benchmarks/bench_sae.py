"""Benchmark SAE training: neuro_sae against a plain dense BatchTopK reference.

Default size, the paper's: 768 -> 6144 features, k = 50, batches of 2500 unit-norm
frames drawn from a planted sparse dictionary (the same batches for both). Timed in
the same process:

- neuro_sae ``train_sae`` (BatchTopK; on the CPU the sparse path: one dense encoder
  product without autograd, a two-stage batch top-k, a sparse decoder and a
  hand-written backward through the kept entries only);
- a dense reference written here: ``pre = ReLU((x - b_dec) W_enc + b_enc)``, flat
  top-(k * batch) mask, ``x_hat = (pre * mask) W_dec + b_dec``, autograd, the same
  Adam step, parallel-gradient removal and decoder renormalisation.

Both start from the same weights; the script checks that their first losses agree.
It reports frames/s for both, their ratio (goal >= 1.5x) and the fraction of the
machine's matmul rate reached, measured in the same run as the FLOP rate of a GEMM of
the encoder's shape (batch x d_in) @ (d_in x d_sae): ``fraction = (2 * batch * d_in *
d_sae) / step time / GEMM rate``, i.e. how close a step comes to costing a single
encoder product (1.0 = the encoder matmul is all the step costs).

With ``--architectures`` the same batches also time ``train_sae`` for the other
architectures (TopK, ReLU, JumpReLU, Matryoshka BatchTopK), each reported as s/step
and relative to BatchTopK (ReLU, JumpReLU and Matryoshka train densely: their
losses need every pre-activation).

On a GPU (``--device cuda``) both run there (neuro_sae then takes its dense device
path: the sparse decoder pays off on CPUs only), every clock read synchronises the
device, and ``--batch`` sets the frames per step (default 2500; e.g. 16384 to fill a
large card).

Usage: ``python benchmarks/bench_sae.py [--quick] [--threads N] [--steps S]
[--architectures all] [--device cuda] [--batch 16384]``
(``--quick``: 256 -> 2048, k = 16, batches of 512; a few seconds.)
Timings on a loaded machine are noisy: rerun on a quiet one before quoting them.
"""

import argparse
import time
from dataclasses import replace

import torch

from neuro_sae.sae import (
    ARCHITECTURES,
    SAEConfig,
    TrainConfig,
    geometric_median,
    make_sae,
    train_sae,
)


def _batches(n_batches, batch, d_in, d_sae, k, seed):
    """Unit-norm frames mixing k of d_sae planted unit atoms (non-negative codes)."""
    g = torch.Generator().manual_seed(seed)
    atoms = torch.randn(d_sae, d_in, generator=g)
    atoms /= atoms.norm(dim=1, keepdim=True)
    out = []
    for _ in range(n_batches):
        idx = torch.randint(d_sae, (batch, k), generator=g)
        coef = 0.5 + torch.rand(batch, k, generator=g)
        x = torch.einsum("bk,bkd->bd", coef, atoms[idx]) + 0.01 * torch.randn(batch, d_in, generator=g)
        out.append(x.contiguous())
    return out


class DenseBatchTopK(torch.nn.Module):
    """The plain dense BatchTopK SAE step (reference)."""

    def __init__(self, sae):
        super().__init__()
        self.W_enc = torch.nn.Parameter(sae.W_enc.detach().clone())
        self.b_enc = torch.nn.Parameter(sae.b_enc.detach().clone())
        self.W_dec = torch.nn.Parameter(sae.W_dec.detach().clone())
        self.b_dec = torch.nn.Parameter(sae.b_dec.detach().clone())
        self.k = sae.cfg.k

    def loss(self, x):
        x = x / x.norm(dim=1, keepdim=True).clamp_min(1e-12)
        pre = torch.relu((x - self.b_dec) @ self.W_enc + self.b_enc)
        flat = pre.reshape(-1)
        _, idx = flat.topk(self.k * x.shape[0], sorted=False)
        mask = torch.zeros_like(flat, dtype=torch.bool)
        mask[idx] = True
        codes = pre * mask.reshape(pre.shape)
        recon = codes @ self.W_dec + self.b_dec
        return (recon - x).pow(2).sum(dim=1).mean()


def _sync(device):
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def _train_dense(ref, batches, lr, warmup, device="cpu"):
    opt = torch.optim.Adam(ref.parameters(), lr=lr, betas=(0.9, 0.999))
    t_start = None
    for i, x in enumerate(batches):
        if i == warmup:
            _sync(device)
            t_start = time.perf_counter()
        loss = ref.loss(x)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        with torch.no_grad():
            g = ref.W_dec.grad
            g.sub_((g * ref.W_dec).sum(dim=1, keepdim=True) * ref.W_dec)
        opt.step()
        with torch.no_grad():
            ref.W_dec.div_(ref.W_dec.norm(dim=1, keepdim=True).clamp_min(1e-12))
    _sync(device)
    return (time.perf_counter() - t_start) / (len(batches) - warmup)


def _gemm_rate(batch, d_in, d_sae, repeats, device="cpu"):
    a = torch.randn(batch, d_in, device=device)
    b = torch.randn(d_in, d_sae, device=device)
    a @ b  # warm-up
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(repeats):
        a @ b
    _sync(device)
    dt = (time.perf_counter() - t0) / repeats
    return 2.0 * batch * d_in * d_sae / dt, dt


def _profile(cfg, tcfg, batches, device):
    """Where a neuro_sae step spends its time: torch's profiler over the given batches."""
    from torch.profiler import ProfilerActivity, profile

    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=acts) as prof:
        train_sae(iter(batches), cfg, replace(tcfg, n_steps=len(batches)), random_state=0,
                  device=device)  # fmt: skip
    key = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
    print(prof.key_averages().table(sort_by=key, row_limit=15, max_name_column_width=40))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (seconds)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads for all timings (default: torch's, = cores)")
    parser.add_argument("--steps", type=int, default=None, help="timed steps (default 10, quick 8)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed first steps")
    parser.add_argument("--architectures", nargs="+", default=[],
                        help="also time train_sae for these architectures ('all': every one)")
    parser.add_argument("--device", default="cpu", help="torch device (cpu, cuda, cuda:1)")
    parser.add_argument("--batch", type=int, default=None, help="frames per step (2500)")
    parser.add_argument("--profile", action="store_true",
                        help="print torch's profile of neuro_sae's steps (top 15 operators)")
    args = parser.parse_args()
    archs = list(ARCHITECTURES) if args.architectures == ["all"] else args.architectures
    for arch in archs:
        if arch not in ARCHITECTURES:
            parser.error(f"--architectures: {arch!r} is not one of {list(ARCHITECTURES)}")
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.quick:
        d_in, d_sae, k, batch, steps = 256, 2048, 16, 512, args.steps or 8
    else:
        d_in, d_sae, k, batch, steps = 768, 6144, 50, 2500, args.steps or 10
    batch = args.batch or batch
    device = torch.device(args.device)
    warmup = args.warmup
    n = warmup + steps
    card = f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else ""
    print(f"SAE {d_in} -> {d_sae}, k={k}, batch {batch}, {steps} timed steps after {warmup} "
          f"warm-up, torch {torch.__version__}, {torch.get_num_threads()} thread(s), "
          f"device {device}{card}")
    batches = [b.to(device) for b in _batches(n, batch, d_in, d_sae, k, seed=0)]

    gemm_flops, gemm_s = _gemm_rate(batch, d_in, d_sae, repeats=max(3, steps), device=device)
    print(f"GEMM ({batch} x {d_in}) @ ({d_in} x {d_sae}): {gemm_s * 1e3:.1f} ms, "
          f"{gemm_flops / 1e9:.1f} GFLOP/s")

    # same initial weights and b_dec for both; first losses must agree
    cfg = SAEConfig(d_in=d_in, d_sae=d_sae, k=k)
    sae = make_sae(cfg, random_state=0).to(device)
    with torch.no_grad():
        x_in, _ = sae._prepare(batches[0])
        sae.b_dec.copy_(geometric_median(x_in))
    ref = DenseBatchTopK(sae)
    with torch.no_grad():
        out = sae.encode_decode(batches[0], "batchtopk")
        ours = float((out.recon - out.x_in).pow(2).sum(1).mean())
        theirs = float(ref.loss(batches[0]))
    assert abs(ours - theirs) <= 1e-4 * max(abs(theirs), 1e-12), (ours, theirs)
    print(f"first-batch loss: neuro_sae {ours:.6f}, dense reference {theirs:.6f} (agree)")

    t_dense = _train_dense(ref, batches, 2e-4, warmup, device)

    tcfg = TrainConfig(n_steps=n, batch_size=batch, log_every=warmup if warmup else n,
                       lr_decay_start=1.0)
    _, hist = train_sae(iter(batches), cfg, tcfg, random_state=0, device=device)
    el = hist["elapsed_s"].to_numpy()
    t_ours = (el[-1] - el[0]) / steps if warmup else el[-1] / steps

    rows = [("dense reference", t_dense), ("neuro_sae", t_ours)]
    if device.type != "cpu":  # the CPU's sparse kernels, run on the device for comparison
        _, hist = train_sae(iter(batches), cfg, replace(tcfg, sparse_kernels=True),
                            random_state=0, device=device)  # fmt: skip
        el = hist["elapsed_s"].to_numpy()
        rows.append(("neuro_sae sparse kernels", (el[-1] - el[0]) / steps if warmup
                     else el[-1] / steps))  # fmt: skip
    if args.profile:
        _profile(cfg, tcfg, batches, device)
    enc_flops = 2.0 * batch * d_in * d_sae
    print(f"{'':>24} {'s/step':>8} {'frames/s':>10} {'matmul fraction':>16}")
    for name, t in rows:
        print(f"{name:>24} {t:8.4f} {batch / t:10.0f} {enc_flops / t / gemm_flops:16.2f}")
    print(f"speed-up neuro_sae / dense reference: {t_dense / t_ours:.2f}x (goal >= 1.5x)")
    for arch in [a for a in archs if a != "batchtopk"]:
        _, hist = train_sae(iter(batches), SAEConfig(d_in=d_in, d_sae=d_sae, k=k,
                                                     architecture=arch), tcfg, random_state=0,
                            device=device)  # fmt: skip
        el = hist["elapsed_s"].to_numpy()
        t = (el[-1] - el[0]) / steps if warmup else el[-1] / steps
        print(f"{arch:>22} {t:8.3f} {batch / t:10.0f}   {t / t_ours:.2f}x BatchTopK's step")


if __name__ == "__main__":
    main()
