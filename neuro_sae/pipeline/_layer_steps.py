"""Across layers and backbones (step ``layers``): layer curves per backbone, the layer
trend (:func:`neuro_sae.stats.layer_mixedlm` on the best r of the same number of random
features at every layer, :func:`layer_trend_statistic`), variance partitioning against the acoustic
envelope, and the paper's protocol (:func:`neuro_sae.stats.paper_protocol`) beside max-T.

Each function is the ``run``, ``config``, ``inputs`` or ``outputs`` of the step record
``05b_layers`` in :data:`neuro_sae.pipeline.steps.STEPS`."""

from __future__ import annotations

import numpy as np

from ..io import write_parquet
from ..utils import logger
from ._stim_steps import backbone_identity, model_layer_units, model_paths, model_spec, timed


def layers_config(study, subject):
    """Config slice of the layers step."""
    m = study.manifest
    return dict(stats=m.stats.model_dump(include={"alpha", "protocol_channel"}),
                trf=dict(tmin=m.trf.tmin, tmax=m.trf.tmax), subjects=list(m.subjects))  # fmt: skip


def layers_producers(study, subject):
    """Every group unit and every fit unit."""
    from ._eeg_steps import fit_units

    return [("group", u) for u in model_layer_units(study)] + [("fit", u) for u in fit_units(study)]


def layers_inputs(study, subject):
    """Every subject table, protocol kernels, variance partition and group table."""
    m = study.manifest
    files = []
    for u in model_layer_units(study):
        paths = model_paths(study, u.model)
        files.append(paths.group_table(u.layer))
        for s in m.subjects:
            files += [paths.subject_table(s, u.layer), paths.protocol_kernels(s, u.layer)]
            if m.stats.vp_features:
                files.append(paths.variance_partition(s, u.layer))
    return files


def layers_outputs(study, subject):
    """Tables and the layer-curve figure under ``group/layers``."""
    d = study.paths.layers_dir()
    out = dict(curves=d / "layer_curves.parquet", mixedlm=d / "layer_mixedlm.parquet",
               protocol=d / "paper_protocol.parquet", protocol_summary=d / "protocol_vs_maxt.parquet",
               figure=d / "layer_curves.png")  # fmt: skip
    if study.manifest.stats.vp_features:
        out["vp"] = d / "variance_partition.parquet"
    return out


def _model_name(tag):
    return "primary" if tag is None else tag


def _feature_rows(study):
    """Per backbone x layer x subject x feature: the feature's best held-out r over the
    channels and its smallest family-wise p (the layer trend's input)."""
    import pandas as pd

    m = study.manifest
    out = []
    for u in model_layer_units(study):
        paths = model_paths(study, u.model)
        for s in m.subjects:
            tab = pd.read_parquet(paths.subject_table(s, u.layer))
            per = tab.groupby("feature").agg(r=("r", "max"), p=("p_fwe", "min")).reset_index()
            per.insert(0, "model", _model_name(u.model))
            per.insert(1, "subject", s)
            per.insert(2, "layer", u.layer)
            out.append(per)
    return pd.concat(out, ignore_index=True)


def layer_trend_statistic(study, features=None):
    """The layer trend's statistic per backbone x subject x layer: the best held-out r of
    the same number of randomly drawn features at every layer of a backbone
    (:func:`neuro_sae.stats.layer_statistic`, ``"sample_max"``, seeded by
    ``stats.random_state``), so that a layer's feature count does not move it.

    Returns
    -------
    table : pandas.DataFrame
        ``model``, ``subject``, ``layer``, ``value``, ``n_features``, ``n_used``,
        ``statistic``.
    """
    import pandas as pd

    from ..stats import layer_statistic

    features = _feature_rows(study) if features is None else features
    out = []
    for model, df in features.groupby("model", sort=False):
        tab = layer_statistic(df, statistic="sample_max", random_state=study.manifest.stats.random_state)
        tab.insert(0, "model", model)
        out.append(tab)
    return pd.concat(out, ignore_index=True)


def layer_curves(study, features=None, trend=None):
    """Per backbone x layer x subject: share of significant features (max-T), best held-out
    r (over all features: it rises with a layer's feature count), the layer trend's
    statistic ``trend_r`` (best r of ``n_sample`` random features, the same number at every
    layer of a backbone), median peak lag of the ten best features; plus the group level
    (``subject="group"``).

    Returns
    -------
    curves : pandas.DataFrame
    """
    import pandas as pd

    m, alpha = study.manifest, study.manifest.stats.alpha
    features = _feature_rows(study) if features is None else features
    trend = layer_trend_statistic(study, features) if trend is None else trend
    trend_at = {(t.model, str(t.subject), int(t.layer)): (t.value, t.n_used) for t in trend.itertuples()}
    rows, names = [], {}
    for u in model_layer_units(study):
        paths = model_paths(study, u.model)
        if u.model not in names:  # what the spec resolved to ("auto" -> whisper-base)
            names[u.model] = str(backbone_identity(m, model_spec(study, u.model).name)["name"])
        for s in m.subjects:
            tab = pd.read_parquet(paths.subject_table(s, u.layer))
            per_feat = tab.groupby("feature").agg(r=("r", "max"), p=("p_fwe", "min"))
            best = tab.sort_values("r", ascending=False).drop_duplicates("feature").head(10)
            t_r, t_n = trend_at[(_model_name(u.model), str(s), int(u.layer))]
            rows.append(dict(model=_model_name(u.model), backbone=names[u.model], layer=u.layer, subject=s,
                             n_features=len(per_feat), share_significant=float(np.mean(per_feat["p"] < alpha)),
                             best_r=float(per_feat["r"].max()), trend_r=float(t_r), n_sample=int(t_n),
                             mean_r_top10=float(best["r"].mean()),
                             peak_lag_s=float(best["peak_lag_s"].median())))  # fmt: skip
        gtab = pd.read_parquet(paths.group_table(u.layer))
        gf = gtab.groupby("feature")["p_fwe"].min()
        rows.append(dict(model=_model_name(u.model), backbone=names[u.model], layer=u.layer, subject="group",
                         n_features=len(gf), share_significant=float(np.mean(gf < alpha)),
                         best_r=np.nan, trend_r=np.nan, n_sample=0, mean_r_top10=np.nan,
                         peak_lag_s=np.nan))  # fmt: skip
    return pd.DataFrame(rows)


def _mixedlm_tables(trend):
    """The layer trend (``z ~ layer + (1 | subject)``) of each backbone on the trend
    statistic (:func:`layer_trend_statistic`), not on the best r over all features."""
    import pandas as pd

    from ..stats import layer_mixedlm

    out = []
    for model, df in trend.groupby("model", sort=False):
        if df["layer"].nunique() < 2:
            logger.info(f"[layers] {model}: one layer, no layer trend to fit")
            continue
        tab = layer_mixedlm(df.rename(columns={"value": "r"})[["subject", "layer", "r"]], statistic=None)
        tab.insert(0, "model", model)
        tab["group_var"] = tab.attrs["group_var"]
        tab["converged"] = tab.attrs["converged"]
        tab["n_obs"] = tab.attrs["n_obs"]
        tab["statistic"] = str(df["statistic"].iloc[0])
        tab["n_sample"] = int(df["n_used"].min())
        out.append(pd.DataFrame(tab))
    cols = ["model", "term", "estimate", "se", "z", "p", "ci_low", "ci_high", "group_var",
            "converged", "n_obs", "statistic", "n_sample"]  # fmt: skip
    return pd.concat(out, ignore_index=True)[cols] if out else pd.DataFrame(columns=cols)


def _protocol_tables(study, curves):
    import pandas as pd

    from ..stats import paper_protocol

    m = study.manifest
    tables, summary = [], []
    for u in model_layer_units(study):
        paths = model_paths(study, u.model)
        data = [np.load(paths.protocol_kernels(s, u.layer)) for s in m.subjects]
        ch_names = [str(c) for c in data[0]["ch_names"]]
        channel = m.stats.protocol_channel if m.stats.protocol_channel in ch_names else None
        if m.stats.protocol_channel is not None and channel is None:
            logger.info(f"[layers] channel {m.stats.protocol_channel} not recorded: the paper's "
                        "protocol tests every channel")  # fmt: skip
        feats = [f"f{int(f)}" for f in data[0]["feature_ids"]]
        tab = paper_protocol(
            np.stack([d["coef_dev"] for d in data]), np.stack([d["coef_test"] for d in data]),
            data[0]["times"], ch_names=ch_names, channel=channel, feature_names=feats,
            tmin=max(0.0, m.trf.tmin), tmax=m.trf.tmax, alpha=m.stats.alpha,
        )  # fmt: skip
        frac = tab.attrs["fraction_significant"]
        tab = pd.DataFrame(tab)
        tab.insert(0, "model", _model_name(u.model))
        tab.insert(1, "layer", u.layer)
        tables.append(tab)
        grp = curves[(curves["model"] == _model_name(u.model)) & (curves["layer"] == u.layer)
                     & (curves["subject"] == "group")]  # fmt: skip
        summary.append(dict(model=_model_name(u.model), layer=u.layer, n_features=len(feats),
                            protocol_channel=channel or "all", protocol_fraction=frac,
                            maxt_fraction=float(grp["share_significant"].iloc[0])))  # fmt: skip
    return pd.concat(tables, ignore_index=True), pd.DataFrame(summary)


def _plot_curves(curves, fname):
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.ticker import MaxNLocator

    from ..io import atomic_path

    subj = curves[curves["subject"] != "group"]
    group = curves[curves["subject"] == "group"]
    panels = [("share_significant", "Features significant (%, max-T)", 100.0),
              ("trend_r", "Best held-out r of n random\nfeatures per layer (per subject)", 1.0),
              ("peak_lag_s", "Peak lag of the 10 best\nfeatures (s, per subject)", 1.0)]  # fmt: skip
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6), layout="constrained")
    colors = {}
    for ax, (col, label, scale) in zip(axes, panels):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        for model, df in subj.groupby("backbone", sort=False):
            g = df.groupby("layer")[col]
            mean, sem = scale * g.mean(), scale * g.sem().fillna(0.0)
            line = ax.errorbar(mean.index, mean.to_numpy(), yerr=sem.to_numpy(), marker="o", capsize=3,
                               color=colors.get(model), label=model)  # fmt: skip
            colors.setdefault(model, line.lines[0].get_color())
        ax.set(xlabel="Encoder layer (1-based)", ylabel=label)
        ax.grid(alpha=0.3)
    for model, df in group.groupby("backbone", sort=False):  # group level (max-T across subjects)
        df = df.sort_values("layer")
        axes[0].plot(df["layer"], 100.0 * df["share_significant"], ls="--", marker="s", mfc="none",
                     color=colors.get(model))  # fmt: skip
    handles = [Line2D([], [], color=c, marker="o", label=m) for m, c in colors.items()]
    handles += [Line2D([], [], color="0.3", marker="o", label="subjects: mean ± SEM"),
                Line2D([], [], color="0.3", marker="s", mfc="none", ls="--", label="group level")]  # fmt: skip
    fig.legend(handles=handles, loc="outside right upper", fontsize=8)
    fig.suptitle(f"Layer curves of {subj['subject'].nunique()} subjects, per backbone")
    with atomic_path(fname) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)


def layers_run(study, subject, runtime):
    """Layer curves, layer trend, variance partitioning and the paper's protocol."""
    import pandas as pd

    outputs = layers_outputs(study, subject)
    with timed(runtime, "layers"):
        trend = layer_trend_statistic(study)
        curves = layer_curves(study, trend=trend)
        write_parquet(curves, outputs["curves"])
        write_parquet(_mixedlm_tables(trend), outputs["mixedlm"])
        prot, summary = _protocol_tables(study, curves)
        write_parquet(prot, outputs["protocol"])
        write_parquet(summary, outputs["protocol_summary"])
        if "vp" in outputs:
            m = study.manifest
            vp = [pd.read_parquet(model_paths(study, u.model).variance_partition(s, u.layer))
                  for u in model_layer_units(study) for s in m.subjects]  # fmt: skip
            write_parquet(pd.concat(vp, ignore_index=True), outputs["vp"])
        _plot_curves(curves, outputs["figure"])
    for row in summary.itertuples():
        logger.info(f"[layers] {row.model} layer {row.layer}: paper protocol "
                    f"{100 * row.protocol_fraction:.1f}% vs max-T {100 * row.maxt_fraction:.1f}% "
                    "of features significant")  # fmt: skip
    return outputs
