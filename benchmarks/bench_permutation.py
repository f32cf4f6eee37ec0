"""Benchmark the sweep and its permutation nulls on a demo-sized synthetic subject.

Demo size: 5 runs x 3,840 samples (60 s at 64 Hz), 64 channels, 256 features,
lags -0.1 ... 0.5 s (39 delays), 1000 permutations. Prints the sweep time, the
refit-null time and the fixed-null time (same run, same machine) and the ratios.

Usage: ``python benchmarks/bench_permutation.py [--features 256] [--permutations 1000]``
"""

import argparse
import os
import time
import warnings

import numpy as np
from scipy.signal import lfilter

from neuro_sae.encoding import univariate_sweep
from neuro_sae.stats import sweep_permutation_test


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--times", type=int, default=3840)
    parser.add_argument("--channels", type=int, default=64)
    parser.add_argument("--features", type=int, default=256)
    parser.add_argument("--permutations", type=int, default=1000)
    parser.add_argument("--chunk-size", type=int, default=16)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    sfreq = 64.0
    X = [rng.standard_normal((args.times, args.features)) for _ in range(args.runs)]
    Y = [
        lfilter([1.0], [1.0, -0.8], rng.standard_normal((args.times, args.channels)), axis=0)
        for _ in range(args.runs)
    ]
    for x, y in zip(X, Y):  # one planted effect: feature 1 -> channel 2 at 50 ms
        y[:, 2] += 0.5 * np.roll(x[:, 1], 3)
    print(f"load average before: {os.getloadavg()}")
    print(
        f"{args.runs} runs x {args.times} samples, {args.channels} channels, "
        f"{args.features} features, {args.permutations} permutations"
    )
    t0 = time.perf_counter()
    sw = univariate_sweep(X, Y, sfreq=sfreq, tmin=-0.1, tmax=0.5)
    t_fit = time.perf_counter() - t0
    print(f"sweep:       {t_fit:8.1f} s  ({len(sw.delays)} delays)")
    kw = dict(n_permutations=args.permutations, random_state=0, chunk_size=args.chunk_size)
    t0 = time.perf_counter()
    res = sweep_permutation_test(X, Y, sw, null="refit", **kw)
    t_refit = time.perf_counter() - t0
    print(f"refit null:  {t_refit:8.1f} s  (null/fit = {t_refit / t_fit:.2f}); "
          f"p_fwe[1, 2] = {res.p_fwe[1, 2]:.4f}")  # fmt: skip
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        res_f = sweep_permutation_test(X, Y, sw, null="fixed", **kw)
    t_fixed = time.perf_counter() - t0
    print(f"fixed null:  {t_fixed:8.1f} s  (null/fit = {t_fixed / t_fit:.2f}); "
          f"p_fwe[1, 2] = {res_f.p_fwe[1, 2]:.4f}")  # fmt: skip
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
