"""Parameter text shared by the steering functions (added to the package docdict)."""

from ..utils import docdict

docdict["steer_tokens"] = """
tokens : WhisperTokens | None
    The decoder's special tokens (start of transcript, end of text, the
    no-speech token, the prompt, suppressed tokens). ``None``: looked up with
    :func:`whisper_tokens` from the tokenizer in the backbone's folder."""

docdict["steer_threshold"] = """
threshold : float
    A clip counts as detected speech when ``no_speech_prob < threshold``
    (the paper: 0.5)."""

docdict["steer_keep_error"] = """
keep_error : bool
    Keep the SAE's error term: the layer becomes
    ``x + (x_hat(f + alpha s) - x_hat(f))``, so ``alpha = 0`` is exactly the
    unsteered model. ``False`` is the paper's form ``x_hat(f + alpha s)``,
    which also replaces the layer by the SAE's reconstruction."""

docdict["steer_max_new_tokens"] = """
max_new_tokens : int
    Greedy decoding stops after this many text tokens (openai-whisper: 224);
    a sequence cut there is scored as openai-whisper scores it (its
    ``avg_logprob`` divides by the number of tokens plus one)."""

docdict["steer_batch_size"] = """
batch_size : int
    Clips per forward pass."""
