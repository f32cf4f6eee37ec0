"""Step 09b: release the SAEs of a step-09 run as the data package ``neuro-sae/whisper-base``.

For every layer of the run's ``budget_*_layers-*/`` folders, each seed's most advanced
model (the largest step among ``train/snapshots/step-*/``, the resumable checkpoints
``train/step-*/`` and the finished ``saes/``) is evaluated on the held-out packs
(``packs.parquet`` split ``eval``, activations from ``store/``), and the seed with the
lowest held-out FVU is written in float16 to the package folder, with ``release.json``
(each layer's training record: frames seen, lr, batch size, seed, held-out FVU/L0/dead
fraction, the snapshot chosen) and each budget run's ``convergence.parquet`` (as
``convergence_layers-<...>.parquet``). Rerunning it rewrites the same files; it works
while training still runs (it reads the latest snapshot of each seed).

Usage::

    python analyses/09b_release_saes.py --run /work/runs/saes/whisper-base \\
        --out data_manifests/releases/neuro-sae-whisper-base/neuro_sae_whisper_base
    pip install --no-deps ./data_manifests/releases/neuro-sae-whisper-base
"""

# %%
import argparse
import sys
import time
from pathlib import Path


def _parser():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--run", required=True,
                   help="backbone folder of analyses/09_corpus_saes.py (packs.parquet, store/, "
                        "budget_*_layers-*/)")
    p.add_argument("--out", required=True, help="the release folder (the package's import package)")
    p.add_argument("--name", default="neuro-sae/whisper-base", help="release name")
    p.add_argument("--backbone", default=None,
                   help="backbone of the release (default: the run folder's name)")
    p.add_argument("--layers", type=int, nargs="+", default=None,
                   help="layers to release (default: every layer of the run)")
    p.add_argument("--verbose", default="info", help="log level")
    return p


def main(argv=None):
    args = _parser().parse_args(argv)

    from neuro_sae.sae import select_run_saes, write_sae_release
    from neuro_sae.utils import set_log_level

    set_log_level(args.verbose)
    t0 = time.time()
    run = Path(args.run)
    backbone = args.backbone or run.name
    saes, records, extra = select_run_saes(run, layers=args.layers)
    out = write_sae_release(saes, args.out, name=args.name, backbone=backbone, records=records,
                            extra_files=extra)
    for layer, rec in sorted(records.items()):
        snap = rec["snapshot"]
        print(f"layer {layer}: seed {saes[layer].cfg.seed}, {snap['kind']} step {snap['step']} "
              f"({snap['budget']}), held-out FVU {rec['heldout_fvu']:.4f}, L0 "
              f"{rec['heldout_l0']:.1f}, dead {rec['heldout_dead_fraction']:.3f}")
    print(f"Wrote {out} ({time.time() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
