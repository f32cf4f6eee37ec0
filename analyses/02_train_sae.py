"""Step 02: train (or read sae.pretrained) the SAE of each layer, encode every run, select alive features.

The same step as ``neuro-sae train-sae`` (one step table drives both; ``--help`` lists the
options). A step whose inputs changed is rerun; one whose producers are out of date
stops with the commands to run, unless ``--upstream`` is given.

Usage::

    python analyses/02_train_sae.py --manifest data_manifests/demo.yaml
"""

# %%
import sys

from neuro_sae.pipeline.cli import run_step_script

# %%
if __name__ == "__main__":
    sys.exit(run_step_script("train-sae"))
