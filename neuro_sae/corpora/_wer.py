"""Intelligibility check of a corpus's speech: Whisper transcripts vs the index's text."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..utils import check_random_state, fill_doc, logger, verbose


@fill_doc
@verbose
def speech_wer(index, *, n_clips=20, model="whisper-base", labels=("tts",),
               exclude=("whisper", "croak", "spoken-letter"), root=None, random_state=0,
               verbose=None):
    """Word error rate of Whisper on a random sample of a corpus's transcribed speech.

    Transcripts and references both go through Whisper's English text normaliser
    (``whisper-normalizer``) before :func:`jiwer.wer` (pooled over the clips).

    Parameters
    ----------
    index : pandas.DataFrame
        A clip index (e.g. from :func:`read_clip_index` of a built corpus).
    n_clips : int
        Sample size (clips of at most 30 s).
    model : str
        Backbone spec of :func:`neuro_sae.backbones.load_backbone` (a full
        Whisper model with its decoder).
    labels : tuple of str
        Sample among clips carrying all these labels.
    exclude : tuple of str
        ... and none of these.
    root : path-like | None
        Folder the paths are relative to (``None``: ``index.attrs["root"]``).
    %(random_state)s
    %(verbose)s

    Returns
    -------
    result : dict
        ``wer`` (float), ``n_clips``, ``ids``, ``references`` and ``hypotheses``
        (normalised).
    """
    import jiwer
    import torch
    from whisper_normalizer.english import EnglishTextNormalizer

    from ..backbones import load_backbone
    from ..io import read_audio

    rng = check_random_state(random_state)
    sel = index[index["transcript"].notna() & (index["domain"] == "speech")
                & (index["duration"] <= 30)]
    sel = sel[[set(labels) <= set(lab) and not set(exclude) & set(lab)
               for lab in sel["labels"]]]
    if not len(sel):
        raise ValueError(f"No speech clip with a transcript and labels {list(labels)} (without "
                         f"{list(exclude)}) in the index.")
    sel = sel.iloc[np.sort(rng.choice(len(sel), size=min(n_clips, len(sel)), replace=False))]
    root = Path(root or index.attrs["root"])
    backbone = load_backbone(model)
    from transformers import AutoTokenizer

    folder = next(Path(backbone.provenance[k]) for k in ("converted", "source")
                  if backbone.provenance.get(k)
                  and (Path(backbone.provenance[k]) / "tokenizer.json").is_file())
    tok = AutoTokenizer.from_pretrained(str(folder))
    norm = EnglishTextNormalizer()
    refs, hyps = [], []
    for _, row in sel.iterrows():
        wave, _ = read_audio(root / row["path"], verbose="WARNING")
        with torch.inference_mode():
            ids = backbone.model.generate(input_features=backbone.prepare([wave]),
                                          language="en", task="transcribe",
                                          max_new_tokens=200)
        hyp = tok.batch_decode(ids, skip_special_tokens=True)[0].strip()
        refs.append(norm(row["transcript"]))
        hyps.append(norm(hyp))
        logger.debug(f"{row['id']}: {refs[-1]!r} -> {hyps[-1]!r}")
    wer = float(jiwer.wer(refs, hyps))
    logger.info(f"WER of {model} on {len(refs)} clips: {wer:.3f}")
    return dict(wer=wer, n_clips=len(refs), ids=list(sel["id"]), references=refs,
                hypotheses=hyps)
