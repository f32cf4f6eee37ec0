"""Paper Fig. 1: normalised reconstruction error against L0 at the last layer, per architecture.

BatchTopK, TopK and Matryoshka BatchTopK SAEs over k (25, 50, 75, 100, 200) and ReLU /
JumpReLU SAEs over their sparsity coefficient, at expansions 8 and 32, all trained with
the same budget on the last layer of a backbone over a random subset of a labelled
corpus, and evaluated on held-out packs of that corpus. The error is the fraction of
variance unexplained (FVU = 1 - explained variance) of the unit-norm frames (the
training scale), on held-out frames.

Usage::

    python figures/fig_sae_pareto.py --corpus /work/corpus --out /work/derivatives_corpus/pareto

Writes ``pareto.parquet`` (one row per SAE), ``fig_sae_pareto.png`` and ``.pdf``.
Resumable: the activation store keeps its shards and finished rows are not retrained.
"""

# %%
import argparse
import json
import time
from pathlib import Path

import numpy as np

KS = (25, 50, 75, 100, 200)
COEFS = dict(relu=("l1_coefficient", (0.03, 0.06, 0.12, 0.25, 0.5)),
             jumprelu=("l0_coefficient", (3e-4, 1e-3, 3e-3, 1e-2, 3e-2)))


def _parser():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--corpus", help="corpus folder (index.parquet)")
    src.add_argument("--store", help="an activation store of packed clips holding the last "
                                     "layer (instead of packing and extracting a corpus)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--backbone", default="whisper-base")
    p.add_argument("--hours", type=float, default=0.6, help="audio used (train + held-out)")
    p.add_argument("--eval-fraction", type=float, default=0.15)
    p.add_argument("--expansions", type=int, nargs="+", default=[8, 32])
    p.add_argument("--architectures", nargs="+",
                   default=["batchtopk", "topk", "matryoshka_batchtopk", "jumprelu", "relu"])
    p.add_argument("--big-architectures", nargs="+", default=None,
                   help="architectures trained at expansions above 8 (default: all)")
    p.add_argument("--points", type=int, nargs="+", default=[0, 1, 2, 3, 4],
                   help="which of the 5 grid points (k or coefficient) to train, by position")
    p.add_argument("--big-points", type=int, nargs="+", default=None,
                   help="grid points at expansions above 8 (default: --points)")
    p.add_argument("--dense-points", type=int, nargs="+", default=None,
                   help="grid points of the architectures trained densely (Matryoshka, "
                        "JumpReLU, ReLU; about 3x the step time; default: --points)")
    p.add_argument("--n-steps", type=int, default=200)
    p.add_argument("--batch-size", type=int, default=512)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--threshold-beta", type=float, default=0.95,
                   help="EMA decay of the BatchTopK inference threshold (short runs need a "
                        "faster average than the paper's 0.999)")
    p.add_argument("--n-threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--plot-only", action="store_true",
                   help="draw the figure from the rows of pareto.parquet already trained")
    p.add_argument("--verbose", default="INFO")
    return p


_DENSE = ("matryoshka_batchtopk", "jumprelu", "relu")


def _specs(args):
    specs = []
    for e in args.expansions:
        archs = args.architectures if e <= 8 or args.big_architectures is None else [
            a for a in args.architectures if a in args.big_architectures]
        for arch in archs:
            points = args.points
            if e > 8 and args.big_points is not None:
                points = args.big_points
            elif arch in _DENSE and args.dense_points is not None:
                points = args.dense_points
            if arch in COEFS:
                key, values = COEFS[arch]
                specs += [dict(architecture=arch, expansion=e, k=50, **{key: values[i]})
                          for i in points]
            else:
                specs += [dict(architecture=arch, expansion=e, k=KS[i]) for i in points]
    return specs


def main(argv=None):
    """Train the sweep (resumably) and draw the figure; returns the table."""
    args = _parser().parse_args(argv)
    import matplotlib
    import pandas as pd
    import torch

    matplotlib.use("agg")
    from neuro_sae.activations import build_activation_store
    from neuro_sae.backbones import load_backbone
    from neuro_sae.corpora import index_to_clips, read_clip_index
    from neuro_sae.io import write_json, write_parquet
    from neuro_sae.sae import TrainConfig, pack_clips, plot_pareto, sparsity_sweep
    from neuro_sae.utils import set_log_level

    set_log_level(args.verbose)
    torch.set_num_threads(args.n_threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(args.seed)
    if args.store:
        from neuro_sae.activations import read_activation_store

        store = read_activation_store(args.store, verbose=False)
        last = max(store.layers)
        ids = sorted(store.index["clip_id"].unique())
        extract_s = None
    else:
        index = read_clip_index(Path(args.corpus) / "index.parquet", verbose=False)
        clips = index_to_clips(index, args.corpus, verbose=False)
        clips = clips.merge(index[["id", "duration"]].rename(columns={"id": "clip_id"}),
                            on="clip_id")
        clips["corpus"] = clips["domain"]
        frac = min(1.0, args.hours * 3600 / clips["duration"].sum())
        keep = []
        for _, g in clips.groupby("domain"):  # the same share of every domain
            g = g.iloc[rng.permutation(len(g))]
            keep.append(g[g["duration"].cumsum() <= frac * g["duration"].sum()])
        clips = pd.concat(keep)
        packs, _ = pack_clips(clips, random_state=args.seed)
        backbone = load_backbone(args.backbone, encoder_only=True, verbose=False)
        last = backbone.n_layers
        t0 = time.perf_counter()
        store = build_activation_store(backbone, packs, out / "store", layers=[last],
                                       clips_per_shard=16)
        extract_s = time.perf_counter() - t0
        ids = [p["clip_id"] for p in packs]
    is_eval = {pid: i < max(2, int(args.eval_fraction * len(ids)))
               for i, pid in enumerate(rng.permutation(ids))}
    x = {True: [], False: []}
    for pid in ids:
        x[is_eval[pid]].append(store.get_clip(pid, layers=[last], verbose=False).get(last))
    x_train, x_eval = np.concatenate(x[False]), np.concatenate(x[True])
    tcfg = TrainConfig(n_steps=args.n_steps, batch_size=args.batch_size, lr=args.lr,
                       log_every=max(1, args.n_steps // 5), threshold_start_step=args.n_steps // 4,
                       threshold_beta=args.threshold_beta)
    table_file = out / "pareto.parquet"
    done = pd.read_parquet(table_file) if table_file.is_file() else pd.DataFrame()
    rows = [done] if len(done) else []

    def key(spec):
        return json.dumps(spec, sort_keys=True)

    have = set(done["spec"]) if "spec" in done else set()
    for spec in [] if args.plot_only else _specs(args):
        if key(spec) in have:
            continue
        row = sparsity_sweep(x_train, x_eval, [spec], tcfg, random_state=args.seed,
                             n_threads=args.n_threads).assign(spec=key(spec), layer=last,
                                                              backbone=args.backbone)
        rows.append(row)
        write_parquet(pd.concat(rows, ignore_index=True), table_file)  # resumable
    table = pd.concat(rows, ignore_index=True)
    fig = plot_pareto(table)
    fig.suptitle(f"{args.backbone} layer {last}: {len(x_train) / 50 / 3600:.2f} h training, "
                 f"{len(x_eval) / 50 / 60:.1f} min held-out, {args.n_steps} steps x "
                 f"{args.batch_size} frames", fontsize=9)
    for ext in ("png", "pdf"):
        fig.savefig(out / f"fig_sae_pareto.{ext}", dpi=150)
    write_json(dict(n_train_frames=len(x_train), n_eval_frames=len(x_eval), extract_s=extract_s,
                    train_s=float(table["train_s"].sum()), n_steps=args.n_steps,
                    batch_size=args.batch_size, lr=args.lr, threshold_beta=args.threshold_beta,
                    n_threads=args.n_threads),
               out / "pareto.json")
    print(table.drop(columns=["spec"]).to_string())
    return table


if __name__ == "__main__":
    main()
