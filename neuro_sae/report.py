"""One ``mne.Report`` per subject, from a study's saved results.

The code lives in :mod:`neuro_sae.pipeline.report` (it reads the derivatives layout of the
pipeline, which also runs it as its ``report`` step); this module is its public name.
"""

from .pipeline.report import envelope_eeg_xcorr, make_subject_report

__all__ = ["envelope_eeg_xcorr", "make_subject_report"]
