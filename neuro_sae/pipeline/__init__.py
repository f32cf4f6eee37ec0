"""Steps, caching and runners; the ``neuro-sae`` CLI."""

from ._cache import StepCache
from ._paths import StudyPaths
from .demo import default_manifest, format_summary, run_study
from .figures import make_figures
from .steps import (
    extract_step,
    fit_subject_step,
    group_step,
    sae_layers,
    sae_report_step,
    simulate_step,
    train_sae_step,
)

__all__ = [
    "StepCache",
    "StudyPaths",
    "default_manifest",
    "extract_step",
    "fit_subject_step",
    "format_summary",
    "group_step",
    "make_figures",
    "run_study",
    "sae_layers",
    "sae_report_step",
    "simulate_step",
    "train_sae_step",
]
