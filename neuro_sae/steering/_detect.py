"""Speech detection measures of Whisper: no_speech_prob, greedy decoding with
openai-whisper's avg_logprob, the silence rule, detection rates and WER."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..utils import fill_doc, logger, validate_type, verbose
from . import _docs  # noqa: F401  (docdict entries)

#: openai-whisper's silence rule: a segment is dropped as silence when both hold
SILENCE_NO_SPEECH = 0.6
SILENCE_LOGPROB = -1.0
#: candidate spellings of the no-speech token, in the order openai-whisper used them
NO_SPEECH_TOKENS = ("<|nospeech|>", "<|nocaptions|>")


@dataclass(frozen=True)
class WhisperTokens:
    """Special token ids of a Whisper decoder.

    Attributes
    ----------
    sot : int
        ``<|startoftranscript|>``.
    eot : int
        ``<|endoftext|>``.
    no_speech : int
        The no-speech token (``<|nocaptions|>`` in the transformers vocabularies
        of the OpenAI checkpoints).
    prompt : tuple of int
        The decoder prompt, starting with ``sot`` (multilingual:
        ``sot, <|lang|>, <|transcribe|>, <|notimestamps|>``; English-only:
        ``sot, <|notimestamps|>``).
    suppress : tuple of int
        Tokens never generated (openai-whisper's ``suppress_tokens="-1"``: the
        non-speech symbols and the special tokens).
    begin_suppress : tuple of int
        Tokens not generated first (openai-whisper's ``suppress_blank``: the
        blank and end of text).
    """

    sot: int
    eot: int
    no_speech: int
    prompt: tuple = ()
    suppress: tuple = ()
    begin_suppress: tuple = field(default=())

    def __post_init__(self):
        if not self.prompt:
            object.__setattr__(self, "prompt", (self.sot,))
        if self.prompt[0] != self.sot:
            raise ValueError(
                f"prompt must start with the start-of-transcript token {self.sot}, got "
                f"{list(self.prompt)}."
            )


def _lookup(tokenizer, token):
    """Id of ``token``, or None when the vocabulary lacks it (maps to the unknown token)."""
    idx = tokenizer.convert_tokens_to_ids(token)
    unk = getattr(tokenizer, "unk_token_id", None)
    if idx is None or (unk is not None and idx == unk and token != tokenizer.unk_token):
        return None
    return int(idx)


@fill_doc
@verbose
def no_speech_token_id(tokenizer, *, verbose=None):
    """The id of Whisper's no-speech token, looked up in the vocabulary.

    openai-whisper calls it ``<|nospeech|>`` in its newer vocabularies and
    ``<|nocaptions|>`` in the ones the OpenAI checkpoints were trained with
    (the transformers vocabularies of tiny.en and base hold only the latter;
    there ``<|nospeech|>`` silently maps to the unknown token, which is
    detected here and skipped).

    Parameters
    ----------
    tokenizer : transformers tokenizer
        A Whisper tokenizer.
    %(verbose)s

    Returns
    -------
    token_id : int
        The id (e.g. 50362 for base's multilingual vocabulary, 50361 for tiny.en).
    """
    for token in NO_SPEECH_TOKENS:
        idx = _lookup(tokenizer, token)
        if idx is not None:
            logger.debug(f"no-speech token {token} = {idx}")
            return idx
    raise ValueError(
        f"The tokenizer has no no-speech token (none of {list(NO_SPEECH_TOKENS)} is in its "
        "vocabulary; they map to the unknown token). Pass a Whisper tokenizer, or build "
        "WhisperTokens(...) with the id by hand."
    )


@fill_doc
@verbose
def whisper_tokens(tokenizer, *, language="en", generation_config=None, verbose=None):
    """The special tokens of a Whisper decoder, looked up in its tokenizer.

    Parameters
    ----------
    tokenizer : transformers tokenizer | path-like
        A Whisper tokenizer or a folder holding ``tokenizer.json``.
    language : str | None
        Transcription language of a multilingual model (``"en"``); ``None``
        for an English-only model (no language and task tokens in the prompt,
        as openai-whisper does for ``.en`` models).
    generation_config : transformers.GenerationConfig | None
        Its ``suppress_tokens`` and ``begin_suppress_tokens`` are used when
        given (the converted OpenAI checkpoints carry openai-whisper's lists);
        else the special tokens and the blank are suppressed.
    %(verbose)s

    Returns
    -------
    tokens : WhisperTokens
        The ids.
    """
    if isinstance(tokenizer, (str, Path)):
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(str(tokenizer))
    sot = _lookup(tokenizer, "<|startoftranscript|>")
    eot = _lookup(tokenizer, "<|endoftext|>")
    if sot is None or eot is None:
        raise ValueError(
            "The tokenizer lacks <|startoftranscript|> or <|endoftext|>: it is not a Whisper "
            "tokenizer. Pass the tokenizer of the Whisper model."
        )
    nsp = no_speech_token_id(tokenizer, verbose=False)
    prompt = [sot]
    if language is not None:
        validate_type(language, str, "language")
        lang = _lookup(tokenizer, f"<|{language}|>")
        if lang is None:
            raise ValueError(
                f"Invalid value for the 'language' parameter: <|{language}|> is not in the "
                "tokenizer's vocabulary; pass a language code such as 'en', or None for an "
                "English-only model."
            )
        prompt += [lang, _lookup(tokenizer, "<|transcribe|>")]
    nts = _lookup(tokenizer, "<|notimestamps|>")
    if nts is not None:
        prompt.append(nts)
    specials = [
        _lookup(tokenizer, t)
        for t in ("<|transcribe|>", "<|translate|>", "<|startoftranscript|>",
                  "<|startofprev|>", "<|startoflm|>")
    ] + [nsp]
    suppress = list(getattr(generation_config, "suppress_tokens", None) or [])
    begin = list(getattr(generation_config, "begin_suppress_tokens", None) or [])
    if not begin:
        begin = list(tokenizer.encode(" ", add_special_tokens=False)) + [eot]
    suppress = sorted({int(t) for t in suppress + specials if t is not None and t >= 0})
    return WhisperTokens(sot=sot, eot=eot, no_speech=nsp, prompt=tuple(prompt),
                         suppress=tuple(suppress), begin_suppress=tuple(sorted(set(begin))))


def backbone_tokens(backbone, tokens=None, language="en"):
    """WhisperTokens of a backbone: ``tokens`` when given, else from its tokenizer folder."""
    if tokens is not None:
        validate_type(tokens, WhisperTokens, "tokens")
        return tokens
    for key in ("converted", "source"):
        path = backbone.provenance.get(key)
        if path and (Path(path) / "tokenizer.json").is_file():
            from transformers import AutoTokenizer

            tok = AutoTokenizer.from_pretrained(str(path))
            multilingual = int(backbone.model.config.vocab_size) >= 51865
            return whisper_tokens(tok, language=language if multilingual else None,
                                  generation_config=getattr(backbone.model, "generation_config",
                                                            None), verbose=False)
    raise ValueError(
        f"No tokenizer found for {backbone.name} (its provenance names no folder with a "
        "tokenizer.json); pass tokens=whisper_tokens(tokenizer)."
    )


def _check_decoder(backbone):
    from ..backbones import Backbone

    validate_type(backbone, Backbone, "backbone")
    if backbone.kind != "whisper" or not hasattr(backbone.model, "proj_out"):
        raise ValueError(
            f"backbone must be a full Whisper model with its decoder "
            f"(WhisperForConditionalGeneration), got {backbone.name} ({backbone.kind}, "
            f"{type(backbone.model).__name__}); load it with encoder_only=False."
        )


def _cache_kw(model):
    """Name of the decoder cache argument (``cache`` in transformers >= 5.2x)."""
    import inspect

    params = inspect.signature(type(model).forward).parameters
    return "cache" if "cache" in params else "past_key_values"


def _cache_of(out):
    cache = getattr(out, "cache", None)
    return cache if cache is not None else out.past_key_values


def decode_clips(backbone, encoder_states, tokens, *, decode=None, max_new_tokens=224):
    """no_speech_prob of every sequence and, where asked, its greedy transcript.

    Parameters
    ----------
    backbone : Backbone
        A full Whisper model.
    encoder_states : Tensor, shape (batch, n_frames, d_model)
        The encoder's output (``last_hidden_state``).
    tokens : WhisperTokens
        Special tokens.
    decode : array of bool, shape (batch,) | None
        Which sequences to decode greedily (``None``: none). The others stop
        after the first forward pass (which gives no_speech_prob).
    max_new_tokens : int
        Limit of generated text tokens.

    Returns
    -------
    no_speech_prob : ndarray, shape (batch,)
        Softmax over the vocabulary of the raw logits at the start-of-transcript
        position, at the no-speech token (openai-whisper's ``no_speech_prob``).
    token_ids : list of list of int | None
        Generated text tokens (without end of text) of the decoded sequences.
    avg_logprob : ndarray, shape (batch,)
        openai-whisper's ``avg_logprob``: the sum of the log-probabilities of the
        greedy tokens (end of text included, after the token suppression) over
        the number of text tokens plus one; NaN where not decoded.
    """
    import torch
    from transformers.modeling_outputs import BaseModelOutput

    model = backbone.model
    n = encoder_states.shape[0]
    dev = encoder_states.device
    decode = np.zeros(n, bool) if decode is None else np.asarray(decode, bool)
    prompt = torch.tensor([list(tokens.prompt)] * n, device=dev)
    enc = BaseModelOutput(last_hidden_state=encoder_states)
    with torch.inference_mode():
        out = model(encoder_outputs=enc, decoder_input_ids=prompt, use_cache=bool(decode.any()))
        logits = out.logits.float()
        nsp = torch.softmax(logits[:, 0], dim=-1)[:, tokens.no_speech].cpu().numpy()
        avg = np.full(n, np.nan)
        ids = [None] * n
        if not decode.any():
            return nsp.astype(np.float64), ids, avg
        sel = torch.from_numpy(np.flatnonzero(decode)).to(dev)
        past = _cache_of(out)
        if sel.numel() != n:
            past.reorder_cache(sel)
            enc = BaseModelOutput(last_hidden_state=encoder_states[sel])
        step_logits = logits[sel, -1]
        m = sel.numel()
        suppress = torch.tensor(list(tokens.suppress), dtype=torch.long, device=dev)
        begin = torch.tensor(list(tokens.begin_suppress), dtype=torch.long, device=dev)
        done = torch.zeros(m, dtype=torch.bool, device=dev)
        sum_lp = torch.zeros(m, dtype=torch.float64, device=dev)
        gen = []
        for i in range(max_new_tokens + 1):
            lg = step_logits.clone()
            if suppress.numel():
                lg[:, suppress] = -np.inf
            if i == 0 and begin.numel():
                lg[:, begin] = -np.inf
            if i == max_new_tokens:  # openai-whisper pads EOT without scoring it
                break
            nxt = lg.argmax(-1)
            lp = torch.log_softmax(lg, dim=-1).gather(1, nxt[:, None])[:, 0].double()
            sum_lp += torch.where(done, torch.zeros_like(lp), lp)
            nxt = torch.where(done, torch.full_like(nxt, tokens.eot), nxt)
            gen.append(nxt)
            done |= nxt == tokens.eot
            if bool(done.all()):
                break
            out = model(encoder_outputs=enc, decoder_input_ids=nxt[:, None], use_cache=True,
                        **{_cache_kw(model): past})
            past = _cache_of(out)
            step_logits = out.logits[:, -1].float()
    gen = torch.stack(gen, 1).cpu().numpy() if gen else np.zeros((m, 0), int)
    for j, row in enumerate(np.flatnonzero(decode)):
        seq = gen[j].tolist()
        seq = seq[: seq.index(tokens.eot)] if tokens.eot in seq else seq
        ids[row] = seq
        avg[row] = float(sum_lp[j]) / (len(seq) + 1)
    return nsp.astype(np.float64), ids, avg


@fill_doc
@verbose
def silence_rule(no_speech_prob, avg_logprob, *, verbose=None):
    """openai-whisper's silence rule: which segments are dropped as silence.

    A segment is skipped when ``no_speech_prob > 0.6`` and ``avg_logprob < -1``
    (``transcribe``'s defaults ``no_speech_threshold`` and
    ``logprob_threshold``).

    Parameters
    ----------
    no_speech_prob : array-like of float
        Per clip.
    avg_logprob : array-like of float
        Per clip (NaN where not decoded: such a clip is dropped only when its
        ``no_speech_prob`` alone cannot keep it, which never happens since
        decoding is skipped only when ``no_speech_prob <= 0.6``).
    %(verbose)s

    Returns
    -------
    silent : ndarray of bool
        True where the transcript is dropped.
    """
    nsp = np.asarray(no_speech_prob, float)
    lp = np.asarray(avg_logprob, float)
    return (nsp > SILENCE_NO_SPEECH) & (lp < SILENCE_LOGPROB)


@fill_doc
@verbose
def detection_rate(no_speech_prob, threshold=0.5, *, verbose=None):
    """Share of clips detected as speech (``no_speech_prob < threshold``).

    On non-speech clips this is the false-positive rate (FPR), on speech clips
    the true-positive rate (TPR).

    Parameters
    ----------
    no_speech_prob : array-like of float
        Per clip.
    %(steer_threshold)s
    %(verbose)s

    Returns
    -------
    rate : float
        In [0, 1] (NaN for no clip).
    """
    nsp = np.asarray(no_speech_prob, float)
    validate_type(threshold, "numeric", "threshold")
    if not 0 < threshold < 1:
        raise ValueError(f"threshold must be in (0, 1), got {threshold}.")
    return float(np.mean(nsp < threshold)) if nsp.size else float("nan")


_NORMALIZER = []


def english_normalizer():
    """Whisper's English text normaliser (the ``whisper-normalizer`` package)."""
    if not _NORMALIZER:
        try:
            from whisper_normalizer.english import EnglishTextNormalizer
        except ImportError as err:  # pragma: no cover
            raise ImportError(
                "WER needs Whisper's English normaliser: pip install whisper-normalizer jiwer"
            ) from err
        _NORMALIZER.append(EnglishTextNormalizer())
    return _NORMALIZER[0]


@fill_doc
@verbose
def word_error_rate(references, hypotheses, *, verbose=None):
    """WER (jiwer, pooled over clips) after Whisper's English normaliser.

    Parameters
    ----------
    references : list of str
        Reference transcripts.
    hypotheses : list of str
        Model transcripts, in the same order.
    %(verbose)s

    Returns
    -------
    wer : float
        Word errors over reference words (NaN when every normalised reference
        is empty).
    """
    import jiwer

    if len(references) != len(hypotheses):
        raise ValueError(
            f"references has {len(references)} entries but hypotheses has {len(hypotheses)}."
        )
    norm = english_normalizer()
    refs = [norm(str(r)) for r in references]
    hyps = [norm(str(h)) for h in hypotheses]
    keep = [i for i, r in enumerate(refs) if r.strip()]
    if not keep:
        return float("nan")
    return float(jiwer.wer([refs[i] for i in keep], [hyps[i] for i in keep]))
