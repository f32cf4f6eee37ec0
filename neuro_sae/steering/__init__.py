"""Steering Whisper away from hearing speech in non-speech audio.

Detection measures (``no_speech_prob`` as openai-whisper computes it, detection
rates, openai-whisper's silence rule for hallucinations, WER after Whisper's
English normaliser), the features that predict a false detection (logistic
regression on clip-pooled SAE codes, F1 against k), steering vectors (SAE
features ``s = -sign(beta)``, the S-vector baseline), and the grid over
preset x layer x method x source x k x alpha x test set with its frontier figure;
each method's cell is chosen on validation clips and reported on test clips with
intervals (``select_cells``). The ``paper`` preset is the paper's steering
``x_hat(f + alpha s)`` with the SAE spliced in as its baseline; ``error-preserving``
keeps the SAE's error term (ours).
"""

from ._detect import (
    NO_SPEECH_TOKENS,
    SILENCE_LOGPROB,
    SILENCE_NO_SPEECH,
    WhisperTokens,
    decode_clips,
    detection_rate,
    no_speech_token_id,
    silence_rule,
    whisper_tokens,
    word_error_rate,
)
from ._encode import encoder_states, run_from_layer
from ._experiment import corpus_clip_sets, steering_experiment, train_steering_saes
from ._grid import (
    GRID_COLUMNS,
    MIN_PER_CLASS,
    PRESET_ALPHAS,
    PRESETS,
    cell_table,
    load_prepared,
    prepare_steering,
    sae_fingerprint,
    steering_grid,
    summarise,
)
from ._plot import plot_steering_frontier
from ._select import (
    CELL_KEYS,
    best_layer,
    binomial_interval,
    fpr_reduction,
    matched_wer,
    select_cells,
    split_clips,
)
from ._vectors import (
    METHODS,
    SteeringVector,
    check_sae,
    feature_f1,
    pool_codes,
    rank_features,
    s_vector,
    sae_vector,
    steering_fn,
)

__all__ = [
    "CELL_KEYS",
    "binomial_interval",
    "fpr_reduction",
    "select_cells",
    "split_clips",
    "GRID_COLUMNS",
    "METHODS",
    "MIN_PER_CLASS",
    "NO_SPEECH_TOKENS",
    "PRESETS",
    "PRESET_ALPHAS",
    "SILENCE_LOGPROB",
    "SILENCE_NO_SPEECH",
    "SteeringVector",
    "WhisperTokens",
    "best_layer",
    "cell_table",
    "check_sae",
    "corpus_clip_sets",
    "decode_clips",
    "detection_rate",
    "encoder_states",
    "feature_f1",
    "load_prepared",
    "matched_wer",
    "no_speech_token_id",
    "plot_steering_frontier",
    "pool_codes",
    "prepare_steering",
    "rank_features",
    "run_from_layer",
    "s_vector",
    "sae_fingerprint",
    "sae_vector",
    "silence_rule",
    "steering_fn",
    "steering_experiment",
    "steering_grid",
    "summarise",
    "train_steering_saes",
    "whisper_tokens",
    "word_error_rate",
]
