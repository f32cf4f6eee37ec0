"""Step 08: steer Whisper away from hearing speech in non-speech audio (issue 14).

From a clip index (``neuro-sae build-corpus --out DIR``) the script draws music and
recorded sound effects (split into clips the steering vectors are fitted on and
held-out test clips), held-out transcribed speech (TPR and WER) and speech clips
for SAE training; runs the unsteered model once (caching the scanned layers);
trains one small SAE per layer on the fit clips' frames when no SAE folder is given
(or reads ``--sae-dir/layer_<n>``, checked against its cfg.json); then runs the
grid layer x method x source x k x alpha x test set and writes the tidy table,
the F1-vs-k table, the matched-WER summary and the frontier figure.

Usage::

    python analyses/08_steering.py --corpus /work/corpus --out /work/derivatives_steering \\
        --backbone whisper-base --layers 4 5 6 [--sae-dir DIR]

Outputs in ``--out``: ``prepare.json``, ``baseline/``, ``cache/`` (layer states of the
test clips), ``saes/``, ``cells/``, ``grid.parquet``, ``clips.parquet``,
``feature_f1.parquet``, ``vectors.json``, ``matched_wer.csv``,
``fig_steering_frontier.png``, ``summary.json`` (sizes, settings, wall times).
Every stage is resumable.
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
    p.add_argument("--layers", type=int, nargs="+", default=[4, 5, 6])
    p.add_argument("--sae-dir", default=None,
                   help="folder with layer_<n>/ SAE checkpoints (None: train small ones)")
    p.add_argument("--n-music", type=int, nargs=2, default=[30, 24], metavar=("FIT", "TEST"))
    p.add_argument("--n-sounds", type=int, nargs=2, default=[48, 48], metavar=("FIT", "TEST"))
    p.add_argument("--n-speech", type=int, nargs=2, default=[16, 16],
                   metavar=("SAE", "TEST"), help="speech clips for SAE training and test")
    p.add_argument("--sources", nargs="+", default=["music+sounds"],
                   help="vector sources: music, sounds, or music+sounds (both pooled)")
    p.add_argument("--ks", type=int, nargs="+", default=[10, 100])
    p.add_argument("--sae-alphas", type=float, nargs="+", default=[0.03, 0.1, 0.3])
    p.add_argument("--svector-alphas", type=float, nargs="+", default=[0.1, 0.3, 1.0])
    p.add_argument("--no-error-term", action="store_true",
                   help="the paper's form x_hat(f + alpha s) instead of keeping x - x_hat")
    p.add_argument("--d-sae", type=int, default=2048)
    p.add_argument("--sae-k", type=int, default=32)
    p.add_argument("--sae-steps", type=int, default=400)
    p.add_argument("--max-new-tokens", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--n-threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--verbose", default="INFO")
    return p


def _clip_sets(corpus, args):
    import numpy as np
    import pandas as pd

    from neuro_sae.corpora import read_clip_index
    from neuro_sae.io import read_audio

    corpus = Path(corpus)
    index = read_clip_index(corpus / "index.parquet", verbose=False)
    rng = np.random.default_rng(args.seed)
    music = index[index["domain"] == "music"]
    sounds = index[(index["domain"] == "sounds")
                   & index["labels"].map(lambda lab: "sound-effect" in set(lab))]
    speech = index[(index["domain"] == "speech") & index["transcript"].notna()
                   & (index["duration"] <= 30)
                   & index["labels"].map(lambda lab: not {"whisper", "croak", "spoken-letter"}
                                         & set(lab))]

    def draw(df, sizes, names):
        if sum(sizes) > len(df):
            raise ValueError(f"{names}: asked for {sum(sizes)} clips, the corpus has {len(df)}.")
        idx = rng.permutation(len(df))
        out, start = {}, 0
        for name, n in zip(names, sizes):
            out[name] = df.iloc[np.sort(idx[start : start + n])]
            start += n
        return out

    sel = {**draw(music, args.n_music, ["music_fit", "music_test"]),
           **draw(sounds, args.n_sounds, ["sounds_fit", "sounds_test"]),
           **draw(speech, args.n_speech, ["speech_sae", "speech_test"])}
    sets = {}
    for name, df in sel.items():
        waves = []
        for path in df["path"]:
            w, _ = read_audio(corpus / path, verbose="WARNING")
            waves.append(w[: 30 * 16000].astype(np.float32))
        sets[name] = pd.DataFrame(dict(
            id=list(df["id"]), wave=waves,
            transcript=list(df["transcript"]) if name.startswith("speech") else None))
    fit = {"music": sets["music_fit"], "sounds": sets["sounds_fit"]}
    fit["speech_sae"] = sets["speech_sae"]
    test = {"music": sets["music_test"], "sounds": sets["sounds_test"],
            "speech": sets["speech_test"]}
    test = {f"{k}_test": v for k, v in test.items()}
    return fit, test


def _train_saes(bb, data, layers, out, args):
    import numpy as np

    from neuro_sae.sae import SAEConfig, TrainConfig, load_sae, train_sae

    saes = {}
    for n in layers:
        folder = out / "saes" / f"layer_{n}"
        if (folder / "cfg.json").is_file():
            saes[n] = load_sae(folder, verbose=False)
            continue
        frames = np.concatenate([f for s in ("music", "sounds", "speech_sae")
                                 for f in data["fit_frames"][n][s]]).astype(np.float32)
        cfg = SAEConfig(d_in=bb.d_model, d_sae=args.d_sae, k=args.sae_k, backbone=bb.name,
                        backbone_revision=bb.revision, layer=n, seed=args.seed)
        tc = TrainConfig(n_steps=args.sae_steps, batch_size=512, lr=1e-3, threshold_beta=0.99)
        sae = train_sae(frames, cfg, tc, random_state=args.seed, verbose="WARNING")
        sae.save(folder, metadata=dict(trained_on="steering fit clips (music, sounds, speech)",
                                       n_frames=int(len(frames))))
        saes[n] = load_sae(folder, verbose=False)
    return saes


def main(argv=None):
    args = _parser().parse_args(argv)
    import torch

    from neuro_sae.backbones import load_backbone
    from neuro_sae.io import write_json
    from neuro_sae.steering import (
        matched_wer,
        plot_steering_frontier,
        prepare_steering,
        steering_grid,
    )
    from neuro_sae.utils import set_log_level

    set_log_level(args.verbose)
    torch.set_num_threads(args.n_threads)
    out = Path(args.out)
    times = {}
    t0 = time.time()
    bb = load_backbone(args.backbone)
    fit, test = _clip_sets(args.corpus, args)
    times["load"] = time.time() - t0
    t0 = time.time()
    data = prepare_steering(bb, fit, test, args.layers, out, batch_size=args.batch_size,
                            max_new_tokens=args.max_new_tokens)
    times["unsteered_pass"] = time.time() - t0
    t0 = time.time()
    if args.sae_dir:
        saes = {n: Path(args.sae_dir) / f"layer_{n}" for n in args.layers}
    else:
        saes = _train_saes(bb, data, args.layers, out, args)
    times["saes"] = time.time() - t0
    t0 = time.time()
    grid = steering_grid(bb, data, saes, ks=args.ks,
                         alphas={"sae": args.sae_alphas, "svector": args.svector_alphas},
                         sources=args.sources, keep_error=not args.no_error_term,
                         batch_size=args.batch_size, random_state=args.seed)
    times["grid"] = time.time() - t0
    best = matched_wer(grid)
    best.to_csv(out / "matched_wer.csv", index=False)
    fig = plot_steering_frontier(grid, show=False)
    fig.savefig(out / "fig_steering_frontier.png", dpi=120)
    sizes = {n: int(len(c)) for n, c in {**fit, **test}.items()}
    write_json(dict(args=vars(args), sizes=sizes, wall_s=times), out / "summary.json")
    print(best.to_string())
    print(json.dumps(times, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
