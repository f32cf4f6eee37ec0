"""Detection measures against independent computations."""

import numpy as np
import pytest
import torch
from scipy.special import log_softmax, softmax

from neuro_sae.steering import (
    WhisperTokens,
    decode_clips,
    detection_rate,
    encoder_states,
    no_speech_token_id,
    silence_rule,
    whisper_tokens,
    word_error_rate,
)
from tests.steering._fixtures import TOKENS, tiny_full, waves


def _decoder_logits(bb, enc, ids):
    """Logits (float64) from the decoder's last hidden state times the tied embedding."""
    dec = bb.model.model.decoder
    with torch.inference_mode():
        h = dec(input_ids=torch.as_tensor(ids), encoder_hidden_states=enc).last_hidden_state
    emb = bb.model.proj_out.weight.detach().double().numpy()
    return h.double().numpy() @ emb.T


def test_no_speech_prob_matches_decoder_logits():
    bb = tiny_full()
    _, enc = encoder_states(bb, waves(), [1])
    nsp, ids, avg = decode_clips(bb, enc, TOKENS)
    assert ids == [None] * 3 and np.isnan(avg).all()
    # independent: only <|startoftranscript|> fed, softmax over the vocabulary in float64
    logits = _decoder_logits(bb, enc, [[TOKENS.sot]] * 3)[:, 0]
    expected = softmax(logits, axis=-1)[:, TOKENS.no_speech]
    np.testing.assert_allclose(nsp, expected, rtol=1e-5, atol=1e-9)
    assert len(set(np.round(nsp, 9))) == 3  # the clips differ


def _greedy_reference(bb, enc, tokens, n_max):
    """Greedy decoding without cache, one full forward per step, scored in float64."""
    seq = list(tokens.prompt)
    lp_sum, out = 0.0, []
    for i in range(n_max):
        lg = _decoder_logits(bb, enc, [seq])[0, -1]
        lg[list(tokens.suppress)] = -np.inf
        if i == 0:
            lg[list(tokens.begin_suppress)] = -np.inf
        t = int(np.argmax(lg))
        lp_sum += log_softmax(lg)[t]
        if t == tokens.eot:
            return out, lp_sum / (len(out) + 1)
        out.append(t)
        seq.append(t)
    return out, lp_sum / (len(out) + 1)


@pytest.mark.parametrize("n_max", [4, 9])
def test_greedy_avg_logprob_matches_uncached_decoding(n_max):
    bb = tiny_full(seed=1)
    _, enc = encoder_states(bb, waves((1.1, 2.6, 0.4, 5.0)), [1])
    decode = np.array([True, False, True, True])
    nsp, ids, avg = decode_clips(bb, enc, TOKENS, decode=decode, max_new_tokens=n_max)
    assert ids[1] is None and np.isnan(avg[1])
    for i in np.flatnonzero(decode):
        ref_ids, ref_avg = _greedy_reference(bb, enc[i : i + 1], TOKENS, n_max)
        assert ids[i] == ref_ids
        assert not set(ids[i]) & set(TOKENS.suppress)
        np.testing.assert_allclose(avg[i], ref_avg, rtol=1e-5)


def test_eot_scored_when_generated():
    """A model that must say EOT second: avg_logprob = (lp1 + lp_eot) / 2."""
    bb = tiny_full(seed=2)
    _, enc = encoder_states(bb, waves((1.3,)), [1])
    with torch.no_grad():  # make EOT the only choice after the first token
        allowed = set(range(97)) - {1}
        tok = WhisperTokens(sot=2, eot=1, no_speech=3, prompt=(2,),
                            suppress=tuple(sorted(allowed - {10, 11})), begin_suppress=(1,))
    nsp, ids, avg = decode_clips(bb, enc, tok, decode=np.array([True]), max_new_tokens=20)
    ref_ids, ref_avg = _greedy_reference(bb, enc, tok, 20)
    assert ids[0] == ref_ids and set(ids[0]) <= {10, 11}
    np.testing.assert_allclose(avg[0], ref_avg, rtol=1e-5)


def test_rates_and_silence_rule():
    nsp = np.array([0.1, 0.49, 0.5, 0.61, 0.7, 0.95])
    assert detection_rate(nsp) == pytest.approx(2 / 6)
    assert detection_rate(nsp, 0.65) == pytest.approx(4 / 6)
    avg = np.array([np.nan, np.nan, -2.0, -1.5, -0.5, -1.01])
    np.testing.assert_array_equal(silence_rule(nsp, avg),
                                  [False, False, False, True, False, True])
    with pytest.raises(ValueError, match="threshold"):
        detection_rate(nsp, 1.5)


def test_wer_uses_whisper_normaliser():
    # "seven" vs "7", case and punctuation are no errors after Whisper's normaliser
    assert word_error_rate(["Seven apples, please."], ["7 apples please"]) == 0.0
    # one substitution in 4 words + one deletion of 2 words over 6 reference words
    w = word_error_rate(["the cat sat down", "hello there"], ["the dog sat down", "hello"])
    assert w == pytest.approx(2 / 6)


class _FakeTok:
    unk_token, unk_token_id = "<|endoftext|>", 50

    def __init__(self, vocab):
        self.vocab = vocab

    def convert_tokens_to_ids(self, t):
        return self.vocab.get(t, self.unk_token_id)

    def encode(self, text, add_special_tokens=False):
        return [7]


def test_no_speech_token_looked_up_not_hard_coded():
    vocab = {"<|endoftext|>": 50, "<|startoftranscript|>": 51, "<|nocaptions|>": 57,
             "<|en|>": 52, "<|transcribe|>": 53, "<|notimestamps|>": 58}
    assert no_speech_token_id(_FakeTok(vocab)) == 57  # <|nospeech|> maps to unk: skipped
    t = whisper_tokens(_FakeTok(vocab))
    assert t.prompt == (51, 52, 53, 58) and t.no_speech == 57 and t.eot == 50
    assert 57 in t.suppress and 51 in t.suppress and t.begin_suppress == (7, 50)
    assert whisper_tokens(_FakeTok(vocab), language=None).prompt == (51, 58)
    del vocab["<|nocaptions|>"]
    with pytest.raises(ValueError, match="no-speech token"):
        no_speech_token_id(_FakeTok(vocab))


def test_real_tokenizers_no_speech_ids():
    from neuro_sae.backbones import get_demo_whisper, installed_demo_models

    expected = {"whisper-base": 50362, "whisper-tiny.en": 50361}
    avail = [m for m in installed_demo_models() if m in expected]
    if not avail:
        pytest.skip("no demo Whisper weights installed")
    from transformers import AutoTokenizer

    for name in avail:
        tok = AutoTokenizer.from_pretrained(str(get_demo_whisper(name)))
        assert no_speech_token_id(tok) == expected[name]
        assert tok.convert_tokens_to_ids("<|nocaptions|>") == expected[name]
