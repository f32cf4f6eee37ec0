"""Bad SAE checkpoints and SAE settings: missing, corrupt, contradictory, foreign or
pickled files; configurations and training options out of range."""

import json
import pickle

import numpy as np
import torch

from neuro_sae.sae import (
    SAEConfig,
    TrainConfig,
    export_saelens,
    load_sae,
    make_sae,
    read_dictionary_learning,
    read_saelens,
    train_sae,
)
from tests.bad_input import BadInput

D_IN, D_SAE, K = 6, 14, 2


def _saved(root, architecture="batchtopk"):
    sae = make_sae(SAEConfig(d_in=D_IN, d_sae=D_SAE, k=K, architecture=architecture),
                   random_state=0)
    if sae.threshold.ndim == 0:
        with torch.no_grad():
            sae.threshold.fill_(0.1)
    return sae.save(root / "sae", verbose=False)


def _edit_cfg(folder, **changes):
    cfg = json.loads((folder / "cfg.json").read_text())
    cfg.update(changes)
    (folder / "cfg.json").write_text(json.dumps(cfg))


def _missing(root):
    return lambda: load_sae(root / "no_such_sae"), None


def _unknown_architecture(root):
    folder = _saved(root)
    _edit_cfg(folder, architecture="gated")
    return lambda: load_sae(folder), None


def _future_format(root):
    folder = _saved(root)
    _edit_cfg(folder, format_version=7)
    return lambda: load_sae(folder), None


def _bad_json(root):
    folder = _saved(root)
    (folder / "cfg.json").write_text('{"architecture": "batchtopk", ')
    return lambda: load_sae(folder), None


def _truncated_weights(root):
    folder = _saved(root)
    data = (folder / "sae.safetensors").read_bytes()
    (folder / "sae.safetensors").write_bytes(data[: len(data) // 3])
    return lambda: load_sae(folder), None


def _contradicting_shapes(root):
    folder = _saved(root)
    _edit_cfg(folder, d_sae=D_SAE + 3)
    return lambda: load_sae(folder), None


def _jumprelu_weights_as_batchtopk(root):
    # cfg.json edited to another architecture: the per-feature thresholds do not fit
    folder = _saved(root, "jumprelu")
    _edit_cfg(folder, architecture="batchtopk", jumprelu_bandwidth=0.001,
              jumprelu_init_threshold=0.001)
    return lambda: load_sae(folder), None


def _pickle_with_code(root):
    folder = root / "layer_3"
    folder.mkdir()

    class Evil:
        def __reduce__(self):
            return (print, ("this must never run",))

    with open(folder / "ae.pt", "wb") as fid:
        pickle.dump({"encoder.weight": Evil()}, fid)
    return lambda: read_dictionary_learning(root), None


def _several_layers_no_choice(root):
    for layer in (2, 5):
        folder = root / f"layer_{layer}"
        folder.mkdir()
        state = {
            "encoder.weight": torch.zeros(D_SAE, D_IN), "encoder.bias": torch.zeros(D_SAE),
            "decoder.weight": torch.zeros(D_IN, D_SAE), "b_dec": torch.zeros(D_IN),
            "k": torch.tensor(K),
        }
        torch.save(state, folder / "ae.pt")
    return lambda: read_dictionary_learning(root), None


def _saelens_layer_norm(root):
    sae = make_sae(SAEConfig(d_in=D_IN, d_sae=D_SAE, k=K, architecture="topk"), random_state=0)
    folder = export_saelens(sae, root / "sl", verbose=False)
    _edit_cfg(folder, normalize_activations="layer_norm")
    return lambda: read_saelens(folder), None


def _export_untrained_batchtopk(root):
    sae = make_sae(SAEConfig(d_in=D_IN, d_sae=D_SAE, k=K), random_state=0)
    return lambda: export_saelens(sae, root / "out", verbose=False), None


def _group_sizes_wrong_sum(root):
    return lambda: SAEConfig(d_in=D_IN, d_sae=D_SAE, k=K, architecture="matryoshka_batchtopk",
                             matryoshka_group_sizes=(4, 4)), None


def _field_of_other_architecture(root):
    return lambda: SAEConfig(d_in=D_IN, d_sae=D_SAE, k=K, matryoshka_group_sizes=(7, 7)), None


def _n_threads_zero(root):
    X = np.random.default_rng(0).standard_normal((40, D_IN))
    return lambda: train_sae(X, SAEConfig(d_in=D_IN, d_sae=D_SAE, k=K),
                             TrainConfig(n_steps=2, batch_size=20), n_threads=0,
                             verbose=False), None


def _resume_other_settings(root):
    X = np.random.default_rng(0).standard_normal((80, D_IN))
    cfg = SAEConfig(d_in=D_IN, d_sae=D_SAE, k=K)
    train_sae(X, cfg, TrainConfig(n_steps=4, batch_size=20, checkpoint_every=2),
              checkpoint_dir=root / "ck", verbose=False)
    return lambda: train_sae(X, cfg, TrainConfig(n_steps=4, batch_size=20, lr=1e-3,
                                                 checkpoint_every=2),
                             checkpoint_dir=root / "ck", resume=True, verbose=False), root / "ck"


def _wrong_width_activations(root):
    sae = make_sae(SAEConfig(d_in=D_IN, d_sae=D_SAE, k=K), random_state=0)
    return lambda: sae.encode(np.zeros((5, D_IN + 2), np.float32), mode="topk"), None


CASES = [
    BadInput("sae-folder-missing", _missing, FileNotFoundError,
             ["no_such_sae", "does not exist"], "load_sae on a folder that does not exist"),
    BadInput("sae-unknown-architecture", _unknown_architecture, ValueError,
             ["'gated'", r"cfg\.json", "jumprelu", "matryoshka_batchtopk", "converter"],
             "cfg.json names an architecture this package does not know"),
    BadInput("sae-future-format", _future_format, ValueError,
             [r"cfg\.json", "format_version 7", "reads version 1", "Upgrade neuro_sae"],
             "cfg.json written by a newer format"),
    BadInput("sae-cfg-not-json", _bad_json, ValueError,
             [r"cfg\.json", "not valid JSON", "corrupt"], "cfg.json cut short"),
    BadInput("sae-weights-truncated", _truncated_weights, ValueError,
             [r"sae\.safetensors", "truncated or corrupt", "re-save"],
             "sae.safetensors cut to a third"),
    BadInput("sae-weights-contradict-cfg", _contradicting_shapes, ValueError,
             [r"sae\.safetensors", r"cfg\.json", "d_sae=17", r"\(found, expected\)"],
             "cfg.json's d_sae does not match the stored tensors"),
    BadInput("sae-jumprelu-weights-as-batchtopk", _jumprelu_weights_as_batchtopk, ValueError,
             ["threshold", r"\(\(14,\), \(\)\)", "different models"],
             "per-feature JumpReLU thresholds under a cfg.json that says batchtopk"),
    BadInput("sae-pickle-with-code", _pickle_with_code, ValueError,
             [r"ae\.pt", r"weights_only=True", "executable pickle content"],
             "an ae.pt whose pickle would run code"),
    BadInput("sae-release-several-layers", _several_layers_no_choice, ValueError,
             [r"layers \[2, 5\]", "pass layer="],
             "AudioSAE release folder with several layers and no layer chosen"),
    BadInput("saelens-layer-norm", _saelens_layer_norm, ValueError,
             ["normalize_activations='layer_norm'", "constant_norm_rescale", "Fold"],
             "SAELens folder with an input normalisation that cannot be reproduced"),
    BadInput("saelens-export-untrained", _export_untrained_batchtopk, ValueError,
             ["without a learned inference threshold", "JumpReLU", "Train the SAE"],
             "exporting a BatchTopK SAE whose threshold was never learned"),
    BadInput("sae-matryoshka-group-sum", _group_sizes_wrong_sum, ValueError,
             ["matryoshka_group_sizes", r"summing to d_sae \(14\)", "sum 8", r"e\.g\."],
             "Matryoshka group sizes that do not add up to d_sae"),
    BadInput("sae-field-of-other-architecture", _field_of_other_architecture, ValueError,
             ["matryoshka_group_sizes=", "architecture='matryoshka_batchtopk'",
              "'batchtopk'", "Leave matryoshka_group_sizes at its default"],
             "a Matryoshka-only field set on a BatchTopK configuration"),
    BadInput("train-n-threads-zero", _n_threads_zero, ValueError,
             ["n_threads", ">= 1 or None", "got 0"], "train_sae(n_threads=0)"),
    BadInput("train-resume-other-settings", _resume_other_settings, ValueError,
             ["step-0000002", "other settings", "resume=False", "fresh checkpoint_dir"],
             "resuming a checkpoint written with another learning rate"),
    BadInput("sae-activations-wrong-width", _wrong_width_activations, ValueError,
             [r"d_in=6", r"\(5, 8\)", "layer and backbone the SAE was trained on"],
             "activations of another width than the SAE's d_in"),
]
