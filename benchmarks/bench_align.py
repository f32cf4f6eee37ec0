"""Benchmark the alignment layer on one Broderick-shaped subject.

Default size: 20 runs x 180 s, 128 BioSemi channels + 2 mastoids at 128 Hz, written in the
Dryad layout (``EEG/Subject1/Subject1_Run<M>.mat``, ~24 MB per run), 1000 sparse SAE features
at 50 Hz firing ~2 times per second, 16 kHz audio per run. Timed, in this order:

1. ``read_broderick_dryad`` (20 .mat files -> one Raw with run annotations, mastoid reference);
2. ``align_subject`` (1-8 Hz FIR on the EEG, features resampled 50 -> 128 Hz and band-passed,
   robust scaling from the first two runs);
3. the feature resampling alone against ``mne.filter.resample(method="polyphase")`` on the
   dense matrix (same rate change, same runs; ``resample_features`` skips silent columns);
4. ``AlignedRuns.add_acoustic`` (envelope, onsets, 16-band log-mel for every run);
5. ``to_epochs(features=True, pad=True)`` and ``AlignedRuns.from_epochs`` on the first two
   runs (exact round trip checked; all 20 runs with 1000 dense float64 features would hold
   3.7 GB per copy).

Usage: ``python benchmarks/bench_align.py [--quick]`` (``--quick``: 3 runs x 20 s, 100
features; seconds).
"""

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy.io import savemat


def _write_subject(root, n_runs, dur, rng):
    folder = root / "EEG" / "Subject1"
    folder.mkdir(parents=True)
    for run in range(1, n_runs + 1):
        n = int(dur * 128)
        savemat(folder / f"Subject1_Run{run}.mat",
                dict(eegData=rng.normal(size=(n, 128)) * 10, mastoids=rng.normal(size=(n, 2)) * 10,
                     fs=np.array([[128.0]])))


def _series(dur, n_feat, rng):
    import scipy.sparse as sp

    from neuro_sae.features import FeatureSeries

    n = int(dur * 50)
    x = sp.random(n, n_feat, density=2.0 / 50, random_state=rng, format="csr", dtype=np.float32)
    return FeatureSeries(x, np.arange(n) / 50, np.arange(n_feat), sfreq=50.0)


def main():
    import mne

    from neuro_sae.align import AlignedRuns, align_subject, resample_features
    from neuro_sae.io import read_broderick_dryad

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    n_runs, dur, n_feat = (3, 20.0, 100) if args.quick else (20, 180.0, 1000)
    rng = np.random.default_rng(0)
    timings = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        _write_subject(root, n_runs, dur, rng)
        t = time.perf_counter()
        raw = read_broderick_dryad(root, 1, reference="mastoids", verbose="warning")
        timings["read_broderick_dryad"] = time.perf_counter() - t
    series = {f"run{m:02d}": _series(dur, n_feat, rng) for m in range(1, n_runs + 1)}
    t = time.perf_counter()
    aligned = align_subject(raw, series, sfreq=128.0, train_runs=["run01", "run02"], verbose="warning")
    timings["align_subject"] = time.perf_counter() - t
    t = time.perf_counter()
    for s in series.values():
        resample_features(s, 128.0, int(dur * 128), verbose="warning")
    timings["resample_features (ours)"] = time.perf_counter() - t
    t = time.perf_counter()
    for s in series.values():
        mne.filter.resample(s.to_dense().T.astype(np.float64), up=128 / 50, method="polyphase",
                            verbose=False)
    timings["mne.filter.resample polyphase (dense)"] = time.perf_counter() - t
    audio = {rid: rng.normal(size=int(dur * 16000)) * 0.1 for rid in series}
    t = time.perf_counter()
    aligned.add_acoustic(audio, kinds=("envelope", "onsets", "spectrogram"), n_mels=16, verbose="warning")
    timings["add_acoustic (envelope, onsets, 16 mel)"] = time.perf_counter() - t
    t = time.perf_counter()
    two = aligned.select_runs(aligned.run_ids[:2])
    epochs = two.to_epochs(features=True, pad=True, verbose="warning")
    back = AlignedRuns.from_epochs(epochs)
    timings["to_epochs + from_epochs (2 runs)"] = time.perf_counter() - t
    assert all(np.array_equal(a, b) for a, b in zip(two.X["sae"], back.X["sae"]))
    print(f"{n_runs} runs x {dur:g} s, 128 channels at 128 Hz, {n_feat} features")
    for k, v in timings.items():
        print(f"  {k:45s} {v:8.2f} s")


if __name__ == "__main__":
    main()
