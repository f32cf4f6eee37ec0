"""Benchmark the refit circular-shift null against the cross-validated sweep fit.

Two lines, each timed in the same process on the same data:

1. Broderick-shaped subject (the shape of ``bench_trf.py``): 20 runs x 180 s at
   64 Hz, 128 channels, 16 features x 39 lags (-6/64 ... 0.5 s), 13 alphas,
   leave-one-run-out (nested for the alpha). ``univariate_sweep`` (one TRF per
   feature x channel) vs ``sweep_permutation_test`` with 1000 circular shifts
   (``null="refit"``); prints both times and null / fit. Goal: <= 3.
2. SAE-sized sweep: 6144 sparse nonnegative features (5 % active), band-passed
   1-8 Hz like the EEG (as SAE features are after alignment to the EEG clock;
   ``mne.filter.filter_data``), x 128 channels, 15 min at 128 Hz in 5 runs, lags
   -0.1 ... 0.5 s (78), 1000-shift max-T null. The exact refit null and the
   rank-truncated one (``rank_tol``, default 1e-4) are timed in the same run, with
   their agreement (max |difference| of r and of the null, equal p-values) and the
   ranks used. The fit and the nulls are linear in the number of features, so
   ``--sae-features`` of them are timed and the times are extrapolated to 6144
   (printed as such). Goal: null <= 10 min on 2 CPU cores.

Usage: ``python benchmarks/bench_permutation.py [--quick] [--sae-features 16]
[--permutations 1000] [--threads N] [--rank-tol 1e-4] [--skip-broderick]
[--skip-sae]``
(OpenBLAS threads spin on a loaded machine and slow the fit down: compare with
``--threads 1`` too.)
(``--quick``: small sizes, seconds; checks that the script works, not the goals.)
"""

import argparse
import os
import time

import numpy as np
from scipy.signal import lfilter
from threadpoolctl import threadpool_limits

from neuro_sae.encoding import univariate_sweep
from neuro_sae.stats import sweep_permutation_test


def _eeg(rng, n_runs, n_times, n_ch):
    return [
        lfilter([1.0], [1.0, -0.8], rng.standard_normal((n_times, n_ch)), axis=0)
        for _ in range(n_runs)
    ]


def _time(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def broderick(args, rng):
    n_runs, n_times, n_ch, n_feat = (5, 1920, 32, 8) if args.quick else (20, 11520, 128, 16)
    sfreq = 64.0
    X = [
        lfilter([1.0], [1.0, -0.9], rng.standard_normal((n_times, n_feat)), axis=0)
        for _ in range(n_runs)
    ]
    Y = _eeg(rng, n_runs, n_times, n_ch)
    for x, y in zip(X, Y):  # one planted effect: feature 1 -> channel 2 at ~50 ms
        y[:, 2] += 0.3 * np.roll(x[:, 1], 3)
    alphas = np.logspace(-1, 11, 13)
    print(f"[1] Broderick-shaped: {n_runs} runs x {n_times} samples at {sfreq:g} Hz, "
          f"{n_ch} channels, {n_feat} features x 39 lags, {len(alphas)} alphas, "
          f"{args.permutations} circular shifts")  # fmt: skip
    sw, t_fit = _time(
        lambda: univariate_sweep(X, Y, sfreq=sfreq, tmin=-6 / 64, tmax=0.5, alphas=alphas)
    )
    res, t_null = _time(
        lambda: sweep_permutation_test(
            X, Y, sw, n_permutations=args.permutations, random_state=0
        )  # fmt: skip
    )
    print(f"    fit (nested CV sweep): {t_fit:8.2f} s")
    print(f"    refit null:            {t_null:8.2f} s   null / fit = {t_null / t_fit:.2f} "
          f"(goal <= 3); planted p_fwe = {res.p_fwe[1, 2]:.4f}")  # fmt: skip


def sae(args, rng):
    import mne

    sfreq = 128.0
    n_runs, n_times, n_ch = (3, 2560, 16) if args.quick else (5, 23040, 128)
    n_feat = args.sae_features
    total = 6144
    X = []
    for _ in range(n_runs):
        on = rng.random((n_times, n_feat)) < 0.05
        x = np.where(on, rng.exponential(1.0, (n_times, n_feat)), 0.0)
        X.append(mne.filter.filter_data(x.T, sfreq, 1.0, 8.0, verbose=False).T)
    Y = _eeg(rng, n_runs, n_times, n_ch)
    print(f"[2] SAE-sized: {n_runs} runs x {n_times} samples at {sfreq:g} Hz "
          f"({n_runs * n_times / sfreq / 60:.1f} min), {n_ch} channels, {n_feat} of {total} "
          f"sparse features (5 % active) band-passed 1-8 Hz, lags -0.1 ... 0.5 s, "
          f"{args.permutations} shifts, max-T")  # fmt: skip
    sw, t_fit = _time(lambda: univariate_sweep(X, Y, sfreq=sfreq, tmin=-0.1, tmax=0.5))
    kw = dict(n_permutations=args.permutations, random_state=0, return_null=True)
    exact, t_null = _time(lambda: sweep_permutation_test(X, Y, sw, **kw))
    low, t_low = _time(lambda: sweep_permutation_test(X, Y, sw, rank_tol=args.rank_tol, **kw))
    q = np.array(low.provenance["ranks"])
    n_low = np.array(low.provenance["lowrank_channels"])
    d_null = np.max(np.abs(low.null.astype(float) - exact.null))
    d_r = np.max(np.abs(low.r - exact.r))
    same_unc = np.mean(low.p_uncorrected == exact.p_uncorrected)
    same_fwe = np.mean(low.p_fwe == exact.p_fwe)
    scale = total / n_feat
    print(f"    measured on {n_feat} features: fit {t_fit:.2f} s, exact null {t_null:.2f} s, "
          f"low-rank null (rank_tol={args.rank_tol:g}) {t_low:.2f} s")  # fmt: skip
    print(f"    ranks of the {len(sw.delays)} lags: median q {np.median(q):g}, max q {q.max()}; "
          f"channels on the low-rank path {n_low.sum() / n_low.size / n_ch:.1%}")  # fmt: skip
    print(f"    low-rank vs exact on these features: max |d r| {d_r:.2e}, max |d null| "
          f"{d_null:.2e}; equal p_uncorrected {same_unc:.2%}, equal p_fwe {same_fwe:.2%}")  # fmt: skip
    print(
        f"    EXTRAPOLATED linearly to {total} features (x{scale:g}): fit "
        f"{t_fit * scale / 60:.1f} min, exact null {t_null * scale / 60:.1f} min, low-rank "
        f"null {t_low * scale / 60:.1f} min (goal <= 10 min)"
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (seconds)")
    parser.add_argument("--permutations", type=int, default=None,
                        help="circular shifts (default 1000; quick 100)")  # fmt: skip
    parser.add_argument(
        "--sae-features",
        type=int,
        default=None,
        help="features of line 2 actually timed (default 16; quick 4)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="BLAS threads of the fit (default: the library's; the null "
        "always runs single-threaded BLAS in one Python thread per core)",
    )
    parser.add_argument(
        "--rank-tol",
        type=float,
        default=1e-4,
        help="rank_tol of the low-rank null of line 2 (default 1e-4)",
    )
    parser.add_argument("--skip-broderick", action="store_true")
    parser.add_argument("--skip-sae", action="store_true")
    args = parser.parse_args()
    if args.permutations is None:
        args.permutations = 100 if args.quick else 1000
    if args.sae_features is None:
        args.sae_features = 4 if args.quick else 16
    rng = np.random.default_rng(0)
    print(f"load average before: {os.getloadavg()}; {os.cpu_count()} CPUs")
    with threadpool_limits(limits=args.threads, user_api="blas"):
        if not args.skip_broderick:
            broderick(args, rng)
        if not args.skip_sae:
            sae(args, rng)
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
