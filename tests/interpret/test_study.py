"""Encoding the clips of a store (packs cut back into clips) and one layer's interpretation."""

import numpy as np
import pandas as pd
import pytest

from neuro_sae.activations import Activations
from neuro_sae.interpret import (
    encode_clips,
    feature_interpretations,
    interpret_codes,
    interpret_stimuli,
    make_clip_codes,
    read_interpretation,
    save_interpretation,
)


class FakeStore:
    """What encode_clips reads of an ActivationStore: index, path, get_clip."""

    def __init__(self, packs, d_model=6):
        self.path = "fake-store"
        self._acts = packs
        self.index = pd.DataFrame(dict(clip_id=list(packs)))

    def get_clip(self, clip_id, *, layers=None, verbose=None):
        return self._acts[clip_id]


def test_encode_clips_cuts_packs_into_clips():
    import torch

    from neuro_sae.sae import SAEConfig, make_sae

    rng = np.random.default_rng(0)
    sae = make_sae(SAEConfig(d_in=6, d_sae=10, k=3, architecture="topk", layer=2),
                   random_state=0)
    n = 80  # 1.6 s pack with 6 padding frames at the end
    x = rng.normal(size=(n, 6)).astype(np.float32)
    mask = np.r_[np.ones(74, bool), np.zeros(6, bool)]
    pack = Activations({2: x}, np.arange(n) * 0.02, mask)
    store = FakeStore({"p0": pack})
    members = pd.DataFrame(dict(pack_id=["p0", "p0"], clip_id=["a", "b"], onset_s=[0.0, 0.9],
                                duration_s=[0.9, 0.58], mixed=["", ""]))
    clips = pd.DataFrame(dict(id=["a", "b"], domain=["speech", "music"],
                              labels=[["x"], ["y"]]))
    codes, acts = encode_clips(sae, store, clips, members=members, return_activations=["b"],
                               verbose=False)
    assert codes.layer == 2 and codes.clip_ids == ["a", "b"]
    sa, sb = codes.clip_slice("a"), codes.clip_slice("b")
    assert sa.stop - sa.start == 45 and sb.stop - sb.start == 29  # 74 valid frames
    np.testing.assert_allclose(codes.frames["time"].to_numpy()[sb][:2], [0.0, 0.02], atol=1e-9)
    with torch.no_grad():
        want = sae.encode(torch.as_tensor(x[45:74]), "topk").numpy()
    np.testing.assert_allclose(codes.codes[sb].toarray(), want, rtol=1e-5, atol=1e-6)
    assert list(acts) == ["b"] and acts["b"].shape == (29, 6)
    with pytest.raises(ValueError, match="members"):
        encode_clips(sae, store, pd.DataFrame(dict(id=["zz"], domain=["speech"],
                                                   labels=[[]])), verbose=False)


def _vowel_codes():
    """Vowel classes carried by features 0..4; domains planted on features 5..7."""
    rng = np.random.default_rng(2)
    vowels = ["vowel-A", "vowel-E", "vowel-I", "vowel-O", "vowel-U"]
    rows, arrays = [], {}
    for ii in range(70):
        v = vowels[ii % 5]
        x = np.zeros((20 + ii % 7, 12))
        x[3:8, vowels.index(v)] = 1.0 + 0.1 * rng.random()
        x[:, 5] = 0.3
        x[:, 8:] = rng.random((len(x), 4)) * (rng.random((len(x), 4)) < 0.2)
        rows.append(dict(id=f"v{ii}", domain="speech", labels=["speech", v]))
        arrays[f"v{ii}"] = x
    for ii in range(9):
        x = np.zeros((30, 12))
        x[:, 6] = 0.5
        rows.append(dict(id=f"m{ii}", domain="music", labels=["music"]))
        arrays[f"m{ii}"] = x
    return make_clip_codes(arrays, pd.DataFrame(rows), layer=6, verbose=False)


def test_interpret_codes_round_trip(tmp_path):
    codes = _vowel_codes()
    rng = np.random.default_rng(0)
    W = rng.normal(size=(12, 16))
    W[8:] *= 0.1  # the noise features write little
    decoder = (W, rng.normal(size=16))
    res = interpret_codes(codes, decoder=decoder, erasure_steps=3, probe_ks=[5],
                          random_state=0, verbose=False)
    s = res["summary"]
    assert s["erasure"]["n_clips"] == 70 and s["erasure"]["mcc_before"] == 1.0
    # fractions of d_sae: features 6 (music) and 7 never fire on vowels but count
    assert s["erasure"]["n_features"] == 12 and s["erasure"]["n_alive"] == 10
    assert s["erasure"]["target_mode"] == "reconstruction" and s["erasure"]["C"] is None
    assert set(res["probe_curves"]["k"]) == {5}
    assert set(res["probe_curves"]["target"]) == {"reconstruction"}
    assert s["label_hits"]["vowel-A"][0] == 0 and s["label_hits"]["music"][0] == 6
    assert s["label_positives"]["vowel-A"] == 14 and s["label_positives"]["music"] == 9
    with pytest.raises(ValueError, match="decoder="):
        interpret_codes(codes, erasure_steps=3, probe_ks=[], verbose=False)
    assert res["phones"] is None and "phonemes" not in s
    folder = save_interpretation(res, tmp_path / "layer-06", verbose=False)
    back = read_interpretation(folder)
    pd.testing.assert_frame_equal(back["stats"], res["stats"])
    assert back["summary"]["erasure"] == s["erasure"]
    table = feature_interpretations([5, 6, 0], folder)
    # feature 0 fires on 70 of ~1600 speech frames: 0.04 < tau 0.1, so unassigned
    assert table["domain"].tolist() == ["speech", "music", "unassigned"]
    assert table.loc[2, "label_hits"].startswith("vowel-A (1.00)")
    with pytest.raises(FileNotFoundError, match="interpret"):
        read_interpretation(tmp_path / "nothing")


def test_interpret_stimuli_dashboard_lists_significant_first(tmp_path):
    import matplotlib.pyplot as plt

    from neuro_sae.features import FeatureSeries
    from neuro_sae.interpret import feature_page, read_dashboard
    from tests.interpret._fixtures import planted_audio_codes

    codes = planted_audio_codes(tmp_path / "clips")
    fids = np.array([3, 10, 42, 7, 99])
    feature_files, audio = {}, {}
    for cid in codes.clip_ids:
        sl = codes.clip_slice(cid)
        fs = FeatureSeries(codes.codes[sl], codes.frames["time"].to_numpy()[sl], fids,
                           stimulus_id=cid, layer=4)
        feature_files[cid] = tmp_path / f"{cid}_features.npz"
        fs.save(feature_files[cid], verbose=False)
        audio[cid] = codes.path_of(cid)
    sig = pd.DataFrame(dict(layer=[4], feature=[42], feature_name=["f42"], n_channels=[3],
                            best_channel=["Pz"], r=[0.08], p_fwe=[0.01]))
    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1])
    ax.set(xlabel="lag (s)", ylabel="a.u.")
    out = interpret_stimuli(feature_files, audio, tmp_path / "interp", significant=sig,
                            trf_figures={42: fig}, n_dashboard=3, n_examples=1, verbose=False)
    plt.close("all")
    dash = read_dashboard(out["dashboard"].parent)
    assert list(dash["features"])[0] == "42" and len(dash["features"]) == 3
    page = (out["dashboard"].parent / feature_page(42)).read_text()
    assert "Pz" in page and "trf_00042.png" in page
    table = feature_interpretations([42], out["interpretation"],
                                    dashboard=out["dashboard"].parent, relative_to=tmp_path)
    assert table.loc[0, "dashboard"] == "interp/dashboard/" + feature_page(42)
    assert table.loc[0, "domain"] == "n/a"  # the stimuli are one domain: no specialisation
    from neuro_sae.interpret import interpretation_html

    html = interpretation_html([42, 3], out["interpretation"], dashboard=out["dashboard"].parent,
                               relative_to=tmp_path)
    assert html.count("<tr>") == 3 and f'href="interp/dashboard/{feature_page(42)}"' in html
