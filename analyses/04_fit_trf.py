"""Step 04: align one subject's EEG with the features, univariate TRF sweep, permutation null.

Usage::

    python analyses/04_fit_trf.py --manifest data_manifests/demo.yaml --subject 01
"""

# %%
import argparse
import sys

from neuro_sae.manifest import load_manifest
from neuro_sae.pipeline import fit_subject_step


def main(argv=None):
    """Parse arguments and run the step for each --subject given (all when none)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--manifest", default="data_manifests/demo.yaml")
    parser.add_argument("--out", default=None, help="derivatives folder")
    parser.add_argument("--subject", action="append", default=None, help="subject label (repeatable)")
    parser.add_argument("--force", action="store_true")
    parser.add_argument("--verbose", default="INFO")
    args = parser.parse_args(argv)
    manifest = load_manifest(args.manifest)
    out = manifest.derivatives_dir(args.out)
    for subject in args.subject or manifest.subjects:
        print(fit_subject_step(manifest, out, subject, force=args.force, verbose=args.verbose))
    return 0


# %%
if __name__ == "__main__":
    sys.exit(main())
