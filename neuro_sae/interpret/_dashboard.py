"""A static HTML dashboard of an SAE's features: loads from disk, no server, no internet."""

from __future__ import annotations

import html
import json
from pathlib import Path

import numpy as np

from ..utils import check_int, fill_doc, logger, verbose
from ._examples import (
    SFREQ,
    _clip_audio,
    mel_average,
    plot_activation_histogram,
    plot_feature_examples,
    plot_mel_average,
    top_examples,
)

DASHBOARD_FORMAT = "neuro_sae.feature_dashboard"

_CSS = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222;background:#fff}
table{border-collapse:collapse;font-size:0.9em}
th,td{border-bottom:1px solid #ddd;padding:0.25em 0.6em;text-align:left}
th{cursor:pointer;background:#f0f3f7;user-select:none}
th.sorted-asc::after{content:" \\25B2"} th.sorted-desc::after{content:" \\25BC"}
input#search{font-size:1em;padding:0.3em;width:22em;margin-bottom:0.8em}
.example{display:flex;gap:1em;align-items:center;margin:0.6em 0}
.example img{max-width:640px;border:1px solid #ccc}
.badge{font-size:0.8em;padding:0.1em 0.4em;border-radius:3px;background:#eee}
.badge.error{background:#f8d0d0}
img.figure{max-width:480px;border:1px solid #ccc;margin:0.3em}
nav a{margin-right:1em}
"""

# marks each audio and image with data-state="ok" | "error" (shown as a badge)
_MEDIA_JS = """
document.querySelectorAll('audio').forEach(function (a) {
  var badge = document.createElement('span');
  badge.className = 'badge';
  a.after(badge);
  function mark(state) {
    a.setAttribute('data-state', state);
    badge.textContent = state === 'ok' ? 'audio ok' : 'audio missing';
    badge.className = 'badge ' + state;
  }
  a.addEventListener('loadedmetadata', function () { mark('ok'); });
  a.addEventListener('error', function () { mark('error'); });
  if (a.readyState >= 1) { mark('ok'); }
});
document.querySelectorAll('img').forEach(function (im) {
  function check() { im.setAttribute('data-state', im.naturalWidth > 0 ? 'ok' : 'error'); }
  if (im.complete) { check(); } else {
    im.addEventListener('load', check);
    im.addEventListener('error', check);
  }
});
"""

_INDEX_JS = """
var rows = Array.prototype.slice.call(document.querySelectorAll('#features tbody tr'));
document.getElementById('search').addEventListener('input', function (ev) {
  var q = ev.target.value.toLowerCase();
  rows.forEach(function (r) {
    r.style.display = r.textContent.toLowerCase().indexOf(q) >= 0 ? '' : 'none';
  });
  document.getElementById('count').textContent =
    rows.filter(function (r) { return r.style.display !== 'none'; }).length;
});
document.querySelectorAll('#features th').forEach(function (th, col) {
  th.addEventListener('click', function () {
    var asc = !th.classList.contains('sorted-asc');
    document.querySelectorAll('#features th').forEach(function (h) {
      h.classList.remove('sorted-asc', 'sorted-desc');
    });
    th.classList.add(asc ? 'sorted-asc' : 'sorted-desc');
    var body = document.querySelector('#features tbody');
    rows.sort(function (a, b) {
      var x = a.children[col].getAttribute('data-value');
      var y = b.children[col].getAttribute('data-value');
      var nx = parseFloat(x), ny = parseFloat(y);
      var c = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : x.localeCompare(y);
      return asc ? c : -c;
    });
    rows.forEach(function (r) { body.appendChild(r); });
  });
});
"""


def _page(title, body, *, script="", css_href="style.css"):
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{html.escape(title)}</title>"
        f"<link rel=\"stylesheet\" href=\"{css_href}\"></head>\n<body>\n{body}\n"
        f"<script>{_MEDIA_JS}{script}</script>\n</body></html>\n"
    )


def feature_page(feature):
    """Relative path of a feature's page inside a dashboard folder (str)."""
    return f"features/feature_{int(feature):05d}.html"


def _savefig(fig, fname):
    import matplotlib.pyplot as plt

    fig.savefig(fname, dpi=80)
    plt.close(fig)


def _fmt(v, spec=".3g"):
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return ""
    return format(v, spec) if isinstance(v, (float, np.floating)) else str(v)


@fill_doc
@verbose
def build_dashboard(codes, out_dir, *, features=None, n_features=40, n_examples=4,
                    context_s=1.5, stats=None, assignment=None, phones=None,
                    label_hits=None, trf=None, title=None, overwrite=False, verbose=None):
    """Write a self-contained static HTML site of an SAE's features.

    ``index.html`` lists the features (search box, sortable columns); each feature
    has a page with its activation histogram, its top examples (inline audio
    players and spectrograms with the activation trace), its log-mel average,
    the labels found (domain, majority phone, label-search hits) and, where an
    EEG study has run, its TRF figure and group statistics. Every file lives in
    ``out_dir`` (relative links, no server, no internet); the pages mark each
    audio and image element with ``data-state="ok"`` or ``"error"``.

    Parameters
    ----------
    codes : ClipCodes
        The codes (clips with audio paths).
    out_dir : path-like
        The dashboard folder (written atomically, replaced with ``overwrite``).
    features : list of int | None
        Features to show (``None``: the ``n_features`` most frequently active).
    n_features : int
        Number of features when ``features`` is None.
    n_examples : int
        Top examples per feature.
    context_s : float
        Seconds of audio on each side of an example's peak.
    stats : pandas.DataFrame | None
        :func:`feature_stats` table (frequencies per domain).
    assignment : pandas.DataFrame | None
        :func:`assign_domains` table; the frame level at tau 0.1 is shown.
    phones : pandas.DataFrame | None
        :func:`feature_phones` table.
    label_hits : pandas.DataFrame | None
        :func:`label_search` table (the hits and the best label are shown).
    trf : dict | None
        ``feature -> dict`` with ``figure`` (a Matplotlib figure or a PNG path)
        and/or ``table`` (a pandas.DataFrame of group statistics).
    title : str | None
        Title of the index page.
    overwrite : bool
        Replace an existing folder.
    %(verbose)s

    Returns
    -------
    index : pathlib.Path
        The ``index.html``.
    """
    import soundfile as sf

    from ..io import atomic_dir, write_json

    out_dir = Path(out_dir)
    if out_dir.exists() and not overwrite:
        raise FileExistsError(f"{out_dir} exists; pass overwrite=True to replace it.")
    n_examples = check_int(n_examples, "n_examples")
    n_active = np.bincount(codes.codes.indices, minlength=codes.n_features)
    if features is None:
        order = np.argsort(-n_active, kind="stable")
        order = order[n_active[order] > 0][: check_int(n_features, "n_features")]
        features = codes.feature_ids[order].tolist()
    features = [int(f) for f in features]
    known = set(codes.feature_ids.tolist())
    bad = [f for f in features if f not in known]
    if bad:
        raise ValueError(f"features {bad[:5]} are not among the codes' features.")
    info = _feature_info(codes, features, n_active, stats, assignment, phones, label_hits)
    title = title or f"SAE features, layer {codes.layer}"
    with atomic_dir(out_dir) as tmp:
        for sub in ("features", "audio", "img"):
            (tmp / sub).mkdir()
        (tmp / "style.css").write_text(_CSS)
        (tmp / "features" / "style.css").write_text(_CSS)
        cache = {}
        for f in features:
            ex = top_examples(codes, f, n=n_examples, verbose=False)
            parts = ["<nav><a href=\"../index.html\">&larr; all features</a></nav>",
                     f"<h1>Feature {f}</h1>", _summary_html(info[f])]
            _savefig(plot_activation_histogram(codes, f, verbose=False),
                     tmp / "img" / f"hist_{f:05d}.png")
            parts.append(f"<img class=\"figure\" alt=\"activation histogram\" "
                         f"src=\"../img/hist_{f:05d}.png\">")
            if len(ex):
                mel, mt, mf = mel_average(codes, f, examples=ex, verbose=False)
                _savefig(plot_mel_average(mel, mt, mf, feature=f, verbose=False),
                         tmp / "img" / f"mel_{f:05d}.png")
                parts.append(f"<img class=\"figure\" alt=\"log-mel average\" "
                             f"src=\"../img/mel_{f:05d}.png\">")
            parts.append("<h2>Top examples</h2>")
            for r, cid, t, act in ex[["rank", "clip_id", "time", "activation"]].itertuples(
                    index=False):
                audio = _clip_audio(codes, cid, cache)
                a = max(int((t - context_s) * SFREQ), 0)
                b = min(int((t + context_s) * SFREQ), len(audio))
                name = f"f{f:05d}_ex{r}"
                sf.write(str(tmp / "audio" / f"{name}.wav"), audio[a:b], SFREQ,
                         subtype="PCM_16")
                _savefig(plot_feature_examples(codes, f, examples=ex.iloc[[r - 1]],
                                               context_s=context_s, verbose=False),
                         tmp / "img" / f"{name}.png")
                parts.append(
                    f"<div class=\"example\"><img alt=\"spectrogram of {html.escape(cid)}\" "
                    f"src=\"../img/{name}.png\"><div><b>#{r}</b> {html.escape(cid)} at "
                    f"{t:.2f} s, activation {act:.3g}<br><audio controls preload=\"metadata\" "
                    f"src=\"../audio/{name}.wav\"></audio></div></div>")
            if trf and f in trf:
                parts.append(_trf_html(trf[f], tmp, f))
            (tmp / feature_page(f)).write_text(_page(f"Feature {f}", "\n".join(parts)))
        (tmp / "index.html").write_text(_index_html(title, codes, features, info))
        write_json(dict(format=DASHBOARD_FORMAT, layer=codes.layer, title=title,
                        features={str(f): info[f] for f in features}),
                   tmp / "dashboard.json")
    logger.info(f"Dashboard of {len(features)} features written to {out_dir}")
    return out_dir / "index.html"


def _feature_info(codes, features, n_active, stats, assignment, phones, label_hits):
    col = {int(f): i for i, f in enumerate(codes.feature_ids)}
    info = {}
    for f in features:
        d = dict(feature=f, n_active=int(n_active[col[f]]),
                 frame_freq=float(n_active[col[f]] / max(codes.codes.shape[0], 1)))
        if stats is not None:
            s = stats[stats["feature"] == f]
            d["domain_freq"] = {str(k): float(v) for k, v in zip(s["domain"], s["frame_freq"])}
        if assignment is not None:
            a = assignment[(assignment["feature"] == f) & (assignment["level"] == "frame")]
            a = a[np.isclose(a["tau"], 0.1)] if np.isclose(a["tau"], 0.1).any() else a
            d["domain"] = str(a["domain"].iloc[0]) if len(a) else None
        if phones is not None:
            p = phones[phones["feature"] == f]
            d["phone"] = None if not len(p) or p["phone"].iloc[0] is None else str(
                p["phone"].iloc[0])
            d["phone_share"] = float(p["share"].iloc[0]) if len(p) else None
        if label_hits is not None:
            h = label_hits[label_hits["feature"] == f].sort_values("f1", ascending=False)
            d["best_label"] = str(h["label"].iloc[0]) if len(h) else None
            d["best_f1"] = float(h["f1"].iloc[0]) if len(h) else None
            d["hits"] = [dict(label=str(r.label), level=str(r.level), f1=float(r.f1),
                              n_positive=int(getattr(r, "n_positive", 0)),
                              p_fwe=_finite_or_none(getattr(r, "p_fwe", None)))
                         for r in h[h["hit"]].itertuples()]
        info[f] = d
    return info


def _finite_or_none(v):
    """A float for JSON (None for NaN or missing)."""
    return None if v is None or not np.isfinite(float(v)) else float(v)


def _summary_html(d):
    rows = [("active frames", f"{d['n_active']} ({100 * d['frame_freq']:.2f}%)")]
    if "domain" in d:
        rows.append(("domain (frame level, tau 0.1)", d["domain"]))
    if "domain_freq" in d:
        rows.append(("frame frequency per domain",
                     ", ".join(f"{k} {v:.3f}" for k, v in d["domain_freq"].items())))
    if "phone" in d:
        rows.append(("majority phone", "none" if d["phone"] is None
                     else f"{d['phone']} ({100 * d['phone_share']:.0f}% of active frames)"))
    if "hits" in d:
        hits = ", ".join(
            f"{h['label']} ({h['level']}, F1 {h['f1']:.2f}, {h.get('n_positive', 0)} positive"
            + (f", p_fwe {h['p_fwe']:.3f})" if h.get("p_fwe") is not None else ")")
            for h in d["hits"])
        rows.append(("label-search hits (F1 > 0.5; clip level: permutation p_fwe <= 0.05)",
                     hits or "none"))
        if d.get("best_label"):
            rows.append(("best label", f"{d['best_label']} (F1 {d['best_f1']:.2f})"))
    return "<table class=\"summary\">" + "".join(
        f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>" for k, v in rows
    ) + "</table>"


def _trf_html(entry, tmp, f):
    import shutil

    parts = ["<h2>EEG: TRF and group statistics</h2>"]
    fig = entry.get("figure")
    if fig is not None:
        dest = tmp / "img" / f"trf_{f:05d}.png"
        if isinstance(fig, (str, Path)):
            shutil.copyfile(fig, dest)
        else:
            _savefig(fig, dest)
        parts.append(f"<img class=\"figure\" alt=\"TRF joint plot\" src=\"../img/{dest.name}\">")
    table = entry.get("table")
    if table is not None:
        parts.append(table.to_html(index=False, float_format=lambda v: f"{v:.3g}",
                                   border=0))
    return "\n".join(parts)


def _index_html(title, codes, features, info):
    cols = [("feature", "feature"), ("active frames", "n_active"), ("frequency", "frame_freq"),
            ("domain", "domain"), ("phone", "phone"), ("best label", "best_label"),
            ("F1", "best_f1")]
    cols = [c for c in cols if any(c[1] in info[f] for f in features)]
    head = "".join(f"<th>{html.escape(n)}</th>" for n, _ in cols)
    body = []
    for f in features:
        cells = []
        for _, key in cols:
            v = info[f].get(key)
            text = _fmt(v)
            if key == "feature":
                text = f"<a href=\"{feature_page(f)}\">{f}</a>"
            else:
                text = html.escape(text)
            cells.append(f"<td data-value=\"{html.escape(_fmt(v, '.6g'))}\">{text}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    page = (
        f"<h1>{html.escape(title)}</h1>\n<p>{len(codes.clip_ids)} clips, "
        f"{codes.codes.shape[0]} frames, {codes.n_features} features; "
        f"<span id=\"count\">{len(features)}</span> shown.</p>\n"
        "<input id=\"search\" type=\"search\" placeholder=\"search: feature, domain, phone, "
        "label\">\n"
        f"<table id=\"features\"><thead><tr>{head}</tr></thead>\n<tbody>\n"
        + "\n".join(body) + "\n</tbody></table>"
    )
    return _page(title, page, script=_INDEX_JS)


def read_dashboard(folder):
    """The summary (``dashboard.json``) of a dashboard folder (dict)."""
    fname = Path(folder) / "dashboard.json"
    if not fname.is_file():
        raise FileNotFoundError(f"{folder} is not a feature dashboard (no dashboard.json).")
    out = json.loads(fname.read_text())
    if out.get("format") != DASHBOARD_FORMAT:
        raise ValueError(f"{fname} is not a feature dashboard description.")
    return out
