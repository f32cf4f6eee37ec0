"""Sparse autoencoders: configuration, models (BatchTopK, TopK, ReLU, JumpReLU,
Matryoshka BatchTopK), training, checkpoints and metrics."""

from . import metrics
from ._architectures import (
    BatchTopKSAE,
    JumpReLUSAE,
    MatryoshkaBatchTopKSAE,
    ReLUSAE,
    TopKSAE,
)
from ._config import ARCHITECTURES, SAEConfig, TrainConfig
from ._model import (
    ENCODE_MODES,
    SAEOutput,
    SparseAutoencoder,
    TrainStepOutput,
    load_sae,
    make_sae,
    register_architecture,
)
from ._train import geometric_median, train_sae, train_saes

__all__ = [
    "ARCHITECTURES",
    "ENCODE_MODES",
    "BatchTopKSAE",
    "JumpReLUSAE",
    "MatryoshkaBatchTopKSAE",
    "ReLUSAE",
    "SAEConfig",
    "SAEOutput",
    "SparseAutoencoder",
    "TopKSAE",
    "TrainConfig",
    "TrainStepOutput",
    "geometric_median",
    "load_sae",
    "make_sae",
    "metrics",
    "register_architecture",
    "train_sae",
    "train_saes",
]

from ._formats import (  # noqa: E402
    export_saelens,
    load_any_sae,
    read_dictionary_learning,
    read_saelens,
)

__all__ += [
    "export_saelens",
    "load_any_sae",
    "read_dictionary_learning",
    "read_saelens",
]

from . import consistency, downstream  # noqa: E402

__all__ += ["consistency", "downstream"]

from ._pretrained import (  # noqa: E402
    PRETRAINED_SAES,
    load_pretrained_sae,
    pretrained_sae_folder,
    register_pretrained_sae,
)
from ._study import plot_sae_report, sae_layer_report  # noqa: E402

__all__ += ["PRETRAINED_SAES", "load_pretrained_sae", "pretrained_sae_folder", "register_pretrained_sae"]

__all__ += ["plot_sae_report", "sae_layer_report"]

from ._corpus import (  # noqa: E402
    domain_weights,
    pack_clips,
    plot_pareto,
    sparsity_sweep,
    store_sae_report,
    subset_store,
    train_store_saes,
)

__all__ += [
    "domain_weights",
    "pack_clips",
    "plot_pareto",
    "sparsity_sweep",
    "store_sae_report",
    "subset_store",
    "train_store_saes",
]

from ._convergence import (  # noqa: E402
    convergence_table,
    extrapolate_budget,
    log_spaced_frames,
    plot_convergence,
    read_snapshots,
)

__all__ += [
    "convergence_table",
    "extrapolate_budget",
    "log_spaced_frames",
    "plot_convergence",
    "read_snapshots",
]

from ._release import (  # noqa: E402
    list_sae_releases,
    load_release_sae,
    read_release,
    release_record,
    select_run_saes,
    write_sae_release,
)

__all__ += [
    "list_sae_releases",
    "load_release_sae",
    "read_release",
    "release_record",
    "select_run_saes",
    "write_sae_release",
]
