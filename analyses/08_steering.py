"""Step 08: steer Whisper away from hearing speech in non-speech audio (issue 14).

From a clip index (``neuro-sae build-corpus --out DIR``) the script draws music and
recorded sound effects (split into clips the steering vectors are fitted on and
held-out test clips), held-out transcribed speech (TPR and WER) and speech clips
for SAE training (:func:`neuro_sae.steering.corpus_clip_sets`); runs the unsteered
model once, caching the scanned layers; reads ``--sae-dir/layer_<n>`` (checked
against its cfg.json) or trains one small SAE per layer on the fit clips' frames;
runs the grid layer x method x source x k x alpha x test set and writes the tidy
table, the F1-vs-k table, the matched-WER summary and the frontier figure
(:func:`neuro_sae.steering.steering_experiment`). Every stage is resumable.

With ``--scan-k`` and ``--scan-alpha`` the run has two stages: a layer scan (the
SAE method at that one k and alpha on every ``--layers``; ``layer_scan.csv``,
``layer_scan_grid.parquet``), then the full grid at the best layer
(:func:`neuro_sae.steering.best_layer`: lowest FPR with WER up by at most 1 point, on
the validation half of the held-out clips).

Presets (``--presets``): ``paper`` (default; the paper's ``x_hat(f + alpha s)`` on every
frame, alphas 0.5-3, the SAE spliced in as baseline) and ``error-preserving`` (ours: the
SAE's error term kept, valid frames, plain Whisper as baseline). Each method's cell is
chosen on the validation half of the held-out clips and reported on the test half with
Wilson / bootstrap intervals (``matched_wer.csv``); the full grid is ``grid.parquet``.

Usage::

    python analyses/08_steering.py --corpus /work/corpus --out /work/derivatives_steering \\
        --backbone whisper-base --layers 5 6 [--sae-dir DIR]

    # layer scan, then the grid at the best layer, with the corpus SAEs
    python analyses/08_steering.py --corpus /work/corpus --out /work/derivatives_steering2 \\
        --layers 1 2 3 4 5 6 --scan-k 50 --scan-alpha 0.1 \\
        --sae-dir '/work/derivatives_corpus/whisper-base/all_layers/saes/layer-{layer:02d}_seed-0'

Outputs in ``--out``: ``prepare.json``, ``baseline/``, ``fit/``, ``cache/`` (layer
states of the test clips), ``saes/``, ``cells/``, ``grid.parquet``, ``clips.parquet``,
``feature_f1.parquet``, ``vectors.json``, ``matched_wer.csv``,
``fig_steering_frontier.png``, ``summary.json`` (sizes, settings, wall times).
"""

# %%
import argparse
import json
import sys
import time
from pathlib import Path


def _parser():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--corpus", required=True, help="corpus folder (index.parquet)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--backbone", default="whisper-base", help="backbone spec")
    p.add_argument("--layers", type=int, nargs="+", default=[5, 6])
    p.add_argument("--sae-dir", default=None,
                   help="folder with layer_<n>/ SAE checkpoints, or a pattern with {layer} "
                        "(e.g. 'saes/layer-{layer:02d}_seed-0'); None: train small ones")
    p.add_argument("--scan-k", type=int, default=None,
                   help="layer scan first: the SAE method at this k (with --scan-alpha) on "
                        "every --layers, then the grid at the best layer")
    p.add_argument("--scan-alpha", type=float, default=None, help="the layer scan's alpha")
    p.add_argument("--n-music", type=int, nargs=2, default=[12, 12], metavar=("FIT", "TEST"))
    p.add_argument("--n-sounds", type=int, nargs=2, default=[16, 16], metavar=("FIT", "TEST"))
    p.add_argument("--n-speech", type=int, nargs=2, default=[6, 10],
                   metavar=("SAE", "TEST"), help="speech clips for SAE training and test")
    p.add_argument("--sources", nargs="+", default=["music+sounds"],
                   help="vector sources: music, sounds, or music+sounds (both pooled)")
    p.add_argument("--ks", type=int, nargs="+", default=[10, 50])
    p.add_argument("--presets", nargs="+", default=["paper"],
                   choices=["paper", "error-preserving"],
                   help="paper: x_hat(f + alpha s) on all frames, the SAE spliced in as "
                        "baseline; error-preserving: the SAE's error term kept, valid frames")
    p.add_argument("--sae-alphas", type=float, nargs="+", default=None,
                   help="SAE strengths for every preset (default: per preset, paper 0.5 1 2 "
                        "3, error-preserving 0.03 0.1 0.3)")
    p.add_argument("--svector-alphas", type=float, nargs="+", default=None,
                   help="S-vector strengths for every preset (default: per preset, paper "
                        "0.5 1 2 3, error-preserving 0.1 0.3 1)")
    p.add_argument("--ep-sae-alphas", type=float, nargs="+", default=None,
                   help="SAE strengths of the error-preserving preset only")
    p.add_argument("--ep-svector-alphas", type=float, nargs="+", default=None,
                   help="S-vector strengths of the error-preserving preset only")
    p.add_argument("--max-wer-increase", type=float, default=0.01,
                   help="WER bound of the choice on validation clips (0.01 = 1 point)")
    p.add_argument("--d-sae", type=int, default=2048)
    p.add_argument("--sae-k", type=int, default=32)
    p.add_argument("--sae-steps", type=int, default=400)
    p.add_argument("--max-new-tokens", type=int, default=224,
                   help="greedy decoding limit (openai-whisper: 224); clips hitting it are "
                        "flagged 'truncated'")
    p.add_argument("--batch-size", type=int, default=6)
    p.add_argument("--n-threads", type=int, default=1)
    p.add_argument("--from-prepared", action="store_true",
                   help="steer the finished unsteered pass in --out again (its clips and "
                        "layers; the corpus is not read)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--verbose", default="INFO")
    return p


def main(argv=None):
    args = _parser().parse_args(argv)
    import torch

    from neuro_sae.backbones import load_backbone
    from neuro_sae.corpora import read_clip_index
    from neuro_sae.steering import best_layer, corpus_clip_sets, steering_experiment
    from neuro_sae.utils import set_log_level

    set_log_level(args.verbose)
    torch.set_num_threads(args.n_threads)
    bb = load_backbone(args.backbone)
    fit = test = None
    if not args.from_prepared:
        index = read_clip_index(Path(args.corpus) / "index.parquet", verbose=False)
        fit, test = corpus_clip_sets(index, root=args.corpus, n_music=args.n_music,
                                     n_sounds=args.n_sounds, n_speech=args.n_speech,
                                     random_state=args.seed)
    saes = None
    if args.sae_dir:
        pattern = args.sae_dir if "{" in args.sae_dir else args.sae_dir + "/layer_{layer}"
        saes = {n: Path(pattern.format(layer=n)) for n in args.layers}
    from neuro_sae.steering import PRESET_ALPHAS

    alphas = {}
    for preset in args.presets:
        a = {m: list(v) for m, v in PRESET_ALPHAS[preset].items()}
        if args.sae_alphas:
            a["sae"] = args.sae_alphas
        if args.svector_alphas:
            a["svector"] = args.svector_alphas
        if preset == "error-preserving" and args.ep_sae_alphas:
            a["sae"] = args.ep_sae_alphas
        if preset == "error-preserving" and args.ep_svector_alphas:
            a["svector"] = args.ep_svector_alphas
        alphas[preset] = a
    kw = dict(sources=args.sources, presets=args.presets,
              max_wer_increase=args.max_wer_increase,
              max_new_tokens=args.max_new_tokens, batch_size=args.batch_size,
              sae_options=dict(d_sae=args.d_sae, k=args.sae_k, n_steps=args.sae_steps),
              random_state=args.seed)
    layers, wall = args.layers, {}
    if (args.scan_k is None) != (args.scan_alpha is None):
        raise SystemExit("--scan-k and --scan-alpha go together: give both or neither.")
    if args.scan_k is not None:
        t0 = time.time()
        scan = steering_experiment(bb, fit, test, args.layers, args.out, saes=saes,
                                   ks=[args.scan_k], alphas={"sae": [args.scan_alpha]},
                                   methods=["sae"], **kw)
        out = Path(args.out)
        (out / "grid.parquet").replace(out / "layer_scan_grid.parquet")
        (out / "clips.parquet").replace(out / "layer_scan_clips.parquet")
        best, table = best_layer(scan["clips"], preset=args.presets[0], verbose=False)
        table.to_csv(out / "layer_scan.csv", index=False)
        print(f"layer scan (k={args.scan_k}, alpha={args.scan_alpha}):")
        print(table.to_string())
        print(f"best layer: {best}")
        layers, fit, test = [best], None, None  # the grid steers the cached pass again
        wall["scan"] = time.time() - t0
        wall["scan_stages"] = scan["wall_s"]
    t0 = time.time()
    res = steering_experiment(bb, fit, test, layers, args.out, saes=saes, ks=args.ks,
                              alphas=alphas, **kw)
    wall["grid"] = time.time() - t0
    wall["grid_stages"] = res["wall_s"]
    cols = ["label", "layer", "k", "alpha", "baseline", "n_test_nonspeech", "fpr", "fpr_lo",
            "fpr_hi", "hallucination_rate", "hallucination_lo", "hallucination_hi", "wer",
            "wer_lo", "wer_hi", "fpr_reduction", "fpr_reduction_lo", "fpr_reduction_hi"]
    print(res["matched"][cols].to_string())
    print(json.dumps(wall, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
