"""One :class:`mne.Report` per subject: what a reviewer checks, from the saved results.

The TRF results (sweep, permutation test) are read, not refitted. The checks of the
input side are computed from the recording and the stimuli: the EEG before and after
filtering, the alignment of each run (where its onset sits in the recording, and the
envelope-to-EEG cross-correlation), and an acoustic-envelope TRF as the baseline any
SAE feature should be compared with.
"""

from __future__ import annotations

import html
import json

import numpy as np

from ..utils import check_array, fill_doc, logger, verbose

__all__ = ["envelope_eeg_xcorr", "make_subject_report"]


def envelope_eeg_xcorr(envelopes, Y_runs, sfreq, *, tmin=-0.5, tmax=1.0):
    """Cross-correlation of each run's stimulus envelope with its EEG, summarised over channels.

    For every lag ``l`` (the EEG ``l`` seconds after the envelope) the Pearson r between
    the envelope and each channel is computed over the overlapping samples; the summary is
    the root mean square over channels (blind to the sign of each channel). A correctly
    aligned run peaks at a positive lag (the auditory response, about 50-250 ms); an onset
    off by ``d`` seconds moves the peak by ``-d``.

    Parameters
    ----------
    envelopes : list of array, shape (n_times_i,) | (n_times_i, 1)
        The envelope of each run on the EEG grid.
    Y_runs : list of array, shape (n_times_i, n_channels)
        The EEG of each run.
    sfreq : float
        Rate of both in Hz.
    tmin, tmax : float
        Lag range in seconds.

    Returns
    -------
    lags : ndarray, shape (n_lags,)
        Lags in seconds.
    xcorr : ndarray, shape (n_runs, n_lags)
        RMS over channels of r at each lag.
    """
    if len(envelopes) != len(Y_runs):
        raise ValueError(f"envelopes has {len(envelopes)} runs but Y_runs {len(Y_runs)}.")
    lag_idx = np.arange(int(round(tmin * sfreq)), int(round(tmax * sfreq)) + 1)
    out = np.zeros((len(Y_runs), len(lag_idx)))
    for k, (env, y) in enumerate(zip(envelopes, Y_runs)):
        env = np.ravel(check_array(env, f"envelopes[{k}]"))
        y = check_array(y, f"Y_runs[{k}]", ndim=2)
        n = len(y)
        if len(env) != n:
            raise ValueError(f"Run {k}: the envelope has {len(env)} samples but the EEG {n}.")
        if n <= lag_idx.max() - min(lag_idx.min(), 0) + 2:
            raise ValueError(f"Run {k} has {n} samples: too short for lags {tmin} to {tmax} s.")
        for j, lag in enumerate(lag_idx):
            e, v = (env[: n - lag], y[lag:]) if lag >= 0 else (env[-lag:], y[: n + lag])
            e = e - e.mean()
            v = v - v.mean(axis=0)
            den = np.sqrt((e @ e) * np.einsum("tc,tc->c", v, v))
            r = np.divide(e @ v, den, out=np.zeros(v.shape[1]), where=den > 0)
            out[k, j] = np.sqrt(np.mean(r**2))
    return lag_idx / sfreq, out


def _add_fig(report, fig, title, tags, section=None):
    import math

    import matplotlib.pyplot as plt

    # mne.Report reads the rendered pixels with a buffer shape computed from size x dpi:
    # a size that is not a whole number of pixels skews the image. Quarter inches at a
    # dpi that is a multiple of 4 (and at most 850 px wide, MNE's limit) are exact.
    w, h = (math.ceil(v * 4 - 1e-9) / 4 for v in fig.get_size_inches())
    fig.set_size_inches(w, h)
    fig.set_dpi(min(100, 4 * math.floor(850 / w / 4)))
    report.add_figure(fig, title=title, tags=tags, section=section, replace=True)
    plt.close(fig)


def _table_html(df, caption=None):
    cap = f"<p>{html.escape(caption)}</p>" if caption else ""
    return cap + df.to_html(index=False, float_format=lambda v: f"{v:.4g}", border=0,
                            classes="table table-sm table-striped w-auto")


def _used_runs(sweep, manifest):
    """The runs the subject's fit read (recorded by the fit step), else the manifest's."""
    prov = sweep.provenance if isinstance(sweep.provenance, dict) else {}
    for key in ("runs", "run_ids"):
        if prov.get(key):
            return [str(r) for r in prov[key]]
    if manifest.eeg.split is None:
        return [r.id for r in manifest.stimuli.runs]
    dev, test = manifest.split_runs()
    return list(dev) + [r for r in test if r not in dev]


def _fold_labels(sweep, manifest, used):
    """The held-out run of each outer fold of the sweep (fold j holds out run j)."""
    n = len(sweep.r_folds)
    _, test = manifest.split_runs()
    for cand in (used, list(test)):
        if len(cand) == n:
            return list(cand)
    return [f"fold {k + 1}" for k in range(n)]


def _input_checks(manifest, paths, subject, layer, run_ids):
    """Read the recording and the stimuli; align them; the envelope on the EEG grid."""
    from ..align import align_subject, find_run_onsets, preprocess_eeg
    from ..features import read_feature_series
    from ..io import read_audio, read_subject_eeg

    eeg = manifest.eeg
    reference = None if eeg.reference == "mastoids" else eeg.reference
    raw = read_subject_eeg(manifest, subject, derivatives=paths.root)
    # one feature per run is enough: the alignment (onsets, lengths, grid) is that of the fit
    series = {}
    for rid in run_ids:
        fs = read_feature_series(paths.features(rid, layer))
        series[rid] = fs.select(fs.feature_ids[:1])
    train_runs, _ = manifest.split_runs()
    aligned = align_subject(
        raw, series, feature_set="sae", l_freq=eeg.l_freq, h_freq=eeg.h_freq, sfreq=eeg.sfreq,
        scale=manifest.features.scale, prefix=eeg.onset_prefix, reference=reference,
        eeg_scaling=eeg.scaling, train_runs=[r for r in train_runs if r in run_ids] or None,
    )
    stim = manifest.stimulus_files()
    audio = {rid: read_audio(stim[rid], sfreq=16000)[0] for rid in run_ids}
    aligned.add_acoustic(audio, sfreq_audio=16000, kinds=("envelope",))
    onsets = find_run_onsets(raw, run_ids, prefix=eeg.onset_prefix)
    filtered = preprocess_eeg(raw, l_freq=eeg.l_freq, h_freq=eeg.h_freq, sfreq=eeg.sfreq, reference=reference)
    return raw, filtered, aligned, onsets


def _envelope_trf(aligned, sweep, manifest):
    """The envelope TRF with the sweep's lags and the manifest's alphas; its warnings are
    returned for the report instead of being raised at the user."""
    import warnings

    from ..encoding import TRF

    trf = TRF(tmin=sweep.tmin, tmax=sweep.tmax, sfreq=aligned.sfreq, alphas=manifest.trf.alphas, nested=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trf.fit(aligned.X["envelope"], aligned.Y)
    return trf, [str(w.message) for w in caught]


@fill_doc
@verbose
def make_subject_report(manifest, out, subject, *, n_top=3, verbose=None):
    """Write ``sub-XX/sub-XX_report.html``: the subject's results and the checks behind them.

    Sections: the configuration; the raw EEG and its power spectrum before and after
    filtering; the alignment check (run onsets in the recording, envelope-to-EEG
    cross-correlation per run); the ridge alphas chosen over features x channels; the
    held-out r of every run for the top features and the envelope baseline; the max-T
    null distribution with the observed maxima; an acoustic-envelope TRF as the baseline
    (joint plot and held-out r); topomaps of held-out r and TRF joint plots of the best
    features; the table of significant features; the planted truth of simulated studies.
    Kernels are shown on the inner lag window ``trf.tmin`` ... ``trf.tmax`` only.

    Parameters
    ----------
    %(manifest)s
    %(out)s
    subject : str
        Subject label.
    n_top : int
        How many features get a figure.
    %(verbose)s

    Returns
    -------
    fname : pathlib.Path
        The HTML report.
    """
    import mne
    import pandas as pd

    from ..encoding import read_sweep_result
    from ..io import atomic_path
    from ..stats import read_permutation_result
    from ..viz import (
        feature_label,
        permutation_floor,
        plot_alignment_check,
        plot_alpha_choices,
        plot_filter_check,
        plot_null_distribution,
        plot_r_topomap,
        plot_run_r,
        plot_trf_joint,
    )
    from ._paths import StudyPaths
    from .steps import sae_layers

    manifest._check_subject(subject)
    paths = StudyPaths(out)
    layer = sae_layers(manifest, paths)[-1]
    missing = [f for f in (paths.sweep(subject, layer), paths.permutation(subject, layer), paths.info(subject))
               if not f.is_file()]  # fmt: skip
    if missing:
        m = f" --manifest {manifest.path}" if manifest.path else ""
        raise FileNotFoundError(
            f"The report of sub-{subject} needs {missing[0]}, which does not exist: run "
            f"`neuro-sae fit{m} --subject {subject}` first."
        )
    sweep = read_sweep_result(paths.sweep(subject, layer))
    perm = read_permutation_result(paths.permutation(subject, layer))
    info = mne.io.read_info(paths.info(subject), verbose=False)
    alpha = manifest.stats.alpha
    tmin, tmax = manifest.trf.tmin, manifest.trf.tmax
    names = list(sweep.feature_names)
    run_ids = _used_runs(sweep, manifest)
    fold_labels = _fold_labels(sweep, manifest, run_ids)
    report = mne.Report(title=f"neuro_sae: sub-{subject}, layer {layer}", verbose=False)
    cfg = dict(
        study=manifest.name, layer=layer, eeg=manifest.eeg.model_dump(), trf=manifest.trf.model_dump(),
        stats=manifest.stats.model_dump(), sae=manifest.sae.model_dump(), features=manifest.features.model_dump(),
    )
    rows = "".join(
        f"<tr><th>{html.escape(k)}</th><td><code>{html.escape(json.dumps(v))}</code></td></tr>"
        for k, v in cfg.items()
    )
    report.add_html(f'<table class="table table-sm">{rows}</table>', title="Configuration", tags=("config",))

    # --- the input side: recording, filtering, alignment
    raw, filtered, aligned, onsets = _input_checks(manifest, paths, subject, layer, run_ids)
    first = onsets.iloc[int(np.argmin(onsets["onset_s"].to_numpy()))]
    fig = plot_filter_check(
        raw, filtered, tmin=float(first["onset_s"]) + 1.0, duration=5.0,
        band=(manifest.eeg.l_freq, manifest.eeg.h_freq), show=False,
    )
    _add_fig(report, fig, "Raw EEG and PSD before and after filtering", ("eeg",))
    envs = aligned.X["envelope"]
    lags, xcorr = envelope_eeg_xcorr(envs, aligned.Y, aligned.sfreq)
    fig = plot_alignment_check(onsets, lags, xcorr, recording_s=raw.n_times / raw.info["sfreq"],
                               envelopes=envs, sfreq=aligned.sfreq, show=False)
    _add_fig(report, fig, "Alignment check", ("eeg", "alignment"))
    peaks = np.argmax(xcorr, axis=1)
    align_tab = pd.DataFrame(dict(
        run=run_ids, onset_s=onsets["onset_s"].to_numpy(), eeg_duration_s=onsets["duration_s"].to_numpy(),
        aligned_samples=[len(y) for y in aligned.Y], xcorr_peak_ms=np.round(lags[peaks] * 1e3, 1),
        xcorr_peak_r=xcorr[np.arange(len(peaks)), peaks],
    ))  # fmt: skip
    report.add_html(
        _table_html(align_tab, "Run onsets found in the recording and the lag of the envelope-to-EEG "
                    "cross-correlation peak (RMS over channels of r). A run whose peak lag differs "
                    "from the others, or is negative, is misaligned."),
        title="Alignment table", tags=("eeg", "alignment"),
    )

    # --- the fit: alphas, per-run r, null
    fig = plot_alpha_choices(sweep.alpha_final, sweep.alphas, show=False)
    fig.axes[0].set_title(f"Chosen alphas of {sweep.n_features} features x {sweep.n_channels} channels; "
                          + fig.axes[0].get_title(), fontsize=9)
    _add_fig(report, fig, "Chosen ridge alphas", ("trf",))
    best = sweep.r.max(axis=1)
    order = np.argsort(-best)[:n_top]
    trf_env, env_warnings = _envelope_trf(aligned, sweep, manifest)
    env_r_runs = trf_env.nested_scores_  # (n_folds, n_channels)
    best_ch = np.argmax(sweep.r[order], axis=1)
    env_ch = int(np.argmax(env_r_runs.mean(0)))
    rows = [sweep.r_folds[:, i, c] for i, c in zip(order, best_ch)]
    labels = [f"{feature_label(names[i])} ({sweep.ch_names[c]})" for i, c in zip(order, best_ch)]
    if fold_labels == run_ids:  # the baseline's folds are the same held-out runs
        rows.append(env_r_runs[:, env_ch])
        labels.append(f"envelope baseline ({aligned.ch_names[env_ch]})")
    fig = plot_run_r(np.array(rows), fold_labels, labels, ylabel="held-out r (best channel)",
                     show=False)
    _add_fig(report, fig, "Held-out r per run", ("trf",))
    n_perm = int(perm.n_permutations)
    fig = plot_null_distribution(
        perm.max_null, perm.r.max(axis=1)[order], labels=[feature_label(names[i]) for i in order],
        alpha=alpha, xlabel="held-out r (max over features x channels for the null)", show=False,
    )
    fig.axes[0].set_title(f"Max-T null of {n_perm} circular shifts ({sweep.n_features} features x "
                          f"{sweep.n_channels} channels)", fontsize=9)
    _add_fig(report, fig, "Max-T null distribution", ("stats",))

    # --- the acoustic baseline
    env_info = aligned.info
    fig = plot_trf_joint(trf_env.coef_[:, 0, :], trf_env.times_, env_info, tmin=tmin, tmax=tmax,
                         title="Acoustic-envelope TRF (baseline)", show=False)
    _add_fig(report, fig, "Acoustic-envelope TRF (baseline)", ("trf", "baseline"))
    env_r = env_r_runs.mean(0)
    fig = plot_r_topomap(env_r, env_info, title=f"envelope: held-out r (max {env_r.max():.3f})", show=False)
    _add_fig(report, fig, "Acoustic-envelope held-out r", ("trf", "baseline"))
    notes = "".join(f"<li>{html.escape(w)}</li>" for w in dict.fromkeys(env_warnings))
    report.add_html(
        "<p>Broadband Hilbert envelope of each run's audio on the EEG grid, band-passed and scaled "
        f"like the SAE features; TRF over lags {sweep.tmin:g} to {sweep.tmax:g} s (shown: {tmin:g} "
        f"to {tmax:g} s), alphas {manifest.trf.alphas}, nested leave-one-run-out CV (held-out r "
        f"per run above). Held-out r: mean over channels {env_r.mean():.3f}, best channel "
        f"{aligned.ch_names[env_ch]} {env_r.max():.3f}.</p>"
        + (f"<p>Warnings of the fit:</p><ul>{notes}</ul>" if notes else ""),
        title="Acoustic-envelope baseline: how it was fitted", tags=("trf", "baseline"),
    )

    # --- the best SAE features
    for i in order:
        label = feature_label(names[i])
        fig = plot_r_topomap(sweep.r[i], info, mask=perm.p_fwe[i] < alpha,
                             title=f"{label}; dots: p_FWE < {alpha:g}", show=False)
        _add_fig(report, fig, f"Held-out r: {label}", ("trf", "sae"))
        sig = perm.p_fwe[i] < alpha
        fig = plot_trf_joint(sweep.coef[i], sweep.times, info, tmin=tmin, tmax=tmax,
                             channels=sig if sig.any() else None, title=f"TRF of {label}", show=False)
        _add_fig(report, fig, f"TRF: {label}", ("trf", "sae"))

    sig = perm.p_fwe < alpha
    floor = permutation_floor(n_perm)
    rows = [
        dict(feature=names[i], n_channels=int(sig[i].sum()), best_channel=sweep.ch_names[int(np.argmax(sweep.r[i]))],
             r=round(float(best[i]), 4), p_fwe=float(perm.p_fwe[i].min()),
             at_floor=bool(np.isclose(perm.p_fwe[i].min(), floor)))
        for i in np.flatnonzero(sig.any(axis=1))
    ]  # fmt: skip
    table = pd.DataFrame(rows, columns=["feature", "n_channels", "best_channel", "r", "p_fwe", "at_floor"])
    report.add_html(
        f"<p>{len(table)} of {len(best)} features significant on at least one channel "
        f"(max-T over features x channels, p_FWE &lt; {alpha:g}, {n_perm} circular shifts; the "
        f"smallest p-value they can give is 1/{n_perm + 1} = {floor:.2g}: at_floor marks features "
        "whose true p may be smaller). The acoustic-envelope baseline reaches a held-out r of "
        f"{env_r.max():.3f} on its best channel; the best SAE feature {best.max():.3f}.</p>"
        + table.to_html(index=False, border=0, classes="table table-sm table-striped w-auto"),
        title="Significant features",
        tags=("stats",),
    )
    interp = paths.sae_dir(layer).parents[1] / "interpret" / f"layer-{layer:02d}"
    used = json.loads((interp / "sae.json").read_text()) if (interp / "sae.json").is_file() else {}
    if used.get("source") == "release" and (interp / "tables" / "summary.json").is_file():
        import os

        index = interp / "dashboard" / "index.html"
        link = os.path.relpath(index, paths.subject_dir(subject))
        report.add_html(
            f"<p>The stimuli's features were interpreted (neuro-sae interpret) with the "
            f"{html.escape(used.get('text', 'SAE release'))}, not with the study's SAE whose "
            "features the EEG tables above test, so its feature ids are not theirs: the "
            f'<a href="{html.escape(link)}">dashboard</a> lists its most active features.</p>',
            title="Interpretation with the release SAE", tags=("interpret",),
        )
    elif len(table) and (interp / "tables" / "summary.json").is_file():  # step 'interpret'
        from ..interpret import interpretation_html

        ids = [int(str(n).removeprefix("f")) for n in table["feature"]]
        report.add_html(
            "<p>What each significant feature responds to in the stimuli (neuro-sae "
            "interpret): its domain, majority phone and label-search hits, and a link to its "
            "page in the feature dashboard.</p>"
            + interpretation_html(ids, interp / "tables", dashboard=interp / "dashboard",
                                  relative_to=paths.subject_dir(subject)),
            title="Interpretation of the significant features", tags=("interpret",),
        )
    if paths.truth(subject).is_file():
        truth = json.loads(paths.truth(subject).read_text())
        planted = pd.DataFrame(truth["planted"])
        report.add_html(planted.to_html(index=False, border=0, classes="table table-sm table-striped w-auto"),
                        title="Planted truth", tags=("simulation",))
    fname = paths.subject_dir(subject) / f"sub-{subject}_report.html"
    with atomic_path(fname) as tmp:
        tmp_html = tmp.with_name(tmp.name + ".html")
        try:
            report.save(tmp_html, open_browser=False, overwrite=True, verbose=False)
            tmp_html.replace(tmp)
        finally:
            tmp_html.unlink(missing_ok=True)
    logger.info(f"[report] sub-{subject}: {fname}")
    return fname
