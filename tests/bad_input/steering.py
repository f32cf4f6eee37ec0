"""Bad-input cases of neuro_sae.steering: an SAE of another layer or backbone (as its
cfg.json records), k larger than the SAE, empty or silent clips."""

from __future__ import annotations

import numpy as np

from tests.bad_input import BadInput


def _saved_sae(tmp_path, layer, backbone):
    from tests.steering._fixtures import tiny_sae

    folder = tmp_path / "sae"
    tiny_sae(layer, backbone=backbone).save(folder, verbose="WARNING")
    return folder


def _layer_mismatch(tmp_path):
    from neuro_sae.steering import check_sae
    from tests.steering._fixtures import tiny_full

    folder, bb = _saved_sae(tmp_path, 2, "tiny-whisper"), tiny_full()
    return (lambda: check_sae(folder, bb, 1, verbose="WARNING")), None


def _other_backbone(tmp_path):
    from neuro_sae.steering import check_sae
    from tests.steering._fixtures import tiny_full

    folder, bb = _saved_sae(tmp_path, 2, "whisper-base"), tiny_full()
    return (lambda: check_sae(folder, bb, 2, verbose="WARNING")), None


def _k_too_large(tmp_path):
    from neuro_sae.steering import sae_vector
    from tests.steering._fixtures import D_SAE, tiny_sae

    sae = tiny_sae(2)
    beta = np.linspace(-1, 1, D_SAE)
    return (lambda: sae_vector(beta, np.argsort(-np.abs(beta)), 500, sae, layer=2,
                               verbose="WARNING")), None


def _bad_clip(kind):
    def setup(tmp_path):
        import pandas as pd

        from neuro_sae.steering import prepare_steering
        from tests.steering._fixtures import TOKENS, tiny_full, waves

        ws = waves((0.5, 0.8))
        ws.append(np.zeros(0, np.float32) if kind == "empty" else np.zeros(8000, np.float32))
        fit = pd.DataFrame(dict(id=["clip-a", "clip-b", "clip-c"], wave=ws))
        test = pd.DataFrame(dict(id=["t1"], wave=waves((0.6,))[:1]))
        out = tmp_path / "out"
        bb = tiny_full()
        return (lambda: prepare_steering(bb, {"music_fit": fit}, {"music_test": test}, [1],
                                         out, tokens=TOKENS, tokenizer=False,
                                         verbose="WARNING")), out

    return setup


CASES = [
    BadInput(id="steer-sae-other-layer", setup=_layer_mismatch, exc=ValueError,
             match=[r"sae/cfg\.json", "trained on layer 2", "layer 1 is steered",
                    "Steer layer 2"],
             what="an SAE trained on layer 2 (its cfg.json) steering layer 1"),
    BadInput(id="steer-sae-other-backbone", setup=_other_backbone, exc=ValueError,
             match=[r"cfg\.json", "'whisper-base'", "'tiny-whisper'", "Pass an SAE of"],
             what="an SAE of whisper-base (its cfg.json) on another backbone"),
    BadInput(id="steer-k-larger-than-sae", setup=_k_too_large, exc=ValueError,
             match=["'k'", "72 features", r"\[1, 72\]", "500", "smaller k"],
             what="k = 500 top features of a 72-feature SAE"),
    BadInput(id="steer-empty-clip", setup=_bad_clip("empty"), exc=ValueError,
             match=["'clip-c'", "'music_fit'", "empty", "Drop it"],
             what="an empty clip among the fit clips"),
    BadInput(id="steer-silent-clip", setup=_bad_clip("silent"), exc=ValueError,
             match=["'clip-c'", "'music_fit'", "silent", "Drop it"],
             what="an all-zero clip among the fit clips"),
]
