"""Benchmark the TRF's cross-validated fit on a torch device beside NumPy.

The same data, in the same run: :class:`neuro_sae.encoding.TRF` with ``device="cpu"``
(NumPy, the default ``solver="auto"``) and with ``device=<--device>`` (torch in float64,
one eigendecomposition per fold serving all alphas). Shapes (leave-one-run-out,
``--runs`` runs of ``--run-s`` s at 64 Hz, 13 alphas):

- Broderick-shaped: 16 features x 39 lags (624 predictors), 128 channels;
- many predictors: 16 features x 41 lags ... and 64 features x 39 lags (2,496
  predictors), 128 channels.

Prints the wall time of each fit (after one untimed warm-up fit on the device, which
pays for the CUDA context and kernel loading), their ratio, and the largest difference
of the held-out r and of the kernels between the two (identical to 1e-8 expected).

Usage: ``python benchmarks/bench_trf_device.py --device cuda [--runs 20] [--run-s 180]
[--threads N]`` (``--quick``: 5 runs x 30 s, seconds on ``--device torch-cpu``).
"""

import argparse
import os
import time
import warnings

import numpy as np
from scipy.signal import lfilter
from threadpoolctl import threadpool_limits

from neuro_sae.encoding import TRF

SFREQ = 64


def _simulate(n_runs, n_times, n_feat, n_ch, rng):
    X, Y = [], []
    mix = rng.standard_normal((n_feat, n_ch))
    for _ in range(n_runs):
        x = lfilter([1.0], [1.0, -0.9], rng.standard_normal((n_times, n_feat)), axis=0)
        y = np.roll(x, 8, axis=0) @ mix
        noise = rng.standard_normal((n_times, n_ch))
        X.append(x)
        Y.append(0.1 * y / y.std() + noise)
    return X, Y


def _fit(device, X, Y, tmax, alphas):
    t0 = time.perf_counter()
    est = TRF(-6 / SFREQ, tmax, SFREQ, alphas=alphas, alpha_per_run=True,
              device=device).fit(X, Y, verbose="error")  # fmt: skip
    return est, time.perf_counter() - t0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--runs", type=int, default=None)
    parser.add_argument("--run-s", type=float, default=None)
    parser.add_argument("--threads", type=int, default=None, help="BLAS threads for NumPy")
    args = parser.parse_args()
    n_runs = args.runs or (5 if args.quick else 20)
    run_s = args.run_s or (30.0 if args.quick else 180.0)
    shapes = [(8, 0.5, 32)] if args.quick else [(16, 0.5, 128), (16, 34 / 64, 128),
                                                 (64, 0.5, 128)]  # fmt: skip
    card = ""
    if args.device.startswith("cuda"):
        import torch

        card = f" ({torch.cuda.get_device_name(torch.device(args.device))})"
    print(f"TRF fit: {n_runs} runs x {run_s:g} s at {SFREQ} Hz, 13 alphas, leave-one-run-out; "
          f"NumPy on {os.cpu_count()} CPU(s) (BLAS threads {args.threads or 'default'}) vs "
          f"device {args.device}{card}")  # fmt: skip
    warnings.filterwarnings("ignore", message="The chosen alpha lies on the edge")
    alphas = np.logspace(-2, 4, 13) * SFREQ
    rng = np.random.default_rng(0)
    print(f"{'features x lags':>16} {'pred':>5} {'ch':>4} {'NumPy s':>8} {'route':>8} "
          f"{'device s':>9} {'ratio':>6} {'max|dr|':>8} {'max|dw|/max|w|':>15}")
    for n_feat, tmax, n_ch in shapes:
        X, Y = _simulate(n_runs, int(run_s * SFREQ), n_feat, n_ch, rng)
        _fit(args.device, [x[:512] for x in X], [y[:512] for y in Y], tmax, alphas)  # warm-up
        with threadpool_limits(limits=args.threads, user_api="blas"):
            ref, t_np = _fit("cpu", X, Y, tmax, alphas)
        est, t_dev = _fit(args.device, X, Y, tmax, alphas)
        d_r = float(np.abs(est.cv_scores_ - ref.cv_scores_).max())
        d_w = float(np.abs(est.coef_ - ref.coef_).max() / np.abs(ref.coef_).max())
        n_lags = ref.coef_.shape[-1]
        print(f"{f'{n_feat} x {n_lags}':>16} {n_feat * n_lags:>5} {n_ch:>4} {t_np:8.2f} "
              f"{ref.solver_:>8} {t_dev:9.2f} {t_np / t_dev:6.1f} {d_r:8.1e} {d_w:15.1e}",
              flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
