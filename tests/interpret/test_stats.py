"""Feature statistics and the paper's domain assignment on planted frequencies."""

import numpy as np
import pandas as pd
import pytest

from neuro_sae.interpret import (
    assign_domains,
    domain_table,
    feature_stats,
    make_clip_codes,
    plot_domain_specialisation,
    plot_frequency_vs_activation,
)

# frames per domain (distinct): speech 6 clips x 20, music 4 x 20, sounds 8 x 25
N_CLIPS = {"speech": 6, "music": 4, "sounds": 8}
N_LEN = {"speech": 20, "music": 20, "sounds": 25}
# planted frame frequencies (speech, music, sounds) and the hand-made assignment
# at tau = 0.2, 0.1, 0.04
PLANTED = [
    ((0.30, 0.05, 0.05), ("speech", "speech", "speech")),
    ((0.15, 0.00, 0.02), ("unassigned", "speech", "speech")),
    ((0.10, 0.05, 0.05), ("unassigned", "unassigned", "speech")),
    ((0.30, 0.25, 0.00), ("music+speech", "music+speech", "speech")),
    ((0.00, 0.00, 0.00), ("dead", "dead", "dead")),
    ((0.00, 0.50, 0.45), ("music+sounds", "music+sounds", "music")),
    ((0.20, 0.20, 0.20), ("unassigned", "unassigned", "unassigned")),
    ((0.00, 0.00, 0.125), ("unassigned", "sounds", "sounds")),
    ((0.20, 0.00, 0.00), ("speech", "speech", "speech")),  # exactly at tau = 0.2
]


def _clips():
    rows = []
    for dom in ("speech", "music", "sounds"):
        for ii in range(N_CLIPS[dom]):
            rows.append(dict(id=f"{dom}-{ii}", domain=dom, labels=[dom]))
    return pd.DataFrame(rows)


def _planted_frame_codes():
    """Codes whose frame frequencies are exactly PLANTED (active frames spread over clips)."""
    n_feat = len(PLANTED)
    arrays = {}
    doms = ("speech", "music", "sounds")
    blocks = {d: np.zeros((N_CLIPS[d] * N_LEN[d], n_feat), np.float32) for d in doms}
    for j, (freqs, _) in enumerate(PLANTED):
        for d, f in zip(doms, freqs):
            n_active = int(round(f * len(blocks[d])))
            # every k-th frame, so the activations fall in many clips
            idx = np.linspace(0, len(blocks[d]) - 1, n_active).round().astype(int) if n_active else []
            blocks[d][idx, j] = 1.0 + j
    for d in doms:
        for ii in range(N_CLIPS[d]):
            arrays[f"{d}-{ii}"] = blocks[d][ii * N_LEN[d]:(ii + 1) * N_LEN[d]]
    return make_clip_codes(arrays, _clips(), layer=3, verbose=False)


def test_frame_assignment_equals_hand_computation():
    codes = _planted_frame_codes()
    stats = feature_stats(codes, verbose=False)
    wide = stats.pivot(index="feature", columns="domain", values="frame_freq")
    for j, (freqs, _) in enumerate(PLANTED):
        np.testing.assert_allclose(wide.loc[j, ["speech", "music", "sounds"]], freqs, atol=1e-12)
    asg = assign_domains(stats, verbose=False)
    for ti, tau in enumerate((0.2, 0.1, 0.04)):
        got = asg[(asg["level"] == "frame") & np.isclose(asg["tau"], tau)].set_index("feature")
        want = [p[1][ti] for p in PLANTED]
        assert got.loc[list(range(len(PLANTED))), "domain"].tolist() == want, tau
    assert set(asg["layer"]) == {3}
    # mean activation: feature j is 1 + j on its active frames
    ma = stats.pivot(index="feature", columns="domain", values="mean_active")
    np.testing.assert_allclose(ma.loc[0, "speech"], 1.0)
    np.testing.assert_allclose(
        stats.set_index(["feature", "domain"]).loc[(3, "music"), "mean_act"], 4.0 * 0.25)
    assert np.isnan(ma.loc[4, "speech"])


# planted clip frequencies: speech 10 clips, music 4, sounds 5; tau 0.5 and 0.3
CLIP_N = {"speech": 10, "music": 4, "sounds": 5}
CLIP_PLANTED = [
    ((8, 1, 1), ("speech", "speech")),  # 0.8, 0.25, 0.2
    ((6, 1, 1), ("unassigned", "speech")),  # 0.6 - 0.25 = 0.35
    ((9, 4, 1), ("music+speech", "music+speech")),  # 0.9, 1.0, 0.2
    ((0, 0, 2), ("unassigned", "sounds")),  # 0.4
    ((0, 0, 0), ("dead", "dead")),
]


def test_clip_assignment_equals_hand_computation():
    n_feat = len(CLIP_PLANTED)
    rows, arrays = [], {}
    for d, n in CLIP_N.items():
        for ii in range(n):
            cid = f"{d}-{ii}"
            rows.append(dict(id=cid, domain=d, labels=[]))
            arr = np.zeros((7 + ii, n_feat))
            for j, (counts, _) in enumerate(CLIP_PLANTED):
                if ii < counts[list(CLIP_N).index(d)]:
                    arr[ii % 7, j] = 0.5  # one active frame in the clip
            arrays[cid] = arr
    codes = make_clip_codes(arrays, pd.DataFrame(rows), layer=2, verbose=False)
    stats = feature_stats(codes, verbose=False)
    asg = assign_domains(stats, verbose=False)
    for ti, tau in enumerate((0.5, 0.3)):
        got = asg[(asg["level"] == "clip") & np.isclose(asg["tau"], tau)].set_index("feature")
        assert got["domain"].tolist() == [p[1][ti] for p in CLIP_PLANTED], tau
    cf = stats.pivot(index="feature", columns="domain", values="clip_freq")
    np.testing.assert_allclose(cf.loc[2, ["speech", "music", "sounds"]], [0.9, 1.0, 0.2])


def test_domain_table_and_figures(tmp_path):
    codes = _planted_frame_codes()
    stats = feature_stats(codes, verbose=False)
    asg = assign_domains(stats, verbose=False)
    asg2 = asg.assign(layer=5)
    table = domain_table(pd.concat([asg, asg2]))
    sub = table[(table["layer"] == 3) & (table["level"] == "frame") & (table["tau"] == 0.2)]
    counts = sub.set_index("domain")["n_features"]
    assert counts["speech"] == 2 and counts["dead"] == 1 and counts["unassigned"] == 4
    np.testing.assert_allclose(sub["fraction"].sum(), 1.0)
    fig = plot_domain_specialisation(table, verbose=False)
    assert fig.axes[0].get_xlabel() == "layer"
    fig2 = plot_frequency_vs_activation(stats, asg, verbose=False)
    assert fig2.axes[0].get_ylabel()
    import matplotlib.pyplot as plt

    plt.close("all")


def test_assign_domains_rejects_other_tables():
    with pytest.raises(ValueError, match="feature_stats"):
        assign_domains(pd.DataFrame(dict(feature=[0], domain=["speech"])), verbose=False)


def test_one_domain_is_not_a_specialisation():
    """With one domain "f_i - f_j >= tau for all j" holds vacuously: live features are n/a."""
    from neuro_sae.interpret import assign_domains, feature_stats, make_clip_codes

    clips = pd.DataFrame(dict(id=["a", "b"], domain=["speech", "speech"], labels=[[], []]))
    x = np.zeros((20, 3))
    x[::2, 0] = 1.0
    x[:3, 1] = 1.0  # rare: below every tau of a two-domain comparison
    codes = make_clip_codes(dict(a=x, b=x), clips, verbose=False)
    asg = assign_domains(feature_stats(codes, verbose=False), verbose=False)
    dom = asg.groupby("feature")["domain"].unique()
    assert list(dom.loc[0]) == ["n/a"] and list(dom.loc[1]) == ["n/a"]
    assert list(dom.loc[2]) == ["dead"]

