"""The steering experiment on a clip index: clip sets (music and recorded sound effects
split into fit and test clips, held-out speech), small SAEs when none is given, the
grid, the matched-WER summary and the frontier figure."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from ..io import write_json
from ..utils import check_random_state, fill_doc, logger, verbose
from . import _docs  # noqa: F401

SPEECH_EXCLUDE = ("whisper", "croak", "spoken-letter")


def _draw(df, sizes, names, rng, what):
    if sum(sizes) > len(df):
        raise ValueError(
            f"{what}: asked for {sum(sizes)} clips ({dict(zip(names, sizes))}) but the clip "
            f"index has {len(df)}. Ask for fewer clips or build a larger corpus."
        )
    idx = rng.permutation(len(df))
    out, start = {}, 0
    for name, n in zip(names, sizes):
        out[name] = df.iloc[np.sort(idx[start : start + int(n)])]
        start += int(n)
    return out


@fill_doc
@verbose
def corpus_clip_sets(index, *, root=None, n_music=(30, 24), n_sounds=(48, 48),
                     n_speech=(16, 16), random_state=0, verbose=None):
    """Fit and test clip sets of the steering experiment from a clip index.

    Music (domain ``music``) and recorded sound effects (domain ``sounds`` with
    the label ``sound-effect``; synthetic noises and tones are never falsely
    detected, so they are left out) are split at random into clips the vectors
    are fitted on and held-out test clips; transcribed speech (at most 30 s,
    without the ``whisper``, ``croak`` and ``spoken-letter`` variants) into clips
    for SAE training and held-out test clips (TPR and WER). Clips are cut to
    their first 30 s.

    Parameters
    ----------
    index : pandas.DataFrame
        A clip index (:func:`neuro_sae.corpora.read_clip_index`).
    root : path-like | None
        Folder the paths are relative to (``None``: ``index.attrs["root"]``).
    n_music : tuple of int
        (fit, test) music clips.
    n_sounds : tuple of int
        (fit, test) sound-effect clips.
    n_speech : tuple of int
        (SAE training, test) speech clips (0 SAE-training clips when the SAEs
        are given: no ``speech_sae`` set).
    %(random_state)s
    %(verbose)s

    Returns
    -------
    fit_sets : dict of str to DataFrame
        ``music``, ``sounds`` (vector sources) and ``speech_sae`` (when asked
        for); columns
        ``id``, ``wave``, ``transcript``.
    test_sets : dict of str to DataFrame
        ``music_test``, ``sounds_test``, ``speech_test``.
    """
    import pandas as pd

    from ..io import read_audio

    rng = check_random_state(random_state)
    root = Path(root if root is not None else index.attrs["root"])
    labels = index["labels"].map(lambda lab: set(lab) if lab is not None else set())
    music = index[index["domain"] == "music"]
    sounds = index[(index["domain"] == "sounds") & labels.map(lambda s: "sound-effect" in s)]
    speech = index[(index["domain"] == "speech") & index["transcript"].notna()
                   & (index["duration"] <= 30)
                   & labels.map(lambda s: not set(SPEECH_EXCLUDE) & s)]
    sel = {**_draw(music, n_music, ["music", "music_test"], rng, "music"),
           **_draw(sounds, n_sounds, ["sounds", "sounds_test"], rng, "recorded sound effects"),
           **_draw(speech, n_speech, ["speech_sae", "speech_test"], rng, "transcribed speech")}
    sets = {}
    for name, df in sel.items():
        waves = [read_audio(root / p, verbose="WARNING")[0][: 30 * 16000].astype(np.float32)
                 for p in df["path"]]
        trans = list(df["transcript"]) if name.startswith("speech") else [None] * len(df)
        sets[name] = pd.DataFrame(dict(id=list(df["id"]), wave=waves, transcript=trans))
    logger.info("Clip sets: " + ", ".join(f"{k} {len(v)}" for k, v in sets.items()))
    fit = {k: sets[k] for k in ("music", "sounds", "speech_sae") if len(sets[k])}
    test = {k: sets[k] for k in ("music_test", "sounds_test", "speech_test")}
    return fit, test


def _check_recorded(folder, recorded, requested):
    """Refuse a saved steering SAE whose recorded settings differ from the request."""
    if recorded is None:
        raise ValueError(
            f"{folder} holds an SAE without recorded steering settings (cfg.json "
            "'metadata.steering_sae' is missing), so it cannot be told apart from one trained "
            f"with other settings; the request is {requested}. Delete {folder} to retrain it, "
            "or pass it through saes= to steer with it as it is."
        )
    for name, want in requested.items():
        have = recorded.get(name)
        if have != want:
            raise ValueError(
                f"Invalid value for the {name!r} parameter: the SAE saved in {folder} was "
                f"trained with {name}={have!r} (cfg.json 'metadata.steering_sae') but "
                f"{name}={want!r} is requested. Pass {name}={have!r} to reuse it, another "
                f"out_dir, or delete {folder} to retrain it."
            )


@fill_doc
@verbose
def train_steering_saes(backbone, data, out_dir, *, d_sae=2048, k=32, n_steps=400,
                        batch_size=512, lr=1e-3, n_threads=None, random_state=0,
                        verbose=None):
    """Small BatchTopK SAEs of the cached layers, trained on the fit clips' frames.

    For when no SAE of the backbone's layers exists: one SAE per layer of
    ``data`` on the valid frames of every fit set (non-speech and the speech
    clips set aside for it). A finished SAE is read back only when the settings
    recorded in its ``cfg.json`` (``metadata.steering_sae``: ``d_sae``, ``k``,
    ``n_steps``, ``batch_size``, ``lr``, ``seed``, ``layer``, ``backbone``,
    ``data_hash`` of the training frames) equal the request; otherwise it is
    refused with an error naming the setting.

    Parameters
    ----------
    backbone : Backbone
        The model (its name and revision go into ``cfg.json``).
    data : dict
        From :func:`prepare_steering`.
    out_dir : path-like
        SAEs go to ``<out_dir>/layer_<n>``.
    d_sae : int
        Dictionary size.
    k : int
        Active features per frame.
    n_steps : int
        Training steps.
    batch_size : int
        Frames per step.
    lr : float
        Adam learning rate.
    n_threads : int | None
        Torch threads of the training (``None``: torch's setting).
    %(random_state)s
    %(verbose)s

    Returns
    -------
    saes : dict of int to SparseAutoencoder
        Per layer.
    """
    from ..io import hash_array
    from ..sae import SAEConfig, TrainConfig, load_sae, train_sae

    seed = int(check_random_state(random_state).integers(2**31))
    saes = {}
    for n in data["layers"]:
        folder = Path(out_dir) / f"layer_{n}"
        frames = np.concatenate([f for s in data["fit_frames"][n].values()
                                 for f in s]).astype(np.float32)
        bs = int(min(batch_size, len(frames)))
        requested = dict(d_sae=int(d_sae), k=int(k), n_steps=int(n_steps), batch_size=bs,
                         lr=float(lr), seed=seed, layer=int(n), backbone=backbone.name,
                         data_hash=hash_array(frames))
        if (folder / "cfg.json").is_file():
            sae = load_sae(folder, verbose=False)
            _check_recorded(folder, sae.metadata.get("steering_sae"), requested)
            saes[n] = sae
            continue
        cfg = SAEConfig(d_in=backbone.d_model, d_sae=d_sae, k=k, backbone=backbone.name,
                        backbone_revision=backbone.revision, layer=n, seed=seed)
        tc = TrainConfig(n_steps=n_steps, batch_size=bs, lr=lr, threshold_beta=0.99)
        sae, hist = train_sae(frames, cfg, tc, random_state=seed, n_threads=n_threads,
                              verbose="WARNING")
        ev = float(hist["explained_variance"].iloc[-1]) if len(hist) else float("nan")
        logger.info(f"SAE of layer {n}: {len(frames)} frames, {n_steps} steps, "
                    f"explained variance {ev:.3f}")
        sae.save(folder, metadata=dict(trained_on="valid frames of the steering fit clips",
                                       n_frames=int(len(frames)), steering_sae=requested),
                 verbose=False)
        saes[n] = load_sae(folder, verbose=False)
    return saes


@fill_doc
@verbose
def steering_experiment(backbone, fit_sets, test_sets, layers, out_dir, *, saes=None,
                        ks=(10, 50), alphas=None, methods=None, sources=None,
                        presets=("paper",), max_new_tokens=224, batch_size=8, threshold=0.5,
                        max_wer_increase=0.01, tokens=None, tokenizer=None, sae_options=None,
                        random_state=0, verbose=None):
    """Unsteered pass, SAEs (given or trained), grid, chosen cells and figure.

    Each preset's and method's cell is chosen on the validation half of the
    held-out clips and reported on the other half with intervals
    (:func:`select_cells`).

    Parameters
    ----------
    backbone : Backbone
        A full Whisper model.
    fit_sets, test_sets : dict of str to DataFrame | None
        See :func:`prepare_steering` (e.g. from :func:`corpus_clip_sets`);
        ``None``: steer the finished unsteered pass in ``out_dir`` again
        (:func:`load_prepared`; its clips and layers).
    layers : list of int
        Layers scanned (with ``fit_sets=None``: which of the cached layers to
        steer, in this order).
    out_dir : path-like
        Output folder (resumable).
    saes : dict of int to SparseAutoencoder | path-like | None
        One SAE per layer; ``None``: :func:`train_steering_saes`.
    ks : list of int
        Numbers of SAE features.
    alphas : dict | None
        Strengths per method, or per preset of per method (``None``:
        ``PRESET_ALPHAS``: paper 0.5, 1, 2, 3; error-preserving SAE 0.03, 0.1,
        0.3 and S-vector 0.1, 0.3, 1).
    methods : list of str | None
        ``"sae"`` and/or ``"svector"`` (``None``: both).
    sources : list of str | None
        Vector sources (``None``: every non-speech fit set pooled, e.g.
        ``"music+sounds"``).
    presets : sequence of str
        ``"paper"`` (the paper's steering, the default) and/or
        ``"error-preserving"`` (ours), see :func:`steering_grid`.
    %(steer_max_new_tokens)s
    %(steer_batch_size)s
    %(steer_threshold)s
    max_wer_increase : float
        WER bound of the choice, on validation clips (0.01 = 1 point).
    %(steer_tokens)s
    tokenizer : transformers tokenizer | None | False
        See :func:`prepare_steering`.
    sae_options : dict | None
        Keywords of :func:`train_steering_saes`.
    %(random_state)s
    %(verbose)s

    Returns
    -------
    result : dict
        ``grid``, ``clips`` (per-clip rows with their ``split``), ``matched``
        (:func:`matched_wer`: the chosen cells on test clips), ``figure`` (path of
        ``fig_steering_frontier.png``), ``wall_s`` (per stage), ``skipped``
        (layers and sources with too few false detections or rejections in
        their fit clips, see :func:`steering_grid`; nothing is steered there);
        also written to ``out_dir`` (``grid.parquet``, ``matched_wer.csv``,
        ``summary.json``).
    """
    import matplotlib.pyplot as plt

    from ._grid import check_presets, load_prepared, prepare_steering, steering_grid
    from ._plot import plot_steering_frontier
    from ._select import matched_wer

    out_dir = Path(out_dir)
    presets = check_presets(presets)
    if methods is None:
        methods = ([m for m in alphas if m in ("sae", "svector")]
                   if isinstance(alphas, dict) and not set(alphas) & {"paper",
                                                                      "error-preserving"}
                   else ["sae", "svector"])
    methods = list(methods)

    wall = {}
    t0 = time.time()
    if fit_sets is None:  # steer a finished unsteered pass again
        data = load_prepared(out_dir, verbose=False)
        sets = data["baseline"].groupby("set", sort=False)["id"].size()
        sizes = {str(k): int(v) for k, v in sets.items()}
        fit_names = data["fit_sets"]
    else:
        data = prepare_steering(backbone, fit_sets, test_sets, layers, out_dir,
                                tokens=tokens, tokenizer=tokenizer, threshold=threshold,
                                batch_size=batch_size, max_new_tokens=max_new_tokens,
                                verbose=False)
        sizes = {n: int(len(c)) for n, c in {**fit_sets, **test_sets}.items()}
        fit_names = list(fit_sets)
    wall["unsteered_pass"] = time.time() - t0
    if sources is None:
        sources = ["+".join(n for n in fit_names if not n.startswith("speech"))]
    t0 = time.time()
    if saes is None and "sae" in methods:
        saes = train_steering_saes(backbone, data, out_dir / "saes", random_state=random_state,
                                   **(sae_options or {}))
    wall["saes"] = time.time() - t0
    t0 = time.time()
    grid = steering_grid(backbone, data, saes or {}, ks=list(ks), alphas=alphas,
                         methods=methods, sources=sources, presets=presets,
                         tokens=tokens, tokenizer=tokenizer, batch_size=batch_size,
                         layers=list(layers) if fit_sets is None else None,
                         random_state=random_state)
    wall["grid"] = time.time() - t0
    matched = matched_wer(grid, max_wer_increase=max_wer_increase, random_state=random_state,
                          verbose=False)
    matched.to_csv(out_dir / "matched_wer.csv", index=False)
    fig = plot_steering_frontier(grid, show=False, verbose=False)
    fig_path = out_dir / "fig_steering_frontier.png"
    fig.savefig(fig_path, dpi=120)
    plt.close(fig)
    write_json(dict(backbone=backbone.name, layers=list(layers), ks=list(ks), alphas=alphas,
                    sources=sources, presets=presets, max_new_tokens=max_new_tokens,
                    n_truncated=int(grid["n_truncated"].sum()),
                    methods=methods, sizes=sizes, wall_s=wall,
                    skipped=grid.attrs.get("skipped", [])), out_dir / "summary.json")
    return dict(grid=grid, clips=grid.attrs["clips"], matched=matched, figure=fig_path,
                wall_s=wall,
                skipped=grid.attrs.get("skipped", []))
