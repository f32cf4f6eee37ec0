"""The SAE base class (encode, decode, the training step's hooks), the architecture
registry, save and load. The architectures themselves live in ``_architectures.py``."""

from __future__ import annotations

import contextlib
import json
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..io import atomic_dir, current_umask, json_default
from ..utils import (
    check_fname,
    check_option,
    fill_doc,
    logger,
    torch_generator,
    validate_type,
    verbose,
)
from ._config import SAEConfig
from ._kernels import (
    SparseEncodeDecode,
    csr_rows,
    csr_tensor,
    select_batchtopk,
    select_threshold,
    select_topk,
)

_FORMAT_VERSION = 1
_CFG_NAME = "cfg.json"
_WEIGHTS_NAME = "sae.safetensors"
ENCODE_MODES = ("batchtopk", "topk", "threshold")

_REGISTRY: dict[str, type] = {}


def register_architecture(name):
    """Register an SAE class under an architecture name (used by :func:`load_sae`).

    Parameters
    ----------
    name : str
        The ``architecture`` value in ``cfg.json``.

    Returns
    -------
    decorator : callable
        Class decorator.
    """

    def decorator(cls):
        cls.architecture = name
        _REGISTRY[name] = cls
        return cls

    return decorator


class TrainStepOutput(NamedTuple):
    """What :meth:`SparseAutoencoder.training_forward` returns for one batch."""

    loss: torch.Tensor
    """Total training loss (scalar, with autograd): the sum of ``losses``."""
    losses: dict
    """Named weighted losses, e.g. ``{"mse": ..., "l1": ...}``; ``"mse"`` always present."""
    x_in: torch.Tensor
    """Input in the working scale, shape (n, d_in)."""
    recon: torch.Tensor
    """Reconstruction in the working scale, shape (n, d_in), float32."""
    col: torch.Tensor
    """Feature index of every active code (flat, no autograd)."""
    val: torch.Tensor
    """Value of every active code (flat, float32, no autograd)."""


class SAEOutput(NamedTuple):
    """Codes and reconstruction of one batch (see :meth:`SparseAutoencoder.encode_decode`)."""

    codes: torch.Tensor
    """Sparse CSR tensor, shape (n, d_sae): the active codes (no autograd)."""
    recon: torch.Tensor
    """Reconstruction, shape (n, d_in), in the model's working (normalised) scale."""
    x_in: torch.Tensor
    """Input, shape (n, d_in), in the working scale (unit norm when normalize_input)."""
    scale: torch.Tensor
    """Per-frame input norm, shape (n, 1) (ones when normalize_input is False)."""


@fill_doc
class SparseAutoencoder(nn.Module):
    """Base class of the top-k family of SAEs.

    ``f = select(ReLU((x - b_dec) @ W_enc + b_enc))`` and
    ``x_hat = f @ W_dec + b_dec``, where ``x`` is the input frame scaled to unit
    L2 norm when ``cfg.normalize_input``. Decoder rows (dictionary atoms) have
    unit norm.

    Parameters
    ----------
    cfg : SAEConfig
        The configuration; ``cfg.architecture`` must match the class.
    %(random_state)s
        Used for the initial dictionary (random unit-norm decoder rows, encoder
        tied to the decoder's transpose). ``None`` uses ``cfg.seed`` when set.

    Attributes
    ----------
    W_enc : torch.nn.Parameter, shape (d_in, d_sae)
        Encoder weights.
    b_enc : torch.nn.Parameter, shape (d_sae,)
        Encoder bias.
    W_dec : torch.nn.Parameter, shape (d_sae, d_in)
        Decoder weights; row i is the dictionary atom of feature i.
    b_dec : torch.nn.Parameter, shape (d_in,)
        Decoder bias (subtracted before encoding).
    threshold : torch.Tensor, shape ()
        Inference threshold on the pre-activations (-1 while not learned).
    train_info : dict
        Training configuration, data hash and final metrics (filled by
        :func:`~neuro_sae.sae.train_sae`, saved to ``cfg.json``).
    """

    architecture = None
    #: Selection used in training.
    train_mode = None
    #: Selection used by ``encode(mode=None)``.
    inference_mode = None

    _initial_threshold = -1.0

    def __init__(self, cfg, *, random_state=None):
        super().__init__()
        validate_type(cfg, SAEConfig, "cfg")
        if cfg.architecture != self.architecture:
            raise ValueError(
                f"cfg.architecture is {cfg.architecture!r} but {type(self).__name__} "
                f"implements {self.architecture!r}; build the model with "
                f"make_sae(cfg) to pick the class from the registry."
            )
        self.cfg = cfg
        self.W_enc = nn.Parameter(torch.empty(cfg.d_in, cfg.d_sae))
        self.b_enc = nn.Parameter(torch.zeros(cfg.d_sae))
        self.W_dec = nn.Parameter(torch.empty(cfg.d_sae, cfg.d_in))
        self.b_dec = nn.Parameter(torch.zeros(cfg.d_in))
        self._make_threshold()
        self.train_info = {}
        self.metadata = {}
        if random_state is None:
            random_state = cfg.seed
        self.reset_parameters(random_state=random_state)

    # ------------------------------------------------------------------ setup
    def _make_threshold(self):
        """Register ``threshold``: one inference threshold shared by all features."""
        self.register_buffer("threshold", torch.tensor(-1.0))

    @fill_doc
    @torch.no_grad()
    def reset_parameters(self, *, random_state=None):
        """Draw a random unit-norm dictionary; tie the encoder to its transpose.

        Parameters
        ----------
        %(random_state)s
        """
        gen = torch_generator(random_state)
        w = torch.randn(self.cfg.d_sae, self.cfg.d_in, generator=gen)
        w /= w.norm(dim=1, keepdim=True)
        self.W_dec.copy_(w)
        self.W_enc.copy_(w.t())
        self.b_enc.zero_()
        self.b_dec.zero_()
        self.threshold.fill_(self._initial_threshold)

    @torch.no_grad()
    def normalize_decoder(self):
        """Scale every decoder row (dictionary atom) to unit L2 norm, in place."""
        norms = self.W_dec.norm(dim=1, keepdim=True).clamp_min(1e-12)
        self.W_dec.div_(norms)

    @torch.no_grad()
    def remove_parallel_decoder_grad(self):
        """Remove from ``W_dec.grad`` the component parallel to each (unit) atom.

        Called between ``backward`` and the optimiser step so that the step moves
        atoms along the unit sphere.
        """
        g = self.W_dec.grad
        if g is None:
            return
        g.sub_((g * self.W_dec).sum(dim=1, keepdim=True) * self.W_dec)

    @property
    def device(self):
        """Device of the parameters."""
        return self.W_enc.device

    @property
    def has_threshold(self):
        """Whether an inference threshold has been learned."""
        return bool(self.threshold >= 0)

    # --------------------------------------------------------------- forward
    def _prepare(self, x):
        """Input as float32 on the model's device, scaled to unit norm if asked."""
        x = torch.as_tensor(x, dtype=torch.float32, device=self.device)
        if x.ndim != 2 or x.shape[1] != self.cfg.d_in:
            raise ValueError(
                f"x must have shape (n_frames, d_in={self.cfg.d_in}), got "
                f"{tuple(x.shape)} instead. Check that the activations come from the "
                f"layer and backbone the SAE was trained on."
            )
        if self.cfg.normalize_input:
            scale = x.norm(dim=1, keepdim=True).clamp_min(1e-12)
            return x / scale, scale
        return x, torch.ones(x.shape[0], 1, dtype=x.dtype, device=x.device)

    def _check_mode(self, mode):
        if mode is None:
            mode = self.inference_mode
        check_option("mode", mode, ENCODE_MODES)
        if mode == "threshold" and not self.has_threshold:
            raise ValueError(
                "mode='threshold' needs a learned inference threshold, but this SAE has "
                "none (it was not trained as a BatchTopK SAE, or not trained yet). Use "
                "mode='batchtopk' or mode='topk' instead."
            )
        return mode

    def _pre(self, x_in):
        pre = torch.addmm(self.b_enc, x_in - self.b_dec, self.W_enc)
        if not torch.is_grad_enabled():  # no autograd: rectify in place (one pass less)
            return pre.relu_()
        return F.relu(pre)

    def _select(self, pre, mode, lengths=None):
        with torch.no_grad():
            if mode == "batchtopk" and lengths is not None:
                return self._select_per_clip(pre, lengths)
            if mode == "batchtopk":
                return select_batchtopk(pre, self.cfg.k * pre.shape[0])
            if mode == "topk":
                return select_topk(pre, self.cfg.k)
            return select_threshold(pre, self.threshold)

    def _select_per_clip(self, pre, lengths):
        """BatchTopK inside each clip (``k * n_frames_i`` entries per clip)."""
        validate_type(lengths, (list, tuple, np.ndarray, torch.Tensor), "lengths")
        lengths = [int(n) for n in lengths]
        if any(n < 1 for n in lengths) or sum(lengths) != pre.shape[0]:
            raise ValueError(
                f"lengths must be positive clip lengths summing to the {pre.shape[0]} "
                f"frames of x, got {lengths} (sum {sum(lengths)}) instead."
            )
        crows, cols, vals, offset = [torch.zeros(1, dtype=torch.int64, device=pre.device)], [], [], 0
        for chunk in torch.split(pre, lengths):
            crow, col, val = select_batchtopk(chunk, self.cfg.k * chunk.shape[0])
            crows.append(crow[1:] + offset)
            cols.append(col)
            vals.append(val)
            offset += val.numel()
        return torch.cat(crows), torch.cat(cols), torch.cat(vals)

    def encode(self, x, mode=None, *, lengths=None):
        """Encode frames into dense codes.

        Parameters
        ----------
        x : array-like | Tensor, shape (n_frames, d_in)
            Input activations (any scale; normalised inside when
            ``cfg.normalize_input``).
        mode : str | None
            ``"batchtopk"`` (keep the ``k * n_frames`` largest activations of
            the batch), ``"topk"`` (``k`` per frame) or ``"threshold"``
            (activations above the learned threshold, one per feature for
            JumpReLU; frame-wise, so the result does not depend on the batch).
            ``None``: the architecture's inference mode (``"threshold"`` for
            BatchTopK, Matryoshka BatchTopK, ReLU and JumpReLU, ``"topk"`` for
            TopK).
        lengths : sequence of int | None
            With ``mode="batchtopk"``: the frames of ``x`` are consecutive
            clips of these lengths and each clip keeps its own
            ``k * n_frames_i`` largest activations (the paper's per-clip
            BatchTopK at inference). Ignored by the other modes.

        Returns
        -------
        codes : Tensor, shape (n_frames, d_sae)
            Non-negative codes, in the scale of the normalised input.
        """
        mode = self._check_mode(mode)
        x_in, _ = self._prepare(x)
        pre = self._pre(x_in)
        crow, col, _ = self._select(pre.detach(), mode, lengths)
        return _keep(pre, crow, col)

    @torch.no_grad()
    def encode_sparse(self, x, mode=None, *, lengths=None):
        """Encode frames into a sparse CSR tensor (no autograd).

        Parameters
        ----------
        x : array-like | Tensor, shape (n_frames, d_in)
            Input activations.
        mode : str | None
            See :meth:`encode`.
        lengths : sequence of int | None
            Clip lengths for per-clip BatchTopK (see :meth:`encode`).

        Returns
        -------
        codes : Tensor, shape (n_frames, d_sae)
            Sparse CSR tensor of the codes.
        """
        mode = self._check_mode(mode)
        x_in, _ = self._prepare(x)
        crow, col, val = self._select(self._pre(x_in), mode, lengths)
        return csr_tensor(crow, col, val, (x_in.shape[0], self.cfg.d_sae))

    def decode(self, codes, *, scale=None):
        """Reconstruct frames from codes.

        Parameters
        ----------
        codes : Tensor | array-like, shape (n_frames, d_sae)
            Codes (dense, or a torch sparse tensor).
        scale : Tensor | array-like | None, shape (n_frames,) or (n_frames, 1)
            Input norms to multiply back (``None``: stay in the normalised
            working scale).

        Returns
        -------
        x_hat : Tensor, shape (n_frames, d_in)
            Reconstruction.
        """
        if isinstance(codes, torch.Tensor) and codes.layout != torch.strided:
            x_hat = torch.addmm(self.b_dec, codes.to(self.device), self.W_dec)
        else:
            codes = torch.as_tensor(codes, dtype=torch.float32, device=self.device)
            x_hat = torch.addmm(self.b_dec, codes, self.W_dec)
        if scale is not None:
            scale = torch.as_tensor(scale, dtype=torch.float32, device=self.device)
            x_hat = x_hat * scale.reshape(-1, 1)
        return x_hat

    def encode_decode(self, x, mode=None, *, sparse=None):
        """Codes and reconstruction together (the training forward pass).

        Parameters
        ----------
        x : array-like | Tensor, shape (n_frames, d_in)
            Input activations.
        mode : str | None
            See :meth:`encode`.
        sparse : bool | None
            Decode sparsely with the hand-written backward (faster on CPU) or
            densely with autograd. ``None``: sparse on CPU.

        Returns
        -------
        out : SAEOutput
            ``codes`` (sparse CSR, no autograd), ``recon`` and ``x_in`` in the
            working scale and the per-frame ``scale``.
        """
        mode = self._check_mode(mode)
        x_in, scale = self._prepare(x)
        if sparse is None:
            sparse = self.device.type == "cpu"
        shape = (x_in.shape[0], self.cfg.d_sae)
        if sparse:
            with torch.no_grad():
                pre = self._pre(x_in)
            crow, col, val = self._select(pre, mode)
            recon = SparseEncodeDecode.apply(
                x_in, self.W_enc, self.b_enc, self.W_dec, self.b_dec, crow, col, val
            )
        else:
            pre = self._pre(x_in)
            crow, col, val = self._select(pre.detach(), mode)
            recon = torch.addmm(self.b_dec, _keep(pre, crow, col), self.W_dec)
        return SAEOutput(csr_tensor(crow, col, val, shape), recon, x_in, scale)

    def forward(self, x, mode=None):
        """Reconstruct frames in their own scale (input normalisation undone).

        Parameters
        ----------
        x : array-like | Tensor, shape (n_frames, d_in)
            Input activations.
        mode : str | None
            See :meth:`encode`.

        Returns
        -------
        x_hat : Tensor, shape (n_frames, d_in)
            Reconstruction.
        """
        out = self.encode_decode(x, mode)
        return out.recon * out.scale

    # -------------------------------------------------------------- training
    def _autocast(self, x, train_config):
        if train_config.autocast:
            return torch.autocast(device_type=x.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def auxk_loss(self, x_in, recon, dead, k_aux, reducer=None):
        """AuxK loss: the dead features' top activations reconstruct the residual.

        Parameters
        ----------
        x_in : Tensor, shape (n, d_in)
            Input in the working scale.
        recon : Tensor, shape (n, d_in)
            Reconstruction of ``x_in`` (detached inside).
        dead : Tensor of bool, shape (d_sae,)
            Features counted as dead.
        k_aux : int
            Active dead features per frame.
        reducer : Reducer | None
            Under DDP the residual's variance (the normaliser) is the global
            batch's.

        Returns
        -------
        loss : Tensor | None
            The squared error of the dead features' reconstruction of the
            residual, normalised by the residual's variance; ``None`` when no
            feature is dead.
        """
        idx = dead.nonzero().squeeze(1)
        if idx.numel() == 0:
            return None
        kk = min(k_aux, idx.numel())
        pre = torch.relu((x_in - self.b_dec) @ self.W_enc[:, idx] + self.b_enc[idx])
        val, pos = pre.topk(kk, dim=1)
        e_hat = torch.zeros_like(pre).scatter(1, pos, val) @ self.W_dec[idx]
        e = (x_in - recon).detach()
        if reducer is not None and reducer.enabled:
            sums = torch.cat([e.sum(0), e.pow(2).sum().reshape(1), e.new_tensor([e.shape[0]])])
            sums = reducer.sum_(sums.double())
            mean = sums[:-2] / sums[-1]
            var = (sums[-2] / sums[-1] - mean @ mean).to(e.dtype)
        else:
            var = (e - e.mean(0)).pow(2).sum(1).mean()
        return (e_hat.float() - e).pow(2).sum(1).mean() / var.clamp_min(1e-12)

    def _step_output(self, losses, x_in, recon, col, val, train_config, dead, reducer):
        """Add the AuxK term (when asked) and sum the named losses."""
        tc = train_config
        if tc.auxk_alpha > 0 and dead is not None:
            k_aux = tc.auxk_k or max(1, self.cfg.d_in // 2)
            aux = self.auxk_loss(x_in, recon, dead, k_aux, reducer)
            if aux is not None:
                losses["auxk"] = tc.auxk_alpha * aux
        loss = None
        for value in losses.values():
            loss = value if loss is None else loss + value
        return TrainStepOutput(loss, losses, x_in, recon, col, val)

    def training_forward(self, x, *, train_config, dead=None, sparse=None, reducer=None):
        """The training forward pass: named losses of one batch.

        Each architecture owns this pass and its post-step update, so the
        trainer does not know which architecture it trains. Here (the top-k
        family): the ``train_mode`` selection, the squared error ``"mse"``,
        and the AuxK term ``"auxk"`` when ``train_config.auxk_alpha > 0``.

        Parameters
        ----------
        x : Tensor, shape (n_frames, d_in)
            The batch.
        train_config : TrainConfig
            Coefficients of the losses.
        dead : Tensor of bool, shape (d_sae,) | None
            Features counted as dead (for AuxK).
        sparse : bool | None
            Sparse decoder and hand-written backward where the architecture has
            them (``None``: on the CPU).
        reducer : Reducer | None
            Reductions over DDP ranks (``None``: one process).

        Returns
        -------
        out : TrainStepOutput
            The total loss (with autograd), the named losses (weighted, their
            sum is the total; ``"mse"`` is always the mean squared error per
            frame of the full reconstruction), the working-scale input and
            reconstruction, and the active features (``col``) with their
            values (``val``).
        """
        with self._autocast(x, train_config):
            out = self.encode_decode(x, self.train_mode, sparse=sparse)
        x_in, recon = out.x_in, out.recon.float()
        col, val = out.codes.col_indices(), out.codes.values().float()
        mse = (recon - x_in).pow(2).sum(dim=1).mean()
        return self._step_output(
            {"mse": mse}, x_in, recon, col, val, train_config, dead, reducer
        )

    def before_optimizer_step(self):
        """Called between ``backward`` and the optimiser step (unit-norm atoms)."""
        self.remove_parallel_decoder_grad()

    @torch.no_grad()
    def after_optimizer_step(self, out, *, step, train_config, reducer=None):
        """Called after the optimiser step: decoder rows back to unit norm.

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
        self.normalize_decoder()

    def threshold_summary(self):
        """The inference threshold as one number (the mean of per-feature thresholds).

        Returns
        -------
        threshold : float
            -1 when no threshold has been learned.
        """
        return float(self.threshold.detach().float().mean())

    def __repr__(self):
        c = self.cfg
        thr = f"{self.threshold_summary():.4g}" if self.has_threshold else "not learned"
        where = f", {c.backbone}" if c.backbone else ""
        where += f" layer {c.layer}" if c.layer is not None else ""
        return (
            f"<{type(self).__name__} | d_in={c.d_in}, d_sae={c.d_sae}, k={c.k}"
            f"{where}, threshold {thr}>"
        )

    # ------------------------------------------------------------------- I/O
    @fill_doc
    @verbose
    def save(self, folder, *, metadata=None, dtype="float32", verbose=None):
        """Save to a checkpoint folder (``cfg.json`` + ``sae.safetensors``), atomically.

        Parameters
        ----------
        folder : str | os.PathLike
            Destination folder; an existing one is replaced once the new one is
            complete.
        metadata : dict | None
            Extra JSON-serialisable entries stored under ``"metadata"`` in
            ``cfg.json`` (merged over ``self.metadata``).
        dtype : str
            Precision of the tensors on disk: ``"float32"`` (the default, exact) or
            ``"float16"`` (half the size, for releases; relative rounding about
            5e-4). :func:`load_sae` reads either into float32 parameters.
        %(verbose)s

        Returns
        -------
        folder : pathlib.Path
            The written folder.
        """
        from safetensors.torch import save_file

        import neuro_sae

        validate_type(metadata, (dict, None), "metadata")
        check_option("dtype", dtype, ("float32", "float16"),
                     extra="It is the precision of the saved tensors (float16: half the size).")
        folder = check_fname(folder, "folder", must_exist=False)
        meta = dict(self.metadata)
        meta.update(metadata or {})
        cfg = dict(format_version=_FORMAT_VERSION, **self.cfg.to_dict())
        cfg.update(
            threshold=self.threshold_summary(),
            train_config=self.train_info.get("train_config"),
            data_hash=self.train_info.get("data_hash"),
            n_steps_done=self.train_info.get("n_steps_done"),
            final_metrics=self.train_info.get("final_metrics"),
            weights_dtype=dtype,
            neuro_sae_version=neuro_sae.__version__,
            torch_version=torch.__version__.split("+")[0],
            metadata=meta,
        )
        text = json.dumps(cfg, indent=2, default=json_default) + "\n"
        tensors = {
            name: t.detach().to("cpu", getattr(torch, dtype)).contiguous()
            for name, t in self.state_dict().items()
        }
        with atomic_dir(folder) as tmp:
            save_file(tensors, str(tmp / _WEIGHTS_NAME), metadata={"format": "pt"})
            (tmp / _WEIGHTS_NAME).chmod(0o666 & ~current_umask())  # not 0600: honour the umask
            (tmp / _CFG_NAME).write_text(text)
        logger.info(f"Saved {type(self).__name__} ({self.cfg.d_sae} features) to {folder}")
        return folder


def _keep(pre, crow, col):
    """Dense codes: ``pre`` where selected (CSR rows/columns), zero elsewhere (autograd-safe)."""
    mask = torch.zeros_like(pre, dtype=torch.bool)
    mask[csr_rows(crow), col] = True
    return pre * mask


def _architecture_class(name, where=""):
    if name not in _REGISTRY:
        raise ValueError(
            f"Unknown SAE architecture {name!r}{where}. Known architectures are "
            f"{sorted(_REGISTRY)}. Checkpoints of other libraries (SAELens, "
            "dictionary_learning) need a converter first."
        )
    return _REGISTRY[name]


def make_sae(cfg, *, random_state=None):
    """Build the SAE class that ``cfg.architecture`` names.

    Parameters
    ----------
    cfg : SAEConfig
        The configuration.
    random_state : None | int | numpy.random.Generator
        Initial dictionary (``None``: ``cfg.seed``).

    Returns
    -------
    sae : SparseAutoencoder
        The untrained model (on the CPU).
    """
    validate_type(cfg, SAEConfig, "cfg")
    return _architecture_class(cfg.architecture)(cfg, random_state=random_state)


@fill_doc
@verbose
def load_sae(folder, *, device="cpu", verbose=None, **kwargs):
    """Load an SAE checkpoint folder, whatever its format.

    A native folder (``cfg.json`` + ``sae.safetensors``, written by
    :meth:`SparseAutoencoder.save`) is read here; a SAELens folder
    (``sae_weights.safetensors``) or a dictionary_learning / AudioSAE release
    (``[layer_<n>/]ae.pt``) is passed to :func:`~neuro_sae.sae.load_any_sae`.
    Checkpoints whose tensors contradict their configuration, truncated or
    corrupt files and pickles with executable content are refused with a
    ``ValueError``.

    Parameters
    ----------
    folder : str | os.PathLike
        The checkpoint folder, or the name of a pretrained release
        (``"audiosae/whisper-small"``, ``"saelens:<release>"``; see
        :func:`~neuro_sae.sae.load_pretrained_sae`), fetched into and read from
        huggingface_hub's cache, or of an installed release data package
        (``"neuro-sae/whisper-base"`` with ``layer=``; see
        :func:`~neuro_sae.sae.list_sae_releases`), read offline from the package.
    %(device)s
    %(verbose)s
    **kwargs
        Options of the other formats' readers (``k`` for SAELens; ``layer``
        and ``normalize_input`` for dictionary_learning; ``layer`` or ``sae_id``
        of a pretrained release).

    Returns
    -------
    sae : SparseAutoencoder
        The model, in eval mode, with ``train_info`` and ``metadata`` restored.
    """
    from ._pretrained import is_pretrained_name, load_pretrained_sae

    if isinstance(folder, str) and is_pretrained_name(folder):
        return load_pretrained_sae(folder, device=device, **kwargs)
    folder = check_fname(
        folder,
        "folder",
        kind="directory",
        hint="Pass the folder written by sae.save(folder).",
    )
    if (folder / _CFG_NAME).is_file() and (folder / _WEIGHTS_NAME).is_file() and not kwargs:
        return _load_native(folder, device=device)
    from ._formats import load_any_sae

    return load_any_sae(folder, device=device, **kwargs)


def _load_native(folder, *, device="cpu"):
    """Read a native checkpoint folder (``cfg.json`` + ``sae.safetensors``)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    folder = check_fname(folder, "folder", kind="directory")
    cfg_file = check_fname(
        folder / _CFG_NAME,
        "folder",
        hint=f"An SAE checkpoint folder holds {_CFG_NAME} and {_WEIGHTS_NAME}.",
    )
    weights = check_fname(
        folder / _WEIGHTS_NAME,
        "folder",
        hint=f"An SAE checkpoint folder holds {_CFG_NAME} and {_WEIGHTS_NAME}.",
    )
    try:
        raw = json.loads(cfg_file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{cfg_file} is not valid JSON ({err}); the checkpoint is corrupt.") from None
    if not isinstance(raw, dict):
        raise ValueError(f"{cfg_file} must hold a JSON object, got {type(raw).__name__}.")
    version = raw.get("format_version")
    if version != _FORMAT_VERSION:
        raise ValueError(
            f"{cfg_file} has format_version {version!r}; this neuro_sae reads version "
            f"{_FORMAT_VERSION}. Upgrade neuro_sae or re-save the checkpoint."
        )
    cls = _architecture_class(raw.get("architecture"), f" in {cfg_file}")
    fields = SAEConfig.__dataclass_fields__
    try:
        cfg = SAEConfig.from_dict({k: v for k, v in raw.items() if k in fields})
    except (TypeError, ValueError) as err:
        raise ValueError(f"{cfg_file} holds an invalid SAE configuration: {err}") from None
    sae = cls(cfg, random_state=0)
    try:
        state = load_file(str(weights))
    except (SafetensorError, OSError) as err:
        raise ValueError(
            f"Cannot read {weights}: {err}. The file is truncated or corrupt; re-save or "
            "re-download the checkpoint."
        ) from None
    expected = {name: tuple(t.shape) for name, t in sae.state_dict().items()}
    found = {name: tuple(t.shape) for name, t in state.items()}
    if found != expected:
        wrong = {
            name: (found.get(name, "missing"), expected.get(name, "unexpected"))
            for name in sorted(set(found) | set(expected))
            if found.get(name) != expected.get(name)
        }
        raise ValueError(
            f"The tensors in {weights} contradict {cfg_file} (d_in={cfg.d_in}, "
            f"d_sae={cfg.d_sae}): (found, expected) shapes {wrong}. The checkpoint is corrupt "
            "or its files come from different models."
        )
    # float16 files (releases) are read into the float32 parameters
    sae.load_state_dict({name: t.to(torch.float32) for name, t in state.items()}, strict=True)
    sae.train_info = {
        key: raw.get(key)
        for key in ("train_config", "data_hash", "n_steps_done", "final_metrics")
        if raw.get(key) is not None
    }
    sae.metadata = dict(raw.get("metadata") or {})
    sae.to(device)
    sae.eval()
    logger.info(f"Loaded {sae!r} from {folder}")
    return sae


from . import _architectures  # noqa: E402,F401  (registers the architectures)
