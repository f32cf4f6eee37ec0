"""Tests of SAEConfig and TrainConfig validation and the learning-rate schedule."""

import numpy as np
import pytest

from neuro_sae.sae import SAEConfig, TrainConfig


def test_sae_config_defaults():
    cfg = SAEConfig(d_in=12, d_sae=96)
    assert cfg.k == 50
    assert cfg.architecture == "batchtopk"
    assert cfg.normalize_input is True
    assert cfg.frame_rate == 50.0
    assert cfg.padding_policy == "masked"
    assert SAEConfig.from_dict(cfg.to_dict()) == cfg


@pytest.mark.parametrize(
    "kwargs, err, match",
    [
        (dict(d_in=0, d_sae=8, k=2), ValueError, "d_in must be an int >= 1"),
        (dict(d_in=4, d_sae=8, k=9), ValueError, r"k \(9\) cannot exceed d_sae \(8\)"),
        (dict(d_in=4, d_sae=8, k=2.0), TypeError, "k must be an instance of int"),
        (dict(d_in=4, d_sae=8, k=2, architecture="batchtop"), ValueError, "Did you mean 'batchtopk'"),
        (dict(d_in=4, d_sae=8, k=2, architecture="gated"), ValueError, "architecture"),
        (dict(d_in=4, d_sae=8, k=2, jumprelu_bandwidth=0.01), ValueError,
         "jumprelu_bandwidth=0.01 is only used by architecture='jumprelu'"),
        (dict(d_in=4, d_sae=8, k=2, matryoshka_group_sizes=(4, 4)), ValueError,
         "only used by architecture='matryoshka_batchtopk'"),
        (dict(d_in=4, d_sae=8, k=2, architecture="jumprelu", jumprelu_bandwidth=0), ValueError,
         "jumprelu_bandwidth must be a number"),
        (dict(d_in=4, d_sae=8, k=2, architecture="matryoshka_batchtopk",
              matryoshka_group_sizes=(2, 4)), ValueError, r"summing to d_sae \(8\).*sum 6"),
        (dict(d_in=4, d_sae=8, k=2, architecture="matryoshka_batchtopk",
              matryoshka_group_sizes=(2, 0, 6)), ValueError, "positive ints"),
        (dict(d_in=4, d_sae=8, k=2, padding_policy="drop"), ValueError, "'padding_policy'"),
        (dict(d_in=4, d_sae=8, k=2, frame_rate=-1), ValueError, "frame_rate must be"),
        (dict(d_in=4, d_sae=8, k=2, normalize_input=1), TypeError, "normalize_input"),
        (dict(d_in=4, d_sae=8, k=2, layer=-1), ValueError, "layer must be an int >= 0"),
    ],
)
def test_sae_config_errors(kwargs, err, match):
    with pytest.raises(err, match=match):
        SAEConfig(**kwargs)


def test_architecture_fields_round_trip():
    m = SAEConfig(d_in=4, d_sae=48, k=2, architecture="matryoshka_batchtopk")
    assert m.matryoshka_group_sizes == (6, 6, 12, 24)  # prefixes d_sae/8, /4, /2, all
    assert m.matryoshka_widths == (6, 12, 24, 48)
    m2 = SAEConfig(d_in=4, d_sae=10, k=2, architecture="matryoshka_batchtopk",
                   matryoshka_group_sizes=[3, 7])
    assert m2.matryoshka_group_sizes == (3, 7) and m2.matryoshka_widths == (3, 10)
    j = SAEConfig(d_in=4, d_sae=8, k=2, architecture="jumprelu", jumprelu_bandwidth=0.02)
    for cfg in (m, m2, j):
        assert SAEConfig.from_dict(cfg.to_dict()) == cfg
    assert SAEConfig(d_in=4, d_sae=8, k=2).matryoshka_widths is None


def test_from_dict_unknown_key():
    with pytest.raises(ValueError, match="Did you mean 'd_sae'"):
        SAEConfig.from_dict(dict(d_in=4, d_sea=8))
    with pytest.raises(ValueError, match="Did you mean 'batch_size'"):
        TrainConfig.from_dict(dict(n_steps=3, batchsize=8))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(n_steps=0), "n_steps must be an int >= 1"),
        (dict(n_steps=10, lr=0), "lr must be a number"),
        (dict(n_steps=10, betas=(0.9,)), "betas must be two numbers"),
        (dict(n_steps=10, betas=(0.9, 1.0)), "betas must be two numbers"),
        (dict(n_steps=10, lr_decay_start=1.5), "lr_decay_start must be a number in"),
        (dict(n_steps=10, warmup_steps=10), "warmup_steps"),
        (dict(n_steps=10, threshold_beta=1.0), "threshold_beta"),
    ],
)
def test_train_config_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TrainConfig(**kwargs)


def test_lr_schedule_closed_form():
    cfg = TrainConfig(n_steps=50, lr=1e-3, lr_decay_start=0.8)
    lrs = np.array([cfg.lr_at(s) for s in range(50)])
    np.testing.assert_allclose(lrs[:40], 1e-3)
    # linear decay to zero at step n_steps over the last 20% (10 steps)
    np.testing.assert_allclose(lrs[40:], 1e-3 * (50 - np.arange(40, 50)) / 10)
    warm = TrainConfig(n_steps=20, lr=1.0, warmup_steps=4, lr_decay_start=1.0)
    np.testing.assert_allclose([warm.lr_at(s) for s in range(6)], [0.25, 0.5, 0.75, 1, 1, 1])
    assert TrainConfig(n_steps=50).threshold_start == 25
    assert TrainConfig(n_steps=5000).threshold_start == 1000
    assert TrainConfig(n_steps=50, threshold_start_step=3).threshold_start == 3
