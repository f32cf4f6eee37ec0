"""One layer's whole interpretation, saved and read back; the summary other reports use."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..utils import check_random_state, fill_doc, logger, verbose
from ._labels import label_search
from ._phones import alignment_intervals, codes_frame_labels, feature_phones, phoneme_baselines
from ._probing import concept_erasure, probe_curve
from ._stats import assign_domains, feature_stats

INTERPRET_FORMAT = "neuro_sae.interpretation"
_TABLES = ("stats", "assignment", "labels_clip", "labels_frame", "phones", "erasure_curve",
           "probe_curves")


def class_labels(codes, prefix):
    """The one label of each clip that starts with ``prefix`` (None when not exactly one).

    Parameters
    ----------
    codes : ClipCodes
        The codes.
    prefix : str
        Label prefix, e.g. ``"vowel-"``.

    Returns
    -------
    labels : ndarray of object, shape (n_clips,)
        The class of each clip of ``codes.clip_ids`` or None.
    """
    out = []
    for ls in codes.clip_labels():
        hit = sorted(lab for lab in ls if lab.startswith(prefix))
        out.append(hit[0] if len(hit) == 1 else None)
    return np.array(out, dtype=object)


@fill_doc
@verbose
def interpret_codes(codes, *, activations=None, decoder=None, class_prefix="vowel-",
                    erasure_target="vowel-A", erasure_steps=60, probe_ks=None,
                    probe_target="reconstruction", group_column="speaker", C=None,
                    tier="phones", min_f1=0.5, n_permutations=200, random_state=0,
                    verbose=None):
    """Every interpretation of one SAE layer: domains, label search, phones, erasure.

    Parameters
    ----------
    codes : ClipCodes
        Codes of labelled clips.
    activations : dict | None
        Raw activations of the aligned clips (probe baseline of the phones).
    decoder : SparseAutoencoder | tuple | None
        The SAE (or ``(W_dec, b_dec)``) of the codes: probing, unlearning and
        erasure classify its reconstruction (``probe_target="reconstruction"``).
    class_prefix : str | None
        Label prefix of the classes of the probing and erasure task (one label
        per clip; ``None``: skip).
    erasure_target : str
        The class to erase.
    erasure_steps : int
        Removal counts evaluated from 0 to all features.
    probe_ks : list of int | None
        Values of k of the probing and unlearning curves (``None``: about 12
        from 1 to all; ``[]``: no curves).
    probe_target : str
        ``"reconstruction"`` (the paper's: the max-pooled SAE reconstruction
        from the kept features; needs ``decoder``) or ``"codes"`` (the
        max-pooled codes).
    group_column : str | None
        Column of the clip index whose groups (speakers) never straddle the
        split of probing and erasure (``None`` or a missing column: clips are
        split at random).
    C : float | None
        Logistic-regression penalty of probing and erasure (``None``:
        unpenalised, the paper's; ``1.0``: sklearn's default L2).
    tier : str
        Alignment tier of the frame-level label search and the phones.
    min_f1 : float
        Label-search F1 above which a feature is a hit.
    n_permutations : int
        Label permutations of the clip-level label search's null (see
        :func:`label_search`).
    %(random_state)s
    %(verbose)s

    Returns
    -------
    result : dict
        Tables ``stats``, ``assignment``, ``labels_clip``, ``labels_frame``,
        ``phones``, ``erasure_curve``, ``probe_curves`` (pandas, or None where the
        clips lack what it needs) and ``summary`` (a dict of numbers).
    """
    import pandas as pd

    rng = check_random_state(random_state)
    # one independent stream per analysis: the phoneme split does not move when the
    # label search draws more or fewer permutations
    rng_labels, rng_frames, rng_phones, rng_probe = (
        np.random.default_rng(int(s)) for s in rng.integers(2**31 - 1, size=4))
    out = dict.fromkeys(_TABLES)
    summary = dict(layer=codes.layer, n_clips=len(codes.clip_ids),
                   n_frames=int(codes.codes.shape[0]), n_features=int(codes.n_features))
    out["stats"] = feature_stats(codes, verbose=False)
    out["assignment"] = assign_domains(out["stats"], verbose=False)
    if any(codes.clip_labels()):
        out["labels_clip"] = label_search(codes, min_f1=min_f1, top=50,
                                          n_permutations=n_permutations,
                                          random_state=rng_labels,
                                          verbose=False)
    has_align = "alignment" in codes.clips and codes.clips["alignment"].notna().any()
    if has_align:
        iv = alignment_intervals(codes, tier=tier, verbose=False)
        labels = codes_frame_labels(codes, iv)
        # frame labels exist on the aligned clips only: search there
        sub = codes.subset(codes.clips.loc[codes.clips["alignment"].notna(), "id"])
        out["labels_frame"] = label_search(sub, level="frame", frame_labels=iv, min_f1=min_f1,
                                           top=20, random_state=rng_frames, verbose=False)
        out["phones"] = feature_phones(codes, labels, verbose=False)
        summary["phonemes"] = phoneme_baselines(codes, labels, activations=activations,
                                                random_state=rng_phones, verbose=False)
    if class_prefix:
        y = class_labels(codes, class_prefix)
        keep = np.array([v is not None for v in y])
        if keep.sum() >= 10 and erasure_target in set(y[keep]):
            sub = codes.subset(np.asarray(codes.clip_ids, dtype=object)[keep])
            yk = y[keep].astype(str)
            groups = None
            if group_column and group_column in sub.clips and sub.clips[group_column].notna().all():
                groups = sub.clips[group_column].astype(str).to_numpy()
                if len(np.unique(groups)) < 3:
                    groups = None
            common = dict(decoder=decoder, groups=groups, C=C, verbose=False)
            res = concept_erasure(sub, yk, erasure_target, steps=erasure_steps,
                                  target_mode=probe_target, random_state=rng_probe, **common)
            out["erasure_curve"] = res.curve.assign(layer=codes.layer)
            summary["erasure"] = dict(
                target=erasure_target, n_clips=int(keep.sum()), n_features=int(res.n_features),
                n_alive=int((sub.pool("max").max(0) > 0).sum()),
                erased_at=res.erased_at, others_at=res.others_at,
                erased_fraction=res.erased_fraction, others_fraction=res.others_fraction,
                others_start_below=[str(c) for c in res.others_start_below],
                others_never_above=res.others_never_above, erased_mcc=res.erased_mcc,
                keep_mcc=res.keep_mcc, target_mode=probe_target, C=C,
                split="grouped by " + group_column if groups is not None else "stratified",
                mcc_before=float(res.curve[(res.curve["n_removed"] == 0)
                                           & (res.curve["class"] == erasure_target)]["mcc"].iloc[0]))
            if probe_ks is None or len(probe_ks):
                curves = [probe_curve(sub, yk, ks=probe_ks, kind=kind, target=probe_target,
                                      random_state=rng_probe, n_random=3, **common)
                          for kind in ("probe", "unlearn")]
                out["probe_curves"] = pd.concat(curves, ignore_index=True).assign(
                    layer=codes.layer)
    summary["label_hits"] = {}
    summary["label_hits_in_sample"] = {}
    if out["labels_clip"] is not None:
        lc = out["labels_clip"]
        for key, col in (("label_hits", "hit"), ("label_hits_in_sample", "hit_in_sample")):
            summary[key] = {lab: g["feature"].tolist()[:10]
                            for lab, g in lc[lc[col]].groupby("label")}
        summary["label_positives"] = {str(lab): int(n) for lab, n in
                                      lc.groupby("label")["n_positive"].first().items()}
    summary["domains"] = {
        f"{lv}-{tau:g}": g["domain"].value_counts().to_dict()
        for (lv, tau), g in out["assignment"].groupby(["level", "tau"])}
    out["summary"] = summary
    logger.info(f"Interpreted layer {codes.layer}: {len(summary['label_hits'])} labels with hits")
    return out


@fill_doc
@verbose
def save_interpretation(result, folder, *, verbose=None):
    """Write the tables of :func:`interpret_codes` (parquet) and the summary (JSON).

    Parameters
    ----------
    result : dict
        The output of :func:`interpret_codes`.
    folder : path-like
        The folder (written atomically, replaced when present).
    %(verbose)s

    Returns
    -------
    folder : pathlib.Path
        The folder.
    """
    from ..io import atomic_dir, write_json

    folder = Path(folder)
    with atomic_dir(folder) as tmp:
        for name in _TABLES:
            if result.get(name) is not None:
                result[name].to_parquet(tmp / f"{name}.parquet")
        write_json(dict(format=INTERPRET_FORMAT, **result["summary"]), tmp / "summary.json")
    logger.info(f"Interpretation written to {folder}")
    return folder


def read_interpretation(folder):
    """Read a folder written by :func:`save_interpretation`.

    Parameters
    ----------
    folder : path-like
        The folder.

    Returns
    -------
    result : dict
        The tables (None when absent) and ``summary``.
    """
    import pandas as pd

    folder = Path(folder)
    fname = folder / "summary.json"
    if not fname.is_file():
        raise FileNotFoundError(
            f"{folder} holds no interpretation (no summary.json); run neuro-sae interpret or "
            "analyses/07_interpret.py first."
        )
    summary = json.loads(fname.read_text())
    if summary.pop("format", None) != INTERPRET_FORMAT:
        raise ValueError(f"{fname} is not an interpretation summary.")
    out = {n: pd.read_parquet(folder / f"{n}.parquet") if (folder / f"{n}.parquet").is_file()
           else None for n in _TABLES}
    out["summary"] = summary
    return out


def feature_interpretations(features, interpretation, *, dashboard=None, relative_to=None):
    """One row per feature: domain, majority phone, label hits, dashboard link.

    Parameters
    ----------
    features : sequence of int
        SAE feature ids (e.g. the EEG-significant ones).
    interpretation : dict | path-like
        :func:`interpret_codes` output or a folder of :func:`save_interpretation`.
    dashboard : path-like | None
        Dashboard folder (:func:`build_dashboard`); features with a page get a link.
    relative_to : path-like | None
        Make the links relative to this folder (where the report lives).

    Returns
    -------
    table : pandas.DataFrame
        ``feature``, ``domain`` (frame level, tau 0.1), ``phone``, ``label_hits``
        (``label (F1)`` joined by ``; ``) and ``dashboard`` (path or None).
    """
    import os

    import pandas as pd

    from ._dashboard import feature_page

    if not isinstance(interpretation, dict):
        interpretation = read_interpretation(interpretation)
    asg = interpretation.get("assignment")
    if asg is not None:
        asg = asg[(asg["level"] == "frame") & np.isclose(asg["tau"], 0.1)].set_index("feature")
    ph = interpretation.get("phones")
    ph = ph.set_index("feature") if ph is not None else None
    hits = [t for t in (interpretation.get("labels_clip"), interpretation.get("labels_frame"))
            if t is not None]
    hits = pd.concat(hits) if hits else None
    rows = []
    for f in features:
        f = int(f)
        link = None
        if dashboard is not None and (Path(dashboard) / feature_page(f)).is_file():
            link = Path(dashboard) / feature_page(f)
            if relative_to is not None:
                link = Path(os.path.relpath(link, relative_to))
            link = link.as_posix()
        dom = asg["domain"].get(f) if asg is not None else None
        phone = ph["phone"].get(f) if ph is not None else None
        h = hits[(hits["feature"] == f) & hits["hit"]] if hits is not None else []
        lab = "; ".join(f"{r.label} ({r.f1:.2f})" for r in h.itertuples()) if len(h) else ""
        rows.append(dict(feature=f, domain=dom, phone=phone, label_hits=lab, dashboard=link))
    return pd.DataFrame(rows)


@fill_doc
@verbose
def interpret_stimuli(feature_files, audio_files, out_dir, *, significant=None, group_table=None,
                      trf_figures=None, labels=None, domain="speech", n_dashboard=20, n_examples=3,
                      random_state=0, verbose=None):
    """Interpret the SAE features of a study's stimuli and write their dashboard.

    The stimulus runs are the clips (one domain, optional labels); the dashboard
    shows the EEG-significant features first (with their group statistics), then
    the most frequently active ones.

    Parameters
    ----------
    feature_files : dict
        ``run_id -> path`` of the runs' feature series (:class:`neuro_sae.features.FeatureSeries`).
    audio_files : dict
        ``run_id -> path`` of the runs' audio.
    out_dir : path-like
        Output folder: the tables of :func:`save_interpretation` and ``dashboard/``.
    significant : pandas.DataFrame | None
        The group table of significant features (``feature``, ``best_channel``, ``r``,
        ``p_fwe``, ...).
    group_table : pandas.DataFrame | None
        The full group table (``feature``, ``channel``, statistics); each shown
        feature's five strongest channels go on its page.
    trf_figures : dict | None
        ``feature -> matplotlib Figure or PNG path``: the feature's TRF joint plot
        (:func:`neuro_sae.viz.plot_trf_joint`).
    labels : dict | None
        ``run_id -> list of str`` labels of the runs.
    domain : str
        Domain of the runs.
    n_dashboard : int
        Features in the dashboard.
    n_examples : int
        Top examples per feature.
    %(random_state)s
    %(verbose)s

    Returns
    -------
    outputs : dict
        ``interpretation`` (folder) and ``dashboard`` (its ``index.html``).
    """
    import pandas as pd

    from ..features import read_feature_series
    from ._codes import make_clip_codes
    from ._dashboard import build_dashboard

    arrays, times, rows, fids, layer = {}, {}, [], None, None
    for rid, fname in feature_files.items():
        fs = read_feature_series(fname, verbose=False)
        if fids is None:
            fids, layer = fs.feature_ids, fs.layer
        elif not np.array_equal(fids, fs.feature_ids):
            raise ValueError(f"the feature series of run {rid!r} ({fname}) hold other features "
                             "than the first run's; encode every run with the same SAE.")
        arrays[str(rid)], times[str(rid)] = fs.data, fs.times
        rows.append(dict(id=str(rid), domain=domain, path=str(Path(audio_files[rid]).resolve()),
                         labels=list((labels or {}).get(rid, []))))
    codes = make_clip_codes(arrays, pd.DataFrame(rows), times=times, feature_ids=fids,
                            layer=layer, verbose=False)
    res = interpret_codes(codes, class_prefix=None, random_state=random_state, verbose=False)
    out_dir = Path(out_dir)
    save_interpretation(res, out_dir / "tables", verbose=False)
    sig = [] if significant is None else [int(f) for f in significant["feature"]]
    n_active = np.bincount(codes.codes.indices, minlength=codes.n_features)
    busy = [int(f) for f in fids[np.argsort(-n_active, kind="stable")] if f not in sig]
    shown = (sig + busy)[: max(int(n_dashboard), len(sig))]
    shown = [f for f in shown if n_active[np.flatnonzero(fids == f)[0]] > 0]
    trf = {}
    for f in shown:
        parts = {}
        if significant is not None and f in sig:
            parts["table"] = significant[significant["feature"] == f]
        elif group_table is not None:
            g = group_table[group_table["feature"] == f]
            stat = next((c for c in ("statistic", "r") if c in g), None)
            if len(g) and stat is not None:
                parts["table"] = g.sort_values(stat, ascending=False).head(5)
        if trf_figures is not None and f in trf_figures:
            parts["figure"] = trf_figures[f]
        if parts:
            trf[f] = parts
    index = build_dashboard(codes, out_dir / "dashboard", features=shown, n_examples=n_examples,
                            stats=res["stats"], assignment=res["assignment"],
                            label_hits=res["labels_clip"], trf=trf,
                            title=f"SAE features of the stimuli, layer {layer}", overwrite=True,
                            verbose=False)
    return dict(interpretation=out_dir / "tables", dashboard=index)


def interpretation_html(features, interpretation, *, dashboard=None, relative_to=None):
    """An HTML table of what some features are, with links to their dashboard pages.

    For reports: each EEG-significant feature with its domain, majority phone,
    label-search hits and a link to its dashboard entry.

    Parameters
    ----------
    features : sequence of int
        SAE feature ids.
    interpretation : dict | path-like
        See :func:`feature_interpretations`.
    dashboard : path-like | None
        The dashboard folder.
    relative_to : path-like | None
        Folder of the HTML page the table goes into (links are relative to it).

    Returns
    -------
    html : str
        A ``<table>``.
    """
    import html as _html

    table = feature_interpretations(features, interpretation, dashboard=dashboard,
                                    relative_to=relative_to)
    head = "".join(f"<th>{h}</th>" for h in ("feature", "domain (frame, tau 0.1)",
                                              "majority phone", "label hits (F1)", "dashboard"))
    rows = []
    for r in table.itertuples():
        link = (f"<a href=\"{_html.escape(r.dashboard)}\">feature {r.feature}</a>"
                if r.dashboard else "")
        cells = [str(r.feature), r.domain or "", r.phone or "", r.label_hits or "none", link]
        rows.append("<tr>" + "".join(f"<td>{c if c == link else _html.escape(c)}</td>"
                                     for c in cells) + "</tr>")
    return (f"<table class=\"table table-sm\"><thead><tr>{head}</tr></thead><tbody>"
            + "".join(rows) + "</tbody></table>")
