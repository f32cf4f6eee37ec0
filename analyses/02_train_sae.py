"""Step 02: train the SAE of each chosen layer and encode every run into feature series.

Usage::

    python analyses/02_train_sae.py --manifest data_manifests/demo.yaml
"""

# %%
import argparse
import sys

from neuro_sae.manifest import load_manifest
from neuro_sae.pipeline import train_sae_step


def main(argv=None):
    """Parse arguments and run the step."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--manifest", default="data_manifests/demo.yaml")
    parser.add_argument("--out", default=None, help="derivatives folder")
    parser.add_argument("--subject", action="append", default=None, help="subject label (repeatable)")
    parser.add_argument("--force", action="store_true")
    parser.add_argument("--verbose", default="INFO")
    args = parser.parse_args(argv)
    manifest = load_manifest(args.manifest)
    out = manifest.derivatives_dir(args.out)
    if args.subject:
        print("note: this step covers every subject; --subject is ignored", file=sys.stderr)
    print(train_sae_step(manifest, out, force=args.force, verbose=args.verbose))
    return 0


# %%
if __name__ == "__main__":
    sys.exit(main())
