"""extract_activations: windowing, stitching, timing, resampling."""

import numpy as np
import pytest
import torch

from neuro_sae.activations import Activations, extract_activations
from neuro_sae.activations._extract import _plan_windows
from neuro_sae.utils import use_log_level
from tests.backbones._tiny import tiny_backbone


@pytest.fixture(scope="module")
def whisper_bb():
    return tiny_backbone("whisper", seed=11)


def _noise(seconds, seed, n_extra=0, chirp=0.2):
    rng = np.random.default_rng(seed)
    n = int(seconds * 16000) + n_extra
    t = np.arange(n) / 16000
    # noise plus a slow chirp so the windows differ
    x = 0.05 * rng.standard_normal(n) + chirp * np.sin(2 * np.pi * (200 + 30 * t) * t)
    return x.astype(np.float32)


def test_plan_windows_tiles_frames():
    """Kept ranges tile [0, n_frames) and keep >= ctx frames of context."""
    for n_frames, win, ctx in [(2350, 1500, 250), (1500, 1500, 250), (9001, 1000, 100), (7, 50, 5)]:
        plan = _plan_windows(n_frames, win, ctx)
        assert plan[0][1] == 0 and plan[-1][2] == n_frames
        for (_, _, hi0), (_, lo1, _) in zip(plan[:-1], plan[1:]):
            assert hi0 == lo1
        for start, lo, hi in plan:
            assert start <= lo < hi <= start + win
            assert lo == 0 or lo - start >= ctx
            assert hi == n_frames or start + win - hi >= ctx


def test_whisper_47s_stitching(whisper_bb):
    """47 s of audio: frame count, times, mask, and each kept part equals a direct pass."""
    bb = whisper_bb
    x = _noise(47, 0)
    acts = extract_activations(bb, x, layers=[0, 2, 3], batch_size=2, stimulus_id="s1")
    assert isinstance(acts, Activations)
    n = int(np.ceil(47 / 0.02))
    assert acts.n_frames == n == 2350
    np.testing.assert_allclose(acts.times, 0.02 * np.arange(n))
    assert acts.mask.all() and acts.layers == [0, 2, 3]
    assert acts.data[3].dtype == np.float32 and acts.data[3].shape == (n, 40)
    assert acts.stimulus_id == "s1" and acts.backbone == "tiny-whisper"
    assert acts.provenance["n_windows"] == 2 and acts.provenance["context_s"] == 5.0
    assert "1-based" in acts.provenance["layer_convention"]
    # window 1 = audio [0, 30 s), keeps frames [0, 25 s); window 2 = [20, 47 s) keeps [25, 47 s)
    for start_s, lo_s, hi_s in [(0, 0, 25), (20, 25, 47)]:
        seg = x[start_s * 16000 : (start_s + 30) * 16000]
        direct = bb.forward_layers(bb.prepare([seg]), [0, 2, 3])
        lo, hi = lo_s * 50, hi_s * 50
        for layer in (0, 2, 3):
            ref = direct[layer][0, lo - start_s * 50 : hi - start_s * 50].numpy()
            np.testing.assert_allclose(acts.data[layer][lo:hi], ref, rtol=1e-5, atol=1e-5)


def test_whisper_padding_never_leaks(whisper_bb):
    """A non-integer number of frames: only frames whose centre is inside the audio."""
    x = _noise(3, 1, n_extra=123)  # 48123 samples -> ceil(48123 / 320) = 151 frames
    acts = extract_activations(whisper_bb, x, layers=1)
    assert acts.n_frames == 151 and acts.times[-1] < len(x) / 16000
    # the returned frames are the first 151 of a single padded window
    direct = whisper_bb.forward_layers(whisper_bb.prepare([x]), [1])[1][0, :151].numpy()
    np.testing.assert_allclose(acts.data[1], direct, rtol=1e-5, atol=1e-5)


def test_resample_stereo_44k(whisper_bb):
    """44.1 kHz stereo is averaged to mono and resampled (scipy.signal.resample_poly)."""
    from scipy.signal import resample_poly

    rng = np.random.default_rng(2)
    n = int(2.5 * 44100)
    left = rng.standard_normal(n) * 0.1
    stereo = np.stack([left, 0.5 * left + 0.01 * rng.standard_normal(n)], axis=1)
    mono16 = resample_poly(stereo.mean(axis=1), 160, 441).astype(np.float32)
    with use_log_level("WARNING"):
        a = extract_activations(whisper_bb, stereo, sfreq=44100, layers=[1])
    b = extract_activations(whisper_bb, mono16, layers=[1])
    assert a.n_frames == b.n_frames == int(np.ceil(len(mono16) / 320))
    np.testing.assert_allclose(a.data[1], b.data[1], rtol=1e-5, atol=1e-5)
    # channels-first input gives the same result
    c = extract_activations(whisper_bb, stereo.T, sfreq=44100, layers=[1])
    np.testing.assert_allclose(a.data[1], c.data[1], rtol=1e-6, atol=1e-6)
    assert a.provenance["input_sfreq"] == 44100.0


def test_hubert_chunked_vs_unchunked():
    """HuBERT chunks with context agree with one pass away from nothing but attention.

    The conv stem (and the positional conv, +-8 frames here) see only local audio, so
    with a layer-norm stem layer 0 is identical when chunked with 1 s of context.
    Deeper layers attend over the whole window, so chunking changes them slightly:
    measured <= 0.15% relative error per frame for this tiny random model (we allow 1%).
    With the group-norm stem of HuBERT-base, per-window normalisation statistics add
    ~1-3% on stationary noise (we allow 5%); on non-stationary audio (the chirp
    here) it reaches tens of percent, so use long windows for group-norm models.
    """
    for norm, chirp, tol0, tol in [("layer", 0.2, 1e-5, 0.01), ("group", 0.0, 0.05, 0.05)]:
        x = _noise(11.3, 3, chirp=chirp)
        bb = tiny_backbone("hubert", seed=5, feat_extract_norm=norm)
        full = extract_activations(bb, x, layers=[0, 1, 3])
        chunked = extract_activations(bb, x, layers=[0, 1, 3], window_s=4.0, context_s=1.0,
                                      batch_size=3)
        n = (len(x) - 400) // 320 + 1
        assert full.n_frames == chunked.n_frames == n
        np.testing.assert_allclose(full.times, (320 * np.arange(n) + 200) / 16000)
        assert full.provenance["n_windows"] == 1 and chunked.provenance["n_windows"] == 5
        for layer, t in [(0, tol0), (1, tol), (3, tol)]:
            a, b = full.data[layer], chunked.data[layer]
            rel = np.linalg.norm(a - b, axis=1) / np.linalg.norm(a, axis=1)
            assert rel.max() < t, (norm, layer, rel.max())


def test_errors(whisper_bb):
    """Bad arguments name the parameter and the fix."""
    x = _noise(1, 4)
    with pytest.raises(ValueError, match="window_s=40.*window_s <= 30"):
        extract_activations(whisper_bb, x, window_s=40)
    with pytest.raises(ValueError, match="2 \\* context_s < window_s"):
        extract_activations(whisper_bb, x, window_s=10, context_s=5)
    with pytest.raises(ValueError, match="'layers'.*got 7"):
        extract_activations(whisper_bb, x, layers=[7])
    with pytest.raises(ValueError, match="audio must have 1 or 2"):
        extract_activations(whisper_bb, np.zeros((2, 2, 100)))
    with pytest.raises(TypeError, match="backbone must be"):
        extract_activations("whisper-base", x)
    with pytest.raises(ValueError, match="too short"):
        extract_activations(tiny_backbone("hubert"), np.zeros(300, np.float32))


def test_logs_and_save_round_trip(whisper_bb, tmp_path, caplog):
    """INFO logs describe the windows; the result saves and reads back."""
    from neuro_sae.activations import read_activations
    from neuro_sae.utils import logger

    x = _noise(2, 6)
    logger.propagate = True
    try:
        with caplog.at_level("INFO", logger="neuro_sae"):
            acts = extract_activations(whisper_bb, x, layers=[0, 3], verbose=True)
    finally:
        logger.propagate = False
    assert "1 window(s)" in caplog.text
    back = read_activations(acts.save(tmp_path / "a.npz", dtype=np.float32))
    np.testing.assert_array_equal(back.data[3], acts.data[3])
    assert torch.is_tensor(torch.from_numpy(back.data[0]))


def test_provenance_keeps_original_audio(whisper_bb, tmp_path):
    """A 3-channel 22.05 kHz file: the activations record its rate and channel count (not
    the 16 kHz mono they were computed from), read from the file or passed as audio_info,
    and keep them through save/read."""
    import soundfile as sf

    from neuro_sae.activations import read_activations
    from neuro_sae.io import read_audio

    rng = np.random.default_rng(3)
    x = 0.1 * rng.standard_normal((22050, 3))
    fname = tmp_path / "three.wav"
    sf.write(fname, x, 22050)
    from_file = extract_activations(whisper_bb, fname, layers=[1])
    audio, sfreq, info = read_audio(fname, return_info=True)
    assert (sfreq, info["orig_sfreq"], info["orig_n_channels"], info["orig_n_samples"]) == (16000, 22050.0, 3, 22050)
    given = extract_activations(whisper_bb, audio, sfreq=sfreq, layers=[1], audio_info=info)
    for acts in (from_file, given):
        p = acts.provenance
        assert (p["orig_sfreq"], p["orig_n_channels"], p["input_sfreq"]) == (22050.0, 3, 16000.0)
        assert p["audio_file"] == str(fname)
    np.testing.assert_array_equal(from_file.data[1], given.data[1])
    # an array passed as is: its own rate and channels
    arr = extract_activations(whisper_bb, x, sfreq=22050, layers=[1])
    assert (arr.provenance["orig_sfreq"], arr.provenance["orig_n_channels"]) == (22050.0, 3)
    assert arr.provenance["audio_file"] is None
    back = read_activations(given.save(tmp_path / "a.npz"))
    assert back.provenance["orig_sfreq"] == 22050.0 and back.provenance["orig_n_channels"] == 3


@pytest.mark.parametrize("kind", ["whisper", "hubert"])
def test_device_sink_equals_direct_copies(kind, monkeypatch):
    """The overlapped copier (used on CUDA) stitches exactly what direct copies do.

    Forced on the CPU: gathered per batch, double-buffered (5 batches through 2 buffers,
    the last batch smaller, HuBERT's last window shorter), scattered on reuse and at the
    end. Any row placed in the wrong span or layer, or a buffer overwritten before it
    was drained, changes the result.
    """
    from neuro_sae.activations import _extract

    bb = tiny_backbone(kind, seed=3)
    x = _noise(14.7, 4)
    kw = dict(layers=[0, 1, 3], window_s=3.0, context_s=0.5, batch_size=2)
    direct = extract_activations(bb, x, **kw)
    sinks = []

    def forced(backbone, out, layers):
        sinks.append(_extract._DeviceSink(out, layers, cuda=False))
        return sinks[-1]

    monkeypatch.setattr(_extract, "_sink_for", forced)
    via_sink = extract_activations(bb, x, **kw)
    assert len(sinks) == 1 and sinks[0].turn == int(np.ceil(direct.provenance["n_windows"] / 2))
    assert sinks[0].turn >= 3 and all(p is None for p in sinks[0].pending)
    for layer in kw["layers"]:
        np.testing.assert_array_equal(via_sink.data[layer], direct.data[layer])
