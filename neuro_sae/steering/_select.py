"""Choosing a steering cell without its test clips, and reporting it with intervals.

The held-out clips of every test set are split once (by clip, the same split in every
cell) into validation and test clips. Layer, k and alpha are chosen on the validation
clips; the chosen cell is reported on the test clips only, with Wilson intervals of its
rates and paired bootstrap intervals (over test clips) of its WER and of its change
against the baseline. Choosing and reporting on the same clips is biased: on a grid
where no cell changes anything, the lowest of many noisy FPRs sits below the baseline
by chance (tests/steering/test_select.py measures it).
"""

from __future__ import annotations

import numpy as np

from ..utils import check_option, check_random_state, fill_doc, logger, validate_type, verbose
from . import _docs  # noqa: F401
from ._grid import PRESETS
from ._vectors import METHODS

#: columns that identify a cell of the grid
CELL_KEYS = ("preset", "layer", "method", "source", "k", "alpha")
#: the methods a cell is chosen for (the others are baselines)
CHOSEN_METHODS = ("sae", "svector")


@fill_doc
@verbose
def binomial_interval(n_events, n_trials, *, confidence=0.95, verbose=None):
    """Wilson score interval of a rate.

    Parameters
    ----------
    n_events : int
        Events (e.g. falsely detected clips).
    n_trials : int
        Trials (clips).
    confidence : float
        Coverage of the interval (0.95).
    %(verbose)s

    Returns
    -------
    low, high : float
        Bounds in [0, 1] (NaN for no trial).
    """
    from statsmodels.stats.proportion import proportion_confint

    if not 0 < confidence < 1:
        raise ValueError(f"Invalid value for the 'confidence' parameter: it must be in (0, 1), "
                         f"got {confidence!r}; pass e.g. 0.95.")
    if int(n_trials) == 0:
        return float("nan"), float("nan")
    lo, hi = proportion_confint(int(n_events), int(n_trials), alpha=1 - confidence,
                                method="wilson")
    return float(lo), float(hi)


@fill_doc
@verbose
def fpr_reduction(fpr, base_fpr, *, what="FPR", verbose=None):
    """Relative reduction ``1 - fpr / base_fpr``, undefined for a zero base.

    Parameters
    ----------
    fpr : float
        The steered rate.
    base_fpr : float
        The baseline's rate.
    what : str
        Name of the rate (for the log message).
    %(verbose)s

    Returns
    -------
    reduction : float
        ``1 - fpr / base_fpr``; NaN when ``base_fpr`` is 0 or NaN (a relative
        reduction of nothing is undefined, never -inf), with an INFO message.
    defined : bool
        Whether the reduction is defined.
    """
    fpr, base = float(fpr), float(base_fpr)
    if not np.isfinite(base) or base <= 0 or not np.isfinite(fpr):
        logger.info(f"{what} reduction undefined: the baseline {what} is {base:g} (a relative "
                    "reduction needs a positive baseline rate); reported as NaN with "
                    "*_reduction_defined = False.")
        return float("nan"), False
    return 1.0 - fpr / base, True


def _word_counts(refs, hyps):
    """Word errors (S + D + I) and reference words per clip, after Whisper's normaliser."""
    import jiwer

    from ._detect import english_normalizer

    norm = english_normalizer()
    errors, words = [], []
    for r, h in zip(refs, hyps):
        r, h = norm(str(r)), norm("" if h is None else str(h))
        n = len(r.split())
        if n == 0:
            errors.append(0)
            words.append(0)
            continue
        out = jiwer.process_words(r, h if h.strip() else "")
        errors.append(out.substitutions + out.deletions + out.insertions)
        words.append(n)
    return np.asarray(errors, float), np.asarray(words, float)


@fill_doc
@verbose
def split_clips(clips, *, val_fraction=0.5, random_state=0, verbose=None):
    """Validation / test split of the held-out clips, by clip, per test set.

    Parameters
    ----------
    clips : pandas.DataFrame
        Per-clip rows (``set``, ``id``); a clip appearing in many cells gets one
        split.
    val_fraction : float
        Share of each test set's clips used to choose the cell (rounded; at
        least one clip of a set of two or more goes to each side).
    %(random_state)s
    %(verbose)s

    Returns
    -------
    split : pandas.Series
        ``"val"`` or ``"test"``, aligned with ``clips``.
    """
    import pandas as pd

    if not 0 < float(val_fraction) < 1:
        raise ValueError(f"Invalid value for the 'val_fraction' parameter: it must be in (0, 1), "
                         f"got {val_fraction!r}; pass e.g. 0.5.")
    rng = check_random_state(random_state)
    lookup = {}
    for name in sorted(clips["set"].unique()):
        ids = sorted(map(str, clips.loc[clips["set"] == name, "id"].unique()))
        n = len(ids)
        n_val = int(round(val_fraction * n))
        n_val = min(max(n_val, 1), n - 1) if n >= 2 else 0
        if n < 2:
            logger.warning(f"Test set {name!r} has {n} clip: it goes to the test split and no "
                           "validation clip of it informs the choice of cell.")
        perm = rng.permutation(n)
        for j, i in enumerate(perm):
            lookup[(name, ids[i])] = "val" if j < n_val else "test"
    keys = zip(clips["set"], clips["id"].map(str))
    return pd.Series([lookup[k] for k in keys], index=clips.index, name="split")


def _prepare(clips):
    clips = clips.copy()
    if "preset" not in clips.columns:
        clips["preset"] = np.where(clips["method"] == "none", "", "error-preserving")
    clips["preset"] = clips["preset"].fillna("")
    clips["source"] = clips["source"].fillna("")
    clips["k"] = clips["k"].astype(float).fillna(-1.0)  # groupby-safe; restored on output
    sp = clips["kind"] == "speech"
    if "word_errors" not in clips.columns:
        clips["word_errors"], clips["ref_words"] = np.nan, np.nan
        if sp.any():
            e, w = _word_counts(list(clips.loc[sp, "reference"]),
                                list(clips.loc[sp, "transcript"]))
            clips.loc[sp, "word_errors"], clips.loc[sp, "ref_words"] = e, w
    return clips


def _columns(clips):
    """Numpy views of the per-clip columns the measures need."""
    return dict(ns=(clips["kind"] == "nonspeech").to_numpy(),
                ids=list(zip(clips["set"].map(str), clips["id"].map(str))),
                det=clips["detected"].to_numpy(bool),
                hal=clips["hallucination"].to_numpy(float),
                err=clips["word_errors"].to_numpy(float),
                words=clips["ref_words"].to_numpy(float))


def _cell_arrays(cols, idx):
    """Per-clip outcome arrays of one cell on one split (rows ``idx``, sorted by clip)."""
    idx = np.asarray(idx, int)
    ns, sp = idx[cols["ns"][idx]], idx[~cols["ns"][idx]]
    return dict(ids_ns=[cols["ids"][i] for i in ns], det=cols["det"][ns],
                hal=cols["hal"][ns], ids_sp=[cols["ids"][i] for i in sp],
                tp=cols["det"][sp], err=cols["err"][sp], words=cols["words"][sp])


def _rates(a):
    n = len(a["det"])
    wsum = a["words"].sum()
    return dict(fpr=a["det"].mean() if n else np.nan,
                hallucination_rate=np.nanmean(a["hal"]) if n else np.nan,
                tpr=a["tp"].mean() if len(a["tp"]) else np.nan,
                wer=a["err"].sum() / wsum if wsum > 0 else np.nan)


def _score(r, base, max_wer_increase):
    inc = r["wer"] - base["wer"] if np.isfinite(base["wer"]) else 0.0
    inc = 0.0 if not np.isfinite(inc) else inc
    return inc, inc <= max_wer_increase + 1e-12


def _choose(cands, base_of, max_wer_increase):
    """The candidate with the lowest validation FPR within the WER bound (ties: lower
    hallucination rate, lower alpha); none within the bound: lowest FPR + WER increase."""
    rows = []
    for key, r in cands.items():
        inc, ok = _score(r, base_of(key), max_wer_increase)
        fpr = r["fpr"] if np.isfinite(r["fpr"]) else 1.0
        hal = r["hallucination_rate"] if np.isfinite(r["hallucination_rate"]) else 1.0
        rows.append((key, ok, fpr, fpr + max(inc, 0.0), hal, inc))
    if not rows:
        return None, None
    if any(r[1] for r in rows):
        pick = min((r for r in rows if r[1]), key=lambda r: (r[2], r[4], r[0][5], r[0][1]))
    else:
        pick = min(rows, key=lambda r: (r[3], r[4], r[0][5], r[0][1]))
    return pick[0], dict(val_wer_increase=pick[5], within_wer_bound=bool(pick[1]))


def _paired(cell, base, rng, n_boot, confidence):
    """Paired bootstrap over test clips of the FPR difference, relative FPR reduction and
    the WER (cell and baseline see the same clips)."""
    q = [(1 - confidence) / 2, (1 + confidence) / 2]
    out = {}
    if cell["ids_ns"] != base["ids_ns"] or cell["ids_sp"] != base["ids_sp"]:
        raise ValueError("The chosen cell and its baseline were measured on different test "
                         "clips; rerun the grid so every cell steers the same clips.")
    n = len(cell["det"])
    if n:
        idx = rng.integers(0, n, size=(n_boot, n))
        c, b = cell["det"][idx].mean(1), base["det"][idx].mean(1)
        out["fpr_diff_ci"] = tuple(np.quantile(c - b, q))
        ok = b > 0
        red = 1 - c[ok] / b[ok]
        out["fpr_reduction_ci"] = tuple(np.quantile(red, q)) if ok.mean() >= 0.5 else (
            np.nan, np.nan)
        hc, hb = np.nan_to_num(cell["hal"])[idx].mean(1), np.nan_to_num(base["hal"])[idx].mean(1)
        okh = hb > 0
        out["hallucination_reduction_ci"] = (tuple(np.quantile(1 - hc[okh] / hb[okh], q))
                                             if okh.mean() >= 0.5 else (np.nan, np.nan))
    m = len(cell["err"])
    if m and cell["words"].sum() > 0:
        idx = rng.integers(0, m, size=(n_boot, m))
        w = cell["words"][idx].sum(1)
        ok = w > 0
        wc = cell["err"][idx].sum(1)[ok] / w[ok]
        wb = base["err"][idx].sum(1)[ok] / w[ok]
        out["wer_ci"] = tuple(np.quantile(wc, q))
        out["wer_increase_ci"] = tuple(np.quantile(wc - wb, q))
    return out


def _baseline_key(key, cells):
    """The baseline of a cell: the SAE spliced in at its layer for the paper preset's SAE
    method (when measured), else the unsteered model."""
    preset, layer, method = key[0], key[1], key[2]
    if method == "sae" and preset == "paper":
        for k in cells:
            if k[2] == "splice" and k[0] == preset and k[1] == layer:
                return k
    for k in cells:
        if k[2] == "none":
            return k
    raise ValueError("The clips hold no unsteered row (method 'none'); pass every cell's "
                     "per-clip rows (clips.parquet), the unsteered ones included.")


def _label(preset, method):
    names = {"sae": "SAE features", "svector": "S-vector", "splice": "SAE spliced in",
             "none": "unsteered"}
    name = names.get(method, method)
    if method == "none":
        return name
    return f"{name} ({'paper' if preset == 'paper' else 'error-preserving steering'})"


@fill_doc
@verbose
def select_cells(clips, *, max_wer_increase=0.01, val_fraction=0.5, confidence=0.95,
                 n_boot=2000, by_layer=False, random_state=0, verbose=None):
    """Choose each method's cell on validation clips; report it on the test clips.

    For every preset and method (and layer, with ``by_layer``), the cell
    (layer, vector source, k, alpha) with the lowest validation FPR whose
    validation WER is up by at most ``max_wer_increase`` over the unsteered
    model's (ties: lower hallucination rate, then lower alpha; when no cell
    keeps WER within the bound, the lowest FPR + WER increase, flagged
    ``within_wer_bound = False``) is chosen. Its measures are then reported on
    the test clips only, which took no part in the choice, and compared with
    its baseline: the SAE spliced in at its layer for the paper preset's SAE
    method, the unsteered model otherwise.

    Parameters
    ----------
    clips : pandas.DataFrame
        Per-clip rows of every cell (``clips.parquet`` of
        :func:`steering_grid`: ``preset``, ``layer``, ``method``, ``source``,
        ``k``, ``alpha``, ``set``, ``kind``, ``id``, ``detected``,
        ``hallucination``, ``transcript``, ``reference``; optionally ``split``,
        else :func:`split_clips`, and ``word_errors``/``ref_words``, else
        counted after Whisper's normaliser).
    max_wer_increase : float
        Allowed absolute WER increase over the baseline on the validation
        clips (0.01 = 1 point).
    val_fraction : float
        See :func:`split_clips` (used when ``clips`` has no ``split``).
    confidence : float
        Coverage of the intervals.
    n_boot : int
        Bootstrap resamples of the test clips.
    by_layer : bool
        Choose one cell per layer too (a layer scan).
    %(random_state)s
    %(verbose)s

    Returns
    -------
    table : pandas.DataFrame
        One row per baseline (``role="baseline"``: the unsteered model and, for
        the paper preset, the SAE spliced in) and per chosen cell
        (``role="chosen"``): ``label``, the cell keys, ``baseline`` (label of
        the baseline it is compared with), the validation measures ``val_fpr``,
        ``val_wer``, ``val_wer_increase``, ``within_wer_bound``, the test counts
        ``n_test_nonspeech``, ``n_test_speech``, and the test measures with
        intervals: ``fpr`` [``fpr_lo``, ``fpr_hi``] and ``hallucination_rate``
        [``hallucination_lo``, ``hallucination_hi``] (Wilson), ``tpr``, ``wer``
        [``wer_lo``, ``wer_hi``] (bootstrap over speech clips),
        ``fpr_diff`` (chosen - baseline), ``fpr_reduction``,
        ``hallucination_reduction`` (``1 - rate / baseline rate``, with paired
        bootstrap intervals; NaN and ``*_reduction_defined = False`` when the
        baseline rate is 0), ``wer_increase`` [interval] (over the baseline),
        ``val_wer_increase`` (over the unsteered model, the bound's reference).
    """
    import pandas as pd

    validate_type(clips, pd.DataFrame, "clips")
    need = {"layer", "method", "alpha", "set", "kind", "id", "detected", "hallucination"}
    missing = need - set(clips.columns)
    if missing:
        raise ValueError(
            f"clips lacks the columns {sorted(missing)}: a cell is chosen from per-clip rows "
            "(clips.parquet of steering_grid), not from the grid of rates, since its "
            "validation and test clips must be told apart."
        )
    rng = check_random_state(random_state)
    clips = _prepare(clips)
    if "split" not in clips.columns:
        clips["split"] = split_clips(clips, val_fraction=val_fraction, random_state=rng,
                                     verbose=False)
    keys = list(CELL_KEYS)
    clips = clips.sort_values(["set", "id"], kind="stable").reset_index(drop=True)
    cols = _columns(clips)
    arrays = {"val": {}, "test": {}}
    for vals, idx in clips.groupby(keys + ["split"], dropna=False, sort=True).indices.items():
        arrays[vals[-1]][tuple(vals[:-1])] = _cell_arrays(cols, np.sort(idx))
    cells = sorted(set(arrays["val"]) | set(arrays["test"]), key=str)
    empty = _cell_arrays(cols, [])
    val = {k: _rates(arrays["val"].get(k, empty)) for k in cells}
    test = {k: arrays["test"].get(k, empty) for k in cells}
    groups = {}
    for k in cells:
        if k[2] in CHOSEN_METHODS:
            g = (k[0], k[2]) + ((k[1],) if by_layer else ())
            groups.setdefault(g, {})[k] = val[k]
    rows = []

    def row(key, role, base_key, extra):
        a, r = test[key], _rates(test[key])
        lo, hi = binomial_interval(a["det"].sum(), len(a["det"]), confidence=confidence,
                                   verbose=False)
        nh = np.isfinite(a["hal"])
        hlo, hhi = binomial_interval(np.nansum(a["hal"]), nh.sum(), confidence=confidence,
                                     verbose=False)
        out = dict(zip(keys, key), role=role, label=_label(key[0], key[2]),
                   val_fpr=val[key]["fpr"], val_hallucination_rate=val[key][
                       "hallucination_rate"], val_wer=val[key]["wer"],
                   n_val_nonspeech=len(arrays["val"].get(key, empty)["det"]),
                   n_test_nonspeech=len(a["det"]), n_test_speech=len(a["err"]),
                   fpr=r["fpr"], fpr_lo=lo, fpr_hi=hi,
                   hallucination_rate=r["hallucination_rate"], hallucination_lo=hlo,
                   hallucination_hi=hhi, tpr=r["tpr"], wer=r["wer"])
        out.update(extra)
        b = _rates(test[base_key])
        what = _label(key[0], key[2])
        out["baseline"] = _label(base_key[0], base_key[2])
        out["fpr_diff"] = r["fpr"] - b["fpr"]
        out["fpr_reduction"], out["fpr_reduction_defined"] = fpr_reduction(
            r["fpr"], b["fpr"], what=f"FPR ({what})", verbose=False)
        out["hallucination_reduction"], out["hallucination_reduction_defined"] = fpr_reduction(
            r["hallucination_rate"], b["hallucination_rate"],
            what=f"hallucination rate ({what})", verbose=False)
        out["wer_increase"] = r["wer"] - b["wer"]
        ci = _paired(a, test[base_key], rng, int(n_boot), confidence)
        wer_ci = ci.get("wer_ci", (np.nan, np.nan))
        out["wer_lo"], out["wer_hi"] = wer_ci
        for name in ("fpr_diff", "fpr_reduction", "hallucination_reduction", "wer_increase"):
            out[f"{name}_lo"], out[f"{name}_hi"] = ci.get(f"{name}_ci", (np.nan, np.nan))
        if not out["fpr_reduction_defined"]:
            out["fpr_reduction_lo"] = out["fpr_reduction_hi"] = np.nan
        if not out["hallucination_reduction_defined"]:
            out["hallucination_reduction_lo"] = out["hallucination_reduction_hi"] = np.nan
        rows.append(out)

    for k in cells:
        if k[2] in ("none", "splice"):
            row(k, "baseline", _baseline_key(("", k[1], "none"), cells), {})
    # matched WER: against plain Whisper (what a user of the model gets), whatever the
    # baseline the rates are compared with
    none_val = val[_baseline_key(("", None, "none"), cells)] if groups else None
    for _, cands in sorted(groups.items(), key=str):
        pick, info = _choose(cands, lambda key: none_val, max_wer_increase)
        row(pick, "chosen", _baseline_key(pick, cells), info)
    table = pd.DataFrame(rows)
    table["k"] = table["k"].where(table["k"] >= 0)
    for r in table[table["role"] == "chosen"].itertuples():
        logger.info(f"{r.label}: chosen on validation clips layer {int(r.layer)}, k "
                    f"{r.k}, alpha {r.alpha:g}; test FPR {r.fpr:.3f} [{r.fpr_lo:.3f}, "
                    f"{r.fpr_hi:.3f}] ({r.n_test_nonspeech} clips), WER {r.wer:.3f}")
    return table.reset_index(drop=True)


def _need_clips(obj, name):
    import pandas as pd

    if isinstance(obj, pd.DataFrame) and "id" not in obj.columns and "clips" in obj.attrs:
        return obj.attrs["clips"]
    validate_type(obj, pd.DataFrame, name)
    if "id" not in obj.columns:
        raise ValueError(
            f"Invalid value for the '{name}' parameter: it holds rates per cell, not per-clip "
            "rows. A cell is chosen on validation clips and reported on the test clips, which "
            "needs the per-clip rows: pass clips.parquet of steering_grid (or the grid it "
            "returned, whose attrs['clips'] holds them)."
        )
    return obj


@fill_doc
@verbose
def matched_wer(clips, *, max_wer_increase=0.01, confidence=0.95, n_boot=2000,
                random_state=0, verbose=None):
    """Each preset's and method's cell at matched WER, chosen on validation clips.

    The cell with the lowest validation FPR whose validation WER is up by at
    most ``max_wer_increase``, reported on the test clips with intervals
    (:func:`select_cells`).

    Parameters
    ----------
    clips : pandas.DataFrame
        Per-clip rows (``clips.parquet``), or the grid returned by
        :func:`steering_grid` (its ``attrs["clips"]``).
    max_wer_increase : float
        Allowed absolute WER increase over the baseline (0.01 = 1 point).
    confidence : float
        Coverage of the intervals.
    n_boot : int
        Bootstrap resamples.
    %(random_state)s
    %(verbose)s

    Returns
    -------
    table : pandas.DataFrame
        See :func:`select_cells`.
    """
    clips = _need_clips(clips, "clips")
    return select_cells(clips, max_wer_increase=max_wer_increase, confidence=confidence,
                        n_boot=n_boot, random_state=random_state, verbose=False)


@fill_doc
@verbose
def best_layer(clips, *, method="sae", preset="paper", max_wer_increase=0.01, random_state=0,
               verbose=None):
    """The layer of a layer scan whose steering lowers false detections most, on
    validation clips.

    Per layer the cell of ``method`` and ``preset`` is chosen on the validation
    clips (:func:`select_cells` with ``by_layer=True``); the best layer is the
    one whose chosen cell has the lowest validation FPR within the WER bound
    (ties: lower validation hallucination rate, then the lower layer; when no
    layer keeps WER within the bound, the lowest validation FPR + WER increase).
    The test clips take no part.

    Parameters
    ----------
    clips : pandas.DataFrame
        Per-clip rows, or the grid of :func:`steering_grid`, over several
        layers.
    method : str
        ``"sae"`` or ``"svector"``.
    preset : str
        ``"paper"`` or ``"error-preserving"``.
    max_wer_increase : float
        Allowed absolute WER increase on the validation clips (0.01 = 1 point).
    %(random_state)s
    %(verbose)s

    Returns
    -------
    layer : int
        The best layer.
    table : pandas.DataFrame
        Per layer, the chosen cell (:func:`select_cells` columns), sorted by
        layer.
    """
    check_option("method", method, METHODS)
    check_option("preset", preset, tuple(PRESETS))
    clips = _need_clips(clips, "clips")
    if not (clips["method"] == "none").any():
        raise ValueError("The clips hold no unsteered row (method 'none'); pass every "
                         "cell's rows.")
    sel = clips["method"] == method
    if "preset" in clips.columns:
        sel &= clips["preset"].fillna("") == preset
    if not sel.any():
        raise ValueError(f"The grid has no cell of the method {method!r} and preset "
                         f"{preset!r}; it has {sorted(set(clips['method']))}.")
    table = select_cells(clips, max_wer_increase=max_wer_increase, by_layer=True,
                         n_boot=200, random_state=random_state, verbose=False)
    table = table[(table["role"] == "chosen") & (table["method"] == method)
                  & (table["preset"] == preset)].copy()
    table["_score"] = table["val_fpr"] + np.where(table["within_wer_bound"], 0.0,
                                                  10 + table["val_wer_increase"])
    best = table.sort_values(["_score", "val_hallucination_rate", "layer"]).iloc[0]
    table = table.sort_values("layer").drop(columns=["_score"]).reset_index(drop=True)
    logger.info(f"Best layer for {method} ({preset}), chosen on validation clips: "
                f"{int(best['layer'])}")
    return int(best["layer"]), table
