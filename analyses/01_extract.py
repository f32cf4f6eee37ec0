"""Step 01: encoder activations (every layer, frame times, mask) of every stimulus run.

Usage::

    python analyses/01_extract.py --manifest data_manifests/demo.yaml
"""

# %%
import sys

from neuro_sae.pipeline import extract_step
from neuro_sae.pipeline.cli import run_step_script

# %%
if __name__ == "__main__":
    sys.exit(run_step_script(extract_step, __doc__, per_subject=False))
