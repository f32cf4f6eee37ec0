"""Bad-input cases of neuro_sae.steering: an SAE of another layer or backbone (as its
cfg.json records), a saved steering SAE trained with other settings, k larger than the
SAE, empty or silent clips, a grid of rates where per-clip rows are needed, an unknown
preset."""

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


def _saved_other_settings(tmp_path):
    from neuro_sae.steering import train_steering_saes
    from tests.steering._fixtures import tiny_full

    bb = tiny_full()
    rng = np.random.default_rng(0)
    data = dict(layers=[2], fit_frames={2: {"music": [
        rng.standard_normal((200, 40)).astype(np.float32)]}})
    out = tmp_path / "saes"
    train_steering_saes(bb, data, out, d_sae=48, k=4, n_steps=5, batch_size=64,
                        verbose="WARNING")
    return (lambda: train_steering_saes(bb, data, out, d_sae=96, k=4, n_steps=5,
                                        batch_size=64, verbose="WARNING")), None


def _grid_not_clips(tmp_path):
    import pandas as pd

    from neuro_sae.steering import matched_wer

    grid = pd.DataFrame(dict(preset=[""], layer=[0], method=["none"], fpr=[0.3]))
    return (lambda: matched_wer(grid, verbose="WARNING")), None


def _bad_preset(tmp_path):
    from neuro_sae.steering._grid import check_presets

    return (lambda: check_presets(["paper", "ours"])), None


CASES = [
    BadInput(id="steer-saved-sae-other-settings", setup=_saved_other_settings,
             exc=ValueError,
             match=["'d_sae' parameter", r"saes/layer_2", "d_sae=48", "d_sae=96 is requested",
                    "Pass d_sae=48", "delete"],
             what="a saved steering SAE (d_sae 48) asked for again with d_sae 96"),
    BadInput(id="steer-select-on-rates", setup=_grid_not_clips, exc=ValueError,
             match=["'clips' parameter", "rates per cell", "per-clip rows", "clips.parquet"],
             what="choosing a cell from the grid of rates instead of per-clip rows"),
    BadInput(id="steer-unknown-preset", setup=_bad_preset, exc=ValueError,
             match=["presets", "paper", "error-preserving", "ours"],
             what="an unknown steering preset"),
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
