"""Step 06: SAEs of every layer x 2 seeds of a study, their metrics and seed consistency.

Trains (in one pass over the same frames) or reads one SAE per layer and seed from
the study's extracted activations (step 01), then writes per-layer metrics and
consistency tables as parquet and a figure (L0 vs FVU per layer, coverage per layer).

Usage::

    python analyses/06_sae_report.py --manifest data_manifests/demo.yaml [--n-steps 500]
    python analyses/06_sae_report.py --activations DIR --out DIR [--layers 1 2] [--seeds 0 1]

On two CPU cores the demo (Whisper-base, 6 layers x 2 seeds, 512 -> 4096, k = 50)
costs about 2-5 s per step for all 12 SAEs: ``--n-steps`` sets the budget.
"""

# %%
import argparse
import sys
from pathlib import Path

from neuro_sae.pipeline import get_step
from neuro_sae.sae import sae_layer_report


def _parser():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--manifest", help="study manifest (activations from its derivatives)")
    src.add_argument("--activations", help="folder of *_activations.npz files")
    p.add_argument("--out", default=None,
                   help="with --manifest: the derivatives folder (report in "
                        "<out>/stimuli/sae_report); with --activations: the report folder "
                        "(default: <activations>/sae_report)")
    for flag, kwargs in get_step("sae-report").options:  # the options of neuro-sae sae-report
        p.add_argument(flag, **kwargs)
    p.add_argument("--force", action="store_true", help="retrain existing SAEs")
    p.add_argument("--upstream", action="store_true",
                   help="with --manifest: first run the out-of-date steps it depends on")
    p.add_argument("--verbose", default="INFO", help="log level")
    return p


def main(argv=None):
    """Run the report; returns the result dict of ``sae_layer_report`` (or the output files).

    With ``--manifest`` the step runs through the step table (``neuro-sae sae-report``):
    the SAEs are retrained whenever its record does not match the options and inputs.
    """
    args = _parser().parse_args(argv)
    common = dict(
        layers=args.layers, seeds=args.seeds, expansion=args.expansion, k=args.k,
        n_steps=args.n_steps, batch_size=args.batch_size, lr=args.lr, device=args.device,
    )  # fmt: skip
    if args.manifest:
        from neuro_sae.manifest import load_manifest
        from neuro_sae.pipeline import run_step

        manifest = load_manifest(args.manifest, check_files=False)
        return run_step(manifest, "sae-report", args.out, options=common, force=args.force,
                        upstream=args.upstream, verbose=args.verbose)  # fmt: skip
    files = sorted(Path(args.activations).glob("*_activations.npz"))
    if not files:
        raise SystemExit(f"No *_activations.npz files in {args.activations}.")
    out = Path(args.out) if args.out else Path(args.activations) / "sae_report"
    return sae_layer_report(files, out, force=args.force, verbose=args.verbose, **common)


# %%
if __name__ == "__main__":
    main(sys.argv[1:])
    sys.exit(0)
