"""Paper Figs. 3/13 and the "19-27%" erasure: top-k probing and unlearning against random
features, and the concept-erasure curve of one vowel with its two fractions.

Reads the folder written by ``analyses/07_interpret.py --corpus ...`` (the layer given,
default the last) and writes ``fig_interpret_erasure.png``/``.pdf`` and
``fig_interpret_probing.png``/``.pdf``.

Usage::

    python figures/fig_interpret_erasure.py --interpretation /work/derivatives_corpus/interpret
"""

# %%
import argparse
from pathlib import Path


def main(argv=None):
    """Draw the figures; returns the files written."""
    import matplotlib.pyplot as plt
    import numpy as np

    from neuro_sae.interpret import (
        ErasureResult,
        plot_erasure,
        plot_probe_curves,
        read_interpretation,
    )

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--interpretation", required=True, help="output folder of 07_interpret.py")
    p.add_argument("--layer", type=int, default=None, help="layer (default: the last)")
    p.add_argument("--out", default=None, help="figure folder (default: the same folder)")
    args = p.parse_args(argv)
    root = Path(args.interpretation)
    out = Path(args.out) if args.out else root
    out.mkdir(parents=True, exist_ok=True)
    layers = sorted(int(d.name.split("-")[1]) for d in root.glob("layer-*"))
    if not layers:
        raise SystemExit(f"{root} holds no layer-<ll>/ folders; run analyses/07_interpret.py.")
    layer = args.layer if args.layer is not None else layers[-1]
    r = read_interpretation(root / f"layer-{layer:02d}")
    if r["erasure_curve"] is None:
        raise SystemExit(f"layer {layer} has no erasure curve (no vowel-labelled clips).")
    s = r["summary"]["erasure"]
    res = ErasureResult(r["erasure_curve"], s["target"], s["n_features"], s["erased_at"],
                        s["others_at"], s["erased_mcc"], s["keep_mcc"], np.array([]),
                        list(s.get("others_start_below", [])), s.get("target_mode", "codes"))
    written = []
    fig = plot_erasure(res)
    fig.axes[0].set_title(f"Concept erasure of {s['target']}, layer {layer} "
                          f"({s['n_clips']} clips, {s['n_features']} alive features)")
    for ext in ("png", "pdf"):
        fig.savefig(out / f"fig_interpret_erasure.{ext}", dpi=130)
        written.append(out / f"fig_interpret_erasure.{ext}")
    if r["probe_curves"] is not None:
        fig = plot_probe_curves(r["probe_curves"])
        fig.axes[0].set_title(f"Top-k probing and unlearning of vowels, layer {layer}")
        for ext in ("png", "pdf"):
            fig.savefig(out / f"fig_interpret_probing.{ext}", dpi=130)
            written.append(out / f"fig_interpret_probing.{ext}")
    plt.close("all")
    print("\n".join(map(str, written)))
    return written


if __name__ == "__main__":
    main()
