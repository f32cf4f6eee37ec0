"""Downstream effect of splicing an SAE into its backbone.

The layer's frames are replaced (:func:`neuro_sae.backbones.splice`) by the
SAE's reconstruction, by zeros (zero ablation) or by the layer's mean frame
(mean ablation), and the model's behaviour is compared with the clean model:

- Whisper: word error rate (jiwer) of the greedy transcript and the decoder's
  cross-entropy (nats per text token, teacher-forced) on a reference
  transcript (:func:`whisper_splice_metrics`);
- any encoder (HuBERT, Whisper): accuracy of a linear probe
  (scikit-learn ``LogisticRegression``) on frame labels read at a layer at or
  above the spliced one (:func:`probe_splice_accuracy`).

Only valid (non-padding) frames are replaced; Whisper's padding frames are
left untouched.
"""

from __future__ import annotations

import math
import re

import numpy as np

from ..utils import check_option, fill_doc, logger, validate_type, verbose

CONDITIONS = ("clean", "sae", "zero", "mean")


def _check_waves(waves):
    if isinstance(waves, np.ndarray) and waves.ndim == 1:
        waves = [waves]
    validate_type(waves, (list, tuple), "waves")
    out = []
    for i, w in enumerate(waves):
        w = np.asarray(w, dtype=np.float32)
        if w.ndim != 1 or w.size == 0:
            raise ValueError(
                f"waves[{i}] must be a non-empty 1-D 16 kHz waveform, got shape {w.shape}."
            )
        out.append(w)
    if not out:
        raise ValueError("waves is empty; pass at least one waveform.")
    return out


def _check_conditions(conditions):
    validate_type(conditions, (list, tuple), "conditions")
    for c in conditions:
        check_option("conditions", c, CONDITIONS)
    return list(conditions)


def _n_valid(backbone, wave, n_frames):
    """Number of frames of the encoder output that hold audio (the rest is padding)."""
    return min(n_frames, max(1, math.ceil(len(wave) / backbone.sfreq * backbone.frame_rate)))


def _layer_frames(backbone, layer, wave):
    """(valid frames of ``layer``, shape (n, d), mask over the full output)."""
    import torch

    with torch.inference_mode():
        inputs = backbone.prepare([wave])
        hidden = backbone.forward_layers(inputs, [layer])[layer][0]
    n = _n_valid(backbone, wave, hidden.shape[0]) if backbone.kind == "whisper" else hidden.shape[0]
    mask = np.zeros(hidden.shape[0], dtype=bool)
    mask[:n] = True
    return hidden[:n].float(), mask


def _replacements(reconstruct, mean):
    import torch

    out = {"sae": reconstruct, "zero": torch.zeros_like}
    if mean is not None:
        out["mean"] = lambda x: mean.to(device=x.device, dtype=x.dtype).expand_as(x).clone()
    return out


def _layer_mean(backbone, layer, waves, mean):
    import torch

    if mean is not None:
        mean = torch.as_tensor(np.asarray(mean, dtype=np.float32))
        if mean.shape != (backbone.d_model,):
            raise ValueError(
                f"mean must have shape (d_model={backbone.d_model},), got {tuple(mean.shape)}."
            )
        return mean
    frames = [_layer_frames(backbone, layer, w)[0] for w in waves]
    return torch.cat(frames).double().mean(0).float()


def _context(backbone, layer, condition, fns, mask):
    import contextlib

    from ..backbones import splice

    if condition == "clean":
        return contextlib.nullcontext()
    return splice(backbone, layer, fns[condition], mask=mask)


def _normalize_text(text):
    """Lower-case words without punctuation (for WER).

    Parameters
    ----------
    text : str
        A transcript.

    Returns
    -------
    text : str
        Normalised transcript.
    """
    text = re.sub(r"[^\w\s']", " ", str(text).lower())
    return " ".join(text.split())


def _whisper_tokenizer(backbone, tokenizer):
    if tokenizer is not None:
        return tokenizer
    from pathlib import Path

    from transformers import AutoTokenizer

    for key in ("converted", "source"):
        path = backbone.provenance.get(key)
        if path and (Path(path) / "tokenizer.json").is_file():
            return AutoTokenizer.from_pretrained(path)
    raise ValueError(
        f"No tokenizer found for {backbone.name} (its provenance names no folder with a "
        "tokenizer.json); pass tokenizer=transformers.WhisperTokenizer.from_pretrained(...)."
    )


def _text_ce(model, inputs, ids, n_prefix):
    """Sum of cross-entropies (nats) of the text tokens and their number."""
    import torch
    import torch.nn.functional as F

    ids_t = torch.as_tensor([ids], device=inputs.device)
    logits = model(input_features=inputs, decoder_input_ids=ids_t[:, :-1]).logits[0].float()
    targets = ids_t[0, 1:]
    ce = F.cross_entropy(logits, targets, reduction="none")[n_prefix - 1 :]
    return float(ce.sum()), int(ce.numel())


@fill_doc
@verbose
def whisper_splice_metrics(
    backbone,
    layer,
    reconstruct,
    waves,
    *,
    references=None,
    conditions=CONDITIONS,
    mean=None,
    tokenizer=None,
    language="en",
    max_new_tokens=200,
    verbose=None,
):
    """Whisper WER and decoder cross-entropy with a layer spliced.

    Each clip (at most one 30 s window) is transcribed greedily under each
    condition: ``"clean"`` (no intervention), ``"sae"`` (the valid frames of
    ``layer`` replaced by ``reconstruct(frames)``), ``"zero"`` (replaced by
    zeros) and ``"mean"`` (replaced by the layer's mean frame).

    Parameters
    ----------
    backbone : neuro_sae.backbones.Backbone
        A full Whisper model (``WhisperForConditionalGeneration``).
    layer : int
        1-based encoder layer to splice.
    reconstruct : callable
        ``x -> x_hat`` on ``(n_frames, d_model)`` tensors in the layer's scale,
        e.g. a :class:`~neuro_sae.sae.SparseAutoencoder` (its ``forward``
        undoes the input normalisation).
    waves : list of ndarray, shape (n_samples,)
        16 kHz clips, each at most 30 s.
    references : list of str | None
        Reference transcripts. ``None``: the clean model's transcripts (the
        WER is then the change caused by the splice).
    conditions : sequence of str
        Among ``"clean"``, ``"sae"``, ``"zero"``, ``"mean"``.
    mean : array-like, shape (d_model,) | None
        Mean frame of the layer for mean ablation (``None``: the mean of the
        valid frames of ``waves``).
    tokenizer : transformers tokenizer | None
        Whisper tokenizer (``None``: from the backbone's folder).
    language : str
        Transcription language.
    max_new_tokens : int
        Generation limit per clip.
    %(verbose)s

    Returns
    -------
    table : pandas.DataFrame
        One row per condition: ``condition``, ``wer`` (against the
        references), ``cross_entropy`` (mean nats per reference text token),
        ``delta_cross_entropy`` (minus the clean value, when computed),
        ``n_tokens`` and ``transcript`` (the clips' transcripts joined by
        ``" | "``).
    """
    import jiwer
    import pandas as pd
    import torch

    from ..backbones import Backbone

    validate_type(backbone, Backbone, "backbone")
    if backbone.kind != "whisper" or not hasattr(backbone.model, "generate"):
        raise ValueError(
            f"backbone must be a full Whisper model with a decoder, got {backbone.name} "
            f"({backbone.kind}, {type(backbone.model).__name__})."
        )
    waves = _check_waves(waves)
    conditions = _check_conditions(conditions)
    if references is not None:
        validate_type(references, (list, tuple), "references")
        if len(references) != len(waves):
            raise ValueError(
                f"references has {len(references)} entries but waves has {len(waves)}."
            )
    tok = _whisper_tokenizer(backbone, tokenizer)
    fns = _replacements(
        reconstruct, _layer_mean(backbone, layer, waves, mean) if "mean" in conditions else None
    )
    model = backbone.model
    n_frames = int(backbone.encoder.config.max_source_positions)
    transcripts = {}
    for cond in (["clean"] if references is None else []) + [
        c for c in conditions if not (c == "clean" and references is None)
    ]:
        texts = []
        for wave in waves:
            mask = np.zeros(n_frames, dtype=bool)
            mask[: _n_valid(backbone, wave, n_frames)] = True
            inputs = backbone.prepare([wave])
            with torch.inference_mode(), _context(backbone, layer, cond, fns, mask):
                ids = model.generate(
                    input_features=inputs, language=language, task="transcribe",
                    max_new_tokens=max_new_tokens,
                )
            texts.append(tok.batch_decode(ids, skip_special_tokens=True)[0].strip())
        transcripts[cond] = texts
        logger.info(f"[{cond}] {' | '.join(texts)[:200]}")
    refs = list(references) if references is not None else transcripts["clean"]
    refs_norm = [_normalize_text(r) for r in refs]
    # reference token sequences: the decoder prompt, the text, end of text
    prompt = tok("", add_special_tokens=True).input_ids[:-1]
    ref_ids = [
        (prompt + tok(" " + r.strip(), add_special_tokens=False).input_ids + [tok.eos_token_id])
        for r in refs
    ]
    rows = []
    for cond in conditions:
        ce_sum, n_tok = 0.0, 0
        for wave, ids in zip(waves, ref_ids):
            mask = np.zeros(n_frames, dtype=bool)
            mask[: _n_valid(backbone, wave, n_frames)] = True
            inputs = backbone.prepare([wave])
            with torch.inference_mode(), _context(backbone, layer, cond, fns, mask):
                s, n = _text_ce(model, inputs, ids, len(prompt))
            ce_sum += s
            n_tok += n
        hyps = [_normalize_text(t) for t in transcripts[cond]]
        wer = float(jiwer.wer(refs_norm, hyps)) if any(refs_norm) else float("nan")
        rows.append(
            dict(condition=cond, wer=wer, cross_entropy=ce_sum / max(n_tok, 1), n_tokens=n_tok,
                 transcript=" | ".join(transcripts[cond]))
        )
    table = pd.DataFrame(rows)
    if "clean" in conditions:
        clean = table.loc[table["condition"] == "clean", "cross_entropy"].iloc[0]
        table.insert(3, "delta_cross_entropy", table["cross_entropy"] - clean)
    return table


@fill_doc
@verbose
def probe_splice_accuracy(
    backbone,
    layer,
    reconstruct,
    waves,
    labels,
    *,
    probe_layer=None,
    conditions=CONDITIONS,
    mean=None,
    test_clips=None,
    C=1.0,
    max_iter=1000,
    verbose=None,
):
    """Accuracy of a linear frame-label probe with a layer spliced.

    For every condition (see :func:`whisper_splice_metrics`) the frames of
    ``probe_layer`` are read with ``layer`` replaced, a multinomial
    ``LogisticRegression`` on standardised frames is fit on the training
    clips and scored on the test clips (split by clip, never by frame).

    Parameters
    ----------
    backbone : neuro_sae.backbones.Backbone
        HuBERT, wav2vec2 or Whisper.
    layer : int
        1-based layer to splice.
    reconstruct : callable
        ``x -> x_hat`` on ``(n_frames, d_model)`` tensors (e.g. an SAE).
    waves : list of ndarray, shape (n_samples,)
        16 kHz clips (Whisper: at most 30 s each).
    labels : list of array of int, shape (n_frames_i,)
        Label of every frame of each clip (extra frames on either side are
        cut to the shorter length).
    probe_layer : int | None
        Layer the probe reads (``>= layer``; ``None``: ``layer``).
    conditions : sequence of str
        Among ``"clean"``, ``"sae"``, ``"zero"``, ``"mean"``.
    mean : array-like, shape (d_model,) | None
        Mean frame of ``layer`` for mean ablation (``None``: from ``waves``).
    test_clips : sequence of int | None
        Indices of the clips to test on (``None``: every third clip, at
        least one).
    C : float
        Inverse regularisation strength of the probe.
    max_iter : int
        Solver iterations.
    %(verbose)s

    Returns
    -------
    table : pandas.DataFrame
        One row per condition: ``condition``, ``accuracy``, ``chance`` (the
        test frequency of the most frequent training label), ``n_train``,
        ``n_test`` (frames).
    """
    import pandas as pd
    import torch
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from ..backbones import Backbone

    validate_type(backbone, Backbone, "backbone")
    waves = _check_waves(waves)
    conditions = _check_conditions(conditions)
    validate_type(labels, (list, tuple), "labels")
    if len(labels) != len(waves):
        raise ValueError(f"labels has {len(labels)} entries but waves has {len(waves)}.")
    if len(waves) < 2:
        raise ValueError("probe_splice_accuracy needs at least 2 clips (train and test).")
    probe_layer = layer if probe_layer is None else probe_layer
    validate_type(probe_layer, "int", "probe_layer")
    if probe_layer < layer:
        raise ValueError(
            f"probe_layer ({probe_layer}) must be >= layer ({layer}): a probe below the "
            "spliced layer cannot see the splice."
        )
    if test_clips is None:
        test_clips = list(range(2, len(waves), 3)) or [len(waves) - 1]
    test = np.zeros(len(waves), dtype=bool)
    test[list(test_clips)] = True
    if test.all() or not test.any():
        raise ValueError(f"test_clips={list(test_clips)} must leave both train and test clips.")
    fns = _replacements(
        reconstruct, _layer_mean(backbone, layer, waves, mean) if "mean" in conditions else None
    )
    rows = []
    for cond in conditions:
        feats, labs, is_test = [], [], []
        for i, (wave, lab) in enumerate(zip(waves, labels)):
            lab = np.asarray(lab)
            with torch.inference_mode():
                inputs = backbone.prepare([wave])
                n_all = None
                if backbone.kind == "whisper":
                    n_all = int(backbone.encoder.config.max_source_positions)
                    mask = np.zeros(n_all, dtype=bool)
                    mask[: _n_valid(backbone, wave, n_all)] = True
                else:
                    mask = None
                with _context(backbone, layer, cond, fns, mask):
                    hidden = backbone.forward_layers(inputs, [probe_layer])[probe_layer][0]
            n = hidden.shape[0] if mask is None else int(mask.sum())
            n = min(n, len(lab))
            feats.append(hidden[:n].float().cpu().numpy())
            labs.append(lab[:n])
            is_test.append(np.full(n, test[i]))
        X, y, te = np.concatenate(feats), np.concatenate(labs), np.concatenate(is_test)
        clf = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=max_iter))
        clf.fit(X[~te], y[~te])
        values, counts = np.unique(y[~te], return_counts=True)
        rows.append(
            dict(condition=cond, accuracy=float(clf.score(X[te], y[te])),
                 chance=float(np.mean(y[te] == values[np.argmax(counts)])),
                 n_train=int((~te).sum()), n_test=int(te.sum()))
        )
    return pd.DataFrame(rows)
