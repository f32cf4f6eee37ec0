"""Step 05b: across layers and backbones: layer curves (share of significant features, best
held-out r, peak lags), the layer trend (``layer_mixedlm``), variance partitioning of each
layer's best features against the acoustic envelope, and the paper's protocol (Pz,
dev/test runs, Holm) beside max-T.

The same step as ``neuro-sae layers`` (one step table drives both; ``--help`` lists the
options). Outputs in ``<derivatives>/group/layers/``.

Usage::

    python analyses/05b_layer_curves.py --manifest data_manifests/demo.yaml --upstream
"""

# %%
import sys

from neuro_sae.pipeline.cli import run_step_script

# %%
if __name__ == "__main__":
    sys.exit(run_step_script("layers"))
