"""Step ``steer``: steer the study's Whisper away from hearing speech in non-speech audio.

The primary backbone's SAE of the last study layer (step ``train-sae``) gives the SAE
vector; music and recorded sound effects of a clip index (``--corpus``; without one a
small offline corpus is built under ``steering/corpus``) are split into fit and test
clips, and transcribed speech gives TPR and WER
(:func:`neuro_sae.steering.steering_experiment`). When the fit clips hold too few
false detections (or correct rejections) for a vector, the step does not fail: it
measures the unsteered model, records ``skipped`` (with the counts) in its
``summary.json`` and logs why. The defaults are the demo's small run (a 0.1 h corpus,
a few clips per set, one cell per method, the paper's preset). Each method's cell is
chosen on the validation half of the held-out clips and reported on the other half with
intervals (``matched_wer.csv``); with a few clips per set those intervals are wide.
With ``sae.release`` (an installed release, e.g. ``neuro-sae/whisper-base``) the release's
SAE of that layer is used instead of the study's; ``summary.json`` names the SAE used.
Each function is the ``run``, ``config``,
``inputs``, ``outputs`` or ``producers`` of the step record ``08b_steer``."""

from __future__ import annotations

from pathlib import Path

from ..utils import logger

STEER_OPTIONS = (
    ("--corpus", dict(default=None,
                      help="clip index folder (index.parquet) with music, sound effects and "
                           "transcribed speech (default: build a small offline corpus)")),
    ("--corpus-hours", dict(type=float, default=0.1,
                            help="hours of the corpus built when --corpus is not given")),
    ("--n-music", dict(type=int, nargs=2, default=[5, 3], help="music clips (fit, test)")),
    ("--n-sounds", dict(type=int, nargs=2, default=[8, 3],
                        help="recorded sound-effect clips (fit, test)")),
    ("--n-speech", dict(type=int, nargs=1, default=[3],
                        help="held-out transcribed speech clips (TPR, WER)")),
    ("--ks", dict(type=int, nargs="+", default=[10], help="numbers of SAE features")),
    ("--presets", dict(nargs="+", default=["paper"],
                       help="steering presets: paper (x_hat(f + alpha s), the SAE spliced in "
                            "as baseline, all frames) and/or error-preserving (the SAE's "
                            "error term kept, valid frames)")),
    ("--sae-alphas", dict(type=float, nargs="+", default=[1.0],
                          help="SAE strengths (the paper's best: 1)")),
    ("--svector-alphas", dict(type=float, nargs="+", default=[3.0],
                              help="S-vector strengths (the paper's best: 3)")),
    ("--max-new-tokens", dict(type=int, default=224,
                              help="greedy decoding limit (openai-whisper: 224); clips that "
                                   "hit it are flagged 'truncated' and logged")),
)


STEER_NOT_APPLICABLE = (
    "Manifest {manifest}: the steer step needs a named Whisper model with its decoder and "
    "tokenizer as backbone.name (auto, whisper-base, whisper-tiny.en or a Whisper hub id); "
    "set backbone.name to one of them, or run neuro_sae.steering on the model directly."
)


def steer_applies(manifest):
    """Whether the study's primary backbone is a named Whisper model (with a tokenizer)."""
    name = str(manifest.backbone.name)
    return name == "auto" or name.startswith(("whisper-", "openai/whisper"))


def steer_options(study):
    """The step's options, defaults filled in."""
    opts = {flag.lstrip("-").replace("-", "_"): kw["default"] for flag, kw in STEER_OPTIONS}
    opts.update({k: v for k, v in study.options.items() if k in opts})
    return opts


def steer_system(study):
    """The Debian programs and files of the corpus builder, when the step builds its corpus."""
    from ..corpora import CORPUS_SYSTEM_DEPS

    return CORPUS_SYSTEM_DEPS if steer_options(study)["corpus"] is None else ()


def steer_dir(study):
    """Folder of the step's outputs: ``<derivatives>/steering``."""
    return study.root / "steering"


def _release(study):
    """``sae.release`` (``None``: the study's own SAE)."""
    return getattr(getattr(study.manifest, "sae", None), "release", None)


def _layer(study):
    from ._stim_steps import study_layers

    return study_layers(study)[-1]


def steer_config(study, subject):
    """Config slice: the options and the backbone."""
    opts = steer_options(study)
    if opts["corpus"] is not None:
        opts["corpus"] = str(Path(opts["corpus"]).resolve())
    cfg = dict(steer=opts, backbone=dict(name=study.manifest.backbone.name))
    if _release(study) is not None:  # the release's identity is in the key
        from ._stim_steps import release_identity

        cfg["sae_release"] = release_identity(study, _layer(study))
    return cfg


def steer_inputs(study, subject):
    """The clip index (when given)."""
    corpus = steer_options(study)["corpus"]
    return [Path(corpus) / "index.parquet"] if corpus else []


def steer_producers(study, subject):
    """The SAE of the primary backbone's last study layer (with ``sae.release``: the
    extraction, which the layer is read from)."""
    from ._registry import Unit

    if _release(study) is not None:
        return [("extract", Unit(model=None))]
    return [("train-sae", Unit(model=None, layer=_layer(study)))]


def steer_outputs(study, subject):
    """The grid table, the chosen cells (on validation clips, reported on test clips), the
    frontier figure and the summary."""
    d = steer_dir(study)
    return dict(grid=d / "grid.parquet", matched=d / "matched_wer.csv",
                figure=d / "fig_steering_frontier.png", summary=d / "summary.json")


def _compact(matched):
    """The chosen cells as a short table for the log: rates with their intervals."""
    cols = [c for c in ("label", "k", "alpha", "fpr", "fpr_lo", "fpr_hi", "hallucination_rate",
                        "wer", "within_wer_bound") if c in matched.columns]
    tab = matched[cols].copy()
    if {"fpr", "fpr_lo", "fpr_hi"} <= set(cols):
        tab["fpr"] = [f"{f:.2f} [{lo:.2f}, {hi:.2f}]" for f, lo, hi
                      in zip(tab["fpr"], tab["fpr_lo"], tab["fpr_hi"])]
        tab = tab.drop(columns=["fpr_lo", "fpr_hi"])
    return tab.to_string(index=False, float_format=lambda v: f"{v:.3g}")


def steer_run(study, subject, runtime):
    """Run the steering experiment at the last study layer."""
    import time

    from ..backbones import load_backbone
    from ..corpora import build_corpus, read_clip_index
    from ..io import atomic_path, write_json, write_parquet
    from ..steering import corpus_clip_sets, steering_experiment
    from ._stim_steps import backbone_spec, load_release, release_text

    opts = steer_options(study)
    out = steer_dir(study)
    layer = _layer(study)
    t0 = time.time()
    if _release(study) is not None:  # fails (missing weights) before any work
        sae, ident = load_release(study, layer)
        used = dict(source="release", text=release_text(ident), **ident)
    else:
        sae = study.paths.sae_dir(layer)
        used = dict(source="study", text=f"the study's SAE of layer {layer} (step 02_train_sae)",
                    layer=int(layer), folder=study.labels.label(sae))  # fmt: skip
    if opts["corpus"]:
        root = Path(opts["corpus"])
        index = read_clip_index(root / "index.parquet", verbose=False)
    else:
        root = out / "corpus"
        index = build_corpus(root, hours=opts["corpus_hours"], verbose=False)
    fit, test = corpus_clip_sets(index, root=root, n_music=opts["n_music"],
                                 n_sounds=opts["n_sounds"], n_speech=(0, opts["n_speech"][0]),
                                 random_state=0, verbose=False)
    bb = load_backbone(backbone_spec(study.manifest), verbose=False)
    res = steering_experiment(
        bb, fit, test, [layer], out / "run", saes={layer: sae},
        ks=opts["ks"], alphas={"sae": opts["sae_alphas"], "svector": opts["svector_alphas"]},
        presets=opts["presets"], max_new_tokens=opts["max_new_tokens"], verbose=False)
    outputs = steer_outputs(study, subject)
    write_parquet(res["grid"], outputs["grid"])
    with atomic_path(outputs["matched"]) as tmp:
        res["matched"].to_csv(tmp, index=False)
    Path(res["figure"]).replace(outputs["figure"])
    sizes = {k: int(len(v)) for k, v in {**fit, **test}.items()}
    write_json(dict(layer=int(layer), sae=used, sizes=sizes, skipped=res["skipped"],
                    wall_s=time.time() - t0, options=opts), outputs["summary"])
    if isinstance(runtime, dict):
        runtime["steer"] = time.time() - t0
    for sk in res["skipped"]:
        logger.warning(
            f"[steer] skipped: the fit set ({sk['source']}, {sk['n_fit']} clips) holds "
            f"{sk['n_false_detections']} false detections and {sk['n_rejections']} correct "
            f"rejections, needs >= {sk['needs']} of each; only the unsteered model was "
            "measured (pass more clips with --n-music/--n-sounds, or --corpus).")
    logger.info(f"[steer] layer {layer}, {used['text']} ({time.time() - t0:.0f} s), test clips "
                f"(full table: {outputs['matched'].name}):\n{_compact(res['matched'])}")
    return outputs
