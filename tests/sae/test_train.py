"""Tests of SAE training: planted-dictionary recovery, determinism, threshold, I/O."""

import numpy as np
import pytest
import torch
from scipy.optimize import minimize

from neuro_sae.sae import (
    ReLUSAE,
    SAEConfig,
    TrainConfig,
    geometric_median,
    load_sae,
    train_sae,
    train_saes,
)
from neuro_sae.sae.metrics import evaluate_sae
from neuro_sae.simulation._dictionary import make_sparse_dictionary_data

# planted truth: 40 atoms in 24 dimensions, 3 active per frame; 64 latents
D_IN, N_ATOMS, D_SAE, K = 24, 40, 64, 3


def _fit(seed, n_samples=3000, n_steps=1500, n_held_out=0, **train_kwargs):
    X, atoms, codes = make_sparse_dictionary_data(
        n_samples + n_held_out, D_IN, N_ATOMS, K, random_state=seed
    )
    X, X_test = X[:n_samples], X[n_samples:]
    kwargs = dict(n_steps=n_steps, batch_size=256, lr=2e-3, log_every=250, threshold_beta=0.99)
    kwargs.update(train_kwargs)
    sae, hist = train_sae(
        X, SAEConfig(d_in=D_IN, d_sae=D_SAE, k=K), TrainConfig(**kwargs), random_state=seed
    )
    return (sae, hist, atoms, X_test) if n_held_out else (sae, hist, atoms)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_recovers_planted_atoms(seed):
    # planted truth with little atom interference: 40 atoms in 32 dimensions, 2
    # active per frame, 80 latents (seeds 0-3 give mean max cosine 0.96-0.99 and
    # explained variance 0.99)
    d_in, n_atoms, d_sae, k = 32, 40, 80, 2
    X, atoms, _ = make_sparse_dictionary_data(4000, d_in, n_atoms, k, random_state=seed)
    tcfg = TrainConfig(n_steps=1000, batch_size=256, lr=3e-3, log_every=250, threshold_beta=0.99)
    sae, hist = train_sae(X, SAEConfig(d_in=d_in, d_sae=d_sae, k=k), tcfg, random_state=seed)
    cos = atoms @ sae.W_dec.detach().numpy().T
    assert cos.max(axis=1).mean() >= 0.9
    assert evaluate_sae(sae, X, mode="batchtopk")["explained_variance"] > 0.95
    assert evaluate_sae(sae, X)["explained_variance"] > 0.95  # threshold (inference) mode
    assert hist["l0"].iloc[-1] == pytest.approx(k)
    torch.testing.assert_close(sae.W_dec.norm(dim=1), torch.ones(d_sae))
    assert not sae.training


def test_threshold_mode_matches_batchtopk_on_held_out():
    sae, _, _, X_test = _fit(3, n_held_out=2000)
    assert sae.has_threshold
    with torch.no_grad():
        c_thr = sae.encode(X_test, "threshold").numpy()
        c_btk = sae.encode(X_test, "batchtopk").numpy()
    l0_thr = (c_thr > 0).sum(axis=1).mean()
    assert abs(l0_thr - K) < 0.3 * K
    a, b = c_thr > 0, c_btk > 0
    assert (a & b).sum() / (a | b).sum() > 0.8  # Jaccard of the active sets
    ev = []
    for codes in (c_thr, c_btk):
        with torch.no_grad():
            x_hat = sae.decode(codes).numpy()
        x_in = X_test / np.linalg.norm(X_test, axis=1, keepdims=True)
        ev.append(1 - ((x_in - x_hat) ** 2).sum(1).mean() / x_in.var(axis=0).sum())
    assert abs(ev[0] - ev[1]) < 0.05


def test_deterministic_for_fixed_random_state():
    X, _, _ = make_sparse_dictionary_data(700, D_IN, N_ATOMS, K, random_state=0)
    cfg = SAEConfig(d_in=D_IN, d_sae=D_SAE, k=K)
    tcfg = TrainConfig(n_steps=60, batch_size=128, log_every=20, threshold_start_step=10)
    sae_a, hist_a = train_sae(X, cfg, tcfg, random_state=7)
    sae_b, hist_b = train_sae(X, cfg, tcfg, random_state=7)
    sae_c, _ = train_sae(X, cfg, tcfg, random_state=8)
    for name, t in sae_a.state_dict().items():
        torch.testing.assert_close(sae_b.state_dict()[name], t, rtol=0, atol=0)
    cols = ["step", "loss", "l0", "explained_variance", "dead_fraction", "threshold"]
    assert hist_a[cols].equals(hist_b[cols])
    assert not torch.equal(sae_a.W_dec, sae_c.W_dec)
    assert sae_a.cfg.seed == 7
    # cfg.seed is used when random_state is None
    sae_d, _ = train_sae(X, SAEConfig(d_in=D_IN, d_sae=D_SAE, k=K, seed=7), tcfg)
    torch.testing.assert_close(sae_d.W_dec, sae_a.W_dec, rtol=0, atol=0)


def test_history_lr_and_dense_kernels():
    X, _, _ = make_sparse_dictionary_data(500, D_IN, N_ATOMS, K, random_state=1)
    cfg = SAEConfig(d_in=D_IN, d_sae=D_SAE, k=K)
    tcfg = TrainConfig(n_steps=50, batch_size=100, lr=1e-3, log_every=10)
    sae, hist = train_sae(X, cfg, tcfg, random_state=0)
    assert list(hist["step"]) == [10, 20, 30, 40, 50]
    np.testing.assert_allclose(hist["lr"], [tcfg.lr_at(s - 1) for s in hist["step"]])
    assert set(hist.columns) >= {"loss", "l0", "explained_variance", "dead_fraction"}
    dense = TrainConfig(n_steps=50, batch_size=100, lr=1e-3, log_every=10, sparse_kernels=False)
    sae_dense, hist_dense = train_sae(X, cfg, dense, random_state=0)
    np.testing.assert_allclose(hist_dense["loss"], hist["loss"], rtol=1e-3)
    torch.testing.assert_close(sae_dense.W_dec, sae.W_dec, rtol=1e-3, atol=1e-4)
    info = sae.train_info
    assert info["n_steps_done"] == 50 and len(info["data_hash"]) == 64
    assert info["train_config"]["lr"] == 1e-3
    assert info["final_metrics"]["l0"] == pytest.approx(K)


def test_topk_architecture_trains():
    X, _, _ = make_sparse_dictionary_data(400, D_IN, N_ATOMS, K, random_state=2)
    sae, hist = train_sae(
        X,
        SAEConfig(d_in=D_IN, d_sae=D_SAE, k=K, architecture="topk"),
        TrainConfig(n_steps=30, batch_size=100, log_every=10),
        random_state=0,
    )
    assert not sae.has_threshold
    assert ((sae.encode(X[:50]) > 0).sum(dim=1) == K).all()
    assert hist["loss"].iloc[-1] < hist["loss"].iloc[0]


def test_iterable_data_and_early_stop():
    X, _, _ = make_sparse_dictionary_data(600, D_IN, N_ATOMS, K, random_state=3)
    batches = [X[i : i + 100] for i in range(0, 600, 100)]
    cfg = SAEConfig(d_in=D_IN, d_sae=D_SAE, k=K)
    with pytest.warns(UserWarning, match="data ran out after 6 of 10 steps"):
        sae, hist = train_sae(
            iter(batches), cfg, TrainConfig(n_steps=10, batch_size=100, log_every=4), random_state=0
        )
    assert list(hist["step"]) == [4, 6]
    assert sae.train_info["n_steps_done"] == 6
    assert sae.train_info["data_hash"] is None
    with pytest.raises(ValueError, match=r"Batch 0 of data has shape \(100, 5\)"):
        train_sae([X[:100, :5]], cfg, TrainConfig(n_steps=1, batch_size=100))


def test_train_errors(tmp_path):
    X = np.zeros((50, D_IN))
    cfg = SAEConfig(d_in=D_IN, d_sae=D_SAE, k=K)
    with pytest.raises(ValueError, match="fewer than batch_size=100"):
        train_sae(X, cfg, TrainConfig(n_steps=1, batch_size=100))
    with pytest.raises(ValueError, match="data has 24 columns but sae_config.d_in is 25"):
        train_sae(X, SAEConfig(d_in=25, d_sae=30, k=2), TrainConfig(n_steps=1, batch_size=10))
    with pytest.raises(ValueError, match="needs a checkpoint_dir"):
        train_sae(X, cfg, TrainConfig(n_steps=2, batch_size=10, checkpoint_every=1))
    with pytest.raises(TypeError, match="data must be an array"):
        train_sae("frames.npy", cfg, TrainConfig(n_steps=1, batch_size=10))
    with pytest.raises(TypeError, match="sae_config must be an instance of SAEConfig"):
        train_sae(X, dict(d_in=D_IN), TrainConfig(n_steps=1, batch_size=10))


def test_checkpoints(tmp_path):
    X, _, _ = make_sparse_dictionary_data(300, D_IN, N_ATOMS, K, random_state=4)
    tcfg = TrainConfig(n_steps=12, batch_size=50, log_every=4, checkpoint_every=5)
    sae, _ = train_sae(
        X, SAEConfig(d_in=D_IN, d_sae=D_SAE, k=K), tcfg, random_state=0, checkpoint_dir=tmp_path
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["final", "step-0000005", "step-0000010"]
    assert load_sae(tmp_path / "step-0000005").train_info["n_steps_done"] == 5
    final = load_sae(tmp_path / "final")
    assert final.train_info["n_steps_done"] == 12
    torch.testing.assert_close(final.W_dec, sae.W_dec, rtol=0, atol=0)


def test_geometric_median_vs_scipy():
    rng = np.random.default_rng(0)
    pts = rng.standard_normal((61, 5))
    pts[:6] += 40.0  # outliers pull the mean, not the median
    got = geometric_median(pts, max_iter=500, tol=1e-12).numpy()

    def cost(y):
        return np.linalg.norm(pts - y, axis=1).sum()

    ref = minimize(cost, pts.mean(0), method="Nelder-Mead", options=dict(xatol=1e-10, fatol=1e-12, maxiter=20000)).x
    assert cost(got) <= cost(ref) + 1e-6
    np.testing.assert_allclose(got, ref, atol=1e-3)
    assert np.linalg.norm(got) < np.linalg.norm(pts.mean(0))


# ------------------------------------------------------- one pass, resume, DDP
def _two_layers(n=400, seed=5):
    X1, _, _ = make_sparse_dictionary_data(n, D_IN, N_ATOMS, K, random_state=seed)
    X2, _, _ = make_sparse_dictionary_data(n, D_IN + 4, N_ATOMS, K, random_state=seed + 1)
    cfgs = {3: SAEConfig(d_in=D_IN, d_sae=D_SAE, k=K), 7: SAEConfig(d_in=D_IN + 4, d_sae=40, k=K)}
    return {3: X1, 7: X2}, cfgs


def _weights(saes):
    return {key: {n: t.clone() for n, t in sae.state_dict().items()} for key, sae in saes.items()}


def test_train_saes_one_pass_matches_separate_runs():
    data, cfgs = _two_layers()
    tcfg = TrainConfig(n_steps=9, batch_size=50, log_every=4)
    saes, hist = train_saes(data, cfgs, tcfg, seeds=[0, 11], random_state=2)
    assert sorted(saes) == [(3, 0), (3, 11), (7, 0), (7, 11)]
    assert saes[(7, 11)].cfg.d_in == D_IN + 4 and saes[(7, 11)].cfg.layer == 7
    assert saes[(3, 11)].cfg.seed == 11
    # seeds differ in their initial dictionary only
    assert not torch.equal(saes[(3, 0)].W_dec, saes[(3, 11)].W_dec)
    assert list(hist.columns[:3]) == ["layer", "seed", "step"]
    assert len(hist) == 4 * 3 and set(hist["step"]) == {4, 8, 9}
    # each model is independent of the others: training one layer alone, with the
    # same batches and seeds, gives the same weights
    alone, _ = train_saes({3: data[3]}, {3: cfgs[3]}, tcfg, seeds=[11], random_state=2)
    assert torch.equal(alone[(3, 11)].W_dec, saes[(3, 11)].W_dec)
    # an iterator of {layer: batch} dicts
    batches = [{3: data[3][i : i + 40], 7: data[7][i : i + 40]} for i in range(0, 200, 40)]
    saes_it, hist_it = train_saes(iter(batches), cfgs, TrainConfig(n_steps=5, batch_size=40))
    assert hist_it["step"].max() == 5
    with pytest.raises(ValueError, match="Batch 0 of data has no entry for layer 7"):
        train_saes([{3: data[3][:40]}], cfgs, TrainConfig(n_steps=1, batch_size=40))
    with pytest.raises(ValueError, match="different numbers of frames"):
        train_saes({3: data[3], 7: data[7][:300]}, cfgs, tcfg)
    with pytest.raises(ValueError, match="seeds must be distinct"):
        train_saes(data, cfgs, tcfg, seeds=[1, 1])


class _Killed(RuntimeError):
    pass


def _dying(batches, after):
    for i, b in enumerate(batches):
        if i == after:
            raise _Killed("simulated kill")
        yield b


@pytest.mark.parametrize("kind", ["array", "iterator"])
def test_resume_after_kill_is_bit_exact(tmp_path, kind):
    data, cfgs = _two_layers()
    tcfg = TrainConfig(
        n_steps=14, batch_size=40, log_every=3, checkpoint_every=5, threshold_start_step=2,
        auxk_alpha=1 / 32, dead_after_steps=2,
    )
    batches = [{3: data[3][i : i + 40], 7: data[7][i : i + 40]} for i in range(0, 400, 40)] * 2

    def source(after=None):
        if kind == "array":
            return data
        return batches if after is None else _dying(batches, after)

    straight, hist = train_saes(source(), cfgs, tcfg, seeds=[0, 1], random_state=3,
                                checkpoint_dir=tmp_path / "a")
    if kind == "array":  # a kill inside step 8, after the checkpoint of step 5
        import neuro_sae.sae._train as tr

        real = tr._array_batches

        def dying_batches(*args, **kwargs):
            return _dying(real(*args, **kwargs), 8 - args[3])

        tr._array_batches = dying_batches
        try:
            with pytest.raises(_Killed):
                train_saes(source(), cfgs, tcfg, seeds=[0, 1], random_state=3,
                           checkpoint_dir=tmp_path / "b")
        finally:
            tr._array_batches = real
    else:
        with pytest.raises(_Killed):
            train_saes(source(8), cfgs, tcfg, seeds=[0, 1], random_state=3,
                       checkpoint_dir=tmp_path / "b")
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == ["step-0000005"]
    resumed, hist_r = train_saes(source(), cfgs, tcfg, seeds=[0, 1], random_state=3,
                                 checkpoint_dir=tmp_path / "b", resume=True)
    for key, w in _weights(straight).items():
        for name, t in w.items():
            assert torch.equal(t, resumed[key].state_dict()[name]), (key, name)
    cols = ["layer", "seed", "step", "loss", "l0", "explained_variance", "dead_fraction"]
    assert hist[cols].equals(hist_r[cols])
    # checkpoints are loadable SAE folders
    ck = load_sae(tmp_path / "b" / "step-0000005" / "layer-3_seed-1")
    assert ck.train_info["n_steps_done"] == 5
    final = load_sae(tmp_path / "b" / "final" / "layer-7_seed-0")
    assert torch.equal(final.W_enc, straight[(7, 0)].W_enc)
    # a checkpoint of other settings is refused
    with pytest.raises(ValueError, match="written by a run with other settings"):
        train_saes(source(), cfgs, TrainConfig(n_steps=14, batch_size=40, lr=1e-3),
                   seeds=[0, 1], checkpoint_dir=tmp_path / "b", resume=True)


def test_train_sae_resume(tmp_path):
    X, _, _ = make_sparse_dictionary_data(300, D_IN, N_ATOMS, K, random_state=4)
    cfg = SAEConfig(d_in=D_IN, d_sae=D_SAE, k=K)
    tcfg = TrainConfig(n_steps=12, batch_size=50, log_every=4, checkpoint_every=5)
    sae, hist = train_sae(X, cfg, tcfg, random_state=0, checkpoint_dir=tmp_path / "a")
    # "kill" after step 10: drop the final folder, resume from step-0000010
    import shutil

    shutil.rmtree(tmp_path / "a" / "final")
    again, hist2 = train_sae(X, cfg, tcfg, random_state=0, checkpoint_dir=tmp_path / "a",
                             resume=True)
    assert torch.equal(again.W_dec, sae.W_dec) and torch.equal(again.threshold, sae.threshold)
    assert hist2["loss"].equals(hist["loss"])


def test_distributed_single_process_gloo(tmp_path):
    import torch.distributed as dist

    X, _, _ = make_sparse_dictionary_data(300, D_IN, N_ATOMS, K, random_state=4)
    cfg = SAEConfig(d_in=D_IN, d_sae=D_SAE, k=K)
    tcfg = TrainConfig(n_steps=6, batch_size=50, log_every=3, threshold_start_step=1)
    ref, _ = train_sae(X, cfg, tcfg, random_state=0, distributed=False)
    dist.init_process_group(
        "gloo", init_method=f"file://{tmp_path / 'rendezvous'}", rank=0, world_size=1
    )
    try:
        got, _ = train_sae(X, cfg, tcfg, random_state=0)  # group initialised: DDP path
    finally:
        dist.destroy_process_group()
    assert torch.equal(got.W_dec, ref.W_dec) and torch.equal(got.threshold, ref.threshold)


def test_relu_sae_trains_sparse():
    X, atoms, _ = make_sparse_dictionary_data(2000, D_IN, N_ATOMS, K, random_state=0)
    cfg = SAEConfig(d_in=D_IN, d_sae=D_SAE, k=K, architecture="relu")
    sae, hist = train_sae(
        X, cfg, TrainConfig(n_steps=600, batch_size=200, lr=3e-3, l1_coefficient=0.2,
                            log_every=200), random_state=0,
    )
    assert isinstance(sae, ReLUSAE) and sae.has_threshold and float(sae.threshold) == 0
    ev = evaluate_sae(sae, X)
    # large effects: most variance explained with far fewer than d_sae active codes
    assert ev["explained_variance"] > 0.8
    assert ev["l0"] < D_SAE / 4
    codes = sae.encode(X[:50])
    assert codes.min() >= 0 and (codes > 0).sum(1).float().mean() == pytest.approx(
        (sae.encode(X[:50], mode="threshold") > 0).sum(1).float().mean()
    )


def test_auxk_loss_closed_form_and_dead_gradients():
    import dataclasses

    from neuro_sae.sae import make_sae
    from neuro_sae.sae._train import _seed_streams

    g = torch.Generator().manual_seed(0)
    sae = make_sae(SAEConfig(d_in=7, d_sae=19, k=2), random_state=0)
    x = torch.randn(11, 7, generator=g)
    recon = torch.randn(11, 7, generator=g)
    dead = torch.zeros(19, dtype=torch.bool)
    dead[[1, 4, 5, 12, 18]] = True
    got = sae.auxk_loss(x, recon, dead, 3)
    # closed form: the 3 largest ReLU pre-activations among the dead features
    # reconstruct the residual, error normalised by the residual's variance
    idx = dead.nonzero().squeeze(1)
    pre = torch.relu((x - sae.b_dec) @ sae.W_enc[:, idx] + sae.b_enc[idx]).detach()
    keep = pre >= pre.topk(3, dim=1).values[:, -1:]
    e = x - recon
    ref = ((pre * keep) @ sae.W_dec[idx].detach() - e).pow(2).sum(1).mean() / (
        (e - e.mean(0)).pow(2).sum(1).mean()
    )
    torch.testing.assert_close(got.detach(), ref, rtol=1e-5, atol=1e-7)
    assert sae.auxk_loss(x, recon, torch.zeros(19, dtype=torch.bool), 3) is None
    # training: without AuxK, features that never fire keep their initial encoder
    # columns (no gradient reaches them); with AuxK they are trained
    X, _, _ = make_sparse_dictionary_data(600, D_IN, N_ATOMS, K, random_state=1)
    X = X[:, :6] @ np.random.default_rng(0).standard_normal((6, D_IN))  # rank 6: many dead
    cfg = SAEConfig(d_in=D_IN, d_sae=96, k=K)
    seed, init_seed, _ = _seed_streams(0, None)
    init = make_sae(dataclasses.replace(cfg, seed=seed), random_state=init_seed)
    kw = dict(n_steps=40, batch_size=100, lr=3e-3, log_every=40, dead_after_steps=3)
    off, _ = train_sae(X, cfg, TrainConfig(**kw), random_state=0)
    on, hist = train_sae(X, cfg, TrainConfig(auxk_alpha=1 / 32, **kw), random_state=0)
    frozen_off = (off.W_enc == init.W_enc).all(0)
    frozen_on = (on.W_enc == init.W_enc).all(0)
    assert int(frozen_off.sum()) >= 5  # planted: never-firing features exist
    assert int(frozen_on.sum()) == 0
    assert np.isfinite(hist["loss"]).all()


def test_bf16_autocast_runs():
    X, _, _ = make_sparse_dictionary_data(300, D_IN, N_ATOMS, K, random_state=4)
    cfg = SAEConfig(d_in=D_IN, d_sae=D_SAE, k=K)
    sae, hist = train_sae(X, cfg, TrainConfig(n_steps=20, batch_size=50, lr=3e-3, log_every=10,
                                              autocast=True), random_state=0)
    assert sae.W_dec.dtype == torch.float32 and np.isfinite(hist["loss"]).all()
    assert hist["explained_variance"].iloc[-1] > hist["explained_variance"].iloc[0]
