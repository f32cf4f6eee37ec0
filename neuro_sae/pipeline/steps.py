"""The pipeline's steps. Each takes the manifest and the derivatives folder, skips
itself when its cache record is valid, writes atomically and returns its output
paths. ``analyses/NN_*.py`` and the ``neuro-sae`` CLI are thin wrappers."""

from __future__ import annotations

import json
import time

import numpy as np

from ..io import write_json, write_parquet
from ..utils import check_random_state, fill_doc, logger, torch_num_threads, verbose
from ._cache import StepCache
from ._paths import StudyPaths

__all__ = [
    "extract_step",
    "fit_subject_step",
    "group_step",
    "sae_layers",
    "simulate_step",
    "train_sae_step",
]


def _timed(runtime, key):
    class _T:
        def __enter__(self):
            self.t0 = time.perf_counter()

        def __exit__(self, *exc):
            if runtime is not None:
                runtime[key] = round(runtime.get(key, 0.0) + time.perf_counter() - self.t0, 2)

    return _T()


def _n_layers_of(manifest, paths):
    run_id = manifest.stimuli.runs[0].id
    meta_file = paths.activations(run_id)
    from ..activations import read_activations

    return max(read_activations(meta_file).layers)


@fill_doc
def sae_layers(manifest, paths):
    """The layers that get an SAE (``"last"`` resolved from the extracted activations).

    Parameters
    ----------
    %(manifest)s
    paths : StudyPaths
        The derivatives layout.

    Returns
    -------
    layers : list of int
        1-based layers.
    """
    if manifest.sae.layers == "last":
        return [_n_layers_of(manifest, paths)]
    return list(manifest.sae.layers)


# --------------------------------------------------------------------- 01
@verbose
def extract_step(manifest, out, *, force=False, runtime=None, verbose=None):
    """Step 01: read every stimulus, run the backbone, save all layers' activations.

    Parameters
    ----------
    %(manifest)s
    %(out)s
    %(force)s
    %(runtime)s
    %(verbose)s

    Returns
    -------
    outputs : dict of str to pathlib.Path
        Run id to activation file.
    """
    paths = StudyPaths(out)
    stim = manifest.stimulus_files(check=True)
    bcfg = manifest.backbone.model_dump()
    cache = StepCache(paths.cache_dir(), "01_extract", bcfg, list(stim.values()))
    outputs = {rid: paths.activations(rid) for rid in stim}
    if not force and cache.is_done():
        logger.info("[01_extract] up to date, skipping")
        return outputs
    from ..activations import extract_activations
    from ..backbones import load_backbone
    from ..io import read_audio

    with _timed(runtime, "extract"):
        backbone = load_backbone(manifest.backbone.name, device=manifest.backbone.device, encoder_only=True)
        layers = None if manifest.backbone.layers == "all" else manifest.backbone.layers
        logger.info(f"[01_extract] {backbone.name}: {len(stim)} runs")
        for rid, fname in stim.items():
            audio, sfreq = read_audio(fname, sfreq=16000)
            acts = extract_activations(
                backbone,
                audio,
                sfreq=sfreq,
                layers=layers,
                window_s=manifest.backbone.window_s,
                context_s=manifest.backbone.context_s,
                stimulus_id=rid,
            )
            acts.save(outputs[rid])
    cache.done(list(outputs.values()))
    return outputs


# --------------------------------------------------------------------- 02
@verbose
def train_sae_step(manifest, out, *, force=False, runtime=None, verbose=None):
    """Step 02: train one SAE per chosen layer on all runs, encode every run.

    Parameters
    ----------
    %(manifest)s
    %(out)s
    %(force)s
    %(runtime)s
    %(verbose)s

    Returns
    -------
    outputs : dict
        ``{layer: {"sae": folder, "features": {run: file}, "alive": file}}``.
    """
    from ..activations import read_activations
    from ..features import encode_features, select_alive_features
    from ..sae import SAEConfig, TrainConfig, train_sae

    paths = StudyPaths(out)
    run_ids = [r.id for r in manifest.stimuli.runs]
    act_files = [paths.activations(r) for r in run_ids]
    layers = sae_layers(manifest, paths)
    config = dict(sae=manifest.sae.model_dump(), features=manifest.features.model_dump(), layers=layers)
    cache = StepCache(paths.cache_dir(), "02_train_sae", config, act_files)
    outputs = {
        layer: dict(
            sae=paths.sae_dir(layer),
            features={r: paths.features(r, layer) for r in run_ids},
            alive=paths.alive(layer),
        )
        for layer in layers
    }
    if not force and cache.is_done():
        logger.info("[02_train_sae] up to date, skipping")
        return outputs
    written = []
    for layer in layers:
        acts = {r: read_activations(f, layers=[layer]) for r, f in zip(run_ids, act_files)}
        x = np.concatenate([a.get(layer) for a in acts.values()]).astype(np.float32)
        d_in = x.shape[1]
        first = next(iter(acts.values()))
        sae_cfg = SAEConfig(
            d_in=d_in,
            d_sae=d_in * manifest.sae.expansion,
            k=manifest.sae.k,
            backbone=first.backbone,
            layer=layer,
            frame_rate=first.sfreq,
            seed=manifest.sae.random_state,
        )
        train_cfg = TrainConfig(
            lr=manifest.sae.lr,
            batch_size=min(manifest.sae.batch_size, len(x)),
            n_steps=manifest.sae.n_steps,
        )
        logger.info(
            f"[02_train_sae] layer {layer}: {len(x):,} frames, d_in={d_in}, "
            f"d_sae={sae_cfg.d_sae}, k={sae_cfg.k}, {train_cfg.n_steps} steps"
        )
        with _timed(runtime, "sae_train"):
            with torch_num_threads(manifest.sae.torch_threads):
                sae, history = train_sae(
                    x, sae_cfg, train_cfg, random_state=manifest.sae.random_state, device=manifest.sae.device
                )
            sae.save(outputs[layer]["sae"])
        written.append(outputs[layer]["sae"])
        with _timed(runtime, "features"):
            series = {}
            for r in run_ids:
                fs = encode_features(
                    sae, acts[r], layer=layer, mode=manifest.features.mode, sae_id=f"layer-{layer:02d}"
                )
                fs.save(outputs[layer]["features"][r])
                written.append(outputs[layer]["features"][r])
                series[r] = fs
            alive = select_alive_features(list(series.values()), min_rate=manifest.features.min_rate)
            rates = np.mean([s.firing_rate() for s in series.values()], axis=0)
            n_alive = len(alive)
            if manifest.features.max_features is not None and len(alive) > manifest.features.max_features:
                # keep the most active ones: a deterministic, data-driven choice
                order = np.argsort(-rates[alive], kind="stable")
                alive = np.sort(alive[order[: manifest.features.max_features]])
            write_json(
                dict(
                    layer=layer,
                    min_rate=manifest.features.min_rate,
                    n_alive=n_alive,
                    max_features=manifest.features.max_features,
                    feature_ids=[int(f) for f in alive],
                    firing_rate=[float(rates[f]) for f in alive],
                ),
                outputs[layer]["alive"],
            )
            written.append(outputs[layer]["alive"])
        logger.info(
            f"[02_train_sae] layer {layer}: {n_alive} alive features (>= "
            f"{manifest.features.min_rate}/s), {len(alive)} kept"
        )
    cache.done(written)
    return outputs


def _load_alive(paths, layer):
    return np.asarray(json.loads(paths.alive(layer).read_text())["feature_ids"], dtype=np.int64)


def _load_series(manifest, paths, layer, feature_ids=None):
    from ..features import read_feature_series

    series = {}
    for run in manifest.stimuli.runs:
        fs = read_feature_series(paths.features(run.id, layer))
        series[run.id] = fs if feature_ids is None else fs.select(feature_ids)
    return series


# --------------------------------------------------------------------- 03
@verbose
def simulate_step(manifest, out, *, force=False, runtime=None, verbose=None):
    """Step 03 (simulated studies only): EEG driven by the real SAE features.

    The planted features are chosen once (for the first subject) and shared by
    every subject; kernels, topographies and noise differ per subject.

    Parameters
    ----------
    %(manifest)s
    %(out)s
    %(force)s
    %(runtime)s
    %(verbose)s

    Returns
    -------
    outputs : dict of str to pathlib.Path
        Subject to EEG file.
    """
    from ..align import resample_features
    from ..simulation import simulate_eeg, write_simulated_subject

    if not manifest.eeg.simulate:
        raise ValueError(
            f"Manifest {manifest.path}: eeg.simulate is false, so EEG is read from "
            f"{manifest.eeg.files!r} and step 03 has nothing to do."
        )
    paths = StudyPaths(out)
    layer = sae_layers(manifest, paths)[-1]
    feat_files = [paths.features(r.id, layer) for r in manifest.stimuli.runs] + [paths.alive(layer)]
    config = dict(
        simulation=manifest.simulation.model_dump(),
        eeg=manifest.eeg.model_dump(),
        subjects=manifest.subjects,
        layer=layer,
    )
    cache = StepCache(paths.cache_dir(), "03_simulate", config, feat_files)
    outputs = {s: manifest.eeg_file(s, paths.root) for s in manifest.subjects}
    if not force and cache.is_done():
        logger.info("[03_simulate] up to date, skipping")
        return outputs
    alive = _load_alive(paths, layer)
    series = _load_series(manifest, paths, layer, alive)
    sfreq = manifest.simulation.sfreq
    with _timed(runtime, "simulate"):
        feats = {}
        for rid, fs in series.items():
            n_times = int(np.floor(fs.duration * sfreq))
            feats[rid] = resample_features(fs, sfreq, n_times)
        rng = check_random_state(manifest.simulation.random_state)
        planted = None
        written = []
        for subject in manifest.subjects:
            raw, truth = simulate_eeg(
                feats,
                planted=planted,
                feature_ids=alive,
                sfreq=sfreq,
                montage=manifest.eeg.montage,
                n_planted=manifest.simulation.n_planted,
                **({} if manifest.simulation.snr is None else dict(snr=manifest.simulation.snr)),
                random_state=rng,
            )
            if planted is None:
                # the same planted features, kernels and topographies for every subject
                planted = [
                    {k: p[k] for k in ("feature", "latency", "width", "sign", "center")}
                    for p in truth["planted"]
                ]
            truth["subject"] = subject
            truth["layer"] = layer
            truth["planted_features"] = [int(p["feature_id"]) for p in truth["planted"]]
            files = write_simulated_subject(raw, truth, outputs[subject].parent, subject, overwrite=True)
            written += [files["eeg"], files["truth"]]
            logger.info(f"[03_simulate] sub-{subject}: planted features {truth['planted_features']}")
    cache.done(written)
    return outputs


# --------------------------------------------------------------------- 04
def _subject_seed(base, subject):
    # a stable, distinct stream per subject derived from the manifest seed
    return int(np.random.default_rng([int(base), *map(ord, str(subject))]).integers(0, 2**31 - 1))


@verbose
def fit_subject_step(manifest, out, subject, *, force=False, runtime=None, verbose=None):
    """Step 04: align one subject's EEG with the features, sweep TRFs, permutation null.

    Parameters
    ----------
    %(manifest)s
    %(out)s
    subject : str
        Subject label.
    %(force)s
    %(runtime)s
    %(verbose)s

    Returns
    -------
    outputs : dict of str to pathlib.Path
        ``sweep``, ``permutation``, ``table`` and ``info`` files.
    """
    import mne

    from ..align import align_subject
    from ..encoding import univariate_sweep
    from ..io import read_subject_eeg, subject_eeg_files
    from ..stats import sweep_permutation_test

    paths = StudyPaths(out)
    manifest._check_subject(subject)
    layer = sae_layers(manifest, paths)[-1]
    eeg_inputs = subject_eeg_files(manifest, subject, derivatives=paths.root)
    missing = [f for f in eeg_inputs if not f.is_file()]
    if missing or not eeg_inputs:
        hint = (
            "run step 03 (simulate) first"
            if manifest.eeg.simulate
            else "fix eeg.files / eeg.root in the manifest"
        )
        what = missing[0] if missing else manifest.resolve(manifest.eeg.root)
        raise FileNotFoundError(f"EEG recording of sub-{subject} not found: {what}; {hint}.")
    inputs = eeg_inputs + [paths.alive(layer)] + [paths.features(r.id, layer) for r in manifest.stimuli.runs]
    config = dict(
        eeg=manifest.eeg.model_dump(),
        trf=manifest.trf.model_dump(),
        stats=manifest.stats.model_dump(),
        features=manifest.features.model_dump(),
        layer=layer,
    )
    cache = StepCache(paths.cache_dir(), f"04_fit_trf-sub-{subject}", config, inputs)
    outputs = dict(
        sweep=paths.sweep(subject, layer),
        permutation=paths.permutation(subject, layer),
        table=paths.subject_table(subject, layer),
        info=paths.info(subject),
    )
    if not force and cache.is_done():
        logger.info(f"[04_fit_trf] sub-{subject} up to date, skipping")
        return outputs
    alive = _load_alive(paths, layer)
    series = _load_series(manifest, paths, layer, alive)
    with _timed(runtime, "align"):
        raw = read_subject_eeg(manifest, subject, derivatives=paths.root)
        train_runs, _ = manifest.split_runs()
        aligned = align_subject(
            raw,
            series,
            feature_set="sae",
            l_freq=manifest.eeg.l_freq,
            h_freq=manifest.eeg.h_freq,
            sfreq=manifest.eeg.sfreq,
            scale=manifest.features.scale,
            prefix=manifest.eeg.onset_prefix,
            # the Dryad reader applies the mastoid reference itself (the mastoids are not EEG)
            reference=None if manifest.eeg.reference == "mastoids" else manifest.eeg.reference,
            eeg_scaling=manifest.eeg.scaling,
            train_runs=train_runs,
        )
    X_runs, Y_runs = aligned.X["sae"], aligned.Y
    names = [f"f{int(f)}" for f in alive]
    with _timed(runtime, "trf_sweep"):
        sweep = univariate_sweep(
            X_runs,
            Y_runs,
            sfreq=aligned.sfreq,
            tmin=manifest.trf.tmin,
            tmax=manifest.trf.tmax,
            alphas=manifest.trf.alphas,
            feature_names=names,
            ch_names=aligned.info["ch_names"],
        )
        sweep.save(outputs["sweep"])
    with _timed(runtime, "permutations"):
        perm = sweep_permutation_test(
            X_runs,
            Y_runs,
            sweep,
            n_permutations=manifest.stats.n_permutations,
            random_state=_subject_seed(manifest.stats.random_state, subject),
            return_null=True,
        )
        perm.save(outputs["permutation"])
    table = sweep.to_frame()
    table.insert(0, "subject", subject)
    table.insert(1, "layer", layer)
    p_tab = perm.to_frame(alpha=manifest.stats.alpha).drop(columns=["r"])
    table = table.merge(p_tab, on=["feature", "channel"], how="left", validate="one_to_one")
    write_parquet(table, outputs["table"])
    info = aligned.info.copy()
    outputs["info"].parent.mkdir(parents=True, exist_ok=True)
    from ..io import atomic_path

    with atomic_path(outputs["info"]) as tmp:
        tmp_fif = tmp.with_name(tmp.name + "-info.fif")
        mne.io.write_info(tmp_fif, info)
        tmp_fif.replace(tmp)
    n_sig = int(np.sum(np.any(perm.p_fwe < manifest.stats.alpha, axis=1)))
    logger.info(
        f"[04_fit_trf] sub-{subject}: max held-out r {sweep.r.max():.3f}, "
        f"{n_sig} features significant (max-T, p_FWE < {manifest.stats.alpha})"
    )
    cache.done(list(outputs.values()))
    return outputs


# --------------------------------------------------------------------- 05
def _feature_correlations(manifest, paths, layer, feature_ids):
    """Correlation of every feature series with every other, at the EEG rate, band-passed
    like the EEG; used to tell "explained by a planted feature" from a false positive."""
    import mne

    from ..align import resample_features

    sfreq = manifest.eeg.sfreq
    blocks = []
    for fs in _load_series(manifest, paths, layer, feature_ids).values():
        x = resample_features(fs, sfreq, int(np.floor(fs.duration * sfreq)))
        if manifest.eeg.l_freq is not None or manifest.eeg.h_freq is not None:
            x = mne.filter.filter_data(
                x.T.astype(np.float64), sfreq, manifest.eeg.l_freq, manifest.eeg.h_freq, verbose=False
            ).T
        blocks.append(x)
    x = np.concatenate(blocks)
    x = x - x.mean(0)
    norms = np.linalg.norm(x, axis=0)
    norms[norms == 0] = 1.0
    x = x / norms
    return x.T @ x


def _recovery(planted, significant, corr, feature_ids, threshold=0.3):
    pos = {int(f): i for i, f in enumerate(feature_ids)}
    planted = [int(p) for p in planted]
    significant = [int(s) for s in significant]
    hits = sorted(set(planted) & set(significant))
    misses = sorted(set(planted) - set(significant))
    explained, false_pos = {}, []
    for f in sorted(set(significant) - set(planted)):
        rs = {p: float(corr[pos[f], pos[p]]) for p in planted}
        best = max(rs, key=lambda p: abs(rs[p]))
        if abs(rs[best]) >= threshold:
            explained[str(f)] = dict(planted_feature=best, r=round(rs[best], 3))
        else:
            false_pos.append(f)
    return dict(
        hits=hits,
        misses=misses,
        false_positives=false_pos,
        explained_by_planted=explained,
        recovered_fraction=len(hits) / max(len(planted), 1),
    )


@verbose
def group_step(manifest, out, *, force=False, runtime=None, verbose=None):
    """Step 05: group-level max-T test across subjects, tables, planted-truth recovery.

    Parameters
    ----------
    %(manifest)s
    %(out)s
    %(force)s
    %(runtime)s
    %(verbose)s

    Returns
    -------
    outputs : dict of str to pathlib.Path
        ``group``, ``table``, ``significant`` and (simulated studies)
        ``recovery`` files.
    """
    import pandas as pd

    from ..encoding import read_sweep_result
    from ..stats import group_permutation_test, read_permutation_result

    paths = StudyPaths(out)
    layer = sae_layers(manifest, paths)[-1]
    subjects = manifest.subjects
    inputs = [paths.sweep(s, layer) for s in subjects] + [paths.permutation(s, layer) for s in subjects]
    config = dict(stats=manifest.stats.model_dump(), subjects=subjects, layer=layer)
    cache = StepCache(paths.cache_dir(), "05_group_stats", config, inputs)
    outputs = dict(
        group=paths.group_result(layer),
        table=paths.group_table(layer),
        significant=paths.significant_table(layer),
    )
    if manifest.eeg.simulate:
        outputs["recovery"] = paths.recovery()
    if not force and cache.is_done() and runtime is None:
        logger.info("[05_group_stats] up to date, skipping")
        return outputs
    alpha = manifest.stats.alpha
    with _timed(runtime, "group_stats"):
        sweeps = [read_sweep_result(paths.sweep(s, layer)) for s in subjects]
        perms = [read_permutation_result(paths.permutation(s, layer)) for s in subjects]
        r_subjects = np.stack([sw.r for sw in sweeps])
        nulls = [p.null for p in perms]
        group = group_permutation_test(
            r_subjects,
            nulls,
            method=manifest.stats.group_method,
            n_permutations=manifest.stats.n_permutations,
            random_state=manifest.stats.random_state,
        )
        group.save(outputs["group"])
        table = group.to_frame()
        table.insert(0, "layer", layer)
        write_parquet(table, outputs["table"])
        feature_names = list(sweeps[0].feature_names)
        feature_ids = np.array([int(n.lstrip("f")) for n in feature_names])
        sig_mask = group.p_fwe < alpha
        best_ch = np.argmax(group.statistic, axis=1)
        rows = []
        for i in np.flatnonzero(sig_mask.any(axis=1)):
            rows.append(
                dict(
                    layer=layer,
                    feature=int(feature_ids[i]),
                    n_channels=int(sig_mask[i].sum()),
                    best_channel=sweeps[0].ch_names[best_ch[i]],
                    r=float(group.statistic[i, best_ch[i]]),
                    p_fwe=float(group.p_fwe[i].min()),
                )
            )
        sig = pd.DataFrame(rows, columns=["layer", "feature", "n_channels", "best_channel", "r", "p_fwe"])
        write_parquet(sig, outputs["significant"])
    logger.info(f"[05_group_stats] {len(sig)} features significant at group level (p_FWE < {alpha})")
    if manifest.eeg.simulate:
        _write_recovery(manifest, paths, layer, sweeps, perms, sig, feature_ids, alpha, runtime)
    cache.done([outputs[k] for k in ("group", "table", "significant")])
    return outputs


def _write_recovery(manifest, paths, layer, sweeps, perms, sig, feature_ids, alpha, runtime):
    truths = {s: json.loads(paths.truth(s).read_text()) for s in manifest.subjects}
    planted = [int(p) for p in truths[manifest.subjects[0]]["planted_features"]]
    corr = _feature_correlations(manifest, paths, layer, feature_ids)
    pos = {int(f): i for i, f in enumerate(feature_ids)}
    per_subject = {}
    for s, sw, pm in zip(manifest.subjects, sweeps, perms):
        sig_s = feature_ids[np.any(pm.p_fwe < alpha, axis=1)]
        rec = _recovery(planted, sig_s, corr, feature_ids)
        chan_r = {}
        for p in planted:
            k = truths[s]["planted_features"].index(p)
            chans = truths[s]["planted_channels"][k]
            idx = [sw.ch_names.index(c) for c in chans if c in sw.ch_names]
            if idx:
                chan_r[str(p)] = round(float(np.mean(sw.r[pos[p], idx])), 4)
        rec["planted_channels_r"] = chan_r
        per_subject[s] = rec
    group = _recovery(planted, sig["feature"].tolist(), corr, feature_ids)
    recovery = dict(
        planted=planted,
        hits=group["hits"],
        misses=group["misses"],
        false_positives=group["false_positives"],
        explained_by_planted=group["explained_by_planted"],
        recovered_fraction=group["recovered_fraction"],
        alpha=alpha,
        layer=layer,
        n_features_tested=len(feature_ids),
        subjects=per_subject,
        runtime_s=dict(runtime or {}),
    )
    write_json(recovery, paths.recovery())
    return recovery


# --------------------------------------------------------------------- 06
@verbose
def sae_report_step(
    manifest,
    out,
    *,
    layers=None,
    seeds=(0, 1),
    expansion=8,
    k=50,
    n_steps=500,
    batch_size=1024,
    lr=2e-4,
    device="cpu",
    force=False,
    verbose=None,
):
    """Step 06: SAEs of every layer x seed of the study, their metrics and seed consistency.

    Trains (one pass over the same batches) or reads one SAE per layer and seed from the
    activations of step 01, then writes per-layer metrics and consistency tables as
    parquet and a figure under ``<out>/stimuli/sae_report`` (see
    :func:`neuro_sae.sae.sae_layer_report`).

    Parameters
    ----------
    %(manifest)s
    %(out)s
    layers : list of int | None
        1-based layers (``None``: every extracted layer).
    seeds : sequence of int
        SAE seeds per layer (two or more for seed consistency).
    expansion, k : int
        Dictionary size as a multiple of the layer width, and active features per frame.
    n_steps, batch_size : int
        Training steps and frames per step.
    lr : float
        Adam learning rate.
    %(device)s
    %(force)s
    %(verbose)s

    Returns
    -------
    result : dict
        As returned by :func:`neuro_sae.sae.sae_layer_report` (tables, figure, paths).
    """
    from ..sae import sae_layer_report

    paths = StudyPaths(out)
    files = [paths.activations(r.id) for r in manifest.stimuli.runs]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise FileNotFoundError(
            f"Activations missing ({missing[:2]}{' ...' if len(missing) > 2 else ''}): run step "
            "01 first (neuro-sae extract, or analyses/01_extract.py)."
        )
    return sae_layer_report(
        files, paths.root / "stimuli" / "sae_report", layers=layers, seeds=tuple(seeds),
        expansion=expansion, k=k, n_steps=n_steps, batch_size=batch_size, lr=lr, device=device,
        force=force,
    )  # fmt: skip
