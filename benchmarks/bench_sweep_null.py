"""SAE-sized univariate sweep with a 1000-shift max-T null (line 2 of bench_permutation.py).

6144 sparse nonnegative features (5 % active, band-passed 1-8 Hz) x 128 channels, 15 min
at 128 Hz in 5 runs;
``--sae-features`` of them are timed and the times are extrapolated linearly to 6144
(printed as such), for the exact and the rank-truncated (``--rank-tol``) refit null.
Goal: the null in <= 10 min on 2 CPU cores.

With ``--device cuda`` (or ``cuda:N``, ``torch-cpu``) the exact refit null is timed on
that torch device next to the default NumPy null on the same features, and their
agreement is printed (the low-rank null is NumPy-only and is not run then).
``--feature-batch`` sets ``chunk_size`` (features per batched call) of the device run.

Usage: ``python benchmarks/bench_sweep_null.py [--quick] [--sae-features 16]
[--permutations 1000] [--rank-tol 1e-4] [--device cuda] [--feature-batch 16]
[--numpy-features N]``

``--scale``: the SAE-scale null of issue 16 measured (not extrapolated beyond the
features timed, at least a quarter of 6144 by default): the sweep fitted in a lag basis
(``--width`` s Hann kernels; ``--alpha-selection`` of the null), ``--n-jobs`` threads,
per-stage times, wall and CPU time, the machine's load; beside it the exact route (78
lags) timed on ``--exact-features`` features and extrapolated (printed as such)::

    python benchmarks/bench_sweep_null.py --scale [--features 1536] [--width 0.1]
        [--placement inside] [--alpha-selection observed] [--n-jobs 2]
        [--exact-features 32] [--tile-features 0]

(``--placement inside``, the default here: Hann kernels on whole delays, each inside the
window, whose null filters each feature once per run; ``--tile-features N`` also times
the ``placement="tile"`` basis, which takes the general basis route.)

On a GPU (``--device cuda``) the same data run the exact route on the device::

    python benchmarks/bench_sweep_null.py --device cuda --sae-features 256 --feature-batch 32
        [--width 0.1]

(The device line holds the alphas at the observed ones, as the device null requires.)
"""

import argparse
import sys

import numpy as np
from bench_permutation import _eeg, _time, main


def sae_device(args):
    """Line 2 with the exact refit null timed on ``args.device`` and with NumPy."""
    import mne
    from threadpoolctl import threadpool_limits

    from neuro_sae.encoding import univariate_sweep
    from neuro_sae.stats import sweep_permutation_test

    rng = np.random.default_rng(0)
    sfreq, total = 128.0, 6144
    n_runs, n_times, n_ch = (3, 2560, 16) if args.quick else (5, 23040, 128)
    n_feat = args.sae_features
    X = []
    for _ in range(n_runs):  # as bench_permutation.sae
        on = rng.random((n_times, n_feat)) < 0.05
        x = np.where(on, rng.exponential(1.0, (n_times, n_feat)), 0.0)
        X.append(mne.filter.filter_data(x.T, sfreq, 1.0, 8.0, verbose=False).T)
    Y = _eeg(rng, n_runs, n_times, n_ch)
    print(f"[2] SAE-sized: {n_runs} runs x {n_times} samples at {sfreq:g} Hz, {n_ch} channels, "
          f"{n_feat} of {total} features, {args.permutations} shifts, max-T; device "
          f"{args.device!r} vs NumPy")  # fmt: skip
    n_np = min(args.numpy_features or n_feat, n_feat)
    with threadpool_limits(limits=args.threads, user_api="blas"):
        sw, t_fit = _time(lambda: univariate_sweep(X, Y, sfreq=sfreq, tmin=-0.1, tmax=0.5,
                                                   basis=args.width))  # fmt: skip
        X_np = [x[:, :n_np] for x in X]
        sw_np = sw if n_np == n_feat else univariate_sweep(
            X_np, Y, sfreq=sfreq, tmin=-0.1, tmax=0.5, basis=args.width)  # fmt: skip
    kw = dict(n_permutations=args.permutations, random_state=0, return_null=True,
              alpha_selection="observed")  # fmt: skip
    # warm-up outside the timing: torch import, CUDA context, FFT plans
    sweep_permutation_test(X_np, Y, sw_np, device=args.device, n_permutations=20,
                           random_state=0, alpha_selection="observed", alpha=0.5,
                           verbose="error")  # fmt: skip
    kw["verbose"] = "error"
    base, t_np = _time(lambda: sweep_permutation_test(X_np, Y, sw_np, **kw))
    res_np, t_dev_np = _time(lambda: sweep_permutation_test(
        X_np, Y, sw_np, device=args.device, chunk_size=args.feature_batch, **kw))  # fmt: skip
    res, t_dev = (res_np, t_dev_np) if n_np == n_feat else _time(
        lambda: sweep_permutation_test(
            X, Y, sw, device=args.device, chunk_size=args.feature_batch, **kw
        )  # fmt: skip
    )
    print(f"    lag basis: {'none (78 lags)' if args.width is None else f'{args.width} s'}")
    print(f"    fit of {n_feat} features {t_fit:.2f} s; NumPy null on {n_np} features "
          f"{t_np:.2f} s, {args.device} null on the same {t_dev_np:.2f} s; {args.device} "
          f"null on {n_feat} features {t_dev:.2f} s (chunk_size={args.feature_batch})")  # fmt: skip
    print(f"    {args.device} vs NumPy ({n_np} features): max |d r| "
          f"{np.max(np.abs(res_np.r - base.r)):.2e}, max |d null| "
          f"{np.max(np.abs(res_np.null.astype(float) - base.null)):.2e}, equal p_fwe "
          f"{np.mean(res_np.p_fwe == base.p_fwe):.2%}")  # fmt: skip
    print(
        f"    EXTRAPOLATED linearly to {total} features: NumPy null "
        f"{t_np * total / n_np / 60:.2f} min (x{total / n_np:g}), {args.device} null "
        f"{t_dev * total / n_feat / 60:.2f} min (x{total / n_feat:g})"
    )


def sae_scale(args):
    """The SAE-scale null (issue 16 item 3), measured on ``args.features`` features."""
    import os
    import time

    import mne
    from threadpoolctl import threadpool_limits

    from neuro_sae.encoding import univariate_sweep
    from neuro_sae.stats import _refit, sweep_permutation_test

    rng = np.random.default_rng(0)
    sfreq, total = 128.0, 6144
    n_runs, n_times, n_ch = (3, 2560, 16) if args.quick else (5, 23040, 128)
    F = args.features
    X = []
    for _ in range(n_runs):  # as bench_permutation.sae, float32 to save memory
        on = rng.random((n_times, F)) < 0.05
        x = np.where(on, rng.exponential(1.0, (n_times, F)), 0.0)
        X.append(mne.filter.filter_data(x.T, sfreq, 1.0, 8.0, verbose=False).T.copy())
    Y = _eeg(rng, n_runs, n_times, n_ch)
    print(f"SAE-scale null: {n_runs} runs x {n_times} samples at {sfreq:g} Hz, {n_ch} channels, "
          f"{F} of {total} features measured, lags -0.1 ... 0.5 s, {args.permutations} shifts, "
          f"max-T; {args.n_jobs} threads; load average {os.getloadavg()} on "
          f"{os.cpu_count()} CPUs (the machine is shared: CPU time is printed beside wall "
          "time)")  # fmt: skip

    def run(feats, basis, label):
        Xf = [x[:, :feats] for x in X]
        with threadpool_limits(limits=1, user_api="blas"):
            t0, c0 = time.perf_counter(), time.process_time()
            sw = univariate_sweep(Xf, Y, sfreq=sfreq, tmin=-0.1, tmax=0.5, basis=basis,
                                  return_kernels=False, verbose="error")  # fmt: skip
            t_fit, c_fit = time.perf_counter() - t0, time.process_time() - c0
        _refit.STAGE_TIMES = {}
        t0, c0 = time.perf_counter(), time.process_time()
        sweep_permutation_test(Xf, Y, sw, n_permutations=args.permutations, random_state=0,
                               alpha_selection=args.alpha_selection, n_jobs=args.n_jobs,
                               verbose="error")  # fmt: skip
        t_null, c_null = time.perf_counter() - t0, time.process_time() - c0
        stages, _refit.STAGE_TIMES = _refit.STAGE_TIMES, None
        q = len(sw.delays) if not sw.basis.size else sw.basis.shape[1]
        sc = total / feats
        print(f"[{label}] {feats} features, fitted dimension {q} of {len(sw.delays)} lags, "
              f"{sw.alphas.shape[1]} alphas, alpha_selection={args.alpha_selection!r}")
        print(f"    fit: wall {t_fit:.1f} s, CPU {c_fit:.1f} s; null: wall {t_null:.1f} s, "
              f"CPU {c_null:.1f} s")  # fmt: skip
        tot = sum(stages.values())
        print("    null stages (thread-seconds): " + ", ".join(
            f"{k} {v:.1f} s ({v / tot:.0%})" for k, v in stages.items()))  # fmt: skip
        what = "measured" if feats == total else f"x{sc:.3g} to {total} features"
        print(f"    {what}: null wall {t_null * sc / 60:.2f} min, CPU {c_null * sc / 60:.2f} "
              f"min = {c_null * sc / 120:.2f} min on 2 idle cores; fit CPU "
              f"{c_fit * sc / 60:.2f} min (goal: null <= 10 min on 2 cores)")  # fmt: skip

    from neuro_sae.encoding import lag_basis

    if args.exact_features:
        run(args.exact_features, None, "exact, 78 lags")
    if args.tile_features:
        run(args.tile_features, args.width, f"basis {args.width:g} s, placement='tile'")
    basis = lag_basis(sfreq, -0.1, 0.5, args.width, placement=args.placement)
    run(F, basis, f"basis {args.width:g} s, placement={args.placement!r}")


if __name__ == "__main__":
    if "--scale" in sys.argv[1:]:
        parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
        parser.add_argument("--scale", action="store_true")
        parser.add_argument("--quick", action="store_true")
        parser.add_argument("--features", type=int, default=1536)
        parser.add_argument("--exact-features", type=int, default=32)
        parser.add_argument("--width", type=float, default=0.1)
        parser.add_argument("--placement", default="inside", choices=("inside", "tile"))
        parser.add_argument("--tile-features", type=int, default=0)
        parser.add_argument("--alpha-selection", default="observed")
        parser.add_argument("--n-jobs", type=int, default=2)
        parser.add_argument("--permutations", type=int, default=1000)
        sae_scale(parser.parse_args())
        sys.exit(0)
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--feature-batch", type=int, default=16)
    dev_args, rest = parser.parse_known_args(sys.argv[1:])
    if dev_args.device == "cpu":  # the default: line 2 of bench_permutation.py as before
        sys.argv[1:] = rest + ["--skip-broderick"]
        main()
    else:
        parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
        parser.add_argument("--device")
        parser.add_argument("--feature-batch", type=int, default=16)
        parser.add_argument("--quick", action="store_true")
        parser.add_argument("--permutations", type=int, default=None)
        parser.add_argument("--sae-features", type=int, default=None)
        parser.add_argument("--numpy-features", type=int, default=None,
                            help="time NumPy (and check agreement) on the first N features "
                                 "only (default: all of --sae-features)")  # fmt: skip
        parser.add_argument("--threads", type=int, default=None)
        parser.add_argument("--width", type=float, default=None,
                            help="lag basis width in s (default: none, 78 lags)")
        args = parser.parse_args()
        args.permutations = args.permutations or (100 if args.quick else 1000)
        args.sae_features = args.sae_features or (4 if args.quick else 16)
        sae_device(args)
