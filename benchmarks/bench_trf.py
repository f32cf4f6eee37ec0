"""Benchmark the TRF's cross-validated fit against mTRFpy and MNE's ReceptiveField.

Default size, one Broderick-shaped subject: 20 runs x 180 s at 64 Hz, 128 channels,
16 features x 39 lags (-6/64 ... 0.5 s), 13 alphas, leave-one-run-out. Timed in the
same process on the same data:

- neuro_sae ``TRF(alpha_per_run=True).fit``: sufficient statistics, one
  eigendecomposition per fold for all alphas, held-out r from statistics, refit;
- mTRFpy ``TRF.train(..., regularization=lambdas, reg_per_y_channel=True)``: the same
  work (leave-one-trial-out r per lambda and channel, then the final fit), with
  ``lambda = alpha / sfreq`` (see the Notes of :class:`neuro_sae.encoding.TRF`); the
  script checks that both give the same CV r and kernels;
- MNE ``ReceptiveField`` (``TimeDelayingRidge``, one alpha per fit) has no CV: a full
  search is ``n_folds * n_alphas`` fits on the training runs plus a held-out
  prediction each. ``--mne-fits`` such fold fits are timed and the mean is multiplied by
  ``n_folds * n_alphas`` (the final refit is not counted, which favours MNE).

Goals (issue 6): >= 8x mTRFpy, >= 500x MNE, identical numbers (CV r to 1e-6, same
alpha per channel, kernels to 1e-6 relative); the script prints each goal as met or
not and exits non-zero when the numbers differ.

``--sweep``: the univariate sweep instead: 6144 sparse features (2%% non-zero, like SAE
codes) x 128 channels x 15 min at 128 Hz (5 runs of 3 min), lags -0.1 ... 0.5 s, 5
alphas, nested leave-one-run-out; prints the wall time and the peak memory (max RSS).

``--matrix``: a table over predictors (8, 32, 128, 656: 1 x 8, 1 x 32, 4 x 32 and
16 x 41 lags), runs (5, 20; ``--run-s`` s each), alphas (4, 13) and channels (10,
128): neuro_sae ``TRF(solver="auto")`` and mTRFpy ``TRF.train`` on the same data in the
same run (the faster of ``--repeats`` timings each), their held-out r (identical to
1e-6), the route chosen, and a floor: one pass over the data for the lagged
covariances plus the factorisations of the chosen route (n_folds eigendecompositions,
or n_folds x n_alphas Cholesky factorisations), timed in the same run. Goals: ahead of
mTRFpy in every cell, >= 5x where alphas or channels are many (13 alphas or 128
channels), within 1.5x of the floor. A second column, "exact" (no goal): the floor plus
the solves and held-out products the route needs (``2 P^2 C + P^2 C`` per fold and
alpha for cholesky), as bare BLAS/LAPACK calls: the part of the gap to the floor that
no exact fit of the route avoids.

Usage: ``python benchmarks/bench_trf.py [--quick] [--sweep] [--mne-fits 1] [--threads 1]``
``python benchmarks/bench_trf.py --matrix [--run-s 30] [--repeats 2] [--threads 1]
[--predictors 8,656]``
(OpenBLAS threads spin on a loaded machine: ``--threads 1`` gives stable figures.)
(``--quick``: 5 runs x 30 s, 32 channels, 8 features, or a 256-feature sweep; seconds.)
"""

import argparse
import os
import resource
import sys
import time
import warnings
from functools import partial

import numpy as np
from scipy.signal import lfilter
from threadpoolctl import threadpool_limits

from neuro_sae.encoding import TRF
from neuro_sae.encoding._lagged import _lag_matrix, _times_to_delays

SFREQ = 64
TMIN, TMAX = -6 / 64, 0.5  # 39 lags; binary fractions, so mTRFpy's lags are the same


def _simulate(n_runs, n_times, n_feat, n_ch, rng):
    """Coloured features and EEG with a planted kernel (r ~ 0.1, EEG-like)."""
    delays = _times_to_delays(TMIN, TMAX, SFREQ)
    kernel = rng.standard_normal((n_ch, n_feat, len(delays))) * np.hanning(len(delays))
    X, Y = [], []
    for _ in range(n_runs):
        x = lfilter([1.0], [1.0, -0.9], rng.standard_normal((n_times, n_feat)), axis=0)
        y = _lag_matrix(x, delays) @ kernel.reshape(n_ch, -1).T
        noise = lfilter([1.0], [1.0, -0.8], rng.standard_normal((n_times, n_ch)), axis=0)
        X.append(x)
        Y.append(0.1 * y / y.std() + noise / noise.std())
    return X, Y


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (< 1 min)")
    parser.add_argument("--mne-fits", type=int, default=None,
                        help="fold fits of MNE ReceptiveField to time (default 1, quick 2)")
    parser.add_argument("--skip-mne", action="store_true")
    parser.add_argument("--sweep", action="store_true",
                        help="benchmark the univariate sweep instead")
    parser.add_argument("--threads", type=int, default=None,
                        help="BLAS threads for all three (default: the library's)")
    parser.add_argument("--matrix", action="store_true",
                        help="the table over predictors x runs x alphas x channels")
    parser.add_argument("--run-s", type=float, default=30.0, help="--matrix: seconds per run")
    parser.add_argument("--repeats", type=int, default=2, help="--matrix: timings per cell")
    parser.add_argument("--predictors", default="8,32,128,656",
                        help="--matrix: the predictor counts to run (comma-separated)")
    args = parser.parse_args()
    with threadpool_limits(limits=args.threads):
        if args.matrix:
            ok = _run_matrix(args)
        else:
            ok = _run_sweep(args) if args.sweep else _run(args)
    sys.exit(0 if ok else 1)


def _best_time(fn, repeats):
    best, out = np.inf, None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return out, best


def _floor(X, Y, delays, n_folds, route, n_alphas, repeats):
    """One pass over the data for the lagged covariances plus the route's factorisations."""
    import scipy.linalg as sla

    from neuro_sae.encoding._lagged import _lagged_run_stats

    def run():
        st = [_lagged_run_stats(x, y, delays) for x, y in zip(X, Y)]
        G = sum(s["G"] for s in st)
        G = G + np.eye(len(G))
        for _ in range(n_folds):
            if route == "eigh":
                np.linalg.eigh(G)
            else:
                for _ in range(n_alphas):
                    sla.cho_factor(G, check_finite=False)

    return _best_time(run, repeats)[1]


def _exact_floor(X, Y, delays, n_folds, route, n_alphas, repeats):
    """The floor plus the solves and held-out products of the route (BLAS/LAPACK calls
    back to back, no Python work between them): what any exact fit of that route needs.

    ``"cholesky"``: per fold the held-out factor, per alpha a factorisation, the solve
    (``2 P^2 C``) and the held-out triangular product (``P^2 C``). ``"eigh"``: per fold
    the eigendecomposition, the projections (``4 P^2 C``), the held-out factor in the
    basis (``P^3 / 3 + P^3 + P^3 + P^3 / 3``), per alpha one triangular product.
    """
    import scipy.linalg as sla

    from neuro_sae.encoding._lagged import _lagged_run_stats

    potrf, potrs = sla.lapack.get_lapack_funcs(("potrf", "potrs"), (np.ones(1),))
    trmm, syrk = sla.blas.get_blas_funcs(("trmm", "syrk"), (np.ones(1),))

    def run():
        st = [_lagged_run_stats(x, y, delays) for x, y in zip(X, Y)]
        G = sum(s["G"] for s in st) + np.eye(len(st[0]["G"]))
        H = np.asfortranarray(sum(s["H"] for s in st))
        Gk = st[0]["G"] + np.eye(len(G))
        for _ in range(n_folds):
            Lk = potrf(Gk, lower=1)[0]
            if route == "eigh":
                _, V = np.linalg.eigh(G)
                Q, a = V.T @ H, V.T @ H  # training and held-out projections
                del Q, a
                B = trmm(1.0, Lk, V, lower=1, trans_a=1)
                R = potrf(syrk(1.0, B, trans=1), lower=0, overwrite_a=1)[0]
                for _ in range(n_alphas):
                    trmm(1.0, R, H, lower=0)
            else:
                for _ in range(n_alphas):
                    fac = potrf(G, lower=1)[0]
                    trmm(1.0, Lk, potrs(fac, H, lower=1)[0], lower=1, trans_a=1, overwrite_b=1)

    return _best_time(run, repeats)[1]


def _run_matrix(args):
    import mtrf

    warnings.filterwarnings("ignore", message="The chosen alpha lies on the edge")
    shapes = {8: (1, 8), 32: (1, 32), 128: (4, 32), 656: (16, 41)}  # features x lags
    print(
        f"TRF matrix: runs of {args.run_s:g} s at {SFREQ} Hz, leave-one-run-out, same data "
        f"for both in the same run, best of {args.repeats}; BLAS threads "
        f"{args.threads or 'default'}; load average {np.round(os.getloadavg(), 2)} on "
        f"{os.cpu_count()} CPU(s) (a shared machine: ratios are side by side)"
    )
    head = (f"{'pred':>5} {'runs':>4} {'alph':>4} {'ch':>4} {'route':>8} {'ours s':>8} "
            f"{'mTRF s':>8} {'x mTRF':>7} {'floor s':>8} {'/floor':>6} {'exact s':>8} "
            f"{'/exact':>6} {'max|dr|':>8} goals")
    print(head)
    ok_all = True
    n_times = int(args.run_s * SFREQ)
    wanted = {int(p) for p in args.predictors.split(",")}
    for P, (n_feat, n_lags) in shapes.items():
        if P not in wanted:
            continue
        tmin, tmax = 0.0, (n_lags - 1) / SFREQ
        delays = _times_to_delays(tmin, tmax, SFREQ)
        for n_runs in (5, 20):
            for n_alphas in (4, 13):
                lambdas = np.logspace(-2, 4, n_alphas)
                for n_ch in (10, 128):
                    rng = np.random.default_rng(P + n_runs + n_ch)
                    X, Y = _simulate_shape(n_runs, n_times, n_feat, n_ch, delays, rng)
                    est, t_ours = _best_time(
                        partial(_fit_ours, X, Y, tmin, tmax, lambdas), args.repeats
                    )
                    metric, t_ref = _best_time(
                        partial(_fit_mtrf, mtrf, X, Y, tmin, tmax, lambdas), args.repeats
                    )
                    d_r = float(np.abs(est.cv_scores_.mean(0) - metric).max())
                    t_floor = _floor(X, Y, delays, n_runs, est.solver_, n_alphas, args.repeats)
                    t_exact = _exact_floor(X, Y, delays, n_runs, est.solver_, n_alphas,
                                           args.repeats)  # fmt: skip
                    ratio, to_floor = t_ref / t_ours, t_ours / t_floor
                    many = n_alphas == 13 or n_ch == 128
                    goals = [ratio > 1, ratio >= 5 if many else True, to_floor <= 1.5,
                             d_r <= 1e-6]  # fmt: skip
                    ok_all &= goals[-1]
                    flags = "".join("y" if g else "N" for g in goals)
                    print(f"{P:>5} {n_runs:>4} {n_alphas:>4} {n_ch:>4} {est.solver_:>8} "
                          f"{t_ours:8.3f} {t_ref:8.3f} {ratio:7.1f} {t_floor:8.3f} "
                          f"{to_floor:6.2f} {t_exact:8.3f} {t_ours / t_exact:6.2f} "
                          f"{d_r:8.1e} {flags}", flush=True)  # fmt: skip
    print("goals per cell: ahead of mTRFpy / >= 5x when 13 alphas or 128 channels / "
          "<= 1.5x the floor / r identical to 1e-6 (y = met, N = not). 'exact': the "
          "floor plus the route's solves and held-out products as bare BLAS/LAPACK calls "
          "(what any exact fit of that route needs; no goal)")
    return ok_all


def _fit_ours(X, Y, tmin, tmax, lambdas):
    return TRF(tmin, tmax, SFREQ, alphas=lambdas * SFREQ, alpha_per_run=True).fit(X, Y)


def _fit_mtrf(mtrf, X, Y, tmin, tmax, lambdas):
    ref = mtrf.TRF(direction=1, zeropad=True, method="ridge")
    return ref.train([x.copy() for x in X], [y.copy() for y in Y], SFREQ, tmin, tmax,
                     list(lambdas), k=-1, verbose=False, reg_per_y_channel=True)  # fmt: skip


def _simulate_shape(n_runs, n_times, n_feat, n_ch, delays, rng):
    """Coloured features and EEG with a planted kernel over ``delays``."""
    kernel = rng.standard_normal((n_ch, n_feat, len(delays))) * np.hanning(len(delays))
    X, Y = [], []
    for _ in range(n_runs):
        x = lfilter([1.0], [1.0, -0.9], rng.standard_normal((n_times, n_feat)), axis=0)
        y = _lag_matrix(x, delays) @ kernel.reshape(n_ch, -1).T
        noise = lfilter([1.0], [1.0, -0.8], rng.standard_normal((n_times, n_ch)), axis=0)
        X.append(x)
        Y.append(0.1 * y / y.std() + noise / noise.std())
    return X, Y


def _run_sweep(args):
    import scipy.sparse as sp

    from neuro_sae.encoding import univariate_sweep

    sfreq, n_runs, n_ch = 128, 5, 128
    n_feat, dur = (256, 60) if args.quick else (6144, 180)
    rng = np.random.default_rng(0)
    X, Y = [], []
    for _ in range(n_runs):
        n = dur * sfreq
        x = sp.random_array((n, n_feat), density=0.02, format="csc", rng=rng)
        y = rng.standard_normal((n, n_ch))
        y[:, :8] += 5.0 * x[:, [0]].toarray()  # one planted feature (r ~ 0.4)
        X.append(x)
        Y.append(y)
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"Sweep: {n_feat} sparse features (2% non-zero) x {n_ch} channels, {n_runs} runs x "
        f"{dur} s at {sfreq} Hz, lags -0.1 ... 0.5 s, 5 alphas, nested leave-one-run-out; "
        f"load average {np.round(os.getloadavg(), 2)}; RSS before {rss0:.0f} MiB"
    )
    t0 = time.perf_counter()
    sw = univariate_sweep(X, Y, sfreq=sfreq, tmin=-0.1, tmax=0.5,
                          alphas=np.logspace(0, 4, 5), return_kernels=False)  # fmt: skip
    wall = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"wall time {wall:.1f} s, peak memory (max RSS) {rss:.0f} MiB")
    top = int(np.argmax(sw.r.max(1)))
    print(f"planted feature found: {top == 0} (max r {sw.r.max():.3f})")
    return top == 0


def _run(args):
    if args.quick:
        n_runs, dur, n_ch, n_feat = 5, 30, 32, 8
    else:
        n_runs, dur, n_ch, n_feat = 20, 180, 128, 16
    mne_fits = args.mne_fits or (2 if args.quick else 1)
    n_times = dur * SFREQ
    lambdas = np.logspace(-2, 4, 13)
    alphas = lambdas * SFREQ  # alpha_per_run=True: alpha = lambda * sfreq
    rng = np.random.default_rng(0)
    X, Y = _simulate(n_runs, n_times, n_feat, n_ch, rng)
    n_lags = len(_times_to_delays(TMIN, TMAX, SFREQ))
    print(
        f"{n_runs} runs x {dur} s at {SFREQ} Hz, {n_ch} channels, {n_feat} features x "
        f"{n_lags} lags = {n_feat * n_lags} predictors, {len(alphas)} alphas, "
        f"leave-one-run-out; {os.cpu_count()} CPU(s), BLAS threads "
        f"{args.threads or 'default'}, load average {np.round(os.getloadavg(), 2)}"
    )
    warnings.filterwarnings("ignore", message="The chosen alpha lies on the edge")

    t0 = time.perf_counter()
    ours = TRF(TMIN, TMAX, SFREQ, alphas=alphas, alpha_per_run=True).fit(X, Y)
    t_ours = time.perf_counter() - t0
    print(f"neuro_sae TRF CV fit:       {t_ours:9.2f} s")

    import mtrf

    ref = mtrf.TRF(direction=1, zeropad=True, method="ridge")
    t0 = time.perf_counter()
    metric = ref.train(
        [x.copy() for x in X], [y.copy() for y in Y], SFREQ, TMIN, TMAX, list(lambdas),
        k=-1, verbose=False, reg_per_y_channel=True,
    )
    t_mtrf = time.perf_counter() - t0
    w_ref = np.transpose(ref.weights, (2, 0, 1)) / SFREQ
    d_r = np.abs(ours.cv_scores_.mean(0) - metric).max()
    d_w = np.abs(ours.coef_ - w_ref).max() / np.abs(w_ref).max()
    same_alpha = np.array_equal(ours.alpha_, np.asarray(ref.regularization) * SFREQ)
    identical = bool(d_r <= 1e-6 and d_w <= 1e-6 and same_alpha)
    ratio = t_mtrf / t_ours
    print(
        f"mTRFpy train (CV + fit):    {t_mtrf:9.2f} s   ratio {ratio:7.1f}x   (goal >= 8x: "
        f"{'met' if ratio >= 8 else 'NOT met'})"
    )
    print(
        f"  identical numbers: {'yes' if identical else 'NO'} (max |r diff| {d_r:.1e}, max "
        f"relative kernel diff {d_w:.1e}, same alpha per channel: {same_alpha})"
    )

    if not args.skip_mne:
        import mne
        from mne.decoding import ReceptiveField

        mne.set_log_level("ERROR")

        n_fits = len(X) * len(alphas)
        times = []
        for i in range(mne_fits):
            j, alpha = i % len(X), alphas[i % len(alphas)] * (len(X) - 1)
            train = [k for k in range(len(X)) if k != j]
            rf = ReceptiveField(TMIN, TMAX, SFREQ, estimator=alpha, fit_intercept=True)
            t0 = time.perf_counter()
            rf.fit(np.stack([X[k] for k in train], 1), np.stack([Y[k] for k in train], 1))
            rf.score(X[j][:, np.newaxis], Y[j][:, np.newaxis])
            times.append(time.perf_counter() - t0)
        t_mne = float(np.mean(times)) * n_fits
        ratio = t_mne / t_ours
        print(
            f"MNE ReceptiveField (est.):  {t_mne:9.2f} s   ratio {ratio:7.1f}x   (goal >= "
            f"500x: {'met' if ratio >= 500 else 'NOT met'}; {np.mean(times):.2f} s per "
            f"fold fit + held-out score, mean of {mne_fits}, x {n_fits} = {len(X)} folds "
            f"x {len(alphas)} alphas)"
        )
    return identical


if __name__ == "__main__":
    main()
