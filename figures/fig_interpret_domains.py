"""Paper Figs. 2 and 11: domain specialisation of SAE features per layer, and frequency vs
mean activation coloured by domain.

Reads the folder written by ``analyses/07_interpret.py --corpus ...`` (one ``layer-<ll>/``
per layer) and writes ``fig_interpret_domains.png``/``.pdf`` (frame level at tau 0.1 and
clip level at tau 0.3, side by side), ``fig_interpret_freq_vs_act.png`` (the last layer)
and ``domain_table.csv``.

Usage::

    python figures/fig_interpret_domains.py --interpretation /work/derivatives_corpus/interpret
"""

# %%
import argparse
from pathlib import Path


def main(argv=None):
    """Draw the figures; returns the files written."""
    import matplotlib.pyplot as plt
    import pandas as pd

    from neuro_sae.interpret import (
        domain_table,
        plot_domain_specialisation,
        plot_frequency_vs_activation,
        read_interpretation,
    )

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--interpretation", required=True, help="output folder of 07_interpret.py")
    p.add_argument("--out", default=None, help="figure folder (default: the same folder)")
    args = p.parse_args(argv)
    root = Path(args.interpretation)
    out = Path(args.out) if args.out else root
    out.mkdir(parents=True, exist_ok=True)
    layers = sorted(root.glob("layer-*"))
    if not layers:
        raise SystemExit(f"{root} holds no layer-<ll>/ folders; run analyses/07_interpret.py.")
    res = {int(p.name.split("-")[1]): read_interpretation(p) for p in layers}
    table = domain_table(pd.concat([r["assignment"] for r in res.values()]))
    table.to_csv(out / "domain_table.csv", index=False)
    fig, axes = plt.subplots(1, 2, figsize=(12, 3.8), layout="constrained")
    plot_domain_specialisation(table, level="frame", tau=0.1, axes=axes[0])
    plot_domain_specialisation(table, level="clip", tau=0.3, axes=axes[1])
    written = []
    for ext in ("png", "pdf"):
        fig.savefig(out / f"fig_interpret_domains.{ext}", dpi=130)
        written.append(out / f"fig_interpret_domains.{ext}")
    last = max(res)
    fig2 = plot_frequency_vs_activation(res[last]["stats"], res[last]["assignment"], tau=0.1)
    fig2.savefig(out / "fig_interpret_freq_vs_act.png", dpi=130)
    written.append(out / "fig_interpret_freq_vs_act.png")
    plt.close("all")
    print("\n".join(map(str, written)))
    return written


if __name__ == "__main__":
    main()
