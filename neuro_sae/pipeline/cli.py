"""The ``neuro-sae`` command line."""

from __future__ import annotations

import argparse
import sys

from ..utils import use_log_level


def _parser():
    p = argparse.ArgumentParser(
        prog="neuro-sae",
        description="SAE features of speech models related to EEG: run a study's steps.",
    )
    sub = p.add_subparsers(dest="command", required=True)

    def add(name, help_, subject=False):
        sp = sub.add_parser(name, help=help_)
        sp.add_argument("--manifest", default=None, help="study manifest (YAML); default: the demo")
        sp.add_argument("--out", default=None, help="derivatives folder (default: the manifest's)")
        sp.add_argument("--force", action="store_true", help="recompute even if up to date")
        sp.add_argument("--verbose", default="INFO", help="log level (DEBUG, INFO, WARNING)")
        if subject:
            sp.add_argument("--subject", required=True, help="subject label, e.g. 01")
        return sp

    add("demo", "run the whole demo chain (extract, SAE, simulate, TRF, stats, figures)")
    add("extract", "step 01: backbone activations of every stimulus")
    add("train-sae", "step 02: train the SAE(s) and encode feature series")
    add("simulate", "step 03: simulate EEG from the features (demo studies)")
    add("fit", "step 04: TRF sweep and permutation null for one subject", subject=True)
    add("group", "step 05: group-level statistics and recovery")
    add("figures", "draw the figures from saved results")
    add("report", "write one mne.Report (HTML) per subject from saved results")
    rep = add("sae-report", "step 06: SAEs of every layer x seed, metrics and seed consistency")
    rep.add_argument("--layers", type=int, nargs="*", default=None, help="default: all")
    rep.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    rep.add_argument("--expansion", type=int, default=8)
    rep.add_argument("--k", type=int, default=50)
    rep.add_argument("--n-steps", type=int, default=500)
    rep.add_argument("--batch-size", type=int, default=1024)
    rep.add_argument("--lr", type=float, default=2e-4)
    return p


def main(argv=None):
    """Entry point of the ``neuro-sae`` console script.

    Parameters
    ----------
    argv : list of str | None
        Arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    code : int
        Exit status.
    """
    from ..manifest import ManifestError, load_manifest
    from . import demo, figures, steps

    args = _parser().parse_args(argv)
    try:
        with use_log_level(args.verbose.upper()):
            fname = args.manifest or demo.default_manifest()
            manifest = load_manifest(fname)
            out = manifest.derivatives_dir(args.out)
            if args.command == "demo":
                recovery = demo.run_study(manifest, out, force=args.force)
                if recovery is not None:
                    print(demo.format_summary(recovery, out))
            elif args.command == "extract":
                steps.extract_step(manifest, out, force=args.force)
            elif args.command == "train-sae":
                steps.train_sae_step(manifest, out, force=args.force)
            elif args.command == "simulate":
                steps.simulate_step(manifest, out, force=args.force)
            elif args.command == "fit":
                steps.fit_subject_step(manifest, out, args.subject, force=args.force)
            elif args.command == "group":
                steps.group_step(manifest, out, force=args.force)
            elif args.command == "figures":
                figures.make_figures(manifest, out)
            elif args.command == "report":
                from ..report import make_subject_report

                for subject in manifest.subjects:
                    print(make_subject_report(manifest, out, subject))
            elif args.command == "sae-report":
                result = steps.sae_report_step(
                    manifest, out, layers=args.layers, seeds=args.seeds,
                    expansion=args.expansion, k=args.k, n_steps=args.n_steps,
                    batch_size=args.batch_size, lr=args.lr, force=args.force,
                )  # fmt: skip
                for fname in result["files"].values():
                    print(fname)
    except (ManifestError, FileNotFoundError, ValueError, RuntimeError) as err:
        print(f"neuro-sae {args.command}: error: {err}", file=sys.stderr)
        return 2
    return 0


def run_step_script(step, doc, argv=None, *, per_subject=False):
    """Command line of one ``analyses/NN_step.py`` script (they stay thin).

    Parameters
    ----------
    step : callable
        The step function, e.g. :func:`neuro_sae.pipeline.fit_subject_step`.
    doc : str
        The script's docstring (its first line is the description).
    argv : list of str | None
        Arguments (default: ``sys.argv[1:]``).
    per_subject : bool
        Whether the step runs once per ``--subject`` (all subjects when none
        is given); otherwise it covers every subject at once.

    Returns
    -------
    code : int
        Exit status.
    """
    from ..manifest import load_manifest

    parser = argparse.ArgumentParser(description=doc.strip().splitlines()[0])
    parser.add_argument("--manifest", default="data_manifests/demo.yaml", help="study manifest (YAML)")
    parser.add_argument("--out", default=None, help="derivatives folder (default: the manifest's)")
    parser.add_argument("--subject", action="append", default=None, help="subject label (repeatable)")
    parser.add_argument("--force", action="store_true", help="recompute even if up to date")
    parser.add_argument("--verbose", default="INFO", help="log level (DEBUG, INFO, WARNING)")
    args = parser.parse_args(argv)
    manifest = load_manifest(args.manifest)
    out = manifest.derivatives_dir(args.out)
    if per_subject:
        for subject in args.subject or manifest.subjects:
            print(step(manifest, out, subject, force=args.force, verbose=args.verbose))
    else:
        if args.subject:
            print("note: this step covers every subject; --subject is ignored", file=sys.stderr)
        print(step(manifest, out, force=args.force, verbose=args.verbose))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
