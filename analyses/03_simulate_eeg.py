"""Step 03 (simulated studies): EEG of every subject driven by the real SAE features.

Usage::

    python analyses/03_simulate_eeg.py --manifest data_manifests/demo.yaml
"""

# %%
import sys

from neuro_sae.pipeline import simulate_step
from neuro_sae.pipeline.cli import run_step_script

# %%
if __name__ == "__main__":
    sys.exit(run_step_script(simulate_step, __doc__, per_subject=False))
