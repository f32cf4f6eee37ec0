"""Step 05: group-level max-T test across subjects, tables and planted-truth recovery.

Usage::

    python analyses/05_group_stats.py --manifest data_manifests/demo.yaml
"""

# %%
import sys

from neuro_sae.pipeline import group_step
from neuro_sae.pipeline.cli import run_step_script

# %%
if __name__ == "__main__":
    sys.exit(run_step_script(group_step, __doc__, per_subject=False))
