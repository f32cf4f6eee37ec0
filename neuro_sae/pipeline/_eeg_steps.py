"""EEG-side steps: simulated EEG (03), per-subject TRF sweep and null (04), group test and
planted-truth recovery (05), figures and reports. Each function is the ``run``,
``config``, ``inputs`` or ``outputs`` of a step record in
:data:`neuro_sae.pipeline.steps.STEPS`."""

from __future__ import annotations

import json

import numpy as np

from ..io import write_json, write_parquet
from ..utils import check_random_state, logger
from ._registry import Unit
from ._stim_steps import model_layers, model_paths, study_layers, timed


def _layer(study):
    return study_layers(study)[-1]


def _unit(study, subject):
    """A fit/group unit; a plain subject label means the primary model's last layer."""
    if isinstance(subject, Unit):
        return subject
    return Unit(subject=subject, model=None, layer=_layer(study))


def is_primary_last(study, unit):
    """Whether a unit is the primary backbone's last SAE layer (figures, report, recovery)."""
    return unit.model is None and unit.layer == _layer(study)


def fit_units(study):
    """One fit per subject x backbone x SAE layer."""
    return [Unit(subject=s, model=m.tag, layer=layer) for s in study.manifest.subjects
            for m in study.manifest.models() for layer in model_layers(study, m.tag)]  # fmt: skip


def _load_alive(paths, layer):
    return np.asarray(json.loads(paths.alive(layer).read_text())["feature_ids"], dtype=np.int64)


def _load_series(paths, run_ids, layer, feature_ids=None):
    from ..features import read_feature_series

    series = {}
    for rid in run_ids:
        fs = read_feature_series(paths.features(rid, layer))
        series[rid] = fs if feature_ids is None else fs.select(feature_ids)
    return series


def used_runs(manifest):
    """The stimulus runs a subject's fit reads: the named split's dev then test runs, or all."""
    if manifest.eeg.split is None:
        return [r.id for r in manifest.stimuli.runs]
    dev, test = manifest.split_runs()
    return list(dev) + [r for r in test if r not in dev]


def feature_name(feature_id):
    """Name of an SAE feature in sweeps and tables (``"f<id>"``, the SAE's own id)."""
    return f"f{int(feature_id)}"


# ------------------------------------------------------------------------------ 03
def simulate_config(study, subject):
    """Config slice of step 03."""
    m = study.manifest
    return dict(simulation=m.simulation.model_dump(), eeg=dict(montage=m.eeg.montage, files=m.eeg.files),
                subjects=list(m.subjects))  # fmt: skip


def simulate_inputs(study, subject):
    """Inputs of step 03: the feature files of the last SAE layer and its alive list."""
    layer = _layer(study)
    paths = study.paths
    return [paths.features(r.id, layer) for r in study.manifest.stimuli.runs] + [paths.alive(layer)]


def simulate_outputs(study, subject):
    """Outputs of step 03: the recording and the planted truth of every subject."""
    m = study.manifest
    out = {}
    for s in m.subjects:
        out[f"eeg-{s}"] = m.eeg_file(s, study.root)
        out[f"truth-{s}"] = study.paths.truth(s)
    return out


def simulate_run(study, subject, runtime):
    """Step 03 (simulated studies only): EEG driven by the real SAE features.

    The planted features are chosen once (for the first subject) and shared by every
    subject; kernels, topographies and noise differ per subject.
    """
    from ..align import resample_features
    from ..simulation import simulate_eeg, write_simulated_subject

    manifest, paths = study.manifest, study.paths
    layer = _layer(study)
    alive = _load_alive(paths, layer)
    series = _load_series(paths, [r.id for r in manifest.stimuli.runs], layer, alive)
    sfreq = manifest.simulation.sfreq
    outputs = simulate_outputs(study, subject)
    with timed(runtime, "simulate"):
        feats = {rid: resample_features(fs, sfreq, int(np.floor(fs.duration * sfreq)))
                 for rid, fs in series.items()}  # fmt: skip
        rng = check_random_state(manifest.simulation.random_state)
        planted = None
        for s in manifest.subjects:
            raw, truth = simulate_eeg(
                feats, planted=planted, feature_ids=alive, sfreq=sfreq, montage=manifest.eeg.montage,
                n_planted=manifest.simulation.n_planted,
                **({} if manifest.simulation.snr is None else dict(snr=manifest.simulation.snr)),
                random_state=rng,
            )  # fmt: skip
            if planted is None:  # the same planted features, kernels and topographies for all
                planted = [{k: p[k] for k in ("feature", "latency", "width", "sign", "center")}
                           for p in truth["planted"]]  # fmt: skip
            truth.update(subject=s, layer=layer,
                         planted_features=[int(p["feature_id"]) for p in truth["planted"]])  # fmt: skip
            write_simulated_subject(raw, truth, outputs[f"eeg-{s}"].parent, s, overwrite=True)
            logger.info(f"[03_simulate] sub-{s}: planted features {truth['planted_features']}")
    return outputs


# ------------------------------------------------------------------------------ 04
def _subject_seed(base, subject):
    # a stable, distinct stream per subject derived from the manifest seed
    return int(np.random.default_rng([int(base), *map(ord, str(subject))]).integers(0, 2**31 - 1))


def fit_config(study, subject):
    """Config slice of step 04 (only this subject's bad channels, only the split in use)."""
    m = study.manifest
    eeg = m.eeg.model_dump(exclude={"bads", "splits", "simulate", "files"})
    eeg["bads"] = list(m.eeg.bads.get(str(subject), []))
    if m.eeg.split is not None:
        dev, test = m.split_runs()
        eeg["split_runs"] = dict(dev=dev, test=test)
    if len(used_runs(m)) >= 2:
        dev, test = protocol_runs(m)
        # the paper's protocol: alpha, scaling and lags from its dev runs (version 2)
        eeg["protocol"] = dict(dev=dev, test=test, tuning="dev-runs", version=2)
    trf = m.trf.model_dump()
    if trf["basis_width"] is None:  # no basis: the slice (and cached fits) as before
        del trf["basis_width"], trf["basis_placement"]
    return dict(
        eeg=eeg, trf=trf,
        stats=m.stats.model_dump(include={"n_permutations", "alpha", "random_state", "vp_features"}),
        features=dict(scale=m.features.scale),
    )  # fmt: skip


def fit_inputs(study, subject):
    """Inputs of step 04: the subject's EEG files, the alive list, the used runs' features
    (and, for the acoustic baseline of the variance partitioning, the used runs' audio)."""
    from ..io import subject_eeg_files

    m, unit = study.manifest, _unit(study, subject)
    paths, layer = model_paths(study, unit.model), unit.layer
    eeg = subject_eeg_files(m, unit.subject, derivatives=study.root)
    files = list(eeg) + [paths.alive(layer)] + [paths.features(r, layer) for r in used_runs(m)]
    if m.stats.vp_features:
        stim = m.stimulus_files(check=False)
        files += [stim[r] for r in used_runs(m)]
    return files


def fit_outputs(study, subject):
    """Outputs of step 04 (the aligned info only for the primary backbone's last layer:
    no two tasks write one file)."""
    unit = _unit(study, subject)
    paths, layer, s = model_paths(study, unit.model), unit.layer, unit.subject
    out = dict(sweep=paths.sweep(s, layer), permutation=paths.permutation(s, layer),
               table=paths.subject_table(s, layer))  # fmt: skip
    out["protocol"] = paths.protocol_kernels(s, layer)
    if study.manifest.stats.vp_features:
        out["vp"] = paths.variance_partition(s, layer)
    if is_primary_last(study, unit):
        out["info"] = study.paths.info(s)
    return out


def protocol_runs(manifest):
    """Development and test runs of the paper's protocol.

    With ``eeg.split`` set: that split's dev and test runs (among the used runs).
    Without one (``eeg.split: null``, the shipped Broderick manifests): the paper's ratio
    of development to test time (6 min : 9 min, 2 of 5 runs) over the used runs in
    order, i.e. the first ``n_dev = min(n - 1, max(2, round(0.4 * n)))`` runs are
    development runs and the rest test runs (20 runs: 8 + 12; 5 runs: 2 + 3; 3 runs:
    2 + 1; 2 runs: 1 + 1). The ridge alpha, the EEG and feature scaling and the lags of
    the protocol come from the development runs only
    (:func:`neuro_sae.stats.protocol_kernels`).
    """
    runs = used_runs(manifest)
    if manifest.eeg.split is not None:
        dev, test = manifest.split_runs()
        return [r for r in dev if r in runs], [r for r in test if r in runs]
    if len(runs) < 2:
        raise ValueError(
            f"The paper's protocol needs at least 2 stimulus runs (development and test), the "
            f"manifest has {len(runs)} ({runs}); add runs or name a split in eeg.splits/eeg.split."
        )
    n_dev = min(len(runs) - 1, max(2, int(np.floor(0.4 * len(runs) + 0.5))))
    return runs[:n_dev], runs[n_dev:]


def inner_window_peaks(coef, times, tmin, tmax):
    """Lag and signed value of the largest absolute weight within ``[tmin, tmax]``.

    Parameters
    ----------
    coef : array, shape (n_features, n_channels, n_lags)
        Kernels fitted on a wider lag window.
    times : array, shape (n_lags,)
        Their lags in s.
    tmin, tmax : float
        The window shown and reported (the edges beyond it absorb the fit's edge
        artefacts and are ignored).

    Returns
    -------
    peak_lag_s, peak_amplitude : array, shape (n_features, n_channels)
    """
    times = np.asarray(times)
    inner = np.flatnonzero((times >= tmin - 1e-9) & (times <= tmax + 1e-9))
    sub = np.asarray(coef)[..., inner]
    idx = np.argmax(np.abs(sub), axis=-1)
    amp = np.take_along_axis(sub, idx[..., np.newaxis], axis=-1)[..., 0]
    return times[inner][idx], amp


def fit_run(study, subject, runtime):
    """Step 04: align one subject's EEG with the features, sweep TRFs, permutation null.

    The TRFs are fitted on ``[trf.tmin - trf.edge_s, trf.tmax + trf.edge_s]``; the
    inner window ``[trf.tmin, trf.tmax]`` is recorded in the sweep's provenance
    (``inner_tmin``, ``inner_tmax``, ``edge_s``) and in the table, whose peak lags and
    amplitudes are searched within it.
    """
    import mne

    from ..align import align_subject
    from ..encoding import univariate_sweep
    from ..io import atomic_path, read_subject_eeg
    from ..stats import sweep_permutation_test

    manifest, unit = study.manifest, _unit(study, subject)
    paths, layer, subject = model_paths(study, unit.model), unit.layer, unit.subject
    outputs = fit_outputs(study, unit)
    alive = _load_alive(paths, layer)
    runs = used_runs(manifest)
    series = _load_series(paths, runs, layer, alive)
    trf, stats = manifest.trf, manifest.stats
    dev, _ = manifest.split_runs()
    with timed(runtime, "align"):
        raw = read_subject_eeg(manifest, subject, derivatives=study.root)
        aligned = align_subject(
            raw, series, feature_set="sae", l_freq=manifest.eeg.l_freq, h_freq=manifest.eeg.h_freq,
            sfreq=manifest.eeg.sfreq, scale=manifest.features.scale, prefix=manifest.eeg.onset_prefix,
            # the Dryad reader applies the mastoid reference itself (the mastoids are not EEG)
            reference=None if manifest.eeg.reference == "mastoids" else manifest.eeg.reference,
            eeg_scaling=manifest.eeg.scaling, train_runs=[r for r in dev if r in runs],
        )  # fmt: skip
    X_runs, Y_runs = aligned.X["sae"], aligned.Y
    # a named split: fit (and choose alphas) on its dev runs, score r on its test runs
    test_idx = None
    if manifest.eeg.split is not None:
        test_idx = [i for i, r in enumerate(aligned.run_ids) if r not in dev]
    with timed(runtime, "trf_sweep"):
        tmin, tmax = trf.tmin - trf.edge_s, trf.tmax + trf.edge_s
        basis = None
        if trf.basis_width is not None:
            from ..encoding import lag_basis

            basis = lag_basis(aligned.sfreq, tmin, tmax, trf.basis_width,
                              placement=trf.basis_placement)  # fmt: skip
        sweep = univariate_sweep(
            X_runs, Y_runs, sfreq=aligned.sfreq, tmin=tmin, tmax=tmax, alphas=trf.alphas,
            test_runs=test_idx, basis=basis,
            feature_names=[feature_name(f) for f in alive], ch_names=aligned.info["ch_names"],
        )  # fmt: skip
        sweep.provenance.update(inner_tmin=trf.tmin, inner_tmax=trf.tmax, edge_s=trf.edge_s,
                                runs=list(aligned.run_ids), subject=subject, layer=layer)  # fmt: skip
        sweep.save(outputs["sweep"], overwrite=True)
    with timed(runtime, "permutations"):
        perm = sweep_permutation_test(
            X_runs, Y_runs, sweep, n_permutations=stats.n_permutations,
            random_state=_subject_seed(stats.random_state, subject), return_null=True,
            alpha=stats.alpha,
        )  # fmt: skip
        perm.save(outputs["permutation"], overwrite=True)
    table = sweep.to_frame()
    lag, amp = inner_window_peaks(sweep.coef, sweep.times, trf.tmin, trf.tmax)
    table["peak_lag_s"] = lag.ravel()
    table["peak_amplitude"] = amp.ravel()
    table = table.rename(columns={"feature": "feature_name"})
    table.insert(0, "subject", subject)
    table.insert(1, "layer", layer)
    table.insert(2, "model", unit.model or "primary")
    table.insert(3, "feature", np.repeat(alive, sweep.n_channels))
    p_tab = perm.to_frame(alpha=stats.alpha).drop(columns=["r"]).rename(columns={"feature": "feature_name"})
    table = table.merge(p_tab, on=["feature_name", "channel"], how="left", validate="one_to_one")
    table["inner_tmin"], table["inner_tmax"], table["edge_s"] = trf.tmin, trf.tmax, trf.edge_s
    write_parquet(table, outputs["table"])
    with timed(runtime, "protocol"):
        from ..stats import protocol_kernels

        dev_runs, test_runs = protocol_runs(manifest)
        pos = {r: i for i, r in enumerate(aligned.run_ids)}
        # alpha, scaling and lags of the protocol from its dev runs only, in the sweep's model
        kern = protocol_kernels(
            X_runs, Y_runs, [pos[r] for r in dev_runs], [pos[r] for r in test_runs],
            sfreq=aligned.sfreq, tmin=tmin, tmax=tmax, alphas=trf.alphas, basis=basis,
            masks=aligned.masks, eeg_scaling=manifest.eeg.scaling, scaling_runs="dev",
            feature_scale=manifest.features.scale,
        )  # fmt: skip
        with atomic_path(outputs["protocol"]) as tmp:
            with open(tmp, "wb") as fid:
                np.savez(fid, coef_dev=kern["coef_dev"], coef_test=kern["coef_test"], times=kern["times"],
                         alpha=kern["alpha"], r_test=kern["r_test"], feature_ids=alive,
                         ch_names=np.array(aligned.info["ch_names"]), dev_runs=np.array(dev_runs),
                         test_runs=np.array(test_runs),
                         settings=np.array(json.dumps(kern["settings"])))  # fmt: skip
    if "vp" in outputs:
        with timed(runtime, "variance_partition"):
            _variance_partition(study, unit, aligned, sweep, alive, outputs["vp"])
    if "info" in outputs:
        with atomic_path(outputs["info"]) as tmp:
            tmp_fif = tmp.with_name(tmp.name + "-info.fif")
            mne.io.write_info(tmp_fif, aligned.info.copy())
            tmp_fif.replace(tmp)
    n_sig = int(np.sum(np.any(perm.p_fwe < stats.alpha, axis=1)))
    logger.info(
        f"[04_fit_trf] {unit.label()}: max held-out r {sweep.r.max():.3f}, {n_sig} features "
        f"significant (max-T, p_FWE < {stats.alpha})"
    )
    return outputs


def _variance_partition(study, unit, aligned, sweep, alive, fname):
    """Unique and shared held-out R^2 of the layer's best features and the acoustic
    envelope (banded ridge, :func:`neuro_sae.encoding.variance_partitioning`)."""
    from ..encoding import variance_partitioning
    from ..io import read_audio

    manifest = study.manifest
    n_best = min(int(manifest.stats.vp_features), len(alive))
    best = np.sort(np.argsort(-np.nanmean(sweep.r, axis=1), kind="stable")[:n_best])
    stim = manifest.stimulus_files(check=False)
    audio = {r: read_audio(stim[r], sfreq=16000)[0] for r in aligned.run_ids}
    aligned.add_acoustic(audio, sfreq_audio=16000, kinds=("envelope",))
    sae_runs = []
    for x in aligned.X["sae"]:
        sub = x[:, best]
        sae_runs.append(np.asarray(sub.todense() if hasattr(sub, "todense") else sub, dtype=float))
    trf = manifest.trf
    vp = variance_partitioning(
        {"envelope": aligned.X["envelope"], "sae": sae_runs}, aligned.Y, sfreq=aligned.sfreq,
        tmin=trf.tmin, tmax=trf.tmax, ch_names=aligned.info["ch_names"],
        alphas=list(trf.alphas)[::2],  # every other alpha of the sweep's grid, per band
    )  # fmt: skip
    table = vp.to_frame()
    table.insert(0, "subject", unit.subject)
    table.insert(1, "model", unit.model or "primary")
    table.insert(2, "layer", unit.layer)
    table["sae_features"] = ",".join(str(int(alive[i])) for i in best)
    write_parquet(table, fname)
    return table


# ------------------------------------------------------------------------------ 05
def group_config(study, subject):
    """Config slice of step 05."""
    m = study.manifest
    cfg = dict(stats=m.stats.model_dump(include={"alpha", "group_method", "n_permutations",
                                                  "random_state"}),
               subjects=list(m.subjects))  # fmt: skip
    if m.eeg.simulate and is_primary_last(study, _unit(study, subject)):
        # the recovery correlations band-pass the features like the EEG
        cfg["eeg"] = m.eeg.model_dump(include={"sfreq", "l_freq", "h_freq"})
    return cfg


def group_inputs(study, subject):
    """Inputs of step 05 (one backbone x layer): every subject's sweep and null (and, for
    the simulated primary last layer, truth and features)."""
    m, unit = study.manifest, _unit(study, subject)
    paths, layer = model_paths(study, unit.model), unit.layer
    files = [paths.sweep(s, layer) for s in m.subjects] + [paths.permutation(s, layer) for s in m.subjects]
    if m.eeg.simulate and is_primary_last(study, unit):
        files += [paths.truth(s) for s in m.subjects] + [paths.alive(layer)]
        files += [paths.features(r, layer) for r in used_runs(m)]
    return files


def group_outputs(study, subject):
    """Outputs of step 05 (``recovery.json`` for the simulated primary last layer)."""
    unit = _unit(study, subject)
    paths, layer = model_paths(study, unit.model), unit.layer
    out = dict(group=paths.group_result(layer), table=paths.group_table(layer),
               significant=paths.significant_table(layer))  # fmt: skip
    if study.manifest.eeg.simulate and is_primary_last(study, unit):
        out["recovery"] = paths.recovery()
    return out


def group_run(study, subject, runtime):
    """Step 05: group-level max-T test across subjects, tables, planted-truth recovery.

    Every subject's sweep must share lags, rate, feature and channel names
    (:func:`neuro_sae.encoding.check_sweeps_compatible`, the error names the subject);
    tables name features by SAE feature id (``feature``, int, and ``feature_name``) and
    channels by name.
    """
    import pandas as pd

    from ..encoding import check_sweeps_compatible, read_sweep_result
    from ..stats import group_permutation_test, read_permutation_result

    manifest, unit = study.manifest, _unit(study, subject)
    paths, layer, subjects = model_paths(study, unit.model), unit.layer, list(manifest.subjects)
    alpha = manifest.stats.alpha
    outputs = group_outputs(study, unit)
    labels = [f"sub-{s}" for s in subjects]
    with timed(runtime, "group_stats"):
        sweeps = check_sweeps_compatible([read_sweep_result(paths.sweep(s, layer)) for s in subjects],
                                         labels)  # fmt: skip
        perms = [read_permutation_result(paths.permutation(s, layer)) for s in subjects]
        names = list(sweeps[0].feature_names)
        feature_ids = np.array([int(n.removeprefix("f")) for n in names])
        group = group_permutation_test(
            sweeps, perms, method=manifest.stats.group_method,
            n_permutations=manifest.stats.n_permutations, alpha=alpha, labels=labels,
            random_state=manifest.stats.random_state,
        )  # fmt: skip
        group.save(outputs["group"], overwrite=True)
        table = group.to_frame().rename(columns={"feature": "feature_name"})
        table.insert(0, "layer", layer)
        table.insert(1, "feature", np.repeat(feature_ids, len(sweeps[0].ch_names)))
        write_parquet(table, outputs["table"])
        sig_mask = group.p_fwe < alpha
        best_ch = np.argmax(group.statistic, axis=1)
        rows = [
            dict(layer=layer, feature=int(feature_ids[i]), feature_name=names[i],
                 n_channels=int(sig_mask[i].sum()), best_channel=sweeps[0].ch_names[best_ch[i]],
                 r=float(group.statistic[i, best_ch[i]]), p_fwe=float(group.p_fwe[i].min()))
            for i in np.flatnonzero(sig_mask.any(axis=1))
        ]  # fmt: skip
        sig = pd.DataFrame(rows, columns=["layer", "feature", "feature_name", "n_channels",
                                          "best_channel", "r", "p_fwe"])  # fmt: skip
        write_parquet(sig, outputs["significant"])
    logger.info(f"[05_group_stats] {unit.label()}: {len(sig)} features significant at group "
                f"level (p_FWE < {alpha})")  # fmt: skip
    if "recovery" in outputs:
        _write_recovery(study, layer, sweeps, perms, sig, feature_ids, alpha)
    return outputs


def _write_recovery(study, layer, sweeps, perms, sig, feature_ids, alpha):
    from ..align import resample_features
    from ..simulation import feature_correlations, score_recovery

    manifest, paths = study.manifest, study.paths
    truths = {s: json.loads(paths.truth(s).read_text()) for s in manifest.subjects}
    planted = [int(p) for p in truths[manifest.subjects[0]]["planted_features"]]
    sfreq = manifest.eeg.sfreq
    runs = [resample_features(fs, sfreq, int(np.floor(fs.duration * sfreq)))
            for fs in _load_series(paths, used_runs(manifest), layer, feature_ids).values()]  # fmt: skip
    corr = feature_correlations(runs, sfreq=sfreq, l_freq=manifest.eeg.l_freq, h_freq=manifest.eeg.h_freq)
    pos = {int(f): i for i, f in enumerate(feature_ids)}
    per_subject = {}
    for s, sw, pm in zip(manifest.subjects, sweeps, perms):
        rec = score_recovery(planted, feature_ids[np.any(pm.p_fwe < alpha, axis=1)], corr, feature_ids)
        chan_r = {}
        for p in planted:
            k = truths[s]["planted_features"].index(p)
            idx = [sw.ch_names.index(c) for c in truths[s]["planted_channels"][k] if c in sw.ch_names]
            if idx:
                chan_r[str(p)] = round(float(np.mean(sw.r[pos[p], idx])), 4)
        rec["planted_channels_r"] = chan_r
        per_subject[s] = rec
    group = score_recovery(planted, sig["feature"].tolist(), corr, feature_ids)
    recovery = dict(planted=planted, **{k: group[k] for k in ("hits", "misses", "false_positives",
                    "explained_by_planted", "recovered_fraction")}, alpha=alpha, layer=layer,
                    n_features_tested=len(feature_ids), subjects=per_subject)  # fmt: skip
    write_json(recovery, paths.recovery())
    return recovery


# ------------------------------------------------------------------------ figures, report
def figures_run(study, subject, runtime):
    """Draw the study figures from saved results (:func:`neuro_sae.pipeline.make_figures`)."""
    from .figures import make_figures

    with timed(runtime, "figures"):
        return list(make_figures(study.manifest, study.root))


def report_run(study, subject, runtime):
    """Write one subject's ``mne.Report`` (:func:`neuro_sae.report.make_subject_report`)."""
    from .report import make_subject_report

    with timed(runtime, "figures"):
        return [make_subject_report(study.manifest, study.root, subject)]
