"""Step 02: train the SAE of each chosen layer and encode every run into feature series.

Usage::

    python analyses/02_train_sae.py --manifest data_manifests/demo.yaml
"""

# %%
import sys

from neuro_sae.pipeline import train_sae_step
from neuro_sae.pipeline.cli import run_step_script

# %%
if __name__ == "__main__":
    sys.exit(run_step_script(train_sae_step, __doc__, per_subject=False))
