"""JumpReLU and Matryoshka BatchTopK SAEs; a trainer that does not know the architecture.

The training forward passes are checked against SAELens's own training SAEs (losses
and every gradient), the models against planted dictionaries, and resume after a kill
bit for bit.
"""

import ast
import inspect
import warnings

import numpy as np
import pytest
import torch

import neuro_sae.sae._train as train_module
from neuro_sae.sae import (
    ARCHITECTURES,
    JumpReLUSAE,
    MatryoshkaBatchTopKSAE,
    SAEConfig,
    TrainConfig,
    load_sae,
    make_sae,
    train_sae,
)
from neuro_sae.sae.metrics import evaluate_sae
from neuro_sae.simulation import make_sparse_dictionary_data

NEW = ("jumprelu", "matryoshka_batchtopk")


def _saelens():
    with warnings.catch_warnings():  # transformer_lens warns about its own deprecations
        warnings.simplefilter("ignore")
        from sae_lens.saes import jumprelu_sae, matryoshka_batchtopk_sae
        from sae_lens.saes.sae import TrainStepInput
    return jumprelu_sae, matryoshka_batchtopk_sae, TrainStepInput


def _step_input(TrainStepInput, x, coefficients):
    return TrainStepInput(sae_in=x, coefficients=coefficients, dead_neuron_mask=None,
                          n_training_steps=0, is_logging_step=False)


def _random_weights(sae, g):
    with torch.no_grad():
        sae.W_enc.add_(0.3 * torch.randn(sae.W_enc.shape, generator=g))
        sae.b_enc.normal_(0, 0.3, generator=g)
        sae.b_dec.normal_(0, 0.3, generator=g)


def _compare_grads(ours, theirs, names):
    for name in names:
        torch.testing.assert_close(getattr(ours, name).grad, getattr(theirs, name).grad,
                                   rtol=1e-5, atol=2e-6, msg=name)


def test_jumprelu_training_forward_matches_saelens():
    jumprelu_sae, _, TrainStepInput = _saelens()
    g = torch.Generator().manual_seed(0)
    d_in, d_sae, lam, bw = 7, 23, 0.07, 0.5
    x = torch.randn(31, d_in, generator=g)
    ours = make_sae(SAEConfig(d_in=d_in, d_sae=d_sae, k=3, architecture="jumprelu",
                              normalize_input=False, jumprelu_bandwidth=bw), random_state=0)
    _random_weights(ours, g)
    with torch.no_grad():
        ours.threshold.uniform_(0.0, 1.0, generator=g)
    cfg = jumprelu_sae.JumpReLUTrainingSAEConfig(d_in=d_in, d_sae=d_sae, jumprelu_bandwidth=bw,
                                                l0_coefficient=lam)
    theirs = jumprelu_sae.JumpReLUTrainingSAE(cfg)
    names = ("W_enc", "b_enc", "W_dec", "b_dec", "threshold")
    with torch.no_grad():
        for name in names:
            getattr(theirs, name).copy_(getattr(ours, name))
    ref = theirs.training_forward_pass(_step_input(TrainStepInput, x, {"l0": lam}))
    out = ours.training_forward(x, train_config=TrainConfig(n_steps=1, l0_coefficient=lam))
    assert set(out.losses) == {"mse", "l0"}
    torch.testing.assert_close(out.losses["mse"], ref.losses["mse_loss"])
    torch.testing.assert_close(out.losses["l0"], ref.losses["l0_loss"])
    ref.loss.backward()
    out.loss.backward()
    # planted: the kernel window holds some pre-activations, so thresholds get gradients
    assert int((ours.threshold.grad != 0).sum()) >= 3
    _compare_grads(ours, theirs, names)
    # the codes: z * (z > theta), per feature
    with torch.no_grad():
        pre = (x - ours.b_dec) @ ours.W_enc + ours.b_enc
        f = pre * (pre > ours.threshold)
        torch.testing.assert_close(ours.encode(x), f, rtol=0, atol=1e-6)
        assert out.col.numel() == int((f > 0).sum())


def test_matryoshka_training_forward_matches_saelens():
    _, matryoshka_sae, TrainStepInput = _saelens()
    g = torch.Generator().manual_seed(1)
    d_in, d_sae, k = 6, 20, 3
    x = torch.randn(29, d_in, generator=g)
    ours = make_sae(SAEConfig(d_in=d_in, d_sae=d_sae, k=k, architecture="matryoshka_batchtopk",
                              normalize_input=False, matryoshka_group_sizes=(4, 6, 10)),
                    random_state=0)
    _random_weights(ours, g)
    cfg = matryoshka_sae.MatryoshkaBatchTopKTrainingSAEConfig(
        d_in=d_in, d_sae=d_sae, k=k, matryoshka_widths=[4, 10, 20]
    )
    theirs = matryoshka_sae.MatryoshkaBatchTopKTrainingSAE(cfg)
    names = ("W_enc", "b_enc", "W_dec", "b_dec")
    with torch.no_grad():
        for name in names:
            getattr(theirs, name).copy_(getattr(ours, name))
    ref = theirs.training_forward_pass(_step_input(TrainStepInput, x, {}))
    out = ours.training_forward(x, train_config=TrainConfig(n_steps=1))
    assert list(out.losses) == ["mse", "inner_mse_4", "inner_mse_10"]
    torch.testing.assert_close(out.losses["mse"], ref.losses["mse_loss"])
    for w in (4, 10):
        torch.testing.assert_close(out.losses[f"inner_mse_{w}"], ref.losses[f"inner_mse_loss_{w}"])
    assert out.val.numel() == k * x.shape[0]  # BatchTopK: k * n codes per batch
    ref.loss.backward()
    out.loss.backward()
    _compare_grads(ours, theirs, names)
    # the inner losses reach only the decoder rows of their prefix
    ours.zero_grad()
    out = ours.training_forward(x, train_config=TrainConfig(n_steps=1))
    out.losses["inner_mse_4"].backward()
    assert ours.W_dec.grad[4:].abs().max() == 0 and ours.W_dec.grad[:4].abs().max() > 0


@pytest.mark.parametrize("seed", [0, 1])
def test_jumprelu_recovers_planted_atoms(seed):
    # 40 planted atoms in 32 dimensions, 2 active per frame, 80 latents; with
    # l0_coefficient 0.03 seeds 0-2 give mean max cosine 0.97-0.98 and L0 2.02-2.04
    d_in, n_atoms, d_sae, k = 32, 40, 80, 2
    X, atoms, _ = make_sparse_dictionary_data(4000, d_in, n_atoms, k, random_state=seed)
    tcfg = TrainConfig(n_steps=1000, batch_size=256, lr=3e-3, log_every=250, l0_coefficient=0.03)
    sae, hist = train_sae(X, SAEConfig(d_in=d_in, d_sae=d_sae, k=k, architecture="jumprelu"),
                          tcfg, random_state=seed)
    assert isinstance(sae, JumpReLUSAE) and not sae.training
    cos = (atoms @ sae.W_dec.detach().numpy().T).max(axis=1)
    assert cos.mean() >= 0.9 and (cos > 0.9).mean() >= 0.9
    ev = evaluate_sae(sae, X)  # inference: the learned per-feature thresholds
    assert ev["explained_variance"] > 0.95
    assert ev["l0"] == pytest.approx(k, abs=0.5)  # the L0 penalty finds the planted sparsity
    thr = sae.threshold.detach()
    assert thr.shape == (d_sae,) and bool((thr >= 0).all()) and float(thr.std()) > 0
    assert float(thr.mean()) > 0.05  # learned: far above the initial 0.001
    torch.testing.assert_close(sae.W_dec.norm(dim=1), torch.ones(d_sae))
    assert hist["loss"].iloc[-1] < hist["loss"].iloc[0]


@pytest.mark.parametrize("seed", [0, 1])
def test_matryoshka_recovers_planted_atoms(seed):
    # seeds 0-1 give mean max cosine 0.94-0.97, 88-90% of atoms above 0.9
    d_in, n_atoms, d_sae, k = 32, 40, 80, 2
    X, atoms, _ = make_sparse_dictionary_data(4000, d_in, n_atoms, k, random_state=seed)
    tcfg = TrainConfig(n_steps=1000, batch_size=256, lr=3e-3, log_every=250, threshold_beta=0.99)
    cfg = SAEConfig(d_in=d_in, d_sae=d_sae, k=k, architecture="matryoshka_batchtopk")
    sae, hist = train_sae(X, cfg, tcfg, random_state=seed)
    assert isinstance(sae, MatryoshkaBatchTopKSAE) and sae.cfg.matryoshka_widths == (10, 20, 40, 80)
    cos = (atoms @ sae.W_dec.detach().numpy().T).max(axis=1)
    assert cos.mean() >= 0.9 and (cos > 0.9).mean() >= 0.8
    assert sae.has_threshold
    assert evaluate_sae(sae, X)["explained_variance"] > 0.9
    assert hist["l0"].iloc[-1] == pytest.approx(k)


class _Killed(RuntimeError):
    pass


def _dying(batches, after):
    for i, b in enumerate(batches):
        if i == after:
            raise _Killed("simulated kill")
        yield b


@pytest.mark.parametrize("architecture", NEW)
def test_resume_after_kill_is_bit_exact(tmp_path, architecture):
    X, _, _ = make_sparse_dictionary_data(400, 12, 30, 2, random_state=5)
    batches = [X[i : i + 40] for i in range(0, 400, 40)] * 2
    extra = dict(matryoshka_group_sizes=(5, 9, 16)) if architecture != "jumprelu" else {}
    cfg = SAEConfig(d_in=12, d_sae=30, k=2, architecture=architecture, **extra)
    tcfg = TrainConfig(n_steps=14, batch_size=40, lr=3e-3, log_every=3, checkpoint_every=5,
                       threshold_start_step=2, auxk_alpha=1 / 32, dead_after_steps=2,
                       l0_coefficient=0.02)
    straight, hist = train_sae(batches, cfg, tcfg, random_state=3, checkpoint_dir=tmp_path / "a")
    with pytest.raises(_Killed):
        train_sae(_dying(batches, 8), cfg, tcfg, random_state=3, checkpoint_dir=tmp_path / "b")
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == ["step-0000005"]
    resumed, hist_r = train_sae(batches, cfg, tcfg, random_state=3,
                                checkpoint_dir=tmp_path / "b", resume=True)
    state = straight.state_dict()
    assert set(state) >= {"W_enc", "threshold"}
    for name, t in state.items():
        assert torch.equal(t, resumed.state_dict()[name]), name
    assert hist.equals(hist_r.assign(elapsed_s=hist["elapsed_s"]))
    final = load_sae(tmp_path / "b" / "final")
    assert type(final) is type(straight) and final.cfg == straight.cfg
    for name, t in state.items():
        assert torch.equal(t, final.state_dict()[name]), name


@pytest.mark.parametrize("architecture", NEW)
def test_save_load_round_trip(tmp_path, architecture):
    sae = make_sae(SAEConfig(d_in=9, d_sae=21, k=2, architecture=architecture, layer=4),
                   random_state=2)
    _random_weights(sae, torch.Generator().manual_seed(4))
    with torch.no_grad():
        if architecture == "jumprelu":
            sae.threshold.copy_(torch.linspace(0.01, 0.4, 21))
        else:
            sae.threshold.fill_(0.1)
    back = load_sae(sae.save(tmp_path / "sae"))
    assert type(back) is type(sae) and back.cfg == sae.cfg
    x = torch.randn(13, 9, generator=torch.Generator().manual_seed(5))
    for mode in ("threshold", "topk", "batchtopk"):
        torch.testing.assert_close(back(x, mode), sae(x, mode), rtol=0, atol=0)


def _code_without_docstrings(module):
    tree = ast.parse(inspect.getsource(module))
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr) and isinstance(
            body[0].value, ast.Constant
        ) and isinstance(body[0].value.value, str):
            body[0].value.value = ""
    return ast.unparse(tree).lower()  # comments are gone too


def test_trainer_does_not_know_architectures():
    """A new architecture touches only model code: the loop names none of them."""
    code = _code_without_docstrings(train_module)
    forbidden = [*ARCHITECTURES, "train_mode", "inference_mode", "l1_coefficient",
                 "l0_coefficient", "threshold_beta", "threshold_start", "matryoshka"]
    found = [name for name in forbidden if name in code]
    assert not found, f"the trainer names {found}"
    assert "training_forward" in code and "after_optimizer_step" in code


def test_n_threads_set_during_and_restored_after(tmp_path):
    X, _, _ = make_sparse_dictionary_data(200, 8, 12, 2, random_state=0)
    seen = []

    def batches(fail_at=None):
        for i in range(4):
            seen.append(torch.get_num_threads())
            if i == fail_at:
                raise _Killed("simulated kill")
            yield X[i * 50 : (i + 1) * 50]

    before = torch.get_num_threads()
    want = before + 1
    cfg = SAEConfig(d_in=8, d_sae=16, k=2)
    tcfg = TrainConfig(n_steps=4, batch_size=50, log_every=2)
    train_sae(batches(), cfg, tcfg, n_threads=want)
    assert seen == [want] * 4 and torch.get_num_threads() == before
    seen.clear()
    with pytest.raises(_Killed):
        train_sae(batches(fail_at=2), cfg, tcfg, n_threads=want)
    assert seen == [want] * 3 and torch.get_num_threads() == before
    seen.clear()
    train_sae(batches(), cfg, tcfg)  # None: torch's setting untouched
    assert seen == [before] * 4
    from neuro_sae.sae import train_saes

    seen.clear()
    train_saes(({0: b} for b in batches()), {0: cfg}, tcfg, n_threads=want)
    assert seen == [want] * 4 and torch.get_num_threads() == before
    with pytest.raises(ValueError, match="n_threads must be an int >= 1"):
        train_sae(X, cfg, tcfg, n_threads=0)
    with pytest.raises(TypeError, match="n_threads"):
        train_sae(X, cfg, tcfg, n_threads=1.5)
    assert torch.get_num_threads() == before


def test_jumprelu_thresholds_stay_non_negative():
    """A threshold pushed below zero by the optimiser is projected back onto 0."""
    X = np.random.default_rng(0).standard_normal((300, 6))
    cfg = SAEConfig(d_in=6, d_sae=10, k=2, architecture="jumprelu", jumprelu_init_threshold=0.0,
                    jumprelu_bandwidth=0.5)
    # no L0 penalty and a wide kernel: the reconstruction pulls thresholds down
    sae, _ = train_sae(X, cfg, TrainConfig(n_steps=30, batch_size=100, lr=1e-2,
                                           l0_coefficient=0.0, log_every=10), random_state=0)
    thr = sae.threshold.detach()
    assert float(thr.min()) == 0.0 and bool((thr >= 0).all())
