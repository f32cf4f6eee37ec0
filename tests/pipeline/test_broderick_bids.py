"""``data_manifests/broderick2018_bids.yaml`` end to end on a fixture in OpenNeuro ds004408's
layout (3 subjects x 3 runs; BrainVision at 512 Hz, each run starting at its audio,
``stimuli/audioNN.wav``), with an envelope response planted on one channel."""

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from neuro_sae.io._broderick import BIOSEMI128
from neuro_sae.manifest import load_manifest
from neuro_sae.pipeline import StudyPaths, run_study

from .conftest import _tiny_whisper

ROOT = Path(__file__).resolve().parents[2]
SUBJECTS = ("001", "002", "003")
DUR = 10.0
PLANTED = "A7"

pytestmark = pytest.mark.filterwarnings(
    "ignore:.*edge of the alpha grid.*:UserWarning",
    "ignore:.*grid edge.*:UserWarning",
    "ignore:.*FDR cannot reject.*:UserWarning",
    # neuro_sae.io's BIDS reader gives each run an annotation one sample past its end (MNE
    # trims it); reported to the io owner
    "ignore:Limited 1 annotation.*outside the data range:RuntimeWarning",
)


def _envelope(audio, sfreq, sfreq_out, n_out):
    """Hilbert envelope, 1-8 Hz band, at the EEG rate (independent of neuro_sae)."""
    from scipy.signal import butter, hilbert, resample, sosfiltfilt

    env = np.abs(hilbert(audio))
    env = resample(env, int(len(env) * sfreq_out / sfreq))
    env = sosfiltfilt(butter(2, [1.0, 8.0], btype="band", fs=sfreq_out, output="sos"), env)
    out = np.zeros(n_out)
    out[: min(n_out, len(env))] = env[:n_out]
    return out / env.std()


def _dataset(root):
    """ds004408 at small scale: stimuli/audio01-03.wav and sub-00X BrainVision runs at 512 Hz
    without events files (each run starts at its audio), noise plus an envelope response
    (100 ms lag) on one channel."""
    import warnings

    import mne
    from mne_bids import BIDSPath, write_raw_bids

    from neuro_sae.data import demo_stimuli_dir
    from neuro_sae.io import read_audio

    ds = root / "data" / "ds004408"
    (ds / "stimuli").mkdir(parents=True)
    src = sorted(Path(demo_stimuli_dir()).glob("run0*.ogg"))[:3]
    audio = {}
    for i, fname in enumerate(src, 1):
        a, fs = read_audio(fname, sfreq=16000)
        audio[i] = a[: int(DUR * fs)]
        sf.write(ds / "stimuli" / f"audio{i:02d}.wav", audio[i], fs)
    rng = np.random.default_rng(0)
    sfreq, n = 512.0, int((DUR + 0.2) * 512)
    for sub in SUBJECTS:
        for run in (1, 2, 3):
            info = mne.create_info(BIOSEMI128[:16], sfreq, "eeg")
            data = rng.normal(size=(16, n)) * 1e-5
            env = _envelope(audio[run], 16000, sfreq, n)
            data[BIOSEMI128.index(PLANTED)] += 2e-5 * np.roll(env, int(0.1 * sfreq))
            raw = mne.io.RawArray(data, info, verbose=False)
            raw.set_meas_date(1_600_000_000 + 1000 * run)
            bp = BIDSPath(subject=sub, task="listening", run=f"{run:02d}", datatype="eeg", root=ds)  # run-01 as in ds004408
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                write_raw_bids(raw, bp, format="BrainVision", allow_preload=True, overwrite=True,
                               verbose=False)  # fmt: skip
    return ds


@pytest.mark.slow
def test_broderick_bids_manifest_end_to_end(tmp_path):
    (tmp_path / "data_manifests").mkdir()
    man_file = tmp_path / "data_manifests" / "broderick2018_bids.yaml"
    shutil.copy(ROOT / "data_manifests" / "broderick2018_bids.yaml", man_file)
    _dataset(tmp_path)
    _tiny_whisper(tmp_path / "tiny-whisper")
    overrides = dict(
        subjects=list(SUBJECTS),
        stimuli=dict(runs=[dict(id=f"run{i:02d}", file=f"audio{i:02d}.wav") for i in (1, 2, 3)]),
        eeg=dict(splits=dict(paper=dict(dev=["run01"], test=["run02", "run03"])), sfreq=64.0),
        backbones=[str(tmp_path / "tiny-whisper")],  # the file's: whisper-small, hubert-base
        sae=dict(layers="all", expansion=2, k=4, n_steps=30, batch_size=128, torch_threads=1),
        features=dict(min_rate=0.5, max_features=5),
        trf=dict(alphas=[1.0, 1e3]),
        stats=dict(n_permutations=19, vp_features=2),
        derivatives=str(tmp_path / "derivatives"),
    )
    manifest = load_manifest(man_file, overrides=overrides)
    assert manifest.stimuli_dir() == tmp_path / "data" / "ds004408" / "stimuli"  # as in the file
    run_study(manifest, figures=False, executor="serial", verbose="WARNING")
    paths = StudyPaths(manifest.derivatives_dir())
    for sub in SUBJECTS:
        for layer in (1, 2, 3):
            tab = pd.read_parquet(paths.subject_table(sub, layer))
            assert tab["channel"].nunique() == 16 and set(tab["subject"]) == {sub}
    rec = json.loads((paths.cache_dir() / "04_fit_trf-layer-02-sub-003.json").read_text())
    eeg_inputs = {k for k in rec["inputs"] if k.startswith("eeg:")}
    assert {f"eeg:sub-003/eeg/sub-003_task-listening_run-0{r}_eeg.vhdr" for r in (1, 2, 3)} <= eeg_inputs
    assert not any(k.endswith("_events.tsv") for k in eeg_inputs)  # ds004408 has none
    d = paths.layers_dir()
    vp = pd.read_parquet(d / "variance_partition.parquet")
    # planted truth: the envelope's unique variance peaks on the channel it was planted on
    uniq = [c for c in vp.columns if "unique" in c and "envelope" in c][0]
    for (sub, layer), df in vp.groupby(["subject", "layer"]):
        assert df.loc[df[uniq].idxmax(), "channel"] == PLANTED, (sub, layer)
    summary = pd.read_parquet(d / "protocol_vs_maxt.parquet")
    # no A19 (Pz) among the first 16 BioSemi channels: every channel is tested
    assert len(summary) == 3 and (summary["protocol_channel"] == "all").all()
    curves = pd.read_parquet(d / "layer_curves.parquet")
    assert set(curves["subject"]) == {*SUBJECTS, "group"}
