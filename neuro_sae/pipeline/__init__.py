"""The step registry (one table of steps whose cache keys chain), runners and the
``neuro-sae`` CLI."""

from ._executor import parse_executor
from ._paths import StudyPaths
from ._registry import Unit
from .demo import default_manifest, format_summary, run_study
from .figures import make_figures
from .steps import (
    STEPS,
    StaleError,
    Step,
    extract_step,
    fit_subject_step,
    get_step,
    group_step,
    run_step,
    sae_layers,
    sae_report_step,
    simulate_step,
    study_status,
    train_sae_step,
)

__all__ = [
    "STEPS",
    "StaleError",
    "Step",
    "StudyPaths",
    "Unit",
    "default_manifest",
    "extract_step",
    "fit_subject_step",
    "format_summary",
    "get_step",
    "group_step",
    "make_figures",
    "parse_executor",
    "run_step",
    "run_study",
    "sae_layers",
    "sae_report_step",
    "simulate_step",
    "study_status",
    "train_sae_step",
]
