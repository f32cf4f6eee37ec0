"""Figure: SAE convergence against the frame budget, every layer, beside random dictionaries.

Reads the ``convergence.parquet`` tables that ``analyses/09_corpus_saes.py --frames N``
writes into its ``budget_*`` run folders (several runs over layer subsets are merged) and
draws :func:`neuro_sae.sae.plot_convergence`: held-out FVU against L0 along the run, FVU
against frames, and seed agreement (IoU coverage, decoder MCC) against frames with the same
measure for two random dictionaries.

Usage::

    python figures/fig_sae_convergence.py \\
        --tables /work/runs/saes/whisper-base/budget_*/convergence.parquet \\
        --out figures/fig_sae_convergence.png
"""

import argparse


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tables", nargs="+", required=True, help="convergence.parquet files")
    p.add_argument("--out", required=True, help="PNG to write")
    p.add_argument("--title", default=None, help="figure title")
    args = p.parse_args(argv)
    import matplotlib

    matplotlib.use("Agg")
    import pandas as pd

    from neuro_sae.io import atomic_path
    from neuro_sae.sae import plot_convergence

    table = pd.concat([pd.read_parquet(f) for f in args.tables], ignore_index=True)
    dup = table.duplicated(["layer", "step"])
    if dup.any():
        raise SystemExit(f"--tables overlap: layer/step pairs {table[dup][['layer', 'step']]}"
                         " appear twice; pass each run's table once.")
    fig = plot_convergence(table, title=args.title)
    with atomic_path(args.out) as tmp:
        fig.savefig(tmp, dpi=130, format="png")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
