"""The steering experiment: an unsteered pass that caches the layers, then one grid
over layer x method x vector source x k x alpha x test set, resumable cell by cell."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..io import hash_config, write_json, write_parquet
from ..utils import check_option, fill_doc, logger, progress_bar, validate_type, verbose
from . import _docs  # noqa: F401
from ._detect import backbone_tokens, decode_clips, silence_rule, word_error_rate
from ._encode import check_clips, encoder_states, n_valid, run_from_layer
from ._vectors import (
    METHODS,
    check_sae,
    feature_f1,
    pool_codes,
    rank_features,
    s_vector,
    sae_vector,
    steering_fn,
)

# fewest falsely detected (and correctly rejected) fit clips a vector is fitted on:
# the cross-validated F1 needs 2 of each in every training fold of 3
MIN_PER_CLASS = 3

GRID_COLUMNS = ("preset", "layer", "method", "source", "k", "alpha", "test_set", "kind",
                "n_clips", "fpr", "hallucination_rate", "tpr", "wer", "n_truncated")

#: how each preset steers (issue 22): the paper's replacement ``x_hat(f + alpha s)``
#: on every frame (padding included) with the SAE spliced in as its baseline, and ours,
#: which keeps the SAE's error term (alpha = 0 is plain Whisper) on valid frames only
PRESETS = {
    "paper": dict(keep_error=False, scale="absolute", frames="all", baseline="splice"),
    "error-preserving": dict(keep_error=True, scale="frame", frames="valid",
                             baseline="none"),
}
#: default strengths per preset and method (the paper: 0.5-3)
PRESET_ALPHAS = {
    "paper": {"sae": [0.5, 1.0, 2.0, 3.0], "svector": [0.5, 1.0, 2.0, 3.0]},
    "error-preserving": {"sae": [0.03, 0.1, 0.3], "svector": [0.1, 0.3, 1.0]},
}


def _text_fn(backbone, tokenizer):
    if tokenizer is False:
        return lambda ids: " ".join(str(i) for i in ids)
    if tokenizer is None:
        for key in ("converted", "source"):
            path = backbone.provenance.get(key)
            if path and (Path(path) / "tokenizer.json").is_file():
                from transformers import AutoTokenizer

                tokenizer = AutoTokenizer.from_pretrained(str(path))
                break
        else:
            return lambda ids: " ".join(str(i) for i in ids)
    return lambda ids: tokenizer.decode(ids, skip_special_tokens=True).strip()


def _set_kind(clips, name):
    if "transcript" not in clips.columns or clips["transcript"].isna().all():
        return "nonspeech"
    if clips["transcript"].notna().all():
        return "speech"
    raise ValueError(
        f"The test set {name!r} mixes clips with and without transcripts; a test set is "
        "either speech (every clip transcribed: TPR and WER) or non-speech (none: FPR and "
        "hallucination rate). Split it."
    )


def _measure(backbone, tokens, text, enc_out, kind, max_new_tokens):
    """Per-clip measures from the encoder output of a batch."""
    if kind == "fit":  # the vectors need only the false detections: no decoding
        nsp, _, _ = decode_clips(backbone, enc_out, tokens)
        return nsp, np.full(len(nsp), np.nan), [None] * len(nsp), np.zeros(len(nsp), bool)
    if kind == "speech":
        decode = np.ones(enc_out.shape[0], bool)
        nsp, ids, avg = decode_clips(backbone, enc_out, tokens, decode=decode,
                                     max_new_tokens=max_new_tokens)
    else:  # decoding decides only for clips the no-speech probability alone would drop
        nsp, _, _ = decode_clips(backbone, enc_out, tokens)
        decode = nsp > 0.6
        ids, avg = [None] * len(nsp), np.full(len(nsp), np.nan)
        if decode.any():
            _, ids, avg = decode_clips(backbone, enc_out, tokens, decode=decode,
                                       max_new_tokens=max_new_tokens)
    texts = [None if i is None else text(i) for i in ids]
    # a greedy sequence that reached the budget was cut (no end of text was generated)
    truncated = np.array([i is not None and len(i) >= max_new_tokens for i in ids], bool)
    return nsp, avg, texts, truncated


def _log_truncated(df, max_new_tokens, where):
    cut = df[df["truncated"].astype(bool)]
    if len(cut):
        n_decoded = int(df["transcript"].notna().sum())
        logger.warning(
            f"{len(cut)} of {n_decoded} decoded clips of {where} hit the decoding budget of "
            f"max_new_tokens={max_new_tokens} tokens (ids {list(map(str, cut['id'][:5]))}"
            f"{' ...' if len(cut) > 5 else ''}): their transcripts are cut, so WER and the "
            "silence rule see only their start. Raise max_new_tokens (openai-whisper: 224) or "
            "cut the clips; they are flagged in the 'truncated' column.")


def _rows(ids, nsp, avg, texts, kind, threshold, truncated=None):
    import pandas as pd

    df = pd.DataFrame(dict(id=list(ids), no_speech_prob=nsp, avg_logprob=avg, transcript=texts))
    df["truncated"] = (np.zeros(len(df), bool) if truncated is None
                       else np.asarray(truncated, bool))
    df["detected"] = df["no_speech_prob"] < threshold
    if kind == "fit":  # not decoded: the silence rule is not evaluated on fit clips
        df["hallucination"] = np.nan
    else:
        df["hallucination"] = ~silence_rule(nsp, avg) if kind == "nonspeech" else False
    return df


@fill_doc
@verbose
def prepare_steering(backbone, fit_sets, test_sets, layers, out_dir, *, tokens=None,
                     tokenizer=None, threshold=0.5, batch_size=8, max_new_tokens=224,
                     verbose=None):
    """Unsteered pass over the fit and test clips; caches what the grid needs.

    Resumable: finished parts are read back.

    Parameters
    ----------
    backbone : Backbone
        A full Whisper model.
    fit_sets : dict of str to DataFrame
        Non-speech clips the vectors are fitted on (columns ``id``, ``wave``),
        one set per vector source.
    test_sets : dict of str to DataFrame
        Held-out clips: non-speech sets (no ``transcript``) and speech sets
        (every clip with a ``transcript``).
    layers : list of int
        Layers to cache.
    out_dir : path-like
        Output folder.
    %(steer_tokens)s
    tokenizer : transformers tokenizer | None | False
        Turns token ids into text (``None``: the backbone's folder; ``False``:
        ids joined by spaces).
    %(steer_threshold)s
    %(steer_batch_size)s
    %(steer_max_new_tokens)s
    %(verbose)s

    Returns
    -------
    data : dict
        ``baseline`` (per-clip table: ``set``, ``role``, ``kind``, ``id``,
        ``no_speech_prob``, ``detected``, ``avg_logprob``, ``transcript``,
        ``hallucination``, ``reference``; fit clips are not decoded: their
        ``avg_logprob`` and ``hallucination`` are NaN), ``fit_frames`` (layer ->
        set -> list of valid frames per clip), ``out_dir``, ``layers``,
        ``test_sets``.
    """
    import pandas as pd

    _check_decoder_backbone(backbone)
    tokens = backbone_tokens(backbone, tokens)
    text = _text_fn(backbone, tokenizer)
    layers = backbone.check_layers(layers, verbose=False)
    out_dir = Path(out_dir)
    for name, c in {**fit_sets, **test_sets}.items():
        check_clips(c, name)
    overlap = set(fit_sets) & set(test_sets)
    if overlap:
        raise ValueError(f"Set names {sorted(overlap)} are both fit and test sets; rename one.")
    config = dict(backbone=backbone.name, revision=backbone.revision, layers=layers,
                  threshold=threshold, max_new_tokens=max_new_tokens, prompt=list(tokens.prompt),
                  sets={n: list(map(str, c["id"])) for n, c in {**fit_sets, **test_sets}.items()})
    key = hash_config(config)
    cfg_file = out_dir / "prepare.json"
    if cfg_file.is_file() and json.loads(cfg_file.read_text())["hash"] != key:
        raise ValueError(
            f"{out_dir} holds a steering run with other clips, layers or settings "
            f"({cfg_file}); pass a new out_dir or delete it."
        )
    write_json(dict(hash=key, **config), cfg_file)
    parts = []
    fit_frames = {n: {} for n in layers}
    roles = [(n, c, "fit") for n, c in fit_sets.items()] + [
        (n, c, "test") for n, c in test_sets.items()]
    n_batches = sum(-(-len(c) // batch_size) for _, c, _ in roles)
    bar = progress_bar(total=n_batches, desc="unsteered pass", unit="batch")
    for name, clips, role in roles:
        kind = "nonspeech" if role == "fit" else _set_kind(clips, name)
        part = out_dir / "baseline" / f"{name}.parquet"
        fit_file = out_dir / "fit" / f"{name}.npz"
        done = part.is_file() and (role == "test" or fit_file.is_file())
        if done and role == "test":
            done = all((out_dir / "cache" / f"layer{n}" / f"{name}.npy").is_file()
                       for n in layers)
        if done:
            parts.append(pd.read_parquet(part))
            if role == "fit":
                with np.load(fit_file) as z:
                    for n in layers:
                        fr, off = z[f"frames{n}"], z["offsets"]
                        fit_frames[n][name] = [fr[a:b] for a, b in zip(off[:-1], off[1:])]
            bar.update(-(-len(clips) // batch_size))
            continue
        rows, frames, cache = [], {n: [] for n in layers}, {n: [] for n in layers}
        for start in range(0, len(clips), batch_size):
            sub = clips.iloc[start : start + batch_size]
            waves = [np.asarray(w, np.float32) for w in sub["wave"]]
            valid = [n_valid(backbone, w) for w in waves]
            states, enc_out = encoder_states(backbone, waves, layers)
            how = "fit" if role == "fit" else kind
            nsp, avg, texts, cut = _measure(backbone, tokens, text, enc_out, how,
                                            max_new_tokens)
            rows.append(_rows(sub["id"], nsp, avg, texts, how, threshold, cut))
            for n in layers:
                st = states[n].float().cpu().numpy()
                if role == "fit":
                    frames[n] += [st[i, :v] for i, v in enumerate(valid)]
                else:
                    cache[n].append(st)
            bar.update(1)
        df = pd.concat(rows, ignore_index=True)
        _log_truncated(df, max_new_tokens, f"the unsteered pass, set {name!r}")
        df.insert(0, "kind", kind)
        df.insert(0, "role", role)
        df.insert(0, "set", name)
        df["reference"] = (list(clips["transcript"]) if "transcript" in clips.columns
                           else None)
        df["n_valid"] = [n_valid(backbone, np.asarray(w)) for w in clips["wave"]]
        if role == "fit":
            off = np.cumsum([0] + [len(f) for f in frames[layers[0]]])
            from ..io import save_npz

            save_npz(fit_file, offsets=off,
                     **{f"frames{n}": np.concatenate(frames[n]) for n in layers})
            for n in layers:
                fit_frames[n][name] = frames[n]
        else:
            for n in layers:
                _save_npy(out_dir / "cache" / f"layer{n}" / f"{name}.npy",
                          np.concatenate(cache[n]))
        write_parquet(df, part)
        parts.append(df)
    bar.close()
    baseline = pd.concat(parts, ignore_index=True)
    return dict(baseline=baseline, fit_frames=fit_frames, out_dir=out_dir, layers=layers,
                test_sets={n: _set_kind(c, n) for n, c in test_sets.items()},
                fit_sets=list(fit_sets), threshold=threshold, max_new_tokens=max_new_tokens)


@fill_doc
@verbose
def load_prepared(out_dir, *, verbose=None):
    """Read back the unsteered pass of :func:`prepare_steering` without the clips.

    The grid needs only what the pass cached (per-clip baseline, fit frames,
    test-clip layer states), so a finished pass can be steered again after its
    audio has moved or changed.

    Parameters
    ----------
    out_dir : path-like
        The ``out_dir`` of a finished :func:`prepare_steering`.
    %(verbose)s

    Returns
    -------
    data : dict
        As returned by :func:`prepare_steering`.
    """
    import pandas as pd

    out_dir = Path(out_dir)
    cfg_file = out_dir / "prepare.json"
    if not cfg_file.is_file():
        raise FileNotFoundError(
            f"{cfg_file} does not exist: {out_dir} holds no unsteered pass; run "
            "prepare_steering (or analyses/08_steering.py without --from-prepared) first."
        )
    cfg = json.loads(cfg_file.read_text())
    layers = [int(n) for n in cfg["layers"]]
    parts, fit_frames, fit_sets, test_sets = [], {n: {} for n in layers}, [], {}
    for name in cfg["sets"]:
        part = out_dir / "baseline" / f"{name}.parquet"
        if not part.is_file():
            raise FileNotFoundError(
                f"{part} is missing: the unsteered pass in {out_dir} did not finish; rerun it "
                "with the clips."
            )
        df = pd.read_parquet(part)
        parts.append(df)
        if df["role"].iloc[0] == "fit":
            fit_sets.append(name)
            with np.load(out_dir / "fit" / f"{name}.npz") as z:
                off = z["offsets"]
                for n in layers:
                    fr = z[f"frames{n}"]
                    fit_frames[n][name] = [fr[a:b] for a, b in zip(off[:-1], off[1:])]
        else:
            test_sets[name] = df["kind"].iloc[0]
    return dict(baseline=pd.concat(parts, ignore_index=True), fit_frames=fit_frames,
                out_dir=out_dir, layers=layers, test_sets=test_sets, fit_sets=fit_sets,
                threshold=cfg["threshold"], max_new_tokens=cfg["max_new_tokens"])


def _save_npy(fname, arr):
    from ..io import atomic_path

    with atomic_path(fname) as tmp:
        with open(tmp, "wb") as fid:
            np.save(fid, arr, allow_pickle=False)


def _check_decoder_backbone(backbone):
    from ._detect import _check_decoder

    _check_decoder(backbone)
    return backbone


def _summary(df, kind):
    """Grid measures of one cell on one test set from its per-clip rows."""
    out = dict(n_clips=len(df), fpr=np.nan, hallucination_rate=np.nan, tpr=np.nan, wer=np.nan,
               n_truncated=int(df["truncated"].fillna(False).astype(bool).sum())
               if "truncated" in df.columns else 0)
    if kind == "nonspeech":
        out["fpr"] = float(df["detected"].mean())
        out["hallucination_rate"] = float(df["hallucination"].mean())
    else:
        out["tpr"] = float(df["detected"].mean())
        out["wer"] = word_error_rate(list(df["reference"]), list(df["transcript"].fillna("")),
                                     verbose=False)
    return out


def _alphas(alphas, preset, method):
    """Strengths of a preset and method: ``alphas`` may be keyed by preset, then method."""
    if alphas is None:
        alphas = PRESET_ALPHAS[preset]
    if isinstance(alphas, dict) and set(alphas) & set(PRESETS):
        if preset not in alphas:
            raise ValueError(f"Invalid value for the 'alphas' parameter: it has no entry for "
                             f"the preset {preset!r} (it has {sorted(alphas)}); give one per "
                             "preset, or one per method for every preset.")
        alphas = alphas[preset]
    if isinstance(alphas, dict):
        if method not in alphas:
            raise ValueError(f"Invalid value for the 'alphas' parameter: it has no entry for "
                             f"the method {method!r} (it has {sorted(alphas)}); give one per "
                             "method.")
        return [float(a) for a in alphas[method]]
    return [float(a) for a in alphas]


def check_presets(presets):
    """Validate a sequence of steering presets (``"paper"``, ``"error-preserving"``)."""
    presets = [presets] if isinstance(presets, str) else list(presets)
    if not presets:
        raise ValueError("Invalid value for the 'presets' parameter: it is empty; pass e.g. "
                         "('paper',) or ('paper', 'error-preserving').")
    for p in presets:
        check_option("presets", p, tuple(PRESETS))
    return presets


@fill_doc
@verbose
def sae_fingerprint(sae, *, mode=None, verbose=None):
    """Content hash of an SAE's weights and its encode mode (the steering cache key).

    Parameters
    ----------
    sae : SparseAutoencoder
        The SAE.
    mode : str | None
        Encoding mode asked for (``None``: the SAE's inference mode, or top-k
        when it has no learned threshold).
    %(verbose)s

    Returns
    -------
    fingerprint : dict
        ``weights`` (sha256 of every tensor of the state dict, names included),
        ``mode`` (the encode mode the steering uses), ``architecture``,
        ``d_sae``, ``k``, ``normalize_input``.
    """
    from ..io import hash_array
    from ._vectors import _mode

    state = sae.state_dict()
    names = sorted(state)
    digest = hash_array(np.frombuffer("\n".join(names).encode(), np.uint8),
                        *[state[n].detach().to("cpu").float().numpy() for n in names])
    resolved = _mode(sae, mode) or sae.inference_mode
    return dict(weights=digest, mode=str(resolved), architecture=type(sae).__name__,
                d_sae=int(sae.cfg.d_sae), k=int(sae.cfg.k),
                normalize_input=bool(sae.cfg.normalize_input))


def _splice_fn(sae):
    """The SAE spliced in: the layer replaced by its reconstruction ``x_hat(f(x))``."""
    import torch

    from ._vectors import _mode, _norms

    def fn(x):
        with torch.no_grad():
            x32 = x.to(device=sae.device, dtype=torch.float32)
            codes = sae.encode(x32, _mode(sae, None))
            return sae.decode(codes, scale=_norms(x32, sae)).to(x.dtype)

    return fn


@fill_doc
@verbose
def steering_grid(backbone, data, saes, *, ks=(10, 100), alphas=None, methods=METHODS,
                  sources=None, presets=("paper",), pooling="mean", C=1.0, tokens=None,
                  tokenizer=None, batch_size=8, layers=None, random_state=0, verbose=None):
    """The steering grid: preset x layer x method x vector source x k x alpha x test set.

    For every layer and source the unsteered labels (a non-speech fit clip is a
    false detection when ``no_speech_prob < threshold``) give the SAE vector
    (:func:`rank_features`, :func:`sae_vector`) and the S-vector
    (:func:`s_vector`); every cell steers the held-out test clips from the
    cached layer (:func:`run_from_layer`) and measures FPR and hallucination
    rate (non-speech sets), TPR and WER (speech sets). Each finished cell is
    written to ``<out_dir>/cells/`` under a key of its settings, its vector,
    the unsteered pass and (SAE cells) the SAE's content hash and encode mode
    (:func:`sae_fingerprint`), and read back on a rerun (resumable).

    Presets (``PRESETS``):

    - ``"paper"`` (the paper's steering): the layer becomes
      ``x_hat(f(x) + alpha s)`` (no error term) on every frame of the 30 s
      window, padding included; its baseline is the SAE spliced in at the layer
      (``method="splice"``, the reconstruction ``x_hat(f(x))``, one cell per
      layer); the S-vector is added as the paper's ``x + alpha u``. Default
      alphas 0.5, 1, 2, 3.
    - ``"error-preserving"`` (error-preserving steering, ours): the SAE's error
      term is kept, ``x + x_hat(f + alpha s) - x_hat(f)`` (alpha = 0 is plain
      Whisper, the baseline), on valid frames only; the S-vector is added in
      units of each frame's norm, ``x + alpha ||x|| u``. Default alphas SAE
      0.03, 0.1, 0.3; S-vector 0.1, 0.3, 1.

    Parameters
    ----------
    backbone : Backbone
        The model of :func:`prepare_steering`.
    data : dict
        From :func:`prepare_steering`.
    saes : dict of int to SparseAutoencoder | path-like
        One SAE per layer (checked against its ``cfg.json`` layer and backbone).
    ks : list of int
        Numbers of SAE features (each at most the SAE's ``d_sae``).
    alphas : list of float | dict | None
        Strengths: a list, a dict per method, or a dict per preset of dicts per
        method (``None``: ``PRESET_ALPHAS``).
    methods : sequence of str
        ``"sae"`` and/or ``"svector"``.
    sources : list of str | None
        Fit sets to build vectors from (``None``: each fit set); ``"a+b"`` pools
        the fit sets ``a`` and ``b``.
    presets : sequence of str
        ``"paper"`` and/or ``"error-preserving"`` (see above).
    pooling : str
        Clip pooling of the codes for the regression (``"mean"`` or ``"max"``).
    C : float
        Inverse L2 penalty of the regression.
    %(steer_tokens)s
    tokenizer : transformers tokenizer | None | False
        See :func:`prepare_steering`.
    %(steer_batch_size)s
    layers : list of int | None
        The cached layers to steer, in this order (``None``: all of ``data``).
    %(random_state)s
    %(verbose)s

    Returns
    -------
    grid : pandas.DataFrame
        Tidy, one row per cell and test set (``GRID_COLUMNS``); the unsteered
        model is the row with ``method="none"``, ``alpha=0``, ``preset=""``;
        ``n_truncated`` counts the clips whose greedy transcript hit the
        decoding budget. Also written to ``<out_dir>/grid.parquet``, the
        per-clip rows (with their validation/test ``split``,
        :func:`split_clips`) to ``clips.parquet``, the F1-vs-k tables to
        ``feature_f1.parquet`` and the vectors to ``vectors.json``. A layer and
        source whose fit clips hold fewer than ``MIN_PER_CLASS`` (3) false
        detections or correct rejections gets no vector and no cells: it is
        logged as a warning and listed in ``grid.attrs["skipped"]`` and
        ``skipped.json`` (dicts with ``layer``, ``source``, ``n_fit``,
        ``n_false_detections``, ``n_rejections``, ``needs``); the unsteered
        rows are still measured. ``grid.attrs["clips"]`` holds the per-clip
        rows.
    """
    import pandas as pd
    import torch

    from ._select import split_clips

    tokens = backbone_tokens(backbone, tokens)
    text = _text_fn(backbone, tokenizer)
    presets = check_presets(presets)
    out_dir = Path(data["out_dir"])
    base = data["baseline"]
    sources = list(data["fit_sets"]) if sources is None else list(sources)
    for s in sources:
        for part in str(s).split("+"):
            check_option("sources", part, data["fit_sets"])
    for m in methods:
        check_option("methods", m, METHODS)
    validate_type(saes, dict, "saes")
    if layers is None:
        layers = data["layers"]
    for n in layers:
        if n not in data["layers"]:
            raise ValueError(
                f"Invalid value for the 'layers' parameter: layer {n} was not cached by the "
                f"unsteered pass (it cached layers {data['layers']}); pick among them."
            )
    loaded, prints = {}, {}
    for n in layers:
        if "sae" in methods:
            if n not in saes:
                raise ValueError(
                    f"No SAE for layer {n} in saes (it has layers {sorted(saes)}); pass one SAE "
                    "per steered layer."
                )
            loaded[n] = check_sae(saes[n], backbone, n, verbose=False)
            prints[n] = sae_fingerprint(loaded[n], verbose=False)
            for k in ks:
                from ._vectors import _check_k

                _check_k(k, loaded[n])
    threshold, mnt = data["threshold"], data["max_new_tokens"]
    prep_hash = json.loads((out_dir / "prepare.json").read_text())["hash"]
    cells_dir = out_dir / "cells"
    test = base[base["role"] == "test"]
    clip_parts, f1_parts, vectors = [], [], []
    # the unsteered row
    for name in data["test_sets"]:
        df = test[test["set"] == name].copy()
        df = df.assign(preset="", layer=0, method="none", source="", k=np.nan, alpha=0.0)
        clip_parts.append(df)
    jobs, skipped = [], []
    if "sae" in methods and "paper" in presets:  # the paper's baseline: the SAE spliced in
        for n in layers:
            jobs.append(("paper", n, "splice", "", None, 0.0, None))
    for n in layers:
        for src in sources:
            parts = src.split("+")
            y = np.concatenate([base[(base["role"] == "fit") & (base["set"] == p)]
                                ["detected"].to_numpy() for p in parts]).astype(bool)
            n_pos, n_neg = int(y.sum()), int((~y).sum())
            if min(n_pos, n_neg) < MIN_PER_CLASS:
                skipped.append(dict(layer=int(n), source=src, n_fit=len(y),
                                    n_false_detections=n_pos, n_rejections=n_neg,
                                    needs=MIN_PER_CLASS))
                logger.warning(
                    f"Steering skipped at layer {n}, source {src!r}: the fit set holds "
                    f"{n_pos} false detections and {n_neg} correct rejections among {len(y)} "
                    f"clips, needs >= {MIN_PER_CLASS} of each; add fit clips (music, recorded "
                    "sound effects) to steer.")
                continue
            frames = [f for p in parts for f in data["fit_frames"][n][p]]
            if "sae" in methods:
                pooled = pool_codes(loaded[n], frames, pooling=pooling, verbose=False)
                beta, order = rank_features(pooled, y, C=C, random_state=random_state,
                                            verbose=False)
                f1 = feature_f1(pooled, y, list(ks), C=C, random_state=random_state,
                                verbose=False)
                f1_parts.append(f1.assign(layer=n, source=src))
                for k in ks:
                    vec = sae_vector(beta, order, k, loaded[n], layer=n, source=src,
                                     verbose=False)
                    vectors.append(dict(layer=n, source=src, method="sae", k=int(k),
                                        features=list(vec.features), signs=list(vec.signs)))
                    for p in presets:
                        for a in _alphas(alphas, p, "sae"):
                            jobs.append((p, n, "sae", src, int(k), a, vec))
            if "svector" in methods:
                acts = np.stack([f.mean(0) for f in frames])
                vec = s_vector(acts, y, layer=n, source=src, verbose=False)
                vectors.append(dict(layer=n, source=src, method="svector",
                                    direction=list(vec.direction)))
                for p in presets:
                    for a in _alphas(alphas, p, "svector"):
                        jobs.append((p, n, "svector", src, None, a, vec))
    if f1_parts:
        write_parquet(pd.concat(f1_parts, ignore_index=True), out_dir / "feature_f1.parquet")
    write_json(vectors, out_dir / "vectors.json")
    write_json(skipped, out_dir / "skipped.json")
    n_all = int(backbone.encoder.config.max_source_positions)
    for preset, n, method, src, k, a, vec in progress_bar(jobs, desc="steering grid",
                                                          unit="cell"):
        how = PRESETS[preset]
        cfg = dict(preset=preset, layer=n, method=method, source=src, k=k, alpha=a,
                   keep_error=how["keep_error"], frames=how["frames"], pooling=pooling, C=C,
                   prepare=prep_hash)
        if method == "svector":
            cfg.update(scale=how["scale"], vector=list(vec.direction))
        else:  # the SAE's content and encode mode: another SAE is another cell
            cfg.update(sae=prints[n])
            if vec is not None:
                cfg.update(vector=list(vec.features), signs=list(vec.signs))
        fname = cells_dir / f"{hash_config(cfg)}.parquet"
        if fname.is_file():
            clip_parts.append(pd.read_parquet(fname))
            continue
        if method == "splice":
            fn = _splice_fn(loaded[n])
        else:
            fn = steering_fn(vec, a, sae=loaded.get(n), keep_error=how["keep_error"],
                             scale=how["scale"], verbose=False)
        rows = []
        for name, kind in data["test_sets"].items():
            df = test[test["set"] == name]
            states = np.load(out_dir / "cache" / f"layer{n}" / f"{name}.npy", mmap_mode="r")
            for start in range(0, len(df), batch_size):
                sub = df.iloc[start : start + batch_size]
                hidden = torch.from_numpy(np.array(states[start : start + len(sub)]))
                valid = ([n_all] * len(sub) if how["frames"] == "all"
                         else list(sub["n_valid"]))
                enc_out = run_from_layer(backbone, hidden, n, fn, valid)
                nsp, avg, texts, cut = _measure(backbone, tokens, text, enc_out, kind, mnt)
                r = _rows(sub["id"], nsp, avg, texts, kind, threshold, cut)
                r.insert(0, "kind", kind)
                r.insert(0, "set", name)
                r["reference"] = list(sub["reference"])
                rows.append(r)
        cell = pd.concat(rows, ignore_index=True).assign(
            preset=preset, layer=n, method=method, source=src,
            k=np.nan if k is None else float(k), alpha=a)
        _log_truncated(cell, mnt, f"the cell {preset} {method} layer {n} k={k} alpha={a}")
        write_parquet(cell, fname)
        clip_parts.append(cell)
        logger.debug(f"cell {preset} {method} L{n} {src} k={k} alpha={a} done")
    clips = pd.concat(clip_parts, ignore_index=True)
    clips["split"] = split_clips(clips, random_state=random_state, verbose=False)
    grid = summarise(clips)
    clips = clips.drop(columns=["role", "n_valid"], errors="ignore")
    write_parquet(clips, out_dir / "clips.parquet")
    write_parquet(grid, out_dir / "grid.parquet")
    grid.attrs["skipped"] = skipped
    grid.attrs["clips"] = clips
    return grid


@fill_doc
@verbose
def summarise(clips, *, verbose=None):
    """The tidy grid from per-clip rows.

    Parameters
    ----------
    clips : pandas.DataFrame
        Per-clip rows of the cells (``preset``, ``layer``, ``method``,
        ``source``, ``k``, ``alpha``, ``set``, ``kind``, ``detected``,
        ``hallucination``, ``transcript``, ``reference``).
    %(verbose)s

    Returns
    -------
    grid : pandas.DataFrame
        One row per cell and test set (all its held-out clips, validation and
        test), columns ``GRID_COLUMNS``.
    """
    import pandas as pd

    clips = clips.copy()
    if "preset" not in clips.columns:
        clips["preset"] = ""
    clips["preset"] = clips["preset"].fillna("")
    keys = ["preset", "layer", "method", "source", "k", "alpha", "set", "kind"]
    rows = []
    for vals, df in clips.groupby(keys, dropna=False, sort=True):
        row = dict(zip(keys, vals))
        row.update(_summary(df, row["kind"]))
        rows.append(row)
    grid = pd.DataFrame(rows).rename(columns={"set": "test_set"})
    return grid[list(GRID_COLUMNS)]


@fill_doc
@verbose
def cell_table(grid, *, verbose=None):
    """One row per cell: mean FPR and hallucination rate over the non-speech
    test sets, TPR and WER of the speech sets (mean over speech sets).

    Descriptive only: these rates pool validation and test clips, so a cell
    must not be chosen on them (use :func:`select_cells`).

    Parameters
    ----------
    grid : pandas.DataFrame
        From :func:`steering_grid`.
    %(verbose)s

    Returns
    -------
    cells : pandas.DataFrame
        Columns ``preset``, ``layer``, ``method``, ``source``, ``k``,
        ``alpha``, ``fpr``, ``hallucination_rate``, ``tpr``, ``wer``.
    """
    grid = grid.copy()
    if "preset" not in grid.columns:
        grid["preset"] = ""
    keys = ["preset", "layer", "method", "source", "k", "alpha"]
    agg = grid.groupby(keys, dropna=False)[["fpr", "hallucination_rate", "tpr", "wer"]].mean()
    return agg.reset_index()
