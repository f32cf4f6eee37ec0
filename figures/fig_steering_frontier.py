"""Figure: steering frontier, false speech detections and hallucinations against WER.

Reads the grid of ``analyses/08_steering.py`` (``<out>/grid.parquet``) and draws, per
preset and method, every cell and its Pareto frontier: "SAE features (paper)" and
"S-vector (paper)" (the paper's ``x_hat(f + alpha s)``, with the SAE spliced in as a
diamond), "... (error-preserving steering)" (ours, the SAE's error term kept), and the
unsteered model as a star. The rates pool the validation and test clips: the figure
describes the grid; the chosen cells, reported on test clips only, are in
``matched_wer.csv``.

Usage::

    python figures/fig_steering_frontier.py --grid /work/derivatives_steering/grid.parquet \\
        --out figures/fig_steering_frontier.png [--layer 6]
"""

import argparse
import sys


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--grid", required=True, help="grid.parquet of the steering run")
    p.add_argument("--out", required=True, help="PNG to write")
    p.add_argument("--layer", type=int, default=None, help="only this layer (default: all)")
    args = p.parse_args(argv)
    import matplotlib

    matplotlib.use("Agg")
    import pandas as pd

    from neuro_sae.io import atomic_path
    from neuro_sae.steering import plot_steering_frontier

    grid = pd.read_parquet(args.grid)
    fig = plot_steering_frontier(grid, layer=args.layer, show=False)
    with atomic_path(args.out) as tmp:
        fig.savefig(tmp, dpi=130, format="png")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
