"""Demo figures (TRF joint plot, topomap of held-out r, summary panel) from saved results.

Only reads what steps 04 and 05 wrote; nothing is refitted::

    python figures/fig_demo.py --manifest data_manifests/demo.yaml
"""

# %%
import argparse
import sys

from neuro_sae.manifest import load_manifest
from neuro_sae.pipeline import make_figures


def main(argv=None):
    """Parse arguments and draw the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--manifest", default="data_manifests/demo.yaml")
    parser.add_argument("--out", default=None, help="derivatives folder")
    parser.add_argument("--n-top", type=int, default=3)
    args = parser.parse_args(argv)
    manifest = load_manifest(args.manifest)
    for fname in make_figures(manifest, manifest.derivatives_dir(args.out), n_top=args.n_top):
        print(fname)
    return 0


# %%
if __name__ == "__main__":
    sys.exit(main())
