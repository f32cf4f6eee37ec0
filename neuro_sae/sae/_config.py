"""Validated configuration dataclasses of an SAE (:class:`SAEConfig`) and of its
training run (:class:`TrainConfig`)."""

from __future__ import annotations

import dataclasses
import numbers
from dataclasses import dataclass

from ..utils import check_option, suggest, validate_type

#: Architectures that :func:`neuro_sae.sae.load_sae` and the model registry know.
#: ``"relu"`` is the L1-penalised ReLU SAE and ``"jumprelu"`` the L0-penalised
#: JumpReLU SAE (their ``k`` is only used by the ``"topk"``/``"batchtopk"`` encode
#: modes); ``"matryoshka_batchtopk"`` is BatchTopK trained with nested prefixes.
ARCHITECTURES = ("batchtopk", "topk", "relu", "jumprelu", "matryoshka_batchtopk")
_PLANNED_ARCHITECTURES = ()
PADDING_POLICIES = ("masked", "kept")


def _check_int(value, name, *, minimum=None, allow_none=False):
    if value is None and allow_none:
        return value
    validate_type(value, "int", name)
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r} instead.")
    return int(value)


def _check_float(value, name, *, low=None, high=None, low_open=False, high_open=False):
    validate_type(value, "numeric", name)
    value = float(value)
    bad = value != value  # NaN
    if low is not None:
        bad |= value <= low if low_open else value < low
    if high is not None:
        bad |= value >= high if high_open else value > high
    if bad:
        lb = "(" if low_open else "["
        hb = ")" if high_open else "]"
        rng = f"{lb}{'-inf' if low is None else low}, {'inf' if high is None else high}{hb}"
        raise ValueError(f"{name} must be a number in {rng}, got {value!r} instead.")
    return value


def _from_dict(cls, values, what):
    """Build a config dataclass from a dict, rejecting unknown keys with a hint."""
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = [key for key in values if key not in names]
    if unknown:
        hints = "".join(suggest(key, names) for key in unknown)
        raise ValueError(
            f"Unknown {what} field(s) {unknown}. Known fields are {names}.{hints}"
        )
    return cls(**values)


@dataclass
class SAEConfig:
    """Configuration of a sparse autoencoder.

    Parameters
    ----------
    d_in : int
        Width of the input activations (the backbone's ``d_model``, e.g. 512
        for Whisper-base).
    d_sae : int
        Number of dictionary features (latents), e.g. ``8 * d_in``.
    k : int
        Mean number of active features per frame (BatchTopK keeps
        ``k * n_frames`` activations per batch; TopK keeps ``k`` per frame).
    architecture : str
        ``"batchtopk"`` (default, as in the AudioSAE paper), ``"topk"``,
        ``"relu"`` (ReLU codes with an L1 penalty in training, see
        :attr:`TrainConfig.l1_coefficient`), ``"jumprelu"`` (a learned
        threshold per feature and an L0 penalty, see
        :attr:`TrainConfig.l0_coefficient`; Rajamanoharan et al. 2024) or
        ``"matryoshka_batchtopk"`` (BatchTopK whose nested prefixes of the
        dictionary each reconstruct the input; Bussmann et al. 2025).
    normalize_input : bool
        Scale every input frame to unit L2 norm before encoding; the norm is
        kept so that the reconstruction returns to the input's scale.
    backbone : str | None
        Backbone id the activations came from (e.g. ``"openai/whisper-base"``).
    backbone_revision : str | None
        Revision (commit or version) of the backbone weights.
    layer : int | None
        1-based encoder layer the SAE reads (0 = stem output).
    frame_rate : float
        Frame rate of the activations in Hz (50.0 for Whisper and HuBERT).
    padding_policy : str
        ``"masked"`` (padding frames were excluded from training, the default)
        or ``"kept"``.
    seed : int | None
        Seed recorded with the checkpoint; :func:`~neuro_sae.sae.train_sae` uses
        it when its ``random_state`` is None and records the seed it used.
    jumprelu_bandwidth : float
        JumpReLU only: width of the rectangle kernel of the straight-through
        estimator of the threshold gradients, in the units of the
        pre-activations (0.001 as in Rajamanoharan et al. 2024, whose inputs
        have unit mean squared norm like the unit-norm frames here).
    jumprelu_init_threshold : float
        JumpReLU only: initial threshold of every feature.
    matryoshka_group_sizes : tuple of int | None
        Matryoshka only: sizes of the nested groups of features, in order; the
        prefixes (the first group, the first two, ..., all features) each
        reconstruct the input in training. They must sum to ``d_sae``.
        ``None``: prefixes of ``d_sae/8``, ``d_sae/4``, ``d_sae/2`` and
        ``d_sae`` features (fewer groups when ``d_sae < 8``).
    """

    d_in: int
    """Width of the input activations."""
    d_sae: int
    """Number of dictionary features."""
    k: int = 50
    """Mean number of active features per frame."""
    architecture: str = "batchtopk"
    """``"batchtopk"``, ``"topk"`` or ``"relu"``."""
    normalize_input: bool = True
    """Scale each input frame to unit L2 norm (undone on reconstruction)."""
    backbone: str | None = None
    """Backbone id of the activations."""
    backbone_revision: str | None = None
    """Revision of the backbone weights."""
    layer: int | None = None
    """1-based encoder layer (0 = stem output)."""
    frame_rate: float = 50.0
    """Frame rate of the activations in Hz."""
    padding_policy: str = "masked"
    """``"masked"``: padding frames excluded from training; ``"kept"``."""
    seed: int | None = None
    """Seed recorded with the checkpoint."""
    jumprelu_bandwidth: float = 0.001
    """JumpReLU: width of the straight-through estimator's rectangle kernel."""
    jumprelu_init_threshold: float = 0.001
    """JumpReLU: initial threshold of every feature."""
    matryoshka_group_sizes: tuple | None = None
    """Matryoshka: sizes of the nested feature groups (sum d_sae)."""

    def __post_init__(self):
        self.d_in = _check_int(self.d_in, "d_in", minimum=1)
        self.d_sae = _check_int(self.d_sae, "d_sae", minimum=1)
        self.k = _check_int(self.k, "k", minimum=1)
        if self.k > self.d_sae:
            raise ValueError(
                f"k ({self.k}) cannot exceed d_sae ({self.d_sae}): at most d_sae features "
                "can be active per frame. Lower k or raise d_sae."
            )
        validate_type(self.architecture, str, "architecture")
        if self.architecture in _PLANNED_ARCHITECTURES:
            raise ValueError(
                f"architecture={self.architecture!r} is planned but not implemented yet. "
                f"Use one of {ARCHITECTURES}."
            )
        check_option("architecture", self.architecture, ARCHITECTURES)
        validate_type(self.normalize_input, bool, "normalize_input")
        validate_type(self.backbone, (str, None), "backbone")
        validate_type(self.backbone_revision, (str, None), "backbone_revision")
        self.layer = _check_int(self.layer, "layer", minimum=0, allow_none=True)
        self.frame_rate = _check_float(self.frame_rate, "frame_rate", low=0, low_open=True)
        check_option("padding_policy", self.padding_policy, PADDING_POLICIES)
        self.seed = _check_int(self.seed, "seed", minimum=0, allow_none=True)
        self.jumprelu_bandwidth = _check_float(
            self.jumprelu_bandwidth, "jumprelu_bandwidth", low=0, low_open=True
        )
        self.jumprelu_init_threshold = _check_float(
            self.jumprelu_init_threshold, "jumprelu_init_threshold", low=0
        )
        self._check_own_fields()
        if self.architecture == "matryoshka_batchtopk":
            self.matryoshka_group_sizes = self._group_sizes()

    def _check_own_fields(self):
        """Architecture-specific fields set away from their defaults must be used."""
        owners = {
            "jumprelu_bandwidth": "jumprelu",
            "jumprelu_init_threshold": "jumprelu",
            "matryoshka_group_sizes": "matryoshka_batchtopk",
        }
        for name, owner in owners.items():
            default = type(self).__dataclass_fields__[name].default
            if self.architecture != owner and getattr(self, name) != default:
                raise ValueError(
                    f"{name}={getattr(self, name)!r} is only used by "
                    f"architecture={owner!r}, but architecture is {self.architecture!r}. "
                    f"Leave {name} at its default ({default!r}) or set "
                    f"architecture={owner!r}."
                )

    def _group_sizes(self):
        sizes = self.matryoshka_group_sizes
        if sizes is None:
            widths = sorted({max(1, self.d_sae // f) for f in (8, 4, 2)} | {self.d_sae})
            return tuple(int(b - a) for a, b in zip([0, *widths[:-1]], widths))
        validate_type(sizes, (tuple, list), "matryoshka_group_sizes")
        if not sizes or not all(
            isinstance(s, numbers.Integral) and not isinstance(s, bool) and s >= 1 for s in sizes
        ) or sum(sizes) != self.d_sae:
            raise ValueError(
                f"matryoshka_group_sizes must be positive ints summing to d_sae "
                f"({self.d_sae}), got {sizes!r} (sum "
                f"{sum(s for s in sizes if isinstance(s, numbers.Real))}) instead, e.g. "
                f"{(self.d_sae // 4, self.d_sae // 4, self.d_sae - self.d_sae // 2)}."
            )
        return tuple(int(s) for s in sizes)

    @property
    def matryoshka_widths(self):
        """Matryoshka: number of features of each nested prefix (the last is ``d_sae``)."""
        if self.matryoshka_group_sizes is None:
            return None
        out, total = [], 0
        for s in self.matryoshka_group_sizes:
            total += s
            out.append(total)
        return tuple(out)

    def to_dict(self):
        """Return the fields as a JSON-serialisable dict.

        Returns
        -------
        cfg : dict
            Field name to value.
        """
        out = dataclasses.asdict(self)
        if out["matryoshka_group_sizes"] is not None:
            out["matryoshka_group_sizes"] = list(out["matryoshka_group_sizes"])
        return out

    @classmethod
    def from_dict(cls, values):
        """Build from a dict (unknown keys raise, with a suggestion).

        Parameters
        ----------
        values : dict
            Field name to value.

        Returns
        -------
        cfg : SAEConfig
            The configuration.
        """
        return _from_dict(cls, values, "SAEConfig")


@dataclass
class TrainConfig:
    """Configuration of an SAE training run (Adam, linear decay at the end).

    Parameters
    ----------
    n_steps : int
        Number of optimiser steps (batches).
    batch_size : int
        Frames per batch (2500 = 50 s of audio at 50 Hz in the paper).
    lr : float
        Adam learning rate (2e-4 in the paper).
    betas : tuple of float
        Adam betas.
    lr_decay_start : float
        Fraction of ``n_steps`` after which the learning rate decays linearly
        to zero at the last step (0.8: decay over the last 20%). 1.0 disables
        the decay.
    warmup_steps : int
        Steps of linear learning-rate warm-up from zero (0: none).
    threshold_beta : float
        Decay of the exponential moving average of the smallest positive
        activation per batch that gives the inference threshold.
    threshold_start_step : int | None
        Step from which the threshold average is updated (the first batches
        are not yet representative). ``None``: ``min(1000, n_steps // 2)``.
    log_every : int
        Record metrics in the history (and refresh the progress bar) every this
        many steps.
    checkpoint_every : int | None
        Save a checkpoint every this many steps (needs ``checkpoint_dir`` in
        :func:`~neuro_sae.sae.train_sae`); ``None``: only at the end.
    sparse_kernels : bool | None
        Use the sparse decoder and the hand-written sparse backward instead of
        dense matrix products. ``None``: sparse wherever the architecture has
        them (measured faster on CPUs, and on an NVIDIA H200 about as fast as a
        plain dense step at 2,500 frames per step and 3x faster at 16,384);
        ``False``: dense. Bfloat16 ``autocast`` always runs dense.
    l1_coefficient : float
        Weight of the L1 penalty ``mean_frames(sum_features |f|)`` (decoder rows
        have unit norm) of ReLU SAEs; ignored by the other architectures.
    l0_coefficient : float
        Weight of the L0 penalty ``mean_frames(number of active features)`` of
        JumpReLU SAEs (its gradient reaches the thresholds through the
        straight-through estimator); ignored by the other architectures.
    auxk_alpha : float
        Weight of the AuxK dead-feature loss (Gao et al. 2024): the features
        not active for ``dead_after_steps`` steps reconstruct the residual
        with their ``auxk_k`` largest activations per frame; the loss is that
        error normalised by the residual's variance. 0 (default, as in the
        AudioSAE paper) disables it; dictionary_learning uses 1/32.
    auxk_k : int | None
        Active dead features per frame in the AuxK loss (``None``: ``d_in // 2``).
    dead_after_steps : int
        Steps without activation after which a feature counts as dead for AuxK.
    autocast : bool
        Run the forward pass under bfloat16 autocast (dense kernels; the loss
        and the optimiser stay in float32).
    """

    n_steps: int
    """Number of optimiser steps."""
    batch_size: int = 2500
    """Frames per batch."""
    lr: float = 2e-4
    """Adam learning rate."""
    betas: tuple = (0.9, 0.999)
    """Adam betas."""
    lr_decay_start: float = 0.8
    """Fraction of the run after which the learning rate decays linearly to zero."""
    warmup_steps: int = 0
    """Linear warm-up steps."""
    threshold_beta: float = 0.999
    """EMA decay of the inference threshold."""
    threshold_start_step: int | None = None
    """First step of the threshold EMA (None: min(1000, n_steps // 2))."""
    log_every: int = 100
    """Steps between history records."""
    checkpoint_every: int | None = None
    """Steps between checkpoints (None: only at the end)."""
    sparse_kernels: bool | None = None
    """Sparse decoder/backward (None: on CPU only)."""
    l1_coefficient: float = 0.05
    """L1 weight of ReLU SAEs."""
    l0_coefficient: float = 0.001
    """L0 weight of JumpReLU SAEs."""
    auxk_alpha: float = 0.0
    """Weight of the AuxK dead-feature loss (0: off)."""
    auxk_k: int | None = None
    """Active dead features per frame in AuxK (None: d_in // 2)."""
    dead_after_steps: int = 1000
    """Steps without activation after which a feature is dead (AuxK)."""
    autocast: bool = False
    """bfloat16 autocast of the forward pass."""

    def __post_init__(self):
        self.n_steps = _check_int(self.n_steps, "n_steps", minimum=1)
        self.batch_size = _check_int(self.batch_size, "batch_size", minimum=1)
        self.lr = _check_float(self.lr, "lr", low=0, low_open=True)
        validate_type(self.betas, (tuple, list), "betas")
        if len(self.betas) != 2 or not all(
            isinstance(b, numbers.Real) and 0 <= b < 1 for b in self.betas
        ):
            raise ValueError(
                f"betas must be two numbers in [0, 1) (Adam's beta1 and beta2), got "
                f"{self.betas!r} instead, e.g. betas=(0.9, 0.999)."
            )
        self.betas = tuple(float(b) for b in self.betas)
        self.lr_decay_start = _check_float(self.lr_decay_start, "lr_decay_start", low=0, high=1)
        self.warmup_steps = _check_int(self.warmup_steps, "warmup_steps", minimum=0)
        self.threshold_beta = _check_float(
            self.threshold_beta, "threshold_beta", low=0, high=1, high_open=True
        )
        self.threshold_start_step = _check_int(
            self.threshold_start_step, "threshold_start_step", minimum=0, allow_none=True
        )
        self.log_every = _check_int(self.log_every, "log_every", minimum=1)
        self.checkpoint_every = _check_int(
            self.checkpoint_every, "checkpoint_every", minimum=1, allow_none=True
        )
        validate_type(self.sparse_kernels, (bool, None), "sparse_kernels")
        self.l1_coefficient = _check_float(self.l1_coefficient, "l1_coefficient", low=0)
        self.l0_coefficient = _check_float(self.l0_coefficient, "l0_coefficient", low=0)
        self.auxk_alpha = _check_float(self.auxk_alpha, "auxk_alpha", low=0)
        self.auxk_k = _check_int(self.auxk_k, "auxk_k", minimum=1, allow_none=True)
        self.dead_after_steps = _check_int(self.dead_after_steps, "dead_after_steps", minimum=1)
        validate_type(self.autocast, bool, "autocast")
        if self.warmup_steps >= self.n_steps:
            raise ValueError(
                f"warmup_steps ({self.warmup_steps}) must be smaller than n_steps "
                f"({self.n_steps}); lower warmup_steps."
            )

    @property
    def threshold_start(self):
        """First step (0-based) at which the threshold average is updated."""
        if self.threshold_start_step is not None:
            return self.threshold_start_step
        return min(1000, self.n_steps // 2)

    def lr_at(self, step):
        """Learning rate at a 0-based step (warm-up, plateau, linear decay).

        Parameters
        ----------
        step : int
            The step.

        Returns
        -------
        lr : float
            The learning rate.
        """
        factor = 1.0
        if self.warmup_steps and step < self.warmup_steps:
            factor = (step + 1) / self.warmup_steps
        decay_start = int(round(self.lr_decay_start * self.n_steps))
        if self.lr_decay_start < 1 and step >= decay_start:
            factor *= max(0.0, (self.n_steps - step) / (self.n_steps - decay_start))
        return self.lr * factor

    def to_dict(self):
        """Return the fields as a JSON-serialisable dict.

        Returns
        -------
        cfg : dict
            Field name to value.
        """
        out = dataclasses.asdict(self)
        out["betas"] = list(self.betas)
        return out

    @classmethod
    def from_dict(cls, values):
        """Build from a dict (unknown keys raise, with a suggestion).

        Parameters
        ----------
        values : dict
            Field name to value.

        Returns
        -------
        cfg : TrainConfig
            The configuration.
        """
        return _from_dict(cls, values, "TrainConfig")
