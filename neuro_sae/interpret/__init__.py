"""Interpretation of SAE features: what a feature responds to, and showing it to a person.

- :class:`ClipCodes` (:func:`encode_clips`, :func:`make_clip_codes`): SAE codes of the
  clips of a clip index (:mod:`neuro_sae.corpora`), frame by frame.
- Domain specialisation: :func:`feature_stats`, :func:`assign_domains` (the paper's
  thresholds), :func:`domain_table`, :func:`plot_domain_specialisation` (Fig. 2),
  :func:`plot_frequency_vs_activation` (Fig. 11).
- :func:`label_search`: F1 of "activation above threshold" against clip or frame labels.
- Phones: :func:`read_alignment` (TextGrid, HTS .lab), :func:`alignment_intervals`,
  :func:`codes_frame_labels`, :func:`feature_phones`, :func:`phoneme_accuracy`,
  :func:`phoneme_baselines`.
- Probing: :func:`fisher_scores`, :func:`probe_curve` (top-k probing, unlearning),
  :func:`concept_erasure`.
- Examples: :func:`top_examples`, :func:`mel_average`, :func:`plot_feature_examples`.
- :func:`build_dashboard`: a static HTML site per SAE.
- :func:`interpret_codes` (one layer, everything), :func:`save_interpretation`,
  :func:`read_interpretation`, :func:`feature_interpretations` (what the reports list for
  EEG-significant features), :func:`interpret_corpus` (the corpus SAEs of every layer).
"""

from ._codes import ClipCodes, encode_clips, make_clip_codes
from ._corpus import (
    interpret_corpus,
    plot_corpus_figures,
    plot_phoneme_accuracy,
    train_slice_saes,
)
from ._dashboard import build_dashboard, feature_page, read_dashboard
from ._examples import (
    mel_average,
    mel_frequencies,
    plot_activation_histogram,
    plot_feature_examples,
    plot_mel_average,
    top_examples,
)
from ._labels import label_search
from ._phones import (
    alignment_intervals,
    codes_frame_labels,
    feature_phones,
    frame_labels,
    phoneme_accuracy,
    phoneme_baselines,
    read_alignment,
    write_hts_lab,
)
from ._probing import (
    ErasureResult,
    concept_erasure,
    fisher_scores,
    plot_erasure,
    plot_probe_curves,
    probe_curve,
)
from ._stats import (
    CLIP_THRESHOLDS,
    FRAME_THRESHOLDS,
    assign_domains,
    domain_table,
    feature_stats,
    plot_domain_specialisation,
    plot_frequency_vs_activation,
)
from ._study import (
    class_labels,
    feature_interpretations,
    interpret_codes,
    interpret_stimuli,
    interpretation_html,
    read_interpretation,
    save_interpretation,
)

__all__ = [
    "CLIP_THRESHOLDS",
    "FRAME_THRESHOLDS",
    "ClipCodes",
    "ErasureResult",
    "alignment_intervals",
    "assign_domains",
    "build_dashboard",
    "class_labels",
    "codes_frame_labels",
    "concept_erasure",
    "domain_table",
    "encode_clips",
    "feature_interpretations",
    "feature_page",
    "feature_phones",
    "feature_stats",
    "fisher_scores",
    "frame_labels",
    "interpret_codes",
    "interpret_corpus",
    "interpret_stimuli",
    "interpretation_html",
    "label_search",
    "make_clip_codes",
    "mel_average",
    "mel_frequencies",
    "phoneme_accuracy",
    "phoneme_baselines",
    "plot_activation_histogram",
    "plot_corpus_figures",
    "plot_domain_specialisation",
    "plot_erasure",
    "plot_feature_examples",
    "plot_frequency_vs_activation",
    "plot_mel_average",
    "plot_phoneme_accuracy",
    "plot_probe_curves",
    "probe_curve",
    "read_alignment",
    "read_dashboard",
    "read_interpretation",
    "save_interpretation",
    "top_examples",
    "train_slice_saes",
    "write_hts_lab",
]
