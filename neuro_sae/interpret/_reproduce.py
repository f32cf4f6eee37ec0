"""The reproduction report: one table row per result of the AudioSAE paper.

``analyses/10_reproduce.py`` runs the stages (library functions of
:mod:`neuro_sae.sae`, :mod:`neuro_sae.interpret`, :mod:`neuro_sae.steering`,
:mod:`neuro_sae.simulation` and :mod:`neuro_sae.stats`) and this module turns
their outputs, plain tables and dicts, into the rows. Nothing here computes a
statistic of its own beyond summarising what the stages return, so the table
assembly is tested on synthetic stage outputs.

The paper's numbers (``PAPER``) are quoted from the paper (see docs/paper.md)
(AudioSAE, Aparin, Sadekova et al., EACL 2026).
"""

from __future__ import annotations

import math

import numpy as np

#: Columns of the reproduction table, in order.
COLUMNS = ("result", "quantity", "layer", "paper", "ours", "interval", "null", "definition",
           "note")

#: AudioSAE's HuBERT seed-vs-seed IoU coverage (count of 6,144) at the layer of a
#: 12-layer model nearest in relative depth to each layer of a 6-layer model.
_HUBERT_COVERAGE = {1: (1, 419), 2: (4, 1768), 3: (7, 2930), 4: (7, 2930), 5: (10, 4295),
                    6: (12, 3164)}


def paper_coverage_text(layer):
    """The paper's seed coverage quoted for one layer of a 6-layer model (str)."""
    if layer not in _HUBERT_COVERAGE:
        return "HuBERT layers 1/4/7/10/12: 419/1768/2930/4295/3164 of 6144"
    hl, n = _HUBERT_COVERAGE[layer]
    return f"{n}/6144 = {100 * n / 6144:.1f}% (HuBERT layer {hl} of 12, same relative depth)"


#: The paper's numbers: key -> (result, quantity, paper text).
PAPER = {
    "coverage": ("Tables 1/4/5 (seed IoU coverage)",
                 "seed-vs-seed IoU coverage (IoU > 0.5), fraction of d_sae", None),
    "mcc": ("Tables 1/4/5 (peer measure)",
            "seed-vs-seed Hungarian decoder MCC (mean matched cosine)",
            "not reported by the paper (peers: Song et al. 0.80 for TopK on LLMs; Paulo & "
            "Belrose 30-53% of latents shared at cosine > 0.7)"),
    "duplicates": ("Tables 1/4/5 (duplicates)",
                   "features with a duplicate (IoU > 0.5 inside one SAE), fraction of d_sae",
                   "< 5% at the last layers"),
    "domain": ("Fig. 2 (domain specialisation)", "share of features assigned to {domain}",
               "Fig. 2 shares per layer (rule: f_i - f_j >= tau for all j; frame tau 0.2/0.1/"
               "0.04); read off the figure, no number in the text"),
    "label_whisper": ("Sec. label search (whisper)",
                      "best feature F1 for 'whisper', held out",
                      "F1 = 0.6 (HuBERT layer 4 feature 6106, in sample; F1 > 0.5 = match)"),
    "label_laughter": ("Sec. label search (laughter)",
                       "best feature F1 for a laughter-like label, held out",
                       "laughter features in early layers (F1 > 0.5, in sample)"),
    "phoneme": ("Sec. phonemes", "majority-phone frame accuracy",
                "0.92 (Whisper-small layer 12), 0.89 (HuBERT)"),
    "phoneme_probe": ("Sec. phonemes (baseline)",
                      "linear probe on raw activations, frame accuracy",
                      "not reported by the paper"),
    "probe_k": ("Fig. 3 (top-k probing)",
                "features needed to reach 90% of the all-feature probing accuracy",
                "10-150 (binary tasks), 500-3000 (multi-class) of 6144"),
    "unlearn": ("Fig. 3 (unlearning)",
                "probing accuracy after unlearning the top ~1/3 of d_sae",
                "erasing the information needs ~2000 of 6144 features (~33%)"),
    "erasure_target": ("Fig. 4 (vowel erasure)",
                       "fraction of d_sae removed until vowel A is erased (MCC <= 0.2)",
                       "1152/6144 = 19% (HuBERT last layer, AVLetters2)"),
    "erasure_others": ("Fig. 4 (vowel erasure)",
                       "fraction removed when another vowel falls below MCC 0.75",
                       "~27%"),
    "steer_fpr": ("Tables 2/6/10/13 (steering)",
                  "false speech detection rate (no_speech_prob < 0.5) on non-speech, "
                  "{method}",
                  "SAE k 100 alpha 1: mean FPR 0.37 -> 0.11 (-70%); S-vector alpha 3: "
                  "0.33 -> 0.20 (MUSAN)"),
    "steer_halluc": ("Tables 2/6/10/13 (steering; follow-up paper)",
                     "hallucination rate on non-speech, {method}",
                     "72.63% -> 14.11% (follow-up paper, Whisper-small)"),
    "steer_wer": ("Tables 2/6/10/13 (steering)", "speech WER, {method}",
                  "5.1% -> 5.5% (SAE k 100 alpha 1; alpha 3: 98.4%)"),
    "eeg": ("Sec. EEG", "share of SAE features significant (paper's protocol)",
            "~1% (Whisper), ~1.5% (HuBERT) at lags 0-500 ms"),
}

#: The rows every report holds, in order, as (key, variant) pairs; variants are
#: layers (coverage), domains or methods.
DOMAINS = ("speech", "music", "sounds", "unassigned", "dead")
STEER_METHODS = ("unsteered", "SAE features", "S-vector")


def make_row(key, *, ours=None, interval=None, null=None, definition="", note="",
             layer=None, variant=None, paper=None):
    """One row of the reproduction table.

    Parameters
    ----------
    key : str
        A key of :data:`PAPER`.
    ours : float | None
        Our number (None: not computed; say why in ``note``).
    interval : str | None
        Its 95% interval, as text.
    null : str | None
        The chance level it stands beside (random dictionary, permutation null).
    definition : str
        How ours was computed (data, sizes, split).
    note : str
        The measured reason of a gap, or why the row was not computed.
    layer : int | None
        The layer.
    variant : str | None
        Fills ``{domain}`` / ``{method}`` in the quantity.
    paper : str | None
        The paper's text (default: from :data:`PAPER`).

    Returns
    -------
    row : dict
        The row.
    """
    result, quantity, text = PAPER[key]
    if variant is not None:
        quantity = quantity.format(domain=variant, method=variant)
    if paper is None:
        paper = text if text is not None else paper_coverage_text(layer)
    return dict(key=key, result=result, quantity=quantity,
                layer=None if layer is None else int(layer), paper=paper,
                ours=None if ours is None or not np.isfinite(ours) else float(ours),
                interval=interval or "", null=null or "", definition=definition, note=note)


def wilson(k, n, confidence=0.95):
    """Wilson score interval of ``k`` successes in ``n`` as ``"[lo, hi]"`` (str)."""
    if not n:
        return ""
    from ..steering import binomial_interval

    lo, hi = binomial_interval(k, n, confidence=confidence, verbose=False)
    return f"[{lo:.3f}, {hi:.3f}] (Wilson, n = {int(n)})"


def missing_rows(key, reason, *, layers=None, variants=None):
    """Rows that could not be computed, with the reason in ``note``."""
    rows = []
    for layer in layers or [None]:
        for v in variants or [None]:
            rows.append(make_row(key, layer=layer, variant=v, note=f"not computed: {reason}"))
    return rows


# ------------------------------------------------------------------ rows per stage
def read_training_record(folder):
    """The largest-frames row per layer of a training record, or None.

    Parameters
    ----------
    folder : path-like | None
        A folder holding ``convergence*.parquet`` (columns ``layer``, ``frames``,
        ``iou_coverage``, ``iou_coverage_null``, ``mcc``, ``mcc_null``; e.g. the
        release folder or the budget folder of ``analyses/09_corpus_saes.py``).

    Returns
    -------
    record : pandas.DataFrame | None
        One row per layer (None when the folder or the files are missing).
    """
    from pathlib import Path

    import pandas as pd

    if folder is None or not Path(folder).is_dir():
        return None
    files = sorted(Path(folder).glob("convergence*.parquet"))
    if not files:
        return None
    tab = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
    need = {"layer", "frames", "iou_coverage", "iou_coverage_null", "mcc", "mcc_null"}
    if not need <= set(tab):
        return None
    tab = tab.sort_values(["layer", "frames"]).groupby("layer", as_index=False).tail(1)
    return tab.reset_index(drop=True)


def coverage_rows(layers, record, duplicates, *, d_sae=None, eval_desc="", record_desc=""):
    """Rows of seed coverage, decoder MCC and duplicates, per layer.

    Parameters
    ----------
    layers : list of int
        The layers.
    record : pandas.DataFrame | None
        :func:`read_training_record` (None: coverage and MCC rows carry a note).
    duplicates : dict
        ``layer -> dict(fraction, n, n_features, null_fraction)`` or
        ``layer -> str`` (why it failed).
    d_sae : int | None
        Features per SAE (for Wilson intervals of the coverage).
    eval_desc, record_desc : str
        Definitions of the held-out clips and of the record.

    Returns
    -------
    rows : list of dict
    """
    rows = []
    for layer in layers:
        rec = None
        if record is not None and (record["layer"] == layer).any():
            rec = record[record["layer"] == layer].iloc[0]
        if rec is None:
            why = ("no training record (convergence*.parquet) found; pass --training-record"
                   if record is None else f"the training record has no layer {layer}")
            rows += missing_rows("coverage", why, layers=[layer])
            rows += missing_rows("mcc", why, layers=[layer])
        else:
            frames = int(rec["frames"])
            cov, cnull = float(rec["iou_coverage"]), float(rec["iou_coverage_null"])
            definition = f"{record_desc}; row with the most training frames ({frames:,})"
            note = (f"budget {frames:.2g} frames per SAE vs the paper's 5e8 (200k steps x "
                    "2,500); whisper-base (512 -> 4096) vs HuBERT (768 -> 6144)")

            def versus(ours, null):
                if ours <= null:
                    return "; at or below the random-dictionary null: no seed agreement yet"
                ratio = f", {ours / null:.2f} x" if null > 0 else ""
                return f"; {ours - null:+.3f} above the random-dictionary null{ratio}"

            rows.append(make_row(
                "coverage", layer=layer, ours=cov,
                interval=wilson(round(cov * d_sae), d_sae) if d_sae else "",
                null=f"{cnull:.3f} (random dictionaries)", definition=definition,
                note=note + versus(cov, cnull)))
            m, mnull = float(rec["mcc"]), float(rec["mcc_null"])
            rows.append(make_row(
                "mcc", layer=layer, ours=m, null=f"{mnull:.3f} (random dictionaries)",
                definition=definition + "; decoders row-normalised, Hungarian on 1 - cosine",
                note=note + versus(m, mnull)))
        dup = duplicates.get(layer)
        if dup is None or isinstance(dup, str):
            rows += missing_rows("duplicates", dup or "no SAE", layers=[layer])
        else:
            rows.append(make_row(
                "duplicates", layer=layer, ours=dup["fraction"],
                interval=wilson(dup["n"], dup["n_features"]),
                null=(f"{dup['null_fraction']:.3f} (random dictionary)"
                      if dup.get("null_fraction") is not None else ""),
                definition=f"per-clip BatchTopK codes of {eval_desc}",
                note="" if dup["fraction"] < 0.05 else "above the paper's 5%"))
    return rows


def domain_rows(shares, *, tau=0.1, last_layer=None, definition="", other_taus=None):
    """Rows of the domain shares (Fig. 2): one per domain, at the last layer.

    Parameters
    ----------
    shares : dict
        ``layer -> {domain: share}`` at frame level and ``tau`` (shares of d_sae;
        pairs of domains count as assigned to neither single domain).
    other_taus : dict | None
        ``tau -> {domain: share}`` of the reported layer at other thresholds.
    tau : float
        The frame-level threshold.
    last_layer : int | None
        The layer reported in ``ours`` (default: the largest).
    definition : str
        The clips.

    Returns
    -------
    rows : list of dict
    """
    if not shares:
        return missing_rows("domain", "no SAE could be read", variants=DOMAINS)
    last = max(shares) if last_layer is None else last_layer
    rows = []
    for dom in DOMAINS:
        per = ", ".join(f"L{la}: {shares[la].get(dom, 0.0):.3f}" for la in sorted(shares))
        rows.append(make_row(
            "domain", variant=dom, layer=last, ours=shares[last].get(dom, 0.0),
            definition=f"frame level, tau {tau:g}; {definition}; per layer {per}",
            note="pairs of domains (e.g. speech+music) are the rest of d_sae" + "".join(
                f"; tau {t:g}: {sh.get(dom, 0.0):.3f}" for t, sh in (other_taus or {}).items())))
    return rows


def _get(d, *keys, default=None):
    for k in keys:
        if d is None or k not in d:
            return default
        d = d[k]
    return d


def label_rows(table, *, laughter_label=None, definition="", laughter_note=""):
    """Rows of the label search: the best feature per label, held out.

    Parameters
    ----------
    table : pandas.DataFrame | None
        :func:`neuro_sae.interpret.label_search` (clip level, with permutations).
    laughter_label : str | None
        The label standing in for laughter (None: none in the corpus).
    definition : str
        Clips and permutations.
    laughter_note : str
        Why the stand-in was used.

    Returns
    -------
    rows : list of dict
    """
    rows = []
    for key, label, extra in (("label_whisper", "whisper", ""),
                              ("label_laughter", laughter_label, laughter_note)):
        if label is None:
            rows += missing_rows(key, extra or "no such label in the corpus")
            continue
        if table is None or not (table["label"] == label).any():
            rows += missing_rows(key, f"label {label!r} absent from the searched clips")
            continue
        g = table[table["label"] == label].sort_values("f1", ascending=False)
        best = g.iloc[0]
        heldout = float(best.get("f1_heldout", np.nan))
        p = float(best.get("p_fwe", np.nan))
        null = (f"chance F1 (95th pct of the best over features, label permutations) "
                f"{float(best.get('f1_null_max', np.nan)):.2f}; p_fwe = {p:.3f}")
        hit = bool(best.get("hit", False))
        rows.append(make_row(
            key, ours=heldout, layer=best.get("layer"),
            interval=f"in-sample F1 {float(best['f1']):.2f}", null=null,
            definition=(f"label {label!r}: feature {int(best['feature'])} (best in-sample F1 "
                        f"of d_sae, ranked on all clips, so the held-out F1 is optimistic), "
                        f"threshold on one half of the clips, F1 on the other; "
                        f"{int(best['n_positive'])} positive of {int(best['n_items'])} clips; "
                        f"{definition}"),
            note=("; ".join(v for v in (extra, "permutation-controlled hit" if hit else
                                        "not a permutation-controlled hit (p_fwe > 0.05 "
                                        "or F1 <= 0.5)") if v))))
    return rows


def phoneme_rows(ph, *, layer=None, definition=""):
    """Rows of phoneme accuracy: in sample, held out, chance; and the linear probe.

    Parameters
    ----------
    ph : dict | None
        :func:`neuro_sae.interpret.phoneme_baselines`.
    layer : int | None
        The layer.
    definition : str
        The aligned clips.

    Returns
    -------
    rows : list of dict
    """
    if not ph:
        return (missing_rows("phoneme", "no aligned clips")
                + missing_rows("phoneme_probe", "no aligned clips"))
    chance = f"{ph['chance']:.3f} (phones permuted)"
    if ph.get("majority") is not None:
        chance += f"; commonest phone {ph['majority']:.3f}"
    return [
        make_row("phoneme", layer=layer, ours=ph.get("test"),
                 interval=f"in sample (paper's) {ph['in_sample']:.3f}", null=chance,
                 definition=(f"held-out clips ({ph.get('n_test_frames')} frames, "
                             f"{ph.get('n_phones')} phones, {ph.get('n_features_labelled')} "
                             f"labelled features); {definition}"),
                 note="whisper-base layer 6 of 6 vs Whisper-small layer 12; synthetic speech"),
        make_row("phoneme_probe", layer=layer, ours=ph.get("probe"), null=chance,
                 definition=f"logistic regression on the raw activations, same split; "
                            f"{definition}"),
    ]


def probing_rows(curves, *, d_sae, layer=None, frac=0.9, definition=""):
    """Rows of top-k probing and unlearning (summaries of the curves).

    Parameters
    ----------
    curves : pandas.DataFrame | None
        :func:`neuro_sae.interpret.probe_curve` of kinds ``probe`` and
        ``unlearn`` (``k``, ``selection``, ``accuracy``).
    d_sae : int
        Features per SAE.
    layer : int | None
        The layer.
    frac : float
        Fraction of the all-feature accuracy to reach.
    definition : str
        The task and split.

    Returns
    -------
    rows : list of dict
    """
    if curves is None or not len(curves):
        return missing_rows("probe_k", "no class task") + missing_rows("unlearn", "no class task")
    rows = []
    fis = curves[curves["selection"] == "fisher"]
    pr = fis[fis["kind"] == "probe"].groupby("k")["accuracy"].mean().sort_index()
    full = float(pr.iloc[-1])
    reach = pr[pr >= frac * full]
    k_need = int(reach.index[0]) if len(reach) else None
    rnd = curves[(curves["selection"] == "random") & (curves["kind"] == "probe")]
    rnd = rnd.groupby("k")["accuracy"].mean()
    rows.append(make_row(
        "probe_k", layer=layer, ours=k_need,
        interval=f"{k_need / d_sae:.1%} of d_sae" if k_need else "",
        null=(f"random features at that k: {float(rnd.get(k_need, np.nan)):.2f}"
              if k_need in rnd.index else ""),
        definition=(f"k grid {list(pr.index)}; accuracy with all features {full:.2f}; "
                    f"{definition}"),
        note="k moves in steps of the grid; few held-out clips"))
    un = fis[fis["kind"] == "unlearn"].groupby("k")["accuracy"].mean().sort_index()
    if len(un):
        target = d_sae / 3
        k_un = int(un.index[np.argmin(np.abs(np.asarray(un.index, float) - target))])
        rndu = curves[(curves["selection"] == "random") & (curves["kind"] == "unlearn")]
        rndu = rndu.groupby("k")["accuracy"].mean()
        rows.append(make_row(
            "unlearn", layer=layer, ours=float(un[k_un]),
            interval=f"k = {k_un} ({k_un / d_sae:.1%} of d_sae)",
            null=(f"{float(rndu[k_un]):.2f} with {k_un} random features masked"
                  if k_un in rndu.index else ""),
            definition=f"Fisher top-k masked; all features {full:.2f}; {definition}",
            note=""))
    else:
        rows += missing_rows("unlearn", "no unlearning curve")
    return rows


def erasure_rows(summary, *, layer=None, definition=""):
    """Rows of the vowel erasure (Fig. 4).

    Parameters
    ----------
    summary : dict | None
        ``erased_fraction``, ``others_fraction``, ``others_start_below``,
        ``mcc_before``, ``n_features``, ``n_clips``, ``split`` (the erasure
        summary of :func:`neuro_sae.interpret.interpret_codes` or the same keys).
    layer : int | None
        The layer.
    definition : str
        Task and split.

    Returns
    -------
    rows : list of dict
    """
    if not summary:
        return (missing_rows("erasure_target", "no vowel clips")
                + missing_rows("erasure_others", "no vowel clips"))
    d = (f"{summary.get('n_clips')} vowel clips, {summary.get('split')}; MCC of A before "
         f"removal {summary.get('mcc_before', float('nan')):.2f}; {definition}")
    below = summary.get("others_start_below") or []
    return [
        make_row("erasure_target", layer=layer, ours=summary.get("erased_fraction"),
                 definition=d, note="" if summary.get("erased_fraction") is not None
                 else "vowel A never erased"),
        make_row("erasure_others", layer=layer, ours=summary.get("others_fraction"),
                 definition=d,
                 note=(f"classes starting below 0.75: {below}" if below else "")
                 + ("" if summary.get("others_fraction") is not None
                    else "; no other vowel fell below 0.75")),
    ]


def steering_rows(matched, *, layer=None, definition=""):
    """Rows of the steering: the validation-chosen cells on test clips.

    Parameters
    ----------
    matched : pandas.DataFrame | None
        :func:`neuro_sae.steering.matched_wer` (columns ``label``, ``baseline``,
        ``fpr``, ``fpr_lo``, ``fpr_hi``, ``hallucination_rate``, ...).
    layer : int | None
        The steered layer.
    definition : str
        Clips and grid.

    Returns
    -------
    rows : list of dict
    """
    keys = ("steer_fpr", "steer_halluc", "steer_wer")
    if matched is None or not len(matched):
        return [r for k in keys for r in missing_rows(k, "steering not run",
                                                      variants=STEER_METHODS)]
    lab = matched["label"].astype(str)
    pick = {"unsteered": matched[lab.str.startswith("unsteered")],
            "SAE features": matched[lab.str.startswith("SAE features (paper)")],
            "S-vector": matched[lab.str.startswith("S-vector (paper)")]}
    rows = []
    splice = matched[lab.str.startswith("SAE spliced in")]
    splice_note = ""
    if len(splice):
        sr = splice.iloc[0]
        splice_note = (f"the SAE method's baseline, the SAE spliced in: FPR "
                       f"{float(sr['fpr']):.3f}, halluc. {float(sr['hallucination_rate']):.3f}, "
                       f"WER {float(sr['wer']):.3f} (paper: WER 5.1% -> 5.2%)")
    cols = {"steer_fpr": ("fpr", "fpr_lo", "fpr_hi", "Wilson"),
            "steer_halluc": ("hallucination_rate", "hallucination_lo", "hallucination_hi",
                             "Wilson"),
            "steer_wer": ("wer", "wer_lo", "wer_hi", "bootstrap")}
    for key in keys:
        c, lo, hi, how = cols[key]
        for name in STEER_METHODS:
            sel = pick[name]
            if not len(sel):
                rows += missing_rows(key, f"no {name} cell", variants=[name])
                continue
            r = sel.iloc[0]
            k = r.get("k")
            k = "-" if k is None or (isinstance(k, float) and math.isnan(k)) else int(k)
            cell = ("" if name == "unsteered" else
                    f"chosen on validation clips: k {k}, alpha {r.get('alpha'):g}; ")
            note = ""
            if (key == "steer_fpr" and name != "unsteered" and "fpr_reduction" in r
                    and np.isfinite(float(r["fpr_reduction"]))):
                note = (f"FPR reduction {100 * float(r['fpr_reduction']):.0f}% "
                        f"[{100 * float(r['fpr_reduction_lo']):.0f}, "
                        f"{100 * float(r['fpr_reduction_hi']):.0f}] vs {r.get('baseline')}")
            if name == "SAE features" and splice_note:
                note = "; ".join(v for v in (note, splice_note) if v)
            rows.append(make_row(
                key, variant=name, layer=layer, ours=float(r[c]),
                interval=f"[{float(r[lo]):.3f}, {float(r[hi]):.3f}] ({how})",
                definition=cell + definition,
                note=note))
    return rows


def eeg_rows(info, *, definition=""):
    """Row of the EEG result on simulated EEG (planted truth).

    Parameters
    ----------
    info : dict | None
        ``n_features``, ``n_significant``, ``n_planted``, ``planted_significant``.
    definition : str
        The simulation.

    Returns
    -------
    rows : list of dict
    """
    if not info:
        return missing_rows("eeg", "EEG stage not run")
    n, k = int(info["n_features"]), int(info["n_significant"])
    fp = k - int(info["planted_significant"])
    return [make_row(
        "eeg", layer=info.get("layer"), ours=k / n, interval=wilson(k, n),
        null=f"planted {info['n_planted']} of {n} = {info['n_planted'] / n:.3f}",
        definition=definition,
        note=(f"simulated EEG: {info['planted_significant']} of {info['n_planted']} planted "
              f"features found, {fp} false positives; no real EEG offline"))]


def reproduction_table(rows):
    """The rows as a table with :data:`COLUMNS` (plus ``key``).

    Parameters
    ----------
    rows : list of dict
        From the ``*_rows`` functions.

    Returns
    -------
    table : pandas.DataFrame
    """
    import pandas as pd

    tab = pd.DataFrame(rows)
    for col in ("key",) + COLUMNS:
        if col not in tab:
            tab[col] = None
    tab["layer"] = tab["layer"].astype("Int64")
    tab["ours"] = tab["ours"].astype(float)
    return tab[["key", *COLUMNS]]


def _fmt(v):
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if isinstance(v, float):
        return f"{v:.0f}" if abs(v) >= 100 or v == int(v) and abs(v) >= 10 else f"{v:.3f}"
    return str(v).replace("|", "/").replace("\n", " ")


def table_markdown(table, *, command="", wall_s=None, header="", computed_s=None):
    """The table as markdown, with the command and wall time.

    Parameters
    ----------
    table : pandas.DataFrame
        :func:`reproduction_table`.
    command : str
        The command that made it.
    wall_s : float | None
        Wall time in seconds.
    header : str
        Text above the table.
    computed_s : float | None
        Seconds the stages took when they were computed (cached stages count
        their first run).

    Returns
    -------
    text : str
    """
    import pandas as pd

    lines = ["# Reproduction of the AudioSAE paper's results", ""]
    if header:
        lines += [header, ""]
    if command:
        lines += ["```", command, "```", ""]
    if wall_s is not None:
        text = f"Wall time: {wall_s:.0f} s ({wall_s / 60:.1f} min) this run"
        if computed_s is not None:
            text += (f"; the stages took {computed_s:.0f} s ({computed_s / 60:.1f} min) when "
                     "computed (cached stages are read back)")
        lines += [text + ".", ""]
    cols = list(COLUMNS)
    lines.append("| " + " | ".join(cols) + " |")
    lines.append("|" + "---|" * len(cols))
    for _, r in table.iterrows():
        vals = [_fmt(None if pd.isna(r[c]) else r[c]) for c in cols]
        lines.append("| " + " | ".join(vals) + " |")
    return "\n".join(lines) + "\n"

