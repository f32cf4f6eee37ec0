"""The ``neuro-sae`` command line: one sub-command per step of
:data:`neuro_sae.pipeline.steps.STEPS`, plus ``demo`` (every step) and ``status``."""

from __future__ import annotations

import argparse
import sys

from ..utils import use_log_level


class _Formatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Defaults shown in every ``--help``; descriptions kept as written."""


def _common(parser, *, subject=None):
    parser.add_argument("--manifest", default=None,
                        help="study manifest (YAML); None: data_manifests/demo.yaml")  # fmt: skip
    parser.add_argument("--out", default=None,
                        help="derivatives folder; None: the manifest's 'derivatives'")  # fmt: skip
    parser.add_argument("--verbose", default="INFO", help="log level (DEBUG, INFO, WARNING)")
    if subject == "required":
        parser.add_argument("--subject", required=True, help="subject label, e.g. 01")
    elif subject == "repeat":
        parser.add_argument("--subject", action="append", default=None,
                            help="subject label, repeatable; None: every subject")  # fmt: skip


def _step_options(parser, step):
    parser.add_argument("--force", action="store_true", help="recompute even if up to date")
    parser.add_argument("--upstream", action="store_true",
                        help="first run the steps it depends on that are out of date (else "
                             "stop with an error naming what changed)")  # fmt: skip
    for flag, kwargs in step.options:
        parser.add_argument(flag, **kwargs)


def _parser():
    from .. import __version__
    from .steps import STEPS

    p = argparse.ArgumentParser(
        prog="neuro-sae", formatter_class=_Formatter,
        description="SAE features of speech models related to EEG: run a study's steps. "
                    "Each step reruns only when its settings, its input files or the steps "
                    "it depends on changed.",
    )  # fmt: skip
    p.add_argument("--version", action="version", version=f"neuro-sae {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    for name, text in (("demo", "run every step of the study (the demo by default)"),
                       ("run", "run every step of a study (same as demo; give --manifest)")):
        demo = sub.add_parser(name, help=text, formatter_class=_Formatter)
        _common(demo)
        demo.add_argument("--force", action="store_true", help="recompute every step")
        demo.add_argument("--executor", default=None,
                          help="serial | processes:N | dask-local:N | dask:ADDRESS; None: the "
                               "manifest's executor")  # fmt: skip
        demo.add_argument("--retries", type=int, default=1, help="reruns of a failed task")
    sub.add_parser("build-corpus", add_help=False,
                   help="build the offline labelled audio corpus (neuro-sae build-corpus --help)")
    status = sub.add_parser("status", help="say which steps are up to date and why the others are not",
                            formatter_class=_Formatter)  # fmt: skip
    _common(status)
    for step in STEPS:
        sp = sub.add_parser(step.cli, help=step.help, description=step.help, formatter_class=_Formatter)
        _common(sp, subject="repeat" if step.scope in ("subject", "subject-model-layer") else None)
        if step.scope.startswith(("model", "subject-model")):
            sp.add_argument("--model", default=None,
                            help="only this backbone (its tag; 'primary': the first one)")  # fmt: skip
            sp.add_argument("--layer", type=int, default=None, help="only this SAE layer")
        _step_options(sp, step)
    return p


def _option_values(step, args):
    return {flag.lstrip("-").replace("-", "_"): getattr(args, flag.lstrip("-").replace("-", "_"))
            for flag, _ in step.options}  # fmt: skip


def _print_outputs(result):
    from ._registry import _collect_paths

    for fname in _collect_paths(result):
        print(fname)


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
    from . import demo, steps

    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] == "build-corpus":  # its own options, no manifest
        from ..corpora import main as build_corpus_main

        return build_corpus_main(argv[1:])
    args = _parser().parse_args(argv)
    try:
        with use_log_level(args.verbose.upper()):
            fname = args.manifest or demo.default_manifest()
            manifest = load_manifest(fname)
            if args.command in ("demo", "run"):
                recovery = demo.run_study(manifest, args.out, force=args.force, executor=args.executor,
                                          retries=args.retries)  # fmt: skip
                if recovery is not None:
                    print(demo.format_summary(recovery, manifest.derivatives_dir(args.out)))
            elif args.command == "status":
                for sid, reason in steps.study_status(manifest, args.out).items():
                    print(f"{sid}: {'up to date' if reason is None else reason}")
            else:
                step = steps.get_step(args.command)
                subjects = getattr(args, "subject", None) or [None]
                for subject in subjects:
                    _print_outputs(steps.run_step(
                        manifest, step, args.out, subject=subject, force=args.force,
                        model=getattr(args, "model", None), layer=getattr(args, "layer", None),
                        upstream=args.upstream, options=_option_values(step, args),
                    ))  # fmt: skip
    except (ManifestError, FileNotFoundError, ValueError, RuntimeError) as err:
        print(f"neuro-sae {args.command}: error: {err}", file=sys.stderr)
        return 2
    return 0


def run_step_script(step, argv=None):
    """Command line of one ``analyses/NN_step.py`` script (they stay thin).

    The script takes the same options as ``neuro-sae <step>`` (``--help`` lists them)
    and runs the step through :func:`neuro_sae.pipeline.run_step`.

    Parameters
    ----------
    step : str
        The step's CLI or record name (``"fit"``, ``"04_fit_trf"``).
    argv : list of str | None
        Arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    code : int
        Exit status.
    """
    from .steps import get_step

    return main([get_step(step).cli, *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
