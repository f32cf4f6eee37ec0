"""Step 03: simulate EEG with planted responses from the SAE features (eeg.simulate: true).

The same step as ``neuro-sae simulate`` (one step table drives both; ``--help`` lists the
options). A step whose inputs changed is rerun; one whose producers are out of date
stops with the commands to run, unless ``--upstream`` is given.

Usage::

    python analyses/03_simulate_eeg.py --manifest data_manifests/demo.yaml
"""

# %%
import sys

from neuro_sae.pipeline.cli import run_step_script

# %%
if __name__ == "__main__":
    sys.exit(run_step_script("simulate"))
