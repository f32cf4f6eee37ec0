"""Feature statistics per domain and the paper's domain assignment."""

from __future__ import annotations

import itertools

import numpy as np

from ..utils import check_option, fill_doc, logger, validate_type, verbose

FRAME_THRESHOLDS = (0.2, 0.1, 0.04)
CLIP_THRESHOLDS = (0.5, 0.3)


@fill_doc
@verbose
def feature_stats(codes, *, domains=None, verbose=None):
    """Activation frequency and mean activation of every feature in every domain.

    Parameters
    ----------
    codes : ClipCodes
        The SAE codes of labelled clips.
    domains : list of str | None
        Domains to report (``None``: those of the clips, in sorted order).
    %(verbose)s

    Returns
    -------
    stats : pandas.DataFrame
        Tidy table, one row per feature and domain: ``layer``, ``feature``,
        ``domain``, ``n_frames`` and ``n_clips`` of the domain, ``frame_freq``
        (fraction of the domain's frames where the feature is active),
        ``clip_freq`` (fraction of its clips where it is active at least once),
        ``mean_act`` (mean activation over all its frames) and
        ``mean_active`` (mean activation over the frames where it is active,
        NaN when never active).
    """
    import pandas as pd

    frame_dom = codes.frame_domain()
    clip_dom = codes.clips["domain"].to_numpy().astype(str)
    if domains is None:
        domains = sorted(set(clip_dom))
    coo = codes.codes.tocoo()
    pooled = codes.pool("max")
    rows = []
    for dom in domains:
        fmask = frame_dom == dom
        n_fr, n_cl = int(fmask.sum()), int((clip_dom == dom).sum())
        sel = fmask[coo.row]
        count = np.bincount(coo.col[sel], minlength=codes.n_features)
        total = np.bincount(coo.col[sel], weights=coo.data[sel], minlength=codes.n_features)
        clip_count = (pooled[clip_dom == dom] > 0).sum(0)
        with np.errstate(invalid="ignore", divide="ignore"):
            rows.append(pd.DataFrame(dict(
                layer=codes.layer, feature=codes.feature_ids, domain=dom,
                n_frames=n_fr, n_clips=n_cl,
                frame_freq=count / n_fr if n_fr else np.nan,
                clip_freq=clip_count / n_cl if n_cl else np.nan,
                mean_act=total / n_fr if n_fr else np.nan,
                mean_active=np.where(count > 0, total / np.maximum(count, 1), np.nan),
            )))
    out = pd.concat(rows, ignore_index=True)
    logger.info(f"Feature statistics of {codes.n_features} features over {len(domains)} domains")
    return out


def _assign(freq, domains, tau, dead):
    """Domain of each feature from its frequencies (n_features, n_domains)."""
    n_feat, n_dom = freq.shape
    if n_dom < 2:
        # one domain: "f_i - f_j >= tau for all j" holds vacuously; there is no specialisation
        out = np.full(n_feat, "n/a", dtype=object)
        out[dead] = "dead"
        return out
    out = np.full(n_feat, "unassigned", dtype=object)
    done = dead.copy()
    # one domain: f_i - f_j >= tau for every other j
    for i, dom in enumerate(domains):
        others = np.delete(freq, i, axis=1)
        ok = ~done & np.all(freq[:, [i]] - others >= tau - 1e-12, axis=1)
        out[ok] = dom
        done |= ok
    # two domains: min(f_i, f_j) - f_k >= tau for every remaining k
    if n_dom >= 3:
        for i, j in itertools.combinations(range(n_dom), 2):
            rest = np.delete(freq, [i, j], axis=1)
            low = np.minimum(freq[:, i], freq[:, j])
            ok = ~done & np.all(low[:, None] - rest >= tau - 1e-12, axis=1)
            out[ok] = f"{domains[i]}+{domains[j]}"
            done |= ok
    out[dead] = "dead"
    return out


@fill_doc
@verbose
def assign_domains(stats, *, frame_thresholds=FRAME_THRESHOLDS, clip_thresholds=CLIP_THRESHOLDS,
                   verbose=None):
    """The paper's domain assignment of every feature at every threshold.

    A feature belongs to domain *i* when its activation frequency there exceeds
    its frequency in every other domain by at least ``tau`` (``f_i - f_j >= tau``
    for all ``j``); failing that, to the pair *i+j* when both exceed the third
    domain by ``tau`` (``min(f_i, f_j) - f_k >= tau``); otherwise it is
    ``unassigned``. A feature never active in any frame is ``dead``. With clips
    of one domain only (e.g. a study's speech stimuli) there is nothing to
    specialise against: every live feature is ``n/a``. Frame-level
    frequencies use the thresholds 0.2, 0.1 and 0.04, clip-level ones 0.5 and 0.3
    (the paper's).

    Parameters
    ----------
    stats : pandas.DataFrame
        The table of :func:`feature_stats`.
    frame_thresholds : sequence of float
        Thresholds on frame-level frequencies.
    clip_thresholds : sequence of float
        Thresholds on clip-level frequencies.
    %(verbose)s

    Returns
    -------
    assignment : pandas.DataFrame
        One row per feature, level and threshold: ``layer``, ``feature``,
        ``level`` (``frame`` | ``clip``), ``tau`` and ``domain``.
    """
    import pandas as pd

    validate_type(stats, pd.DataFrame, "stats")
    need = {"feature", "domain", "frame_freq", "clip_freq"}
    if not need <= set(stats):
        raise ValueError(
            f"stats lacks the column(s) {sorted(need - set(stats))}; pass the table of "
            "feature_stats()."
        )
    domains = sorted(stats["domain"].unique())
    layer = stats["layer"].iloc[0] if "layer" in stats else None
    rows = []
    for level, taus in (("frame", frame_thresholds), ("clip", clip_thresholds)):
        wide = stats.pivot(index="feature", columns="domain", values=f"{level}_freq")[domains]
        freq = wide.to_numpy(float)
        dead = ~np.nansum(stats.pivot(index="feature", columns="domain",
                                      values="frame_freq")[domains].to_numpy(float),
                          axis=1).astype(bool)
        for tau in taus:
            tau = float(tau)
            if not 0 <= tau <= 1:
                raise ValueError(f"{level}_thresholds holds {tau!r}; thresholds lie in [0, 1].")
            rows.append(pd.DataFrame(dict(
                layer=layer, feature=wide.index.to_numpy(), level=level, tau=tau,
                domain=_assign(np.nan_to_num(freq), domains, tau, dead))))
    return pd.concat(rows, ignore_index=True)


def domain_table(assignment):
    """Counts and fractions of features per domain label.

    Parameters
    ----------
    assignment : pandas.DataFrame
        One or several tables of :func:`assign_domains` (several layers concatenated).

    Returns
    -------
    table : pandas.DataFrame
        ``layer``, ``level``, ``tau``, ``domain``, ``n_features`` and ``fraction``
        (of all the layer's features).
    """
    g = assignment.groupby(["layer", "level", "tau", "domain"], dropna=False).size()
    table = g.rename("n_features").reset_index()
    total = table.groupby(["layer", "level", "tau"], dropna=False)["n_features"].transform("sum")
    table["fraction"] = table["n_features"] / total
    return table


def _domain_colors(labels):
    base = {"speech": "#1f77b4", "music": "#d62728", "sounds": "#2ca02c",
            "unassigned": "#c7c7c7", "dead": "#444444"}
    extra = iter(["#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2", "#bcbd22"])
    return {lab: base.get(lab) or next(extra, "#999999") for lab in labels}


@fill_doc
@verbose
def plot_domain_specialisation(table, *, level="frame", tau=None, axes=None, show=False,
                               verbose=None):
    """Fraction of features per domain across layers (the paper's Fig. 2).

    Parameters
    ----------
    table : pandas.DataFrame
        The table of :func:`domain_table` over layers.
    level : str
        ``"frame"`` or ``"clip"``.
    tau : float | None
        Threshold to draw (``None``: the level's first threshold in the table).
    %(axes_show)s
    %(verbose)s

    Returns
    -------
    fig : matplotlib.figure.Figure
        The figure.
    """
    import matplotlib.pyplot as plt

    check_option("level", level, ("frame", "clip"))
    sub = table[table["level"] == level]
    if tau is None:
        tau = (FRAME_THRESHOLDS if level == "frame" else CLIP_THRESHOLDS)[0]
        if not np.isclose(sub["tau"], tau).any():
            tau = float(sub["tau"].iloc[0])
    sub = sub[np.isclose(sub["tau"], tau)]
    wide = sub.pivot(index="layer", columns="domain", values="fraction").fillna(0.0)
    order = [d for d in ("speech", "music", "sounds") if d in wide]
    order += sorted(c for c in wide if "+" in c)
    order += [c for c in ("unassigned", "dead") if c in wide]
    order += [c for c in wide if c not in order]
    wide = wide[order]
    colors = _domain_colors(order)
    if axes is None:
        fig, axes = plt.subplots(figsize=(6.5, 3.6), layout="constrained")
    fig = axes.figure
    bottom = np.zeros(len(wide))
    x = np.arange(len(wide))
    for dom in order:
        axes.bar(x, wide[dom].to_numpy(), bottom=bottom, color=colors[dom], label=dom,
                 edgecolor="white", linewidth=0.5)
        bottom += wide[dom].to_numpy()
    axes.set_xticks(x, [str(v) for v in wide.index])
    axes.set(xlabel="layer", ylabel="fraction of features", ylim=(0, 1),
             title=f"Domain specialisation ({level} level, tau = {tau:g})")
    axes.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    if show:
        plt.show()
    return fig


@fill_doc
@verbose
def plot_frequency_vs_activation(stats, assignment, *, level="frame", tau=None, axes=None,
                                 show=False, verbose=None):
    """Activation frequency against mean activation, coloured by domain (the paper's Fig. 11).

    Each feature is drawn once, at its highest per-domain frame frequency and its
    mean activation while active in that domain.

    Parameters
    ----------
    stats : pandas.DataFrame
        The table of :func:`feature_stats` (one layer).
    assignment : pandas.DataFrame
        The table of :func:`assign_domains` of the same layer.
    level : str
        ``"frame"`` or ``"clip"``: which assignment colours the points.
    tau : float | None
        Threshold of the assignment (``None``: the level's first).
    %(axes_show)s
    %(verbose)s

    Returns
    -------
    fig : matplotlib.figure.Figure
        The figure.
    """
    import matplotlib.pyplot as plt

    check_option("level", level, ("frame", "clip"))
    asg = assignment[assignment["level"] == level]
    if tau is None:
        tau = float(asg["tau"].iloc[0])
    asg = asg[np.isclose(asg["tau"], tau)].set_index("feature")["domain"]
    best = stats.sort_values("frame_freq").groupby("feature").tail(1).set_index("feature")
    best = best[best["frame_freq"] > 0]
    dom = asg.reindex(best.index).fillna("unassigned")
    colors = _domain_colors(sorted(set(dom)))
    if axes is None:
        fig, axes = plt.subplots(figsize=(5.5, 4), layout="constrained")
    fig = axes.figure
    for lab in sorted(set(dom), key=lambda s: (s == "unassigned", "+" in s, s)):
        m = (dom == lab).to_numpy()
        axes.scatter(best["frame_freq"].to_numpy()[m], best["mean_active"].to_numpy()[m], s=6,
                     alpha=0.7, color=colors[lab], label=f"{lab} ({m.sum()})")
    axes.set(xscale="log", xlabel="activation frequency (fraction of frames, best domain)",
             ylabel="mean activation when active",
             title=f"Layer {stats['layer'].iloc[0]}: frequency vs activation")
    axes.legend(fontsize=7, markerscale=2, frameon=False)
    if show:
        plt.show()
    return fig
