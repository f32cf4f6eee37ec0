"""Step 10: the reproduction report, one table row per result of the AudioSAE paper.

From the release SAEs of whisper-base (``neuro-sae/whisper-base``: one BatchTopK SAE per
layer 1-6, 512 -> 4096, k 50) or a folder pattern (``--sae-dir``), the offline corpus
(``--corpus``) and the activation store of ``analyses/09_corpus_saes.py``
(``--derivatives``: ``store/`` + ``packs.parquet``; built into ``--out/store`` when absent),
the script regenerates:

1. seed coverage (IoU) and Hungarian decoder MCC beside the random-dictionary null, read
   from the training record shipped with the SAEs (``convergence*.parquet``,
   ``--training-record``), and duplicates inside each SAE on held-out clips (the store's
   ``eval`` split), per layer;
2. domain shares (Fig. 2; frame level, tau 0.1) per layer on the same held-out clips;
3. label F1 (held out, with the label-permutation null) for ``whisper`` and a
   laughter-like label (the corpus has no laughter; ``croak`` stands in), at
   ``--interp-layer`` (default: the last layer, as the paper's Whisper results);
4. phoneme accuracy (majority phone, held out and in sample) beside chance and a linear
   probe on the raw activations;
5. top-k probing and unlearning of the 5 spoken vowels (features needed for 90% of the
   all-feature accuracy; accuracy with the Fisher top ~1/3 of d_sae masked);
6. vowel-A erasure fractions (Fig. 4);
7. steering at ``--steer-layer`` (default 5: Whisper-small's block 8 of 12 is at about
   the same relative depth; the caption's "last layer" is ``--steer-layer 6``): FPR,
   hallucination rate and WER of the validation-chosen SAE and S-vector cells on test
   clips (:func:`neuro_sae.steering.steering_experiment`, the paper's preset);
8. EEG: the share of SAE features significant under the paper's protocol (Pz, dev/test
   runs, Holm) on EEG simulated from real SAE features with planted responses.

Every choice is made on training or validation clips by the library; the test clips of
each stage only report. The one exception, stated in its row: the label search ranks
features by their in-sample F1 over all clips (the paper's rule), so the held-out F1 of
the best feature is optimistic; its permutation null (``p_fwe``) is the chance control. Every stage caches its output in ``--out/stages`` (rerun to
resume; ``--force STAGE`` recomputes one). Outputs: ``reproduction.parquet``,
``reproduction.md`` (table, command, wall time), ``summary.json``.

Usage::

    python analyses/10_reproduce.py --corpus /work/runs/corpus \\
        --derivatives /work/runs/saes/whisper-base --out /work/runs/reproduce   # release SAEs
    python analyses/10_reproduce.py --corpus /work/runs/corpus --out /tmp/repro --layers 5 6 \\
        --sae-dir '/tmp/smoke09/whisper-base/budget_6e04_layers-5-6/saes/layer-{layer:02d}_seed-0' \\
        --training-record /tmp/smoke09/whisper-base/budget_6e04_layers-5-6
    python analyses/10_reproduce.py --quick ...                           # a few minutes

Wall time at the defaults, layers 5 and 6 (2-core machine shared with two SAE trainings,
one torch thread): about 9 min (layers 15 s each, interpretation 2 min, steering 4-5 min,
EEG 1.5 min); every further layer adds about 15 s. ``--quick``: about 1 min.
"""

# %%
import argparse
import json
import shlex
import sys
import time
from pathlib import Path

import numpy as np

STAGES = ("layers", "interpret", "steering", "eeg")


def _parser():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--sae", default="neuro-sae/whisper-base",
                   help="release name read with neuro_sae.sae.load_sae(name, layer=n)")
    p.add_argument("--sae-dir", default=None,
                   help="instead of --sae: SAE folder pattern with {layer}, e.g. "
                        "'saes/layer-{layer:02d}_seed-0'")
    p.add_argument("--training-record", default=None,
                   help="folder with convergence*.parquet (default: the release folder)")
    p.add_argument("--corpus", required=True,
                   help="built corpus folder (neuro-sae build-corpus --out DIR)")
    p.add_argument("--derivatives", default=None,
                   help="folder with store/ and packs.parquet (analyses/09_corpus_saes.py); "
                        "when absent a store is built into --out/store")
    p.add_argument("--backbone", default="whisper-base")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--layers", type=int, nargs="+", default=[1, 2, 3, 4, 5, 6])
    p.add_argument("--interp-layer", type=int, default=None,
                   help="layer of rows 3-6 and 8 (default: the last of --layers)")
    p.add_argument("--steer-layer", type=int, default=None,
                   help="layer of the steering rows (default: 5 if in --layers, else the last)")
    p.add_argument("--stages", nargs="+", default=list(STAGES), choices=STAGES)
    p.add_argument("--force", nargs="*", default=[], choices=STAGES,
                   help="recompute these stages (default: reuse the cache)")
    p.add_argument("--quick", action="store_true",
                   help="a few-minute smoke run: few clips, permutations and cells")
    p.add_argument("--max-eval-clips", type=int, default=None,
                   help="held-out clips of rows 1-2 (default: all clean eval clips; quick 20)")
    p.add_argument("--max-label-clips", type=int, default=None,
                   help="random clips of the label search beside the labelled ones "
                        "(default: all clean clips; quick 40)")
    p.add_argument("--n-permutations", type=int, default=None,
                   help="label permutations (default 200; quick 20)")
    p.add_argument("--erasure-steps", type=int, default=None, help="default 40; quick 8")
    p.add_argument("--steer-clips", type=int, nargs=3, default=None,
                   metavar=("MUSIC", "SOUNDS", "SPEECH"),
                   help="held-out test clips per set (default 20 30 16; quick 2 3 2); the "
                        "vector fit sets are 15 music + 20 sounds (quick 6 + 6)")
    p.add_argument("--steer-k", type=int, default=100, help="SAE features steered (paper 100)")
    p.add_argument("--steer-alphas", type=float, nargs="+", default=None,
                   help="strengths of both methods (default 1 3; quick 1)")
    p.add_argument("--max-new-tokens", type=int, default=None,
                   help="decoding budget (default 160; quick 32; openai-whisper 224)")
    p.add_argument("--eeg-runs", type=int, default=None, help="speech packs as runs (10; quick 5)")
    p.add_argument("--eeg-subjects", type=int, default=None, help="simulated subjects (19, the paper's; quick 4)")
    p.add_argument("--eeg-features", type=int, default=None,
                   help="random features among those active >= 1/s (200; quick 30)")
    p.add_argument("--eeg-snr", type=float, default=0.1,
                   help="planted response SNR at Pz (0.1: r about 0.1, real single-subject TRFs)")
    p.add_argument("--n-threads", type=int, default=1, help="torch threads")
    p.add_argument("--random-state", type=int, default=0)
    p.add_argument("--verbose", default="WARNING", help="log level of the library")
    return p


def _defaults(args):
    q = args.quick
    for name, full, quick in (("max_eval_clips", None, 20), ("max_label_clips", 100_000, 40),
                              ("n_permutations", 200, 20), ("erasure_steps", 40, 8),
                              ("steer_clips", [20, 30, 16], [2, 3, 2]),
                              ("steer_alphas", [1.0, 3.0], [1.0]),
                              ("max_new_tokens", 160, 32), ("eeg_runs", 10, 5),
                              ("eeg_subjects", 19, 4), ("eeg_features", 200, 30)):
        if getattr(args, name) is None:
            setattr(args, name, quick if q else full)
    args.steer_fit = [6, 6] if q else [15, 20]
    if args.interp_layer is None:
        args.interp_layer = max(args.layers)
    if args.steer_layer is None:
        args.steer_layer = 5 if 5 in args.layers else max(args.layers)
    return args


_T0 = time.perf_counter()


def _say(msg):
    print(f"[{time.perf_counter() - _T0:7.1f} s] {msg}", flush=True)


# %%
class Context:
    """What the stages share: SAEs, the store, the clip index, the cache."""

    def __init__(self, args):
        import pandas as pd

        from neuro_sae.corpora import read_clip_index

        self.args = args
        self.out = Path(args.out)
        self.cache = self.out / "stages"
        self.cache.mkdir(parents=True, exist_ok=True)
        self.index = read_clip_index(Path(args.corpus) / "index.parquet", verbose=False)
        self.root = str(Path(args.corpus).resolve())
        self._saes = {}
        self._store = None
        self.members = None
        deriv = Path(args.derivatives) if args.derivatives else None
        if deriv is not None and (deriv / "store" / "store.json").is_file():
            self.store_dir = deriv / "store"
            if (deriv / "packs.parquet").is_file():
                self.members = pd.read_parquet(deriv / "packs.parquet")
            self.store_desc = f"activation store {self.store_dir}"
        else:
            self.store_dir = self.out / "store"
            self.store_desc = f"activation store built here ({self.store_dir})"

    # --- SAEs
    def sae(self, layer):
        """The SAE of a layer, or the reason it could not be read (str)."""
        if layer not in self._saes:
            from neuro_sae.sae import load_sae

            try:
                if self.args.sae_dir:
                    self._saes[layer] = load_sae(self.args.sae_dir.format(layer=layer),
                                                 verbose=False)
                else:
                    self._saes[layer] = load_sae(self.args.sae, layer=layer, verbose=False)
            except Exception as err:  # a missing layer is a note of the table, not a crash
                self._saes[layer] = f"SAE of layer {layer} unreadable: {type(err).__name__}: {err}"
        return self._saes[layer]

    def sae_source(self):
        return self.args.sae_dir or self.args.sae

    def training_record_dir(self):
        if self.args.training_record:
            return Path(self.args.training_record)
        if self.args.sae_dir:
            return None
        try:  # the installed release's folder (its entry point)
            from neuro_sae.sae import release_folder
        except ImportError:
            try:
                from neuro_sae.sae._release import release_folder
            except ImportError:
                release_folder = None
        if release_folder is not None:
            try:
                return Path(release_folder(self.args.sae))
            except (ValueError, FileNotFoundError):
                pass
        import importlib.util

        name = self.args.sae.split("/")[-1].replace("-", "_")
        for mod in (f"neuro_sae_{name}", name):
            try:
                spec = importlib.util.find_spec(mod)
            except (ImportError, ValueError):
                spec = None
            if spec is not None and spec.submodule_search_locations:
                return Path(list(spec.submodule_search_locations)[0])
        here = Path(__file__).resolve().parents[1] / "data_manifests" / "releases"
        cand = list(here.glob(f"*{self.args.sae.split('/')[-1]}*/*"))
        return next((c for c in cand if c.is_dir() and list(c.glob("convergence*.parquet"))),
                    None)

    # --- store
    def store(self):
        if self._store is None:
            from neuro_sae.activations import read_activation_store

            if not (self.store_dir / "store.json").is_file():
                self._build_store()
            self._store = read_activation_store(self.store_dir, verbose=False)
            if self.members is None and (self.store_dir.parent / "packs.parquet").is_file():
                import pandas as pd

                self.members = pd.read_parquet(self.store_dir.parent / "packs.parquet")
        return self._store

    def _build_store(self):
        from neuro_sae.activations import build_activation_store
        from neuro_sae.backbones import load_backbone
        from neuro_sae.corpora import index_to_clips
        from neuro_sae.io import write_parquet
        from neuro_sae.sae import pack_clips

        _say(f"no activation store: extracting {len(self.index)} clips into {self.store_dir}")
        clips = index_to_clips(self.index, self.args.corpus, verbose=False)
        packs, members = pack_clips(clips, random_state=self.args.random_state, verbose=False)
        members["split"] = "eval"  # nothing here trains: every clip is held out of this step
        write_parquet(members, self.out / "packs.parquet")
        bb = load_backbone(self.args.backbone, encoder_only=True, verbose=False)
        build_activation_store(bb, packs, self.store_dir, layers=sorted(set(self.args.layers)),
                               clips_per_shard=16, verbose=False)
        self.members = members

    def clean_ids(self, split=None):
        """Clip ids whose pack was not mixed with noise or music (optionally one split)."""
        self.store()
        m = self.members
        if m is None:
            return set(self.index["id"].astype(str))
        keep = m["mixed"].fillna("") == "" if "mixed" in m else np.ones(len(m), bool)
        if split is not None and "split" in m:
            keep &= m["split"] == split
        return set(m.loc[keep, "clip_id"].astype(str))

    def encode(self, sae, clips, layer, **kw):
        from neuro_sae.interpret import encode_clips

        return encode_clips(sae, self.store(), clips, layer=layer, members=self.members,
                            root=self.root, verbose=False, **kw)

    # --- cache
    def cached(self, name, fn):
        path = self.cache / f"{name}.json"
        stage = name.split("_")[0]
        if path.is_file() and stage not in self.args.force:
            _say(f"{name}: cached ({path})")
            return json.loads(path.read_text())
        t0 = time.perf_counter()
        res = fn()
        res["seconds"] = round(time.perf_counter() - t0, 1)
        if "error" in res:  # not cached: the next run tries again
            _say(f"{name}: not computed ({res['error']})")
            return res
        from neuro_sae.io import write_json

        write_json(res, path)
        _say(f"{name}: done in {res['seconds']:.0f} s")
        return res


def _sae_info(sae):
    """Training frames and explained variance recorded in an SAE's config."""
    info = getattr(sae, "train_info", None) or {}
    tc = info.get("train_config") or {}
    steps = info.get("n_steps_done") or tc.get("n_steps")
    frames = int(steps) * int(tc.get("batch_size", 0)) if steps and tc.get("batch_size") else None
    ev = (info.get("final_metrics") or {}).get("explained_variance")
    return dict(frames=frames, explained_variance=None if ev is None else float(ev))


def _sae_note(info):
    if not info or not info.get("frames"):
        return ""
    ev = info.get("explained_variance")
    return (f"SAE trained on {info['frames']:.2g} frames (paper: 5e8)"
            + (f", EV {ev:.2f} on its training batches" if ev is not None else ""))


# %% stage 1-2: duplicates and domains per layer, on held-out clips
def stage_layer(ctx, layer):
    from neuro_sae.interpret import assign_domains, feature_stats
    from neuro_sae.sae.consistency import duplicates, random_dictionary

    sae = ctx.sae(layer)
    if isinstance(sae, str):
        return dict(layer=layer, error=sae)
    ids = sorted(ctx.clean_ids("eval"))
    rng = np.random.default_rng(ctx.args.random_state)
    if ctx.args.max_eval_clips and len(ids) > ctx.args.max_eval_clips:
        ids = sorted(rng.choice(ids, ctx.args.max_eval_clips, replace=False))
    clips = ctx.index[ctx.index["id"].astype(str).isin(ids)]
    codes_btk = ctx.encode(sae, clips, layer, mode="batchtopk")
    dup = duplicates(codes_btk.codes, verbose=False)
    rand = random_dictionary(sae, random_state=ctx.args.random_state)
    dup_null = duplicates(ctx.encode(rand, clips, layer, mode="batchtopk").codes, verbose=False)
    codes = ctx.encode(sae, clips, layer)
    assign = assign_domains(feature_stats(codes, verbose=False), verbose=False)
    d_sae = int(sae.cfg.d_sae)
    shares = {}
    for (lv, tau), g in assign.groupby(["level", "tau"]):
        shares[f"{lv}-{tau:g}"] = {str(k): v / d_sae for k, v in
                                   g["domain"].value_counts().items()}
    n_dom = clips.groupby("domain").size().to_dict()
    return dict(layer=layer, d_sae=d_sae, n_clips=len(clips), n_frames=int(codes.codes.shape[0]),
                clips_by_domain={str(k): int(v) for k, v in n_dom.items()},
                duplicates=dict(fraction=dup.fraction, n=dup.n_duplicates, n_features=d_sae,
                                null_fraction=dup_null.fraction),
                domain_shares=shares)


# %% stages 3-6: label search, phones, probing, erasure at one layer
def stage_interpret(ctx):
    import pandas as pd

    from neuro_sae.interpret import (
        alignment_intervals,
        class_labels,
        codes_frame_labels,
        concept_erasure,
        label_search,
        phoneme_baselines,
        probe_curve,
    )

    a, layer = ctx.args, ctx.args.interp_layer
    sae = ctx.sae(layer)
    if isinstance(sae, str):
        return dict(layer=layer, error=sae)
    rng = np.random.default_rng(a.random_state)
    idx = ctx.index[ctx.index["id"].astype(str).isin(ctx.clean_ids())]
    labs = idx["labels"].apply(lambda ls: [str(v) for v in ls])
    want = labs.apply(lambda ls: any(v in ("whisper", "croak", "laughter") or
                                     v.startswith("vowel-") for v in ls)).to_numpy().copy()
    want |= idx["alignment"].notna().to_numpy()
    rest = np.flatnonzero(~want)
    extra = rng.choice(rest, min(len(rest), a.max_label_clips), replace=False)
    want[extra] = True
    sel = idx[want]
    aligned = sel.loc[sel["alignment"].notna(), "id"].astype(str).tolist()
    codes, acts = ctx.encode(sae, sel, layer, return_activations=aligned)
    _say(f"interpret: encoded {len(codes.clip_ids)} clips ({codes.codes.shape[0]} frames) "
         f"at layer {layer}")
    present = {v for ls in codes.clip_labels() for v in ls}
    search = [v for v in ("whisper", "laughter", "croak") if v in present]
    out = dict(layer=layer, d_sae=int(sae.cfg.d_sae), sae=_sae_info(sae),
               n_clips=len(codes.clip_ids),
               n_frames=int(codes.codes.shape[0]), labels_searched=search,
               n_permutations=a.n_permutations, n_extra=int(len(extra)))
    if search:
        tab = label_search(codes, labels=search, top=5, n_permutations=a.n_permutations,
                           random_state=int(rng.integers(2**31 - 1)), verbose=False)
        tab.to_parquet(ctx.cache / "interpret_labels.parquet")
        out["labels"] = tab.to_dict("records")
        _say("interpret: label search done")
    if aligned:
        iv = alignment_intervals(codes, tier="phones", verbose=False)
        frame_labels = codes_frame_labels(codes, iv)
        out["phonemes"] = phoneme_baselines(codes, frame_labels, activations=acts,
                                            random_state=int(rng.integers(2**31 - 1)),
                                            verbose=False)
        out["n_aligned"] = len(aligned)
        _say("interpret: phonemes done")
    y = class_labels(codes, "vowel-")
    keep = np.array([v is not None for v in y])
    if keep.sum() >= 10:
        sub = codes.subset(np.asarray(codes.clip_ids, dtype=object)[keep])
        yk = y[keep].astype(str)
        groups = None
        if "speaker" in sub.clips and sub.clips["speaker"].notna().all():
            groups = sub.clips["speaker"].astype(str).to_numpy()
            if len(np.unique(groups)) < 3:
                groups = None
        common = dict(decoder=sae, groups=groups, C=None, verbose=False)
        res = concept_erasure(sub, yk, "vowel-A", steps=a.erasure_steps,
                              target_mode="reconstruction",
                              random_state=int(rng.integers(2**31 - 1)), **common)
        curve = res.curve
        out["erasure"] = dict(
            n_clips=int(keep.sum()), n_features=int(res.n_features),
            erased_at=res.erased_at, others_at=res.others_at,
            erased_fraction=res.erased_fraction, others_fraction=res.others_fraction,
            others_start_below=[str(c) for c in res.others_start_below],
            split="split by speaker" if groups is not None else "stratified split",
            mcc_before=float(curve[(curve["n_removed"] == 0)
                                   & (curve["class"] == "vowel-A")]["mcc"].iloc[0]))
        _say("interpret: erasure done")
        d = int(sae.cfg.d_sae)
        ks = sorted({k for k in (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, d // 3, d // 2, d)
                     if 1 <= k <= d})
        if a.quick:
            ks = sorted({1, 8, 64, d // 3, d})
        seed = int(rng.integers(2**31 - 1))
        curves = pd.concat([probe_curve(sub, yk, ks=ks, kind=kind, target="reconstruction",
                                        random_state=seed, n_random=1 if a.quick else 3,
                                        **common) for kind in ("probe", "unlearn")],
                           ignore_index=True)
        curves.to_parquet(ctx.cache / "interpret_curves.parquet")
        out["curves"] = curves.to_dict("records")
        out["n_classes"] = int(len(np.unique(yk)))
        _say("interpret: probing done")
    return out


# %% stage 7: steering
def stage_steering(ctx):
    import torch

    from neuro_sae.backbones import load_backbone
    from neuro_sae.steering import corpus_clip_sets, steering_experiment

    a, layer = ctx.args, ctx.args.steer_layer
    sae = ctx.sae(layer)
    if isinstance(sae, str):
        return dict(layer=layer, error=sae)
    torch.set_num_threads(a.n_threads)
    bb = load_backbone(a.backbone, verbose=False)
    nm, ns, nsp = a.steer_clips
    fit, test = corpus_clip_sets(ctx.index, root=a.corpus, n_music=(a.steer_fit[0], nm),
                                 n_sounds=(a.steer_fit[1], ns), n_speech=(0, nsp),
                                 random_state=a.random_state, verbose=False)
    alphas = {"paper": {"sae": list(a.steer_alphas), "svector": list(a.steer_alphas)}}
    res = steering_experiment(bb, fit, test, [layer], ctx.out / "steering", saes={layer: sae},
                              ks=[a.steer_k], alphas=alphas, presets=["paper"],
                              max_new_tokens=a.max_new_tokens, batch_size=6,
                              random_state=a.random_state, verbose=False)
    sizes = {k: int(len(v)) for k, v in {**fit, **test}.items()}
    return dict(layer=layer, matched=res["matched"].to_dict("records"), sizes=sizes,
                sae=_sae_info(sae),
                n_truncated=int(res["grid"]["n_truncated"].sum()), wall_s=res["wall_s"],
                skipped=[str(s) for s in res["skipped"]])


# %% stage 8: EEG simulated from real SAE features, the paper's protocol
def stage_eeg(ctx):
    import torch
    from scipy.signal import resample_poly

    from neuro_sae.simulation import simulate_eeg
    from neuro_sae.stats import paper_protocol, protocol_kernels

    a, layer = ctx.args, ctx.args.interp_layer
    sae = ctx.sae(layer)
    if isinstance(sae, str):
        return dict(layer=layer, error=sae)
    store = ctx.store()
    rng = np.random.default_rng(a.random_state + 8)
    sfreq = 64.0
    # runs: packs whose clips are all clean speech (no mixing)
    m = ctx.members
    dom = ctx.index.set_index(ctx.index["id"].astype(str))["domain"]
    if m is not None:
        mm = m.assign(domain=m["clip_id"].astype(str).map(dom),
                      clean=(m["mixed"].fillna("") == "") if "mixed" in m else True)
        ok = mm.groupby("pack_id").apply(lambda g: bool((g["domain"] == "speech").all()
                                                        and g["clean"].all()),
                                         include_groups=False)
        packs = sorted(ok[ok].index.astype(str))
    else:
        packs = sorted(str(c) for c in ctx.index.loc[ctx.index["domain"] == "speech", "id"])
    if len(packs) < 3:
        return dict(layer=layer, error=f"only {len(packs)} clean speech packs for EEG runs")
    packs = sorted(rng.choice(packs, min(a.eeg_runs, len(packs)), replace=False))
    runs, seconds = {}, 0.0
    with torch.no_grad():
        for pid in packs:
            acts = store.get_clip(pid, layers=[layer], verbose=False)
            x = torch.as_tensor(np.asarray(acts.get(layer), np.float32))
            runs[pid] = sae.encode_sparse(x).to_dense().numpy()
            seconds += len(x) / 50.0
    rate = sum((r > 0).sum(0) for r in runs.values()) / seconds
    alive = np.flatnonzero(rate >= 1.0)  # the paper: active at least once per second
    if len(alive) < 10:
        return dict(layer=layer, error=f"only {len(alive)} features active >= 1/s")
    cols = np.sort(rng.choice(alive, min(a.eeg_features, len(alive)), replace=False))
    X = {pid: np.maximum(resample_poly(r[:, cols], 32, 25, axis=0), 0.0)
         for pid, r in runs.items()}  # 50 -> 64 Hz
    n_pl = min(5, len(cols))
    planted = [dict(feature=int(c), center="Pz")
               for c in rng.choice(len(cols), n_pl, replace=False)]
    n_dev = min(len(X) - 1, max(2, round(0.4 * len(X))))  # the paper's 2 : 3
    dev, test = list(range(n_dev)), list(range(n_dev, len(X)))
    coef_dev, coef_test = [], []
    for s in range(a.eeg_subjects):
        raw, truth = simulate_eeg(X, planted, sfreq=sfreq, snr=a.eeg_snr,
                                  random_state=a.random_state + 100 + s, verbose=False)
        raw.filter(1.0, 8.0, verbose=False)
        pz = raw.get_data(picks=["Pz"])[0]
        Y = []
        for r in truth["runs"]:
            on = int(round(r["onset_s"] * sfreq))
            Y.append(pz[on:on + len(X[r["run_id"]])][:, None])
        k = protocol_kernels([X[p] for p in X], Y, dev, test, sfreq=sfreq, tmin=0.0, tmax=0.5,
                             verbose=False)
        coef_dev.append(k["coef_dev"])
        coef_test.append(k["coef_test"])
        times = k["times"]
    tab = paper_protocol(np.stack(coef_dev), np.stack(coef_test), times, ch_names=["Pz"],
                         channel="Pz", feature_names=[f"f{c}" for c in cols], tmin=0.0,
                         tmax=0.5, verbose=False)
    sig = tab.groupby("feature")["significant"].any()
    planted_names = {f"f{cols[p['feature']]}" for p in planted}
    return dict(layer=layer, n_features=int(len(cols)), n_alive=int(len(alive)),
                n_significant=int(sig.sum()), n_planted=n_pl,
                planted_significant=int(sig[sig.index.isin(planted_names)].sum()),
                n_subjects=a.eeg_subjects, n_runs=len(X), dev_runs=dev, test_runs=test,
                run_seconds=round(seconds, 1), snr=a.eeg_snr, sfreq=sfreq)


# %% the table
def assemble(ctx, res):
    import pandas as pd

    from neuro_sae.interpret._reproduce import (
        coverage_rows,
        domain_rows,
        eeg_rows,
        erasure_rows,
        label_rows,
        missing_rows,
        phoneme_rows,
        probing_rows,
        read_training_record,
        reproduction_table,
        steering_rows,
    )

    a = ctx.args
    rows = []
    per = {la: res.get(f"layers_{la:02d}") for la in a.layers}
    dups = {la: (None if r is None else r.get("error") or r["duplicates"])
            for la, r in per.items()}
    rec_dir = ctx.training_record_dir()
    record = read_training_record(rec_dir)
    d_sae = next((r["d_sae"] for r in per.values() if r and "d_sae" in r), None)
    ev = next((r for r in per.values() if r and "n_clips" in r), None)
    eval_desc = ("held-out clips (eval split of the store, unmixed): "
                 f"{ev['n_clips']} clips, {ev['n_frames']:,} frames {ev['clips_by_domain']}"
                 if ev else "held-out clips")
    rows += coverage_rows(a.layers, record, dups, d_sae=d_sae, eval_desc=eval_desc,
                          record_desc=f"training record {rec_dir} (2 seeds, held-out frames)")
    shares = {la: r["domain_shares"].get("frame-0.1", {}) for la, r in per.items()
              if r and "domain_shares" in r}
    last = max(shares) if shares else None
    others = {}
    if last is not None:
        for t in (0.2, 0.04):
            others[t] = per[last]["domain_shares"].get(f"frame-{t:g}", {})
    rows += domain_rows(shares, last_layer=last, other_taus=others,
                        definition=eval_desc + f"; SAEs {ctx.sae_source()}")
    it = res.get("interpret")
    il = a.interp_layer
    if not it or "error" in it:
        why = (it or {}).get("error", "stage not run")
        for key in ("label_whisper", "label_laughter", "phoneme", "phoneme_probe", "probe_k",
                    "unlearn", "erasure_target", "erasure_others"):
            rows += missing_rows(key, why)
    else:
        tab = pd.DataFrame(it["labels"]) if it.get("labels") else None
        lau = "laughter" if "laughter" in it["labels_searched"] else (
            "croak" if "croak" in it["labels_searched"] else None)
        rows += label_rows(
            tab, laughter_label=lau,
            definition=(f"layer {il}, {it['n_clips']} clean (unmixed) clips: the labelled and "
                        f"aligned ones + {it.get('n_extra', '?')} random others; "
                        f"{it['n_permutations']} label permutations"),
            laughter_note=("the offline corpus has no laughter clips: 'croak' (espeak's "
                           "croaky voice, the other paralinguistic label) stands in"
                           if lau == "croak" else ""))
        rows += phoneme_rows(it.get("phonemes"), layer=il,
                             definition=f"{it.get('n_aligned', 0)} clips with phone alignments "
                                        f"(synthetic speech, layer {il})")
        task = (f"5 spoken vowels ({it.get('erasure', {}).get('n_clips')} clips of synthetic "
                "voices), the SAE reconstruction max-pooled per clip, unpenalised logistic "
                "regression, held-out clips split by speaker")
        curves = pd.DataFrame(it["curves"]) if it.get("curves") else None
        rows += probing_rows(curves, d_sae=it["d_sae"], layer=il, definition=task)
        rows += erasure_rows(it.get("erasure"), layer=il,
                             definition="fractions of d_sae, classifier retrained per step")
        n_it = 8  # label x2, phoneme x2, probing x2, erasure x2
        for r in rows[-n_it:]:
            r["note"] = "; ".join(v for v in (r["note"], _sae_note(it.get("sae"))) if v)
    st = res.get("steering")
    if not st or "error" in st:
        rows += steering_rows(None)
        if st and "error" in st:
            for r in rows[-9:]:
                r["note"] = "not computed: " + st["error"]
    else:
        sz = st["sizes"]
        rows += steering_rows(
            pd.DataFrame(st["matched"]), layer=st["layer"],
            definition=(f"whisper-base layer {st['layer']}, paper preset (x_hat(f + alpha s) "
                        f"on every frame), k {a.steer_k}, alphas {a.steer_alphas}; fit "
                        f"{sz.get('music')} music + {sz.get('sounds')} sound clips; test "
                        f"sets {sz.get('music_test')} music, {sz.get('sounds_test')} sounds, "
                        f"{sz.get('speech_test')} speech, halved into validation (choice) and "
                        f"test (reported); {a.max_new_tokens} decoding tokens"))
        for r in rows[-9:]:
            r["note"] = "; ".join(v for v in (r["note"], "whisper-base vs Whisper-small; "
                                              "tens of clips (wide intervals)",
                                              _sae_note(st.get("sae"))) if v)
    ee = res.get("eeg")
    if not ee or "error" in ee:
        rows += missing_rows("eeg", (ee or {}).get("error", "stage not run"))
    else:
        rows += eeg_rows(ee, definition=(
            f"layer {ee['layer']} codes of {ee['n_runs']} speech packs ({ee['run_seconds']} s) "
            f"at 64 Hz; {ee['n_features']} random of {ee['n_alive']} features active >= 1/s; "
            f"{ee['n_subjects']} subjects simulated (5 planted at Pz, SNR {ee['snr']}); dev "
            f"runs {ee['dev_runs']}, test runs {ee['test_runs']}; Pz, lags 0-500 ms, one-sided "
            "t across subjects, Holm 0.05"))
    return reproduction_table(rows)


def main(argv=None):
    from neuro_sae.utils import set_log_level

    t_start = time.perf_counter()
    args = _defaults(_parser().parse_args(argv))
    set_log_level(args.verbose)
    import torch

    torch.set_num_threads(args.n_threads)
    ctx = Context(args)
    _say(f"reproduction: SAEs {ctx.sae_source()}, layers {args.layers}, corpus {args.corpus}, "
         f"{ctx.store_desc}, out {ctx.out}")
    jobs = [(f"layers_{la:02d}", lambda la=la: stage_layer(ctx, la)) for la in args.layers
            if "layers" in args.stages]
    jobs += [(name, lambda fn=fn: fn(ctx)) for name, fn in (
        ("interpret", stage_interpret), ("steering", stage_steering), ("eeg", stage_eeg))
        if name in args.stages]
    res = {}
    for name, fn in jobs:
        try:
            res[name] = ctx.cached(name, fn)
        except Exception as err:  # one failed stage leaves a note, not a missing report
            import traceback

            traceback.print_exc()
            res[name] = dict(error=f"{type(err).__name__}: {err}")
    table = assemble(ctx, res)
    wall = time.perf_counter() - t_start
    from neuro_sae.interpret._reproduce import table_markdown
    from neuro_sae.io import write_json

    command = "python analyses/10_reproduce.py " + " ".join(
        shlex.quote(v) for v in (argv if argv is not None else sys.argv[1:]))
    table.to_parquet(ctx.out / "reproduction.parquet")
    seconds = {k: v.get("seconds") for k, v in res.items() if isinstance(v, dict)}
    (ctx.out / "reproduction.md").write_text(table_markdown(
        table, command=command, wall_s=wall,
        computed_s=sum(v for v in seconds.values() if v is not None),
        header=(f"SAEs: {ctx.sae_source()} (layers {args.layers}); corpus {args.corpus}; "
                f"{ctx.store_desc}. Stage seconds (this run or when cached): {seconds}. "
                "Paper = AudioSAE (Aparin, Sadekova et al., EACL 2026, arXiv 2602.05027).")))
    write_json(dict(command=command, wall_s=round(wall, 1), stage_seconds=seconds,
                    sae=ctx.sae_source(), layers=args.layers, interp_layer=args.interp_layer,
                    steer_layer=args.steer_layer, quick=args.quick, n_rows=int(len(table)),
                    n_missing=int(table["note"].str.startswith("not computed").sum()),
                    rows=table.drop(columns=["definition"]).astype(object)
                    .where(table.drop(columns=["definition"]).notna(), None)
                    .to_dict("records")),
               ctx.out / "summary.json")
    _say(f"wrote {ctx.out / 'reproduction.md'} ({len(table)} rows) in {wall:.0f} s")
    return table


if __name__ == "__main__":
    main()
