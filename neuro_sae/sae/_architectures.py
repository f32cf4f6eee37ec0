"""The SAE architectures: BatchTopK, TopK, ReLU, JumpReLU and Matryoshka BatchTopK.

Each class owns its training forward pass (named losses) and its post-step update;
the trainer calls :meth:`~SparseAutoencoder.training_forward`,
:meth:`~SparseAutoencoder.before_optimizer_step` and
:meth:`~SparseAutoencoder.after_optimizer_step` and never asks which class it trains.
"""

from __future__ import annotations

import torch
from torch import nn

from ._config import ARCHITECTURES
from ._model import _REGISTRY, SparseAutoencoder, _keep, register_architecture

_BASE_LINE = "Base class of the top-k family of SAEs."


def _doc(text):
    return SparseAutoencoder.__doc__.replace(_BASE_LINE, text)


@register_architecture("batchtopk")
class BatchTopKSAE(SparseAutoencoder):
    __doc__ = _doc(
        "BatchTopK sparse autoencoder (Bussmann et al. 2024; the AudioSAE default).\n\n"
        "    Training keeps the ``k * n`` largest activations of each batch; inference\n"
        "    (``mode=None``) keeps the activations above the learned threshold."
    )
    train_mode = "batchtopk"
    inference_mode = "threshold"

    @torch.no_grad()
    def after_optimizer_step(self, out, *, step, train_config, reducer=None):
        """Unit-norm atoms, then the threshold's moving average.

        From ``train_config.threshold_start`` on, the inference threshold
        follows an exponential moving average (decay
        ``train_config.threshold_beta``) of the smallest kept activation of
        each batch (the global batch under DDP); its first value is that
        activation itself.

        Parameters
        ----------
        out : TrainStepOutput
            The step's :meth:`training_forward` output.
        step : int
            0-based step just taken.
        train_config : TrainConfig
            The training configuration.
        reducer : Reducer | None
            Reductions over DDP ranks.
        """
        super().after_optimizer_step(out, step=step, train_config=train_config, reducer=reducer)
        if step < train_config.threshold_start:
            return
        val = out.val
        vmin = val.min() if val.numel() else torch.tensor(float("inf"), device=val.device)
        if reducer is not None:
            vmin = reducer.min_(vmin)
        if torch.isfinite(vmin):
            if self.threshold < 0:
                self.threshold.copy_(vmin)
            else:
                beta = train_config.threshold_beta
                self.threshold.mul_(beta).add_((1 - beta) * vmin)


@register_architecture("topk")
class TopKSAE(SparseAutoencoder):
    __doc__ = _doc(
        "TopK sparse autoencoder: ``k`` active features per frame, in training and\n"
        "    inference."
    )
    train_mode = "topk"
    inference_mode = "topk"


@register_architecture("relu")
class ReLUSAE(SparseAutoencoder):
    __doc__ = _doc(
        "ReLU sparse autoencoder trained with an L1 penalty on the codes.\n\n"
        "    Its codes are all positive pre-activations (``mode=\"threshold\"`` with a\n"
        "    threshold fixed at 0, the default); the ``\"topk\"`` and ``\"batchtopk\"``\n"
        "    modes keep the ``k`` (per frame or per batch) largest of them."
    )
    train_mode = "threshold"
    inference_mode = "threshold"
    _initial_threshold = 0.0

    def training_forward(self, x, *, train_config, dead=None, sparse=None, reducer=None):
        """The training forward pass: ``"mse"`` and the L1 penalty ``"l1"``.

        Every positive pre-activation is a code;
        ``l1 = train_config.l1_coefficient * mean_frames(sum_features f)`` (the
        atoms have unit norm, so this is the usual ``||f||_1 ||W_dec||``).
        See :meth:`SparseAutoencoder.training_forward` for the parameters.

        Parameters
        ----------
        x : Tensor, shape (n_frames, d_in)
            The batch.
        train_config : TrainConfig
            Coefficients of the losses.
        dead : Tensor of bool | None
            Features counted as dead (for AuxK).
        sparse : bool | None
            Unused (the codes are dense in training).
        reducer : Reducer | None
            Reductions over DDP ranks.

        Returns
        -------
        out : TrainStepOutput
            Losses ``"mse"``, ``"l1"`` (and ``"auxk"``).
        """
        with self._autocast(x, train_config):
            x_in, _ = self._prepare(x)
            pre = self._pre(x_in)
            recon = torch.addmm(self.b_dec, pre, self.W_dec)
            with torch.no_grad():
                active = pre > 0
                col = active.nonzero()[:, 1]
                val = pre[active].float()
            l1 = train_config.l1_coefficient * pre.float().sum(dim=1).mean()
        recon = recon.float()
        mse = (recon - x_in).pow(2).sum(dim=1).mean()
        return self._step_output(
            {"mse": mse, "l1": l1}, x_in, recon, col, val, train_config, dead, reducer
        )


def _rectangle(z):
    return ((z > -0.5) & (z < 0.5)).to(z.dtype)


class _JumpReLUWithL0(torch.autograd.Function):
    """JumpReLU codes and the per-frame L0, with straight-through threshold gradients.

    Forward: ``f = z * (z > theta)`` and ``l0 = sum_features (z > theta)``.
    Backward (Rajamanoharan et al. 2024, eqs. 11-12, rectangle kernel of width
    ``eps``): ``df/dz = (z > theta)``; ``df/dtheta = -(theta / eps) K((z - theta) /
    eps)``; ``dl0/dtheta = -(1 / eps) K((z - theta) / eps)``; no gradient of the L0 to
    ``z`` (as SAELens trains it by default, DeepMind's choice).
    """

    @staticmethod
    def forward(ctx, z, theta, eps):
        gate = z > theta
        ctx.save_for_backward(z, theta)
        ctx.eps = eps
        return z * gate, gate.sum(dim=1).to(z.dtype)

    @staticmethod
    def backward(ctx, grad_f, grad_l0):
        z, theta = ctx.saved_tensors
        eps = ctx.eps
        grad_z = grad_f * (z > theta)
        kernel = _rectangle((z - theta) / eps) / eps
        grad_theta = -(kernel * (theta * grad_f + grad_l0[:, None])).sum(dim=0)
        return grad_z, grad_theta, None


@register_architecture("jumprelu")
class JumpReLUSAE(SparseAutoencoder):
    __doc__ = _doc(
        "JumpReLU sparse autoencoder (Rajamanoharan et al. 2024), trained as SAELens\n"
        "    trains it (straight-through estimator, L0 penalty).\n\n"
        "    A feature is active where its pre-activation exceeds its own learned\n"
        "    threshold: ``f = z * (z > theta)``. Training minimises the squared error\n"
        "    plus ``l0_coefficient * L0``; the thresholds get their gradients through\n"
        "    a rectangle kernel of width ``cfg.jumprelu_bandwidth``. ``threshold`` is\n"
        "    a parameter of shape (d_sae,); ``mode=None`` is ``\"threshold\"``."
    )
    train_mode = "threshold"
    inference_mode = "threshold"

    @property
    def _initial_threshold(self):
        return self.cfg.jumprelu_init_threshold

    def _make_threshold(self):
        self.threshold = nn.Parameter(torch.empty(self.cfg.d_sae))

    @property
    def has_threshold(self):
        """Always True: the thresholds are parameters of the model."""
        return True

    def training_forward(self, x, *, train_config, dead=None, sparse=None, reducer=None):
        """The training forward pass: ``"mse"`` and the L0 penalty ``"l0"``.

        ``l0 = train_config.l0_coefficient * mean_frames(number of active
        features)``, differentiated with respect to the thresholds by the
        straight-through estimator.

        Parameters
        ----------
        x : Tensor, shape (n_frames, d_in)
            The batch.
        train_config : TrainConfig
            Coefficients of the losses.
        dead : Tensor of bool | None
            Features counted as dead (for AuxK).
        sparse : bool | None
            Unused (the threshold gradients need the dense pre-activations).
        reducer : Reducer | None
            Reductions over DDP ranks.

        Returns
        -------
        out : TrainStepOutput
            Losses ``"mse"``, ``"l0"`` (and ``"auxk"``).
        """
        with self._autocast(x, train_config):
            x_in, _ = self._prepare(x)
            pre = torch.addmm(self.b_enc, x_in - self.b_dec, self.W_enc)
            f, l0 = _JumpReLUWithL0.apply(
                pre, self.threshold.to(pre.dtype), self.cfg.jumprelu_bandwidth
            )
            recon = torch.addmm(self.b_dec, f, self.W_dec)
        with torch.no_grad():
            active = f > 0
            col = active.nonzero()[:, 1]
            val = f[active].float()
        recon = recon.float()
        mse = (recon - x_in).pow(2).sum(dim=1).mean()
        l0_loss = train_config.l0_coefficient * l0.float().mean()
        return self._step_output(
            {"mse": mse, "l0": l0_loss}, x_in, recon, col, val, train_config, dead, reducer
        )

    @torch.no_grad()
    def after_optimizer_step(self, out, *, step, train_config, reducer=None):
        """Unit-norm atoms; thresholds projected back onto ``>= 0``.

        Parameters
        ----------
        out : TrainStepOutput
            The step's :meth:`training_forward` output.
        step : int
            0-based step just taken.
        train_config : TrainConfig
            The training configuration.
        reducer : Reducer | None
            Reductions over DDP ranks.
        """
        super().after_optimizer_step(out, step=step, train_config=train_config, reducer=reducer)
        self.threshold.clamp_(min=0.0)


@register_architecture("matryoshka_batchtopk")
class MatryoshkaBatchTopKSAE(BatchTopKSAE):
    __doc__ = _doc(
        "Matryoshka BatchTopK sparse autoencoder (Bussmann et al. 2025; Nabeshima\n"
        "    2024), trained as SAELens trains it.\n\n"
        "    BatchTopK selection over the whole dictionary; in training every nested\n"
        "    prefix of the features (widths ``cfg.matryoshka_widths``, from the group\n"
        "    sizes ``cfg.matryoshka_group_sizes``) reconstructs the input on its own\n"
        "    and the squared errors of all prefixes are summed, so the first groups\n"
        "    learn the general features. Inference is BatchTopK's (the learned\n"
        "    threshold); the model is a :class:`BatchTopKSAE` in every other respect."
    )

    def training_forward(self, x, *, train_config, dead=None, sparse=None, reducer=None):
        """The training forward pass: ``"mse"`` of the full dictionary and
        ``"inner_mse_<w>"`` of every inner prefix of ``w`` features.

        Parameters
        ----------
        x : Tensor, shape (n_frames, d_in)
            The batch.
        train_config : TrainConfig
            Coefficients of the losses.
        dead : Tensor of bool | None
            Features counted as dead (for AuxK, on the full reconstruction).
        sparse : bool | None
            Unused (the prefixes are decoded densely).
        reducer : Reducer | None
            Reductions over DDP ranks.

        Returns
        -------
        out : TrainStepOutput
            Losses ``"mse"``, ``"inner_mse_<w>"`` (and ``"auxk"``).
        """
        with self._autocast(x, train_config):
            x_in, _ = self._prepare(x)
            pre = self._pre(x_in)
            crow, col, val = self._select(pre.detach(), self.train_mode)
            f = _keep(pre, crow, col)
            partial, prev, inner = self.b_dec, 0, {}
            for width in self.cfg.matryoshka_widths:
                partial = torch.addmm(partial, f[:, prev:width], self.W_dec[prev:width])
                prev = width
                if width < self.cfg.d_sae:
                    err = (partial.float() - x_in).pow(2).sum(dim=1).mean()
                    inner[f"inner_mse_{width}"] = err
        recon = partial.float()
        mse = (recon - x_in).pow(2).sum(dim=1).mean()
        return self._step_output(
            {"mse": mse, **inner}, x_in, recon, col, val.float(), train_config, dead, reducer
        )


assert set(_REGISTRY) == set(ARCHITECTURES)
