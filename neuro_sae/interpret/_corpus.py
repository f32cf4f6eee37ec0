"""Interpretation of the SAEs of a labelled corpus (the corpus-scale SAEs' derivatives)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from ..utils import check_option, fill_doc, logger, verbose
from ._codes import encode_clips
from ._study import interpret_codes, read_interpretation, save_interpretation


def _corpus_clips(corpus, members, include_mixed):
    from ..corpora import read_clip_index

    index = read_clip_index(corpus, verbose=False)
    root = str(Path(corpus).resolve())
    if members is not None and not include_mixed and "mixed" in members:
        clean = set(members.loc[members["mixed"].fillna("") == "", "clip_id"].astype(str))
        index = index[index["id"].astype(str).isin(clean)]
    return index, root


@fill_doc
@verbose
def interpret_corpus(corpus, derivatives, out_dir, *, layers=None, seed=0, include_mixed=False,
                     dashboard_layer="last", n_dashboard=40, erasure_target="vowel-A",
                     erasure_steps=60, probe_ks=None, probe_target="reconstruction", C=None,
                     group_column="speaker", n_permutations=200, random_state=0, verbose=None):
    """Interpret the corpus SAEs of every layer, save the tables, figures and a dashboard.

    Parameters
    ----------
    corpus : path-like
        Folder of a built corpus (``index.parquet``, audio, alignments).
    derivatives : path-like
        The backbone folder of ``analyses/09_corpus_saes.py`` (``store/``,
        ``packs.parquet``, ``all_layers/saes/layer-<ll>_seed-<s>/``).
    out_dir : path-like
        Output folder: ``layer-<ll>/`` per layer, ``summary.json``, figures,
        ``dashboard/``.
    layers : list of int | None
        Layers (``None``: every layer with an SAE).
    seed : int
        SAE seed to interpret.
    include_mixed : bool
        Also use clips whose pack was mixed with noise or music (their codes
        then describe the mixture, their audio files do not).
    dashboard_layer : int | str
        Layer of the dashboard (``"last"``), or ``None`` for no dashboard.
    n_dashboard : int
        Features in the dashboard.
    erasure_target : str
        Class of the erasure.
    erasure_steps : int
        Removal counts of the erasure curve.
    probe_ks : list of int | None
        Values of k of the probing curves (see :func:`interpret_codes`).
    probe_target : str
        ``"reconstruction"`` (the paper's: classify the SAE reconstruction from
        the kept features) or ``"codes"`` (the max-pooled codes).
    C : float | None
        Logistic-regression penalty of probing and erasure (``None``:
        unpenalised, the paper's).
    group_column : str | None
        Clip-index column whose groups (speakers) never straddle the split of
        probing and erasure (``None``: a random stratified split).
    n_permutations : int
        Label permutations of the clip-level label search.
    %(random_state)s
    %(verbose)s

    Returns
    -------
    summary : dict
        Per layer (``"layer-<ll>"``): the summary of :func:`interpret_codes` and
        the seconds it took.
    """
    import pandas as pd

    from ..activations import read_activation_store
    from ..io import write_json
    from ..sae import load_sae

    derivatives, out_dir = Path(derivatives), Path(out_dir)
    sae_root = derivatives / "all_layers" / "saes"
    found = sorted(sae_root.glob(f"layer-*_seed-{seed}"))
    if not found:
        raise FileNotFoundError(
            f"no SAE of seed {seed} under {sae_root}; run analyses/09_corpus_saes.py first "
            "(or pass the backbone folder it wrote as derivatives)."
        )
    avail = {int(p.name.split("_")[0].split("-")[1]): p for p in found}
    if layers is None:
        layers = sorted(avail)
    for layer in layers:
        check_option("layers", layer, sorted(avail))
    members_file = derivatives / "packs.parquet"
    members = pd.read_parquet(members_file) if members_file.is_file() else None
    store = read_activation_store(derivatives / "store", verbose=False)
    clips, root = _corpus_clips(corpus, members, include_mixed)
    aligned = clips.loc[clips["alignment"].notna(), "id"].astype(str).tolist()
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = {}
    if dashboard_layer == "last":
        dashboard_layer = max(layers)
    for layer in layers:
        t0 = time.perf_counter()
        sae = load_sae(avail[layer], verbose=False)
        codes, acts = encode_clips(sae, store, clips, layer=layer, members=members, root=root,
                                   return_activations=aligned, verbose=False)
        res = interpret_codes(codes, activations=acts, decoder=sae,
                              erasure_target=erasure_target, erasure_steps=erasure_steps,
                              probe_ks=probe_ks, probe_target=probe_target, C=C,
                              group_column=group_column,
                              n_permutations=n_permutations, random_state=random_state,
                              verbose=False)
        save_interpretation(res, out_dir / f"layer-{layer:02d}", verbose=False)
        if layer == dashboard_layer:
            from ._dashboard import build_dashboard

            build_dashboard(codes, out_dir / "dashboard", n_features=n_dashboard,
                            stats=res["stats"], assignment=res["assignment"],
                            phones=res["phones"], label_hits=res["labels_clip"],
                            title=f"whisper-base layer {layer} SAE (seed {seed})",
                            overwrite=True, verbose=False)
        summary[f"layer-{layer:02d}"] = dict(res["summary"], seconds=time.perf_counter() - t0)
        logger.info(f"layer {layer}: {time.perf_counter() - t0:.0f} s")
    write_json(summary, out_dir / "summary.json")
    plot_corpus_figures(out_dir, verbose=False)
    return summary


@fill_doc
@verbose
def plot_corpus_figures(out_dir, *, verbose=None):
    """Draw the figures of a folder written by :func:`interpret_corpus`.

    Writes ``fig_domains_frame.png``, ``fig_domains_clip.png``,
    ``fig_freq_vs_act_layer-<ll>.png``, ``fig_phonemes.png``, ``fig_erasure.png``
    and ``fig_probing.png`` into ``out_dir``.

    Parameters
    ----------
    out_dir : path-like
        The folder.
    %(verbose)s

    Returns
    -------
    figures : list of pathlib.Path
        The files written.
    """
    import matplotlib.pyplot as plt
    import pandas as pd

    from ._probing import ErasureResult, plot_erasure, plot_probe_curves
    from ._stats import domain_table, plot_domain_specialisation, plot_frequency_vs_activation

    out_dir = Path(out_dir)
    folders = sorted(p for p in out_dir.glob("layer-*") if (p / "summary.json").is_file())
    if not folders:
        raise FileNotFoundError(f"{out_dir} holds no layer-<ll>/ interpretation folders.")
    results = {int(p.name.split("-")[1]): read_interpretation(p) for p in folders}
    written = []

    def save(fig, name):
        fig.savefig(out_dir / name, dpi=120)
        plt.close(fig)
        written.append(out_dir / name)

    table = domain_table(pd.concat([r["assignment"] for r in results.values()]))
    table.to_csv(out_dir / "domain_table.csv", index=False)
    for level in ("frame", "clip"):
        save(plot_domain_specialisation(table, level=level, tau=0.1 if level == "frame" else 0.3,
                                        verbose=False), f"fig_domains_{level}.png")
    for layer, r in results.items():
        save(plot_frequency_vs_activation(r["stats"], r["assignment"], tau=0.1, verbose=False),
             f"fig_freq_vs_act_layer-{layer:02d}.png")
    ph = {la: r["summary"].get("phonemes") for la, r in results.items()}
    if any(v is not None for v in ph.values()):
        save(plot_phoneme_accuracy(ph, verbose=False), "fig_phonemes.png")
    last = max(la for la in results)
    r = results[last]
    if r["erasure_curve"] is not None:
        s = r["summary"]["erasure"]
        res = ErasureResult(r["erasure_curve"], s["target"], s["n_features"], s["erased_at"],
                            s["others_at"], s["erased_mcc"], s["keep_mcc"], np.array([]),
                            list(s.get("others_start_below", [])),
                            s.get("target_mode", "codes"))
        fig = plot_erasure(res, verbose=False)
        fig.axes[0].set_title(f"Concept erasure of {s['target']}, layer {last}")
        save(fig, "fig_erasure.png")
    if r["probe_curves"] is not None:
        save(plot_probe_curves(r["probe_curves"], verbose=False), "fig_probing.png")
    return written


@fill_doc
@verbose
def plot_phoneme_accuracy(per_layer, *, axes=None, show=False, verbose=None):
    """Phoneme accuracy per layer next to its chance and probe baselines.

    Parameters
    ----------
    per_layer : dict
        ``layer -> dict`` of :func:`phoneme_baselines` (None where absent).
    %(axes_show)s
    %(verbose)s

    Returns
    -------
    fig : matplotlib.figure.Figure
        The figure.
    """
    import matplotlib.pyplot as plt

    layers = sorted(la for la, v in per_layer.items() if v is not None)
    if axes is None:
        fig, axes = plt.subplots(figsize=(5.5, 3.6), layout="constrained")
    fig = axes.figure
    series = [("in_sample", "SAE features, in-sample (paper's)", "o-"),
              ("test", "SAE features, held-out clips", "s-"),
              ("probe", "linear probe on activations", "^--"),
              ("chance", "chance (phones permuted)", "x:"),
              ("majority", "commonest phone", "+:")]
    for key, label, style in series:
        vals = [per_layer[la].get(key) for la in layers]
        if all(v is None for v in vals):
            continue
        axes.plot(layers, [np.nan if v is None else v for v in vals], style, label=label)
    axes.set(xlabel="layer", ylabel="frame accuracy", ylim=(0, 1), xticks=layers,
             title="Phoneme accuracy of SAE features")
    axes.legend(fontsize=7, frameon=False)
    if show:
        plt.show()
    return fig


@fill_doc
@verbose
def train_slice_saes(corpus, out_dir, *, labels=("whisper",), label_prefixes=("vowel-",),
                     minutes_per_domain=6.0, max_aligned=40, backbone="whisper-base",
                     layers=None, expansion=4, k=32, n_steps=300, batch_size=1024, lr=1e-3,
                     threshold_beta=0.95, n_threads=None, random_state=0, verbose=None):
    """Train small SAEs (every layer, seed 0) on a labelled slice of a corpus.

    The slice holds every clip with one of ``labels`` or a label starting with one of
    ``label_prefixes``, up to ``max_aligned`` clips with alignments, and random clips
    of each domain up to ``minutes_per_domain``. Clips are packed per corpus (no
    mixing), extracted into an activation store and one SAE per layer is trained on
    all of it. The folder has the layout of ``analyses/09_corpus_saes.py``
    (``packs.parquet``, ``store/``, ``all_layers/saes/layer-<ll>_seed-0``), so
    :func:`interpret_corpus` reads it.

    Parameters
    ----------
    corpus : path-like
        Folder of a built corpus.
    out_dir : path-like
        Output folder.
    labels : sequence of str
        Clip labels always included.
    label_prefixes : sequence of str
        Label prefixes always included (e.g. the vowel classes of the erasure).
    minutes_per_domain : float
        Audio of random clips per domain, on top of the labelled ones.
    max_aligned : int
        Clips with alignments included (phones).
    backbone : str
        Backbone spec (:func:`neuro_sae.backbones.load_backbone`).
    layers : list of int | None
        Layers (``None``: all).
    expansion, k, n_steps, batch_size, lr, threshold_beta : int, int, int, int, float, float
        SAE size and training (see :func:`neuro_sae.sae.train_store_saes`).
    n_threads : int | None
        Torch threads while training.
    %(random_state)s
    %(verbose)s

    Returns
    -------
    info : dict
        Clip, pack and frame counts, minutes per domain, seconds per stage.
    """
    from ..activations import build_activation_store
    from ..backbones import load_backbone
    from ..corpora import index_to_clips, read_clip_index
    from ..io import write_json, write_parquet
    from ..sae import pack_clips, train_store_saes
    from ..utils import check_random_state

    rng = check_random_state(random_state)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    index = read_clip_index(corpus, verbose=False)
    labs = index["labels"].apply(lambda ls: [str(v) for v in ls])
    keep = labs.apply(lambda ls: any(v in labels or v.startswith(tuple(label_prefixes))
                                     for v in ls)).to_numpy().copy()
    aligned = np.flatnonzero(index["alignment"].notna().to_numpy() & ~keep)
    keep[rng.permutation(aligned)[:max_aligned]] = True
    for _, g in index[~keep].groupby("domain"):
        pos = g.index[rng.permutation(len(g))]
        dur = index.loc[pos, "duration"].cumsum()
        keep[index.index.get_indexer(pos[dur.to_numpy() <= 60 * minutes_per_domain])] = True
    sub = index[keep]
    t0 = time.perf_counter()
    clips = index_to_clips(sub, corpus, verbose=False)
    packs, members = pack_clips(clips, random_state=rng, verbose=False)
    members["split"] = "train"
    write_parquet(members, out_dir / "packs.parquet")
    bb = load_backbone(backbone, encoder_only=True, verbose=False)
    layers = layers or list(range(1, bb.n_layers + 1))
    store = build_activation_store(bb, packs, out_dir / "store", layers=layers,
                                   clips_per_shard=16, verbose=False)
    t_extract = time.perf_counter() - t0
    t0 = time.perf_counter()
    # corpus weights make the stream endless (epochs cycle): n_steps is not capped by
    # one pass over the slice; every corpus in proportion to its frames
    weights = {c: 1.0 for c in store.corpus_frames}
    train_store_saes(store, out_dir / "all_layers", layers=layers, seeds=[0],
                     expansion=expansion, k=k, n_steps=n_steps, batch_size=batch_size, lr=lr,
                     threshold_beta=threshold_beta, n_threads=n_threads,
                     corpus_weights=weights,
                     random_state=int(rng.integers(2**31 - 1)), verbose=False)
    info = dict(n_clips=int(len(sub)), n_packs=len(packs), n_frames=int(len(store.index)),
                minutes=sub.groupby("domain")["duration"].sum().div(60).round(2).to_dict(),
                layers=layers, expansion=expansion, d_sae=int(expansion * bb.d_model), k=k,
                n_steps=n_steps, batch_size=batch_size, n_steps_done=_steps_done(out_dir),
                extract_s=round(t_extract, 1),
                train_s=round(time.perf_counter() - t0, 1))
    write_json(info, out_dir / "slice.json")
    logger.info(f"Slice SAEs: {info}")
    return info


def _steps_done(out_dir):
    import json

    cfgs = sorted((Path(out_dir) / "all_layers" / "saes").glob("*/cfg.json"))
    return min((json.loads(p.read_text()).get("n_steps_done", 0) for p in cfgs), default=0)
