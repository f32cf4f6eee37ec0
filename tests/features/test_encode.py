"""Tests of encoding activations into feature series and of alive-feature selection."""

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from neuro_sae.activations import Activations
from neuro_sae.features import (
    FeatureSeries,
    encode_array,
    encode_features,
    read_feature_series,
    select_alive_features,
)
from neuro_sae.sae import SAEConfig, make_sae

D_IN, D_SAE, K, N_FRAMES = 10, 27, 3, 83


def _sae(layer=4, architecture="batchtopk"):
    sae = make_sae(
        SAEConfig(d_in=D_IN, d_sae=D_SAE, k=K, layer=layer, architecture=architecture,
                  backbone="whisper-tiny"),
        random_state=0,
    )
    with torch.no_grad():
        sae.threshold.fill_(0.25)
    return sae


def _acts(n_valid=61):
    rng = np.random.default_rng(0)
    mask = np.zeros(N_FRAMES, dtype=bool)
    mask[:n_valid] = True
    data = {4: rng.standard_normal((N_FRAMES, D_IN)).astype(np.float32),
            5: rng.standard_normal((N_FRAMES, D_IN)).astype(np.float32)}
    data[4][~mask] = 0.0  # padding
    return Activations(
        data=data, times=0.02 * np.arange(N_FRAMES), mask=mask, sfreq=50.0,
        backbone="whisper-tiny", stimulus_id="stim-01",
    )


def test_encode_features_valid_frames_only(tmp_path):
    sae, acts = _sae(), _acts()
    series = encode_features(sae, acts, batch_size=16)
    assert isinstance(series, FeatureSeries)
    assert series.n_frames == 61 and series.n_features == D_SAE
    np.testing.assert_allclose(series.times, 0.02 * np.arange(61))
    assert sp.issparse(series.data) and series.data.dtype == np.float32
    np.testing.assert_array_equal(series.feature_ids, np.arange(D_SAE))
    assert (series.layer, series.stimulus_id, series.sfreq) == (4, "stim-01", 50.0)
    assert series.provenance["mode"] == "threshold"
    with torch.no_grad():
        ref = sae.encode(acts.get(4), "threshold").numpy()
    np.testing.assert_allclose(series.to_dense(), ref, rtol=1e-6, atol=1e-7)
    # threshold mode is frame-wise: batching does not matter
    other = encode_features(sae, acts, batch_size=7)
    np.testing.assert_array_equal(other.to_dense(), series.to_dense())
    # round trip through the series file
    back = read_feature_series(series.save(tmp_path / "feat.npz"))
    np.testing.assert_array_equal(back.to_dense(), series.to_dense())


def test_encode_modes():
    sae, acts = _sae(), _acts()
    btk = encode_features(sae, acts, mode="batchtopk", batch_size=5)
    assert btk.data.nnz == K * 61  # one batch over the whole stimulus
    topk = encode_features(sae, acts, mode="topk")
    assert (np.diff(topk.data.indptr) == K).all()
    assert encode_features(_sae(architecture="topk"), acts).provenance["mode"] == "topk"


def test_encode_array():
    sae = _sae()
    x = np.random.default_rng(1).standard_normal((17, D_IN))
    times = 0.0125 + 0.02 * np.arange(17)
    series = encode_array(sae, x, times, stimulus_id="s", batch_size=4)
    np.testing.assert_allclose(series.times, times)
    assert series.layer == 4 and series.stimulus_id == "s"
    with pytest.raises(ValueError, match="times has 16 entries but x has 17 frames"):
        encode_array(sae, x, times[:-1])
    with pytest.raises(ValueError, match="width 9 but the SAE expects d_in=10"):
        encode_array(sae, x[:, :9], times)


def test_encode_features_errors():
    acts = _acts()
    with pytest.raises(ValueError, match="trained on layer 4 but layer=5"):
        encode_features(_sae(), acts, layer=5)
    with pytest.raises(ValueError, match="layer must be given"):
        encode_features(_sae(layer=None), acts)
    assert encode_features(_sae(layer=None), acts, layer=5).layer == 5
    with pytest.raises(ValueError, match="layer=7 is not in the activations"):
        encode_features(_sae(layer=7), acts)
    with pytest.raises(ValueError, match="Allowed values are"):
        encode_features(_sae(), acts, mode="thresh")
    with pytest.raises(TypeError, match="activations must be an instance of Activations"):
        encode_features(_sae(), acts.get(4))
    acts.backbone = "hubert-base"
    with pytest.raises(ValueError, match="trained on 'whisper-tiny'.*from 'hubert-base'"):
        encode_features(_sae(), acts)


def _series(counts, duration_frames, sfreq=50.0, ids=None):
    """A series where feature j fires on counts[j] frames."""
    n_feat = len(counts)
    data = np.zeros((duration_frames, n_feat), dtype=np.float32)
    for j, c in enumerate(counts):
        data[:c, j] = 1.0
    ids = np.arange(n_feat) if ids is None else ids
    return FeatureSeries(data=data, times=np.arange(duration_frames) / sfreq,
                         feature_ids=ids, sfreq=sfreq)


def test_select_alive_features():
    # 10 s + 5 s of frames at 50 Hz; rates pooled over both
    a = _series([0, 15, 14, 100, 30], 500)
    b = _series([0, 0, 0, 0, 1], 250)
    # pooled rates per second: 0, 1.0, 0.933, 6.67, 2.07
    np.testing.assert_array_equal(select_alive_features([a, b]), [1, 3, 4])
    # a alone (10 s): 0, 1.5, 1.4, 10, 3 per second; the bound is inclusive
    np.testing.assert_array_equal(select_alive_features(a, min_rate=1.45), [1, 3, 4])
    np.testing.assert_array_equal(select_alive_features(a, min_rate=1.4), [1, 2, 3, 4])
    np.testing.assert_array_equal(select_alive_features([a, b], min_rate=3.0), [3])
    c = _series([1, 2, 3, 4, 5], 100, ids=np.array([9, 8, 7, 6, 5]))
    np.testing.assert_array_equal(select_alive_features(c, min_rate=1.0), [5, 6, 7, 8])
    with pytest.raises(ValueError, match="different feature_ids"):
        select_alive_features([a, c])
    with pytest.raises(ValueError, match="series is empty"):
        select_alive_features([])
