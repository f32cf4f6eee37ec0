"""Phoneme accuracy of SAE features per layer, next to chance and a linear probe.

Reads the folder written by ``analyses/07_interpret.py --corpus ...`` and writes
``fig_interpret_phonemes.png``/``.pdf`` and ``phonemes.csv`` (one row per layer).

Usage::

    python figures/fig_interpret_phonemes.py --interpretation /work/derivatives_corpus/interpret
"""

# %%
import argparse
from pathlib import Path


def main(argv=None):
    """Draw the figure; returns the files written."""
    import matplotlib.pyplot as plt
    import pandas as pd

    from neuro_sae.interpret import plot_phoneme_accuracy, read_interpretation

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--interpretation", required=True, help="output folder of 07_interpret.py")
    p.add_argument("--out", default=None, help="figure folder (default: the same folder)")
    args = p.parse_args(argv)
    root = Path(args.interpretation)
    out = Path(args.out) if args.out else root
    out.mkdir(parents=True, exist_ok=True)
    per_layer = {int(d.name.split("-")[1]): read_interpretation(d)["summary"].get("phonemes")
                 for d in sorted(root.glob("layer-*"))}
    if not any(per_layer.values()):
        raise SystemExit(f"{root} holds no phoneme results (clips without alignments?).")
    pd.DataFrame([dict(layer=la, **v) for la, v in per_layer.items() if v]).to_csv(
        out / "phonemes.csv", index=False)
    fig = plot_phoneme_accuracy(per_layer)
    written = []
    for ext in ("png", "pdf"):
        fig.savefig(out / f"fig_interpret_phonemes.{ext}", dpi=130)
        written.append(out / f"fig_interpret_phonemes.{ext}")
    plt.close("all")
    print("\n".join(map(str, written)))
    return written


if __name__ == "__main__":
    main()
