"""Step 07: interpret SAE features: domains, label search, phones, erasure, a dashboard.

Two sources:

- ``--corpus`` + ``--derivatives``: the SAEs of every layer trained on a labelled corpus
  by ``analyses/09_corpus_saes.py`` (its backbone folder: ``store/``, ``packs.parquet``,
  ``all_layers/saes/``). Per layer: feature statistics and the paper's domain assignment,
  label search at clip level (every corpus label) and at frame level (aligned phones),
  majority phones and phoneme accuracy next to chance and a linear probe on the raw
  activations, Fisher probing/unlearning and the erasure of one vowel; figures, tables
  and a static dashboard of the last layer.
- ``--manifest``: the study's own step (``neuro-sae interpret``): the stimuli's feature
  series, the dashboard of the study's EEG-significant features with their TRFs.

Usage::

    python analyses/07_interpret.py --corpus /work/corpus \\
        --derivatives /work/derivatives_corpus/whisper-base --out /work/derivatives_corpus/interpret
    python analyses/07_interpret.py --corpus /work/corpus --train-slice \
        --derivatives /work/derivatives_corpus/interpret_slice --out /work/derivatives_corpus/interpret
    python analyses/07_interpret.py --manifest data_manifests/demo.yaml --out derivatives/demo
"""

# %%
import argparse
import json
import sys
import time


def _parser():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--corpus", help="built corpus folder (index.parquet, alignments)")
    src.add_argument("--manifest", help="study manifest (the study's interpret step)")
    p.add_argument("--derivatives", help="with --corpus: the backbone folder of "
                                         "analyses/09_corpus_saes.py")
    p.add_argument("--out", default=None, help="output folder (--corpus) or the study's "
                                               "derivatives folder (--manifest)")
    p.add_argument("--train-slice", action="store_true",
                   help="with --corpus: first train small SAEs of every layer on a labelled "
                        "slice of the corpus into --derivatives (when the corpus-scale SAEs "
                        "of analyses/09_corpus_saes.py are not there)")
    p.add_argument("--slice-minutes", type=float, default=6.0,
                   help="random audio per domain in the slice, beside the labelled clips")
    p.add_argument("--slice-aligned", type=int, default=40,
                   help="clips with phone alignments in the slice")
    p.add_argument("--slice-steps", type=int, default=300, help="training steps of the slice SAEs")
    p.add_argument("--layers", type=int, nargs="+", default=None, help="layers (default: all)")
    p.add_argument("--seed", type=int, default=0, help="SAE seed to interpret")
    p.add_argument("--include-mixed", action="store_true",
                   help="also use clips whose pack was mixed with noise or music")
    p.add_argument("--n-dashboard", type=int, default=40, help="features in the dashboard")
    p.add_argument("--erasure-target", default="vowel-A")
    p.add_argument("--erasure-steps", type=int, default=60)
    p.add_argument("--probe-target", default="reconstruction",
                   choices=("reconstruction", "codes"),
                   help="probing/unlearning/erasure classify the SAE reconstruction from the "
                        "kept features (the paper's) or the max-pooled codes")
    p.add_argument("--C", type=float, default=None,
                   help="logistic-regression inverse L2 strength of probing and erasure "
                        "(default: unpenalised, the paper's)")
    p.add_argument("--group-column", default="speaker",
                   help="clip-index column whose groups never straddle the probing/erasure "
                        "split ('none': a random stratified split)")
    p.add_argument("--probe-ks", type=int, nargs="*", default=None,
                   help="values of k of the probing curves (default: ~12 from 1 to all)")
    p.add_argument("--n-permutations", type=int, default=200,
                   help="label permutations of the clip-level label search's null")
    p.add_argument("--random-state", type=int, default=0)
    p.add_argument("--force", action="store_true", help="with --manifest: recompute")
    p.add_argument("--verbose", default="INFO", help="log level")
    return p


def main(argv=None):
    """Run the interpretation; returns the summary (corpus) or the step's outputs (study)."""
    from neuro_sae.utils import use_log_level

    args = _parser().parse_args(argv)
    t0 = time.perf_counter()
    with use_log_level(args.verbose):
        if args.manifest:
            from neuro_sae.manifest import load_manifest
            from neuro_sae.pipeline import run_step

            manifest = load_manifest(args.manifest, check_files=False)
            return run_step(manifest, "interpret", args.out, force=args.force)
        if not args.derivatives or not args.out:
            sys.exit("--corpus needs --derivatives (the folder of analyses/09_corpus_saes.py) "
                     "and --out.")
        from neuro_sae.interpret import interpret_corpus, train_slice_saes

        if args.train_slice:
            info = train_slice_saes(args.corpus, args.derivatives, layers=args.layers,
                                    minutes_per_domain=args.slice_minutes,
                                    max_aligned=args.slice_aligned,
                                    n_steps=args.slice_steps, n_threads=1,
                                    random_state=args.random_state)
            print(json.dumps(info, default=str))
        summary = interpret_corpus(
            args.corpus, args.derivatives, args.out, layers=args.layers, seed=args.seed,
            include_mixed=args.include_mixed, n_dashboard=args.n_dashboard,
            erasure_target=args.erasure_target, erasure_steps=args.erasure_steps,
            probe_ks=args.probe_ks, probe_target=args.probe_target, C=args.C,
            group_column=None if args.group_column.lower() == "none" else args.group_column,
            n_permutations=args.n_permutations, random_state=args.random_state)
    print(json.dumps({k: {kk: vv for kk, vv in v.items() if kk in ("phonemes", "erasure",
                                                                    "seconds")}
                      for k, v in summary.items()}, indent=1, default=str))
    print(f"wall {time.perf_counter() - t0:.0f} s")
    return summary


if __name__ == "__main__":
    main()
