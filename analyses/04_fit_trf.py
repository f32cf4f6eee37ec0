"""Step 04: align one subject's EEG with the features, univariate TRF sweep, permutation null.

Usage::

    python analyses/04_fit_trf.py --manifest data_manifests/demo.yaml --subject 01
"""

# %%
import sys

from neuro_sae.pipeline import fit_subject_step
from neuro_sae.pipeline.cli import run_step_script

# %%
if __name__ == "__main__":
    sys.exit(run_step_script(fit_subject_step, __doc__, per_subject=True))
