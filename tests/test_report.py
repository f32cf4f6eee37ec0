"""The per-subject report and the study figures on a tiny study built from saved synthetic
results: 4 runs of amplitude-modulated noise, 6 SAE-like features (one of them the
stimulus envelope), EEG of 2 subjects simulated with a planted 150 ms response to that
feature, sweeps, permutation nulls and the group test computed with the public APIs and
saved where the pipeline saves them."""

import re

import numpy as np
import pytest
import soundfile as sf
import yaml

from neuro_sae.align import acoustic_envelope, align_subject, resample_features
from neuro_sae.encoding import univariate_sweep
from neuro_sae.features import FeatureSeries, read_feature_series
from neuro_sae.manifest import load_manifest
from neuro_sae.pipeline import StudyPaths, make_figures
from neuro_sae.report import envelope_eeg_xcorr, make_subject_report
from neuro_sae.simulation import simulate_eeg, write_simulated_subject
from neuro_sae.stats import group_permutation_test, sweep_permutation_test

LAYER = 2
RUN_S = [21.0, 18.0, 24.0, 19.5]
FEATURE_IDS = np.array([3, 17, 42, 56, 88, 91])
ENV_FEATURE = 1  # column of feature 17: the envelope
LATENCY = 0.15
N_PERM = 99
pytestmark = pytest.mark.filterwarnings(
    # short runs and few alphas legitimately put alphas on the grid edge
    "ignore:.*edge of the alpha grid.*:UserWarning",
    "ignore:.*grid edge.*:UserWarning",
)


def _audio(seconds, rng, sfreq=16000):
    """Noise modulated by a slow random envelope (syllable-like, 2-6 Hz)."""
    n = int(seconds * sfreq)
    n_env = int(seconds * 100)
    env = np.abs(np.convolve(rng.standard_normal(n_env), np.hanning(25), "same"))
    env = np.interp(np.arange(n) / sfreq, np.arange(n_env) / 100, env)
    return (0.1 * env * rng.standard_normal(n)).astype(np.float32)


def build_study(root):
    """Write the tiny study under ``root``; return (manifest, derivatives folder)."""
    rng = np.random.default_rng(7)
    (root / "stimuli").mkdir()
    runs = []
    for k, dur in enumerate(RUN_S, 1):
        sf.write(root / "stimuli" / f"r{k}.wav", _audio(dur, rng), 16000)
        runs.append(dict(id=f"r{k}", file=f"r{k}.wav"))
    manifest = dict(
        name="report-tiny",
        derivatives=str(root / "derivatives"),
        subjects=["01", "02"],
        stimuli=dict(root="stimuli", runs=runs),
        eeg=dict(simulate=True, sfreq=64.0, l_freq=1.0, h_freq=8.0, montage="biosemi64"),
        sae=dict(layers=[LAYER]),
        trf=dict(tmin=-0.1, tmax=0.4, alphas=[1.0, 1e2, 1e4]),
        stats=dict(n_permutations=N_PERM, alpha=0.05),
    )
    (root / "tiny.yaml").write_text(yaml.safe_dump(manifest))
    m = load_manifest(root / "tiny.yaml")
    out = m.derivatives_dir()
    paths = StudyPaths(out)
    # feature series: sparse events plus the envelope (feature 17), at 50 Hz
    series = {}
    for run in m.stimuli.runs:
        from neuro_sae.io import read_audio

        audio, sr = read_audio(m.stimulus_files()[run.id], sfreq=16000)
        n_frames = int(len(audio) / sr * 50)
        data = (rng.random((n_frames, len(FEATURE_IDS))) < 0.08) * rng.random((n_frames, len(FEATURE_IDS)))
        env = acoustic_envelope(audio, sr, 50.0, n_frames)[:, 0]
        data[:, ENV_FEATURE] = env / env.max()
        fs = FeatureSeries(data, np.arange(n_frames) / 50, FEATURE_IDS, sfreq=50.0, stimulus_id=run.id,
                           layer=LAYER, sae_id=f"layer-{LAYER:02d}")
        fs.save(paths.features(run.id, LAYER))
        series[run.id] = read_feature_series(paths.features(run.id, LAYER))
    feats = {rid: resample_features(fs, 128.0, int(np.floor(fs.duration * 128))) for rid, fs in series.items()}
    edge = float(getattr(m.trf, "edge_s", 0.0))
    sweeps, perms = [], []
    import mne

    for s, seed in zip(m.subjects, (11, 12)):
        planted = [dict(feature=ENV_FEATURE, latency=LATENCY, width=0.03, sign=1, center="Cz")]
        raw, truth = simulate_eeg(feats, planted=planted, feature_ids=FEATURE_IDS, sfreq=128.0, snr=0.6,
                                  random_state=seed)
        write_simulated_subject(raw, truth, paths.subject_dir(s) / "eeg", s)
        aligned = align_subject(raw, series, feature_set="sae", l_freq=1.0, h_freq=8.0, sfreq=64.0)
        names = [f"f{f}" for f in FEATURE_IDS]
        sweep = univariate_sweep(aligned.X["sae"], aligned.Y, sfreq=64.0, tmin=m.trf.tmin - edge,
                                 tmax=m.trf.tmax + edge, alphas=m.trf.alphas, feature_names=names,
                                 ch_names=aligned.ch_names)
        sweep.save(paths.sweep(s, LAYER))
        perm = sweep_permutation_test(aligned.X["sae"], aligned.Y, sweep, n_permutations=N_PERM,
                                      random_state=seed, return_null=True)
        perm.save(paths.permutation(s, LAYER))
        mne.io.write_info(paths.info(s), aligned.info)
        sweeps.append(sweep)
        perms.append(perm)
    group = group_permutation_test(np.stack([sw.r for sw in sweeps]), [p.null for p in perms],
                                   n_permutations=N_PERM, random_state=0)
    group.save(paths.group_result(LAYER))
    return m, out


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    return build_study(tmp_path_factory.mktemp("report_study"))


def test_envelope_xcorr_planted_lag():
    """A response 150 ms after the envelope peaks at +150 ms; a run annotated 0.5 s before
    its true onset (its EEG cut starts too early) peaks 500 ms later."""
    rng = np.random.default_rng(3)
    sfreq = 64.0
    envs, ys = [], []
    for n in (1500, 1800):
        env = np.convolve(rng.standard_normal(n), np.hanning(9), "same")
        lag = int(round(LATENCY * sfreq))
        y = np.zeros((n, 5))
        y[lag:] = np.outer(env[:-lag], [1.0, -0.5, 0.8, 0.3, -1.0])
        envs.append(env)
        ys.append(y + 0.5 * rng.standard_normal((n, 5)))
    late = int(0.5 * sfreq)
    # EEG cut 0.5 s before the true onset: y'[t] = y[t], envelope'[t] = envelope[t - late]
    envs.append(envs[0][late:])
    ys.append(ys[0][:-late])
    lags, xc = envelope_eeg_xcorr(envs, ys, sfreq, tmin=-0.5, tmax=1.0)
    peaks = lags[np.argmax(xc, axis=1)]
    assert peaks[:2] == pytest.approx([LATENCY, LATENCY], abs=0.5 / sfreq)
    assert peaks[2] == pytest.approx(LATENCY + 0.5, abs=0.5 / sfreq)
    assert xc.shape == (3, len(lags)) and lags[0] == -0.5 and lags[-1] == 1.0
    with pytest.raises(ValueError, match="envelope has 10 samples but the EEG 1500"):
        envelope_eeg_xcorr([np.zeros(10)], [ys[0]], sfreq)


SECTIONS = [
    "Configuration",
    "Raw EEG and PSD before and after filtering",
    "Alignment check",
    "Alignment table",
    "Chosen ridge alphas",
    "Held-out r per run",
    "Max-T null distribution",
    "Acoustic-envelope TRF (baseline)",
    "Acoustic-envelope held-out r",
    "Held-out r: feature 17",
    "TRF: feature 17",
    "Significant features",
    "Planted truth",
]


def test_subject_report_sections(study):
    m, out = study
    fname = make_subject_report(m, out, "01", n_top=2)
    assert fname == out / "sub-01" / "sub-01_report.html"
    text = fname.read_text()
    for title in SECTIONS:
        assert title in text, title
    # the number of circular shifts is printed, not "?"
    shifts = re.findall(r"(\S{1,20}) circular shifts", text)
    assert shifts and all(s == str(N_PERM) for s in shifts), shifts
    assert "? circular" not in text
    assert f"1/{N_PERM + 1}" in text
    # the planted feature is the best; the alignment table finds every run
    assert "feature 17" in text
    for k in range(1, 5):
        assert f"<td>r{k}</td>" in text
    # no temporary file left
    assert not [p for p in out.rglob("*") if ".tmp" in p.name]


def test_alignment_peaks_at_planted_latency(study):
    """On the simulated subject the envelope-to-EEG peak of every run is near the planted
    latency (the EEG responds to feature 17, the envelope)."""
    import pandas as pd

    m, out = study
    text = make_subject_report(m, out, "02", n_top=1).read_text()
    start = text.index("xcorr_peak_ms")
    table = text[text.rfind("<table", 0, start) : text.index("</table>", start)]
    rows = [re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", row, re.S) for row in re.findall(r"<tr[^>]*>(.*?)</tr>", table, re.S)]
    tab = pd.DataFrame(rows[1:], columns=[c.strip() for c in rows[0]])
    tab[["xcorr_peak_ms", "aligned_samples"]] = tab[["xcorr_peak_ms", "aligned_samples"]].astype(float)
    assert list(tab["run"]) == ["r1", "r2", "r3", "r4"]
    # 20 s runs of a band-limited envelope have side lobes: most runs, and the median,
    # peak at the planted latency
    near = np.abs(tab["xcorr_peak_ms"] - LATENCY * 1e3) <= 50
    assert near.sum() >= 3, tab
    assert abs(np.median(tab["xcorr_peak_ms"]) - LATENCY * 1e3) <= 30, tab
    np.testing.assert_allclose(tab["aligned_samples"], np.floor(np.array(RUN_S) * 64), atol=1)


def test_figures_inner_window_and_floor(study):
    import matplotlib.image

    m, out = study
    files = make_figures(m, out, n_top=2)
    names = sorted(f.name for f in files)
    assert "fig_trf_joint_top1_f17.png" in names and "fig_summary.pdf" in names
    assert "fig_r_topomap_top.png" in names
    img = matplotlib.image.imread(StudyPaths(out).figures_dir() / "fig_trf_joint_top1_f17.png")
    assert img.shape[0] > 500 and img.shape[1] > 800
    assert not [p for p in StudyPaths(out).figures_dir().iterdir() if ".tmp" in p.name]
