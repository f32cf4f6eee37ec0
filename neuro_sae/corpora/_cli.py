"""Command line of the corpus builder (``neuro-sae build-corpus``)."""

from __future__ import annotations

import argparse


def _parser(prog="neuro-sae build-corpus"):
    p = argparse.ArgumentParser(
        prog=prog,
        description="Build the offline labelled corpus (speech with TextGrids, spoken "
                    "letters, whispered speech, music, sounds) from packaged audio tools. "
                    "Deterministic and resumable: rerun the same command to continue.",
    )
    p.add_argument("--out", required=True, help="output folder (an earlier build is resumed)")
    p.add_argument("--hours", type=float, default=2.0, help="target hours (default 2)")
    p.add_argument("--random-state", type=int, default=0, help="seed of the plan (default 0)")
    p.add_argument("--n-jobs", type=int, default=None, help="parallel clips (default 1)")
    p.add_argument("--verbose", default="INFO", help="log level (default INFO)")
    return p


def main(argv=None):
    """Entry point: ``neuro-sae build-corpus --out DIR --hours H`` (returns an exit code)."""
    from ._build import build_corpus

    args = _parser().parse_args(argv)
    index = build_corpus(args.out, hours=args.hours, random_state=args.random_state,
                         n_jobs=args.n_jobs, verbose=args.verbose)
    by = (index.groupby("domain")["duration"].sum() / 3600).round(3).to_dict()
    print(f"{len(index)} clips, {index['duration'].sum() / 3600:.3f} h {by} -> {args.out}")
    return 0
