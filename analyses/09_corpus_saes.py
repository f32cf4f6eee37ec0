"""Step 09: SAEs of every layer x 2 seeds trained on a labelled corpus, at study scale.

From a clip index (``neuro-sae build-corpus --out DIR``), the clips of each corpus are
packed into <= 30 s windows (Whisper computes a full 30 s window for any clip), mixed
with noise and music as in the paper (p = 0.05 and 0.025, SNR 0-20 dB), extracted to
an activation store, and streamed with weighted corpus sampling (by default the
paper's batch mix: 40% speech, 45% music, 15% sounds) into one SAE per layer and seed.
Held-out packs give the per-layer report (EV, L0, dead fraction, IoU coverage seed vs
seed against a random-initialisation baseline, Hungarian shared fraction, duplicates);
SAEs of the last layer trained on nested subsets of the training audio give the curve
of seed coverage against hours. Every stage is resumable: the store keeps its finished
shards, training its checkpoints, and finished SAEs are read back.

Usage::

    python analyses/09_corpus_saes.py --corpus /work/corpus --out /work/derivatives_corpus \\
        --backbone whisper-base [--hours 2] [--curve-hours 0.25 0.5 1]

Outputs in ``<out>/<backbone>/``: ``packs.parquet``, ``store/``, ``saes/``,
``sae_metrics.parquet``, ``sae_consistency.parquet``, ``sae_report.png``,
``coverage_vs_hours.parquet`` and ``.png``, ``summary.json`` (sizes and wall times).
"""

# %%
import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np


def _parser():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--corpus", required=True, help="corpus folder (index.parquet)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--backbone", default="whisper-base", help="backbone spec")
    p.add_argument("--hours", type=float, default=None,
                   help="use at most this much audio (training + held-out); None: all")
    p.add_argument("--eval-fraction", type=float, default=0.06,
                   help="share of each corpus's packs held out for the report")
    p.add_argument("--layers", type=int, nargs="+", default=None, help="layers (default all)")
    p.add_argument("--store-layers", type=int, nargs="+", default=None,
                   help="layers extracted to the store (default --layers); several runs "
                        "over layer subsets then share one store")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--expansion", type=int, default=8)
    p.add_argument("--k", type=int, default=50)
    p.add_argument("--batch-size", type=int, default=1024)
    p.add_argument("--epochs", type=float, default=1.0,
                   help="training steps = epochs x training frames / batch size")
    p.add_argument("--n-steps", type=int, default=None,
                   help="training steps of every SAE (overrides --epochs)")
    p.add_argument("--frames", type=float, default=None,
                   help="training budget in frames per SAE (e.g. 5e7; overrides --n-steps): "
                        "snapshots at log-spaced frame counts, convergence curves against "
                        "random dictionaries instead of the hours curve")
    p.add_argument("--first-snapshot", type=float, default=1e5,
                   help="first snapshot, in frames (then 3 per decade up to --frames)")
    p.add_argument("--checkpoint-frames", type=float, default=1e6,
                   help="frames between resumable checkpoints (the 2 latest are kept)")
    p.add_argument("--report-only", action="store_true",
                   help="with --frames: tabulate the snapshots written so far, train nothing "
                        "(e.g. while the training runs in another process)")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--threshold-beta", type=float, default=0.95,
                   help="EMA decay of the inference threshold (0.999 in the paper's long runs)")
    p.add_argument("--shares", default="speech=0.40,music=0.45,sounds=0.15",
                   help="share of sampled frames per corpus")
    p.add_argument("--curve-hours", type=float, nargs="*", default=[0.25, 0.5, 1.0],
                   help="training hours of the coverage curve (the full run is added)")
    p.add_argument("--no-mix", action="store_true", help="no noise/music augmentation")
    p.add_argument("--partial-ok", action="store_true",
                   help="without index.parquet, read the clip records of an unfinished build")
    p.add_argument("--n-threads", type=int, default=1, help="torch threads")
    p.add_argument("--seed", type=int, default=0, help="random_state of packing and sampling")
    p.add_argument("--verbose", default="INFO", help="log level")
    return p


def _clip_index(corpus, partial_ok):
    import pandas as pd

    from neuro_sae.corpora import index_to_clips, read_clip_index

    corpus = Path(corpus)
    if (corpus / "index.parquet").is_file():
        index = read_clip_index(corpus / "index.parquet", verbose=False)
        partial = False
    elif partial_ok:
        recs = [json.loads(f.read_text()) for f in sorted((corpus / "clips").glob("*.json"))]
        index = pd.DataFrame(recs).drop(columns=["job_hash"], errors="ignore")
        partial = True
    else:
        sys.exit(f"{corpus} has no index.parquet; build the corpus first "
                 "(neuro-sae build-corpus --out DIR) or pass --partial-ok.")
    clips = index_to_clips(index, corpus, verbose=False)
    clips = clips.merge(index[["id", "duration"]].rename(columns={"id": "clip_id"}),
                        on="clip_id")
    clips["corpus"] = clips["domain"]  # sampling shares are per domain
    return clips, partial


def main(argv=None):
    """Run the study; returns the summary dict."""
    args = _parser().parse_args(argv)
    import pandas as pd
    import torch

    from neuro_sae.activations import AudioMixer, build_activation_store
    from neuro_sae.backbones import load_backbone
    from neuro_sae.io import read_audio, write_json, write_parquet
    from neuro_sae.sae import (
        domain_weights,
        pack_clips,
        plot_sae_report,
        store_sae_report,
        train_store_saes,
    )
    from neuro_sae.utils import set_log_level

    set_log_level(args.verbose)
    torch.set_num_threads(args.n_threads)
    t_start = time.perf_counter()
    walls = {}
    out = Path(args.out) / args.backbone
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(args.seed)
    clips, partial = _clip_index(args.corpus, args.partial_ok)
    if args.hours is not None:  # a random subset, the same share of every domain
        keep = []
        frac = min(1.0, args.hours * 3600 / clips["duration"].sum())
        for _, g in clips.groupby("domain"):
            g = g.iloc[rng.permutation(len(g))]
            keep.append(g[g["duration"].cumsum() <= frac * g["duration"].sum()])
        clips = pd.concat(keep)
    mixer = None
    if not args.no_mix:
        pool = {d: [read_audio(p, verbose=False)[0]
                    for p in clips.loc[clips["domain"] == d, "path"].iloc[:200]]
                for d in ("sounds", "music")}
        mixer = AudioMixer(noise=pool["sounds"], music=pool["music"])

    # packs and the held-out split (whole packs)
    t0 = time.perf_counter()
    packs_file = out / "packs.parquet"
    packs, members = pack_clips(clips, mixer=mixer, random_state=args.seed)
    split = {}
    for corpus in sorted({p["corpus"] for p in packs}):
        ids = [p["clip_id"] for p in packs if p["corpus"] == corpus]
        n_eval = min(max(3, int(round(args.eval_fraction * len(ids)))), len(ids) // 2)
        for i, pid in enumerate(rng.permutation(ids)):
            split[pid] = "eval" if i < n_eval else "train"
    members["split"] = members["pack_id"].map(split)
    write_parquet(members, packs_file)
    walls["pack_s"] = time.perf_counter() - t0

    # activation store (resumable: finished shards are kept)
    t0 = time.perf_counter()
    backbone = load_backbone(args.backbone, encoder_only=True, verbose=False)
    layers = args.layers or list(range(1, backbone.n_layers + 1))
    store_layers = sorted(set(args.store_layers or layers) | set(layers))
    store = build_activation_store(backbone, packs, out / "store", layers=store_layers,
                                   clips_per_shard=16)
    walls["extract_s"] = time.perf_counter() - t0
    del packs
    train_ids = [p for p, s in split.items() if s == "train"]
    eval_ids = [p for p, s in split.items() if s == "eval"]
    frames = store.index.groupby("clip_id").size()
    if not train_ids or not eval_ids:
        sys.exit(f"Too little audio: {len(train_ids)} training and {len(eval_ids)} held-out "
                 "packs; raise --hours or lower --eval-fraction.")
    n_train = int(frames[train_ids].sum())
    n_steps = args.n_steps or max(10, int(args.epochs * n_train / args.batch_size))
    shares = dict(kv.split("=") for kv in args.shares.split(","))
    shares = {key: float(v) for key, v in shares.items()}

    def frames_of(ids):
        view = store.index[store.index["clip_id"].isin(ids)]
        return {str(c): int(n) for c, n in view.groupby("corpus").size().items()}

    common = dict(seeds=args.seeds, expansion=args.expansion, k=args.k, n_steps=n_steps,
                  batch_size=args.batch_size, lr=args.lr, threshold_beta=args.threshold_beta,
                  n_threads=args.n_threads,
                  random_state=args.seed)
    if args.frames is not None:
        return _budget_run(args, store, out, layers, train_ids, eval_ids,
                           domain_weights(frames_of(train_ids), shares), common, walls,
                           t_start, dict(n_clips=int(len(clips)), partial_corpus=partial))
    t0 = time.perf_counter()
    saes = train_store_saes(store, out / "all_layers", layers=layers, clip_ids=train_ids,
                            corpus_weights=domain_weights(frames_of(train_ids), shares),
                            **common)
    walls["train_all_layers_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    metrics, table = store_sae_report(saes, store, eval_ids, random_state=args.seed)
    write_parquet(metrics, out / "sae_metrics.parquet")
    write_parquet(table, out / "sae_consistency.parquet")
    fig = plot_sae_report(metrics, table)
    fig.suptitle(f"{args.backbone}: {n_train / 50 / 3600:.2f} h of training audio, "
                 f"held-out {len(eval_ids)} packs")
    fig.savefig(out / "sae_report.png", dpi=130)
    walls["report_s"] = time.perf_counter() - t0

    # coverage against hours of training audio, last layer
    t0 = time.perf_counter()
    last = max(layers)
    order = [train_ids[i] for i in rng.permutation(len(train_ids))]
    curve = []
    hours_full = n_train / 50 / 3600
    for hours in [h for h in args.curve_hours if h < hours_full] + [None]:
        if hours is None:
            sub, run = {key: s for key, s in saes.items() if key[0] == last}, "all_layers"
            ids = train_ids
        else:
            cum = np.cumsum([frames[i] for i in order]) / 50 / 3600
            ids = order[: int(np.searchsorted(cum, hours)) + 1]
            run = f"last_layer_{hours:g}h"
            sub = train_store_saes(store, out / run, layers=[last], clip_ids=ids,
                                   corpus_weights=domain_weights(frames_of(ids), shares),
                                   **common)
        m, t = store_sae_report(sub, store, eval_ids, random_state=args.seed)
        seed_rows = t[t["b"] != "random"]
        base_rows = t[t["b"] == "random"]
        curve.append(dict(
            hours=float(frames[ids].sum() / 50 / 3600), run=run, layer=last,
            iou_coverage=float(seed_rows["iou_coverage"].mean()),
            iou_coverage_random=float(base_rows["iou_coverage"].mean()),
            decoder_shared_07=float(seed_rows["decoder_shared_0.7"].mean()),
            duplicates=float(seed_rows["duplicates"].mean()),
            explained_variance=float(m["explained_variance"].mean()),
            l0=float(m["l0"].mean()), dead_fraction=float(m["dead_fraction"].mean()),
        ))
    curve = pd.DataFrame(curve).sort_values("hours")
    write_parquet(curve, out / "coverage_vs_hours.parquet")
    walls["curve_s"] = time.perf_counter() - t0
    import matplotlib
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.8, 3.6), layout="constrained")
    ax.plot(curve["hours"], curve["iou_coverage"], "o-", label="seed vs seed (IoU > 0.5)")
    ax.plot(curve["hours"], curve["decoder_shared_07"], "s-",
            label="decoder shared (Hungarian, cos > 0.7)")
    ax.plot(curve["hours"], curve["iou_coverage_random"], "x:", color="0.5",
            label="vs random init (IoU)")
    ax.set(xscale="log", xlabel="hours of training audio", ylabel="fraction of features",
           ylim=(0, 1.02), title=f"{args.backbone} layer {last}: seed consistency")
    ax.set_xticks(curve["hours"], [f"{h:.2g}" for h in curve["hours"]])
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.legend(fontsize=7)
    fig.savefig(out / "coverage_vs_hours.png", dpi=130)
    walls["total_s"] = time.perf_counter() - t_start
    summary = dict(
        backbone=args.backbone, layers=layers, seeds=args.seeds, expansion=args.expansion,
        k=args.k, batch_size=args.batch_size, lr=args.lr, n_steps=n_steps,
        threshold_beta=args.threshold_beta,
        train_hours=n_train / 50 / 3600, eval_packs=len(eval_ids), train_packs=len(train_ids),
        eval_hours=float(frames[eval_ids].sum() / 50 / 3600), partial_corpus=partial,
        n_clips=int(len(clips)), mixing=not args.no_mix, shares=shares,
        n_threads=args.n_threads, wall_s=walls,
    )
    write_json(summary, out / "summary.json")
    print(json.dumps(summary, indent=1))
    print(metrics.to_string())
    print(curve.to_string())
    return summary


def _convergence(snapshots, store, eval_ids, seed, run_dir):
    """The convergence table; rows of snapshots already tabulated with the same held-out
    clips and seed (``convergence.parquet`` + its stamp) are read, not recomputed."""
    import hashlib

    import pandas as pd

    from neuro_sae.io import write_json, write_parquet
    from neuro_sae.sae import convergence_table

    stamp = dict(eval=hashlib.sha256("\n".join(sorted(eval_ids)).encode()).hexdigest(),
                 seed=seed, store=store.key, version=1)
    table_file, stamp_file = run_dir / "convergence.parquet", run_dir / "convergence_stamp.json"
    old = None
    if table_file.is_file() and stamp_file.is_file() and json.loads(
            stamp_file.read_text()) == json.loads(json.dumps(stamp)):
        old = pd.read_parquet(table_file)
        done = {(int(r.step), int(r.layer)) for r in old.itertuples()}
        snapshots = {step: models for step, models in snapshots.items()
                     if any((step, layer) not in done for layer, _ in models)}
        old = old[~old["step"].isin(list(snapshots))]
    table = (convergence_table(snapshots, store, eval_ids, random_state=seed)
             if snapshots else None)
    table = pd.concat([t for t in (old, table) if t is not None], ignore_index=True)
    table = table.sort_values(["layer", "step"], ignore_index=True)
    write_parquet(table, table_file)
    write_json(stamp, stamp_file)
    return table


def _markdown(table, summary):
    """The convergence table as markdown: every snapshot, then the extrapolation."""
    speed = summary["train_frames_per_s_all_models"]
    lines = [
        f"{summary['backbone']}, layers {summary['layers']}, seeds {summary['seeds']}: "
        f"{summary['n_models']} SAEs {summary['d_model']} -> {summary['d_sae']}, "
        f"k {summary['k']}, batch {summary['batch_size']}, "
        f"lr {summary['lr']:g}; budget {summary['budget_frames']:.1e} frames per SAE, "
        f"reached {summary['reached_frames']:.2e}"
        + (f"; {speed:,.0f} frames/s per SAE with all {summary['n_models']} in one pass"
           if speed else "") + ".",
        "",
        "| layer | frames | FVU | L0 | dead | IoU coverage (null) | MCC (null) "
        "| shared cos>0.7 (null) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in table.itertuples():
        agree = ("| n/a | n/a | n/a |" if not hasattr(r, "iou_coverage") else
                 f"| {r.iou_coverage:.3f} ({r.iou_coverage_null:.3f}) "
                 f"| {r.mcc:.3f} ({r.mcc_null:.3f}) | {r.shared_07:.3f} ({r.shared_07_null:.3f}) |")
        lines.append(f"| {r.layer} | {r.frames:.1e} | {r.fvu:.3f} | {r.l0:.1f} "
                     f"| {r.dead_fraction:.3f} {agree}")
    lines += ["", "Budget to a target, extrapolated (the gap to the random-dictionary null "
              "fitted against log10 frames over the last 3 snapshots): `+0.05` is a margin of "
              "0.05 over the null, `= 0.5` the paper's level of seed coverage.", ""]
    for layer, ex in summary["extrapolation"].items():
        for metric, e in ex.items():
            need = ("reached" if e["reached"] else
                    f"{e['frames_needed']:.1e} frames" if e["frames_needed"] else
                    "not reached on the measured trend")
            slope = e["slope_per_decade"]
            lines.append(f"- layer {layer}, {metric}: gap to the null {e['gap']:+.3f} at "
                         f"{e['frames']:.1e} frames, "
                         f"{'' if slope is None else f'{slope:+.3f} per decade, '}{need}")
    return "\n".join(lines) + "\n"


def _budget_run(args, store, out, layers, train_ids, eval_ids, weights, common, walls, t_start,
                info):
    """--frames: one pass over the store, log-spaced snapshots, convergence against nulls."""
    from neuro_sae.io import write_json
    from neuro_sae.sae import (
        extrapolate_budget,
        log_spaced_frames,
        plot_convergence,
        read_snapshots,
        train_store_saes,
    )
    from neuro_sae.sae._corpus import frames_to_steps

    run_dir = out / (f"budget_{args.frames:.0e}".replace("+", "")
                     + "_layers-" + "-".join(str(la) for la in layers))
    snaps = log_spaced_frames(args.frames, start=args.first_snapshot)
    common = dict(common)
    common.pop("n_steps")
    n_steps = frames_to_steps(args.frames, args.batch_size, "--frames")
    checkpoint_every = max(1, int(args.checkpoint_frames // args.batch_size))
    if not args.report_only:
        t0 = time.perf_counter()
        train_store_saes(store, run_dir, layers=layers, clip_ids=train_ids,
                         corpus_weights=weights, n_frames=args.frames, snapshot_frames=snaps,
                         checkpoint_every=checkpoint_every, keep_checkpoints=2, **common)
        walls["train_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    snapshots = read_snapshots(run_dir)
    table = _convergence(snapshots, store, eval_ids, args.seed, run_dir)
    walls["convergence_s"] = time.perf_counter() - t0
    history = sorted((run_dir / "train").glob("step-*/trainer.json"))
    speed = None
    if history:  # frames/s over the last logging interval of the latest checkpoint
        h = next(iter(json.loads(history[-1].read_text())["history"].values()))
        if len(h["step"]) >= 2 and h["elapsed_s"][-1] > h["elapsed_s"][-2]:
            speed = ((h["step"][-1] - h["step"][-2]) * args.batch_size
                     / (h["elapsed_s"][-1] - h["elapsed_s"][-2]))
    fig = plot_convergence(table, title=(
        f"{args.backbone}: {len(args.seeds)} seeds, budget {args.frames:.1e} frames per SAE, "
        f"reached {table['frames'].max():.2e}"))
    fig.savefig(run_dir / "convergence.png", dpi=130)
    extrap = {}
    for layer in sorted(table["layer"].unique()):
        t = table[table["layer"] == layer]
        if "iou_coverage" in t and t["iou_coverage"].notna().any():
            ex = {f"{m} +0.05": extrapolate_budget(t, m, margin=0.05)
                  for m in ("iou_coverage", "mcc")}
            # the paper's level: half the features covered (HuBERT's last layers, 0.5-0.7)
            null = float(t.sort_values("frames")["iou_coverage_null"].iloc[-1])
            ex["iou_coverage = 0.5"] = extrapolate_budget(t, "iou_coverage", margin=0.5 - null)
            extrap[int(layer)] = ex
    walls["total_s"] = time.perf_counter() - t_start
    summary = dict(
        backbone=args.backbone, layers=layers, seeds=args.seeds, expansion=args.expansion,
        d_model=int(store.d_model), d_sae=int(store.d_model * args.expansion),
        k=args.k, batch_size=args.batch_size, lr=args.lr, budget_frames=args.frames,
        n_steps=n_steps, snapshot_frames=snaps,
        reached_frames=int(table["frames"].max()), snapshots=sorted(snapshots),
        train_frames_per_s_all_models=speed,
        n_models=len(layers) * len(args.seeds),
        train_hours=store.index[store.index["clip_id"].isin(train_ids)].shape[0] / 50 / 3600,
        eval_packs=len(eval_ids), train_packs=len(train_ids), mixing=not args.no_mix,
        n_threads=args.n_threads, extrapolation=extrap, wall_s=walls, **info,
    )
    write_json(summary, run_dir / "convergence_summary.json")
    (run_dir / "convergence.md").write_text(_markdown(table, summary))
    print(json.dumps(summary, indent=1))
    print(table.to_string())
    return summary


if __name__ == "__main__":
    main()
