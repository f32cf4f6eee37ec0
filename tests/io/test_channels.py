"""Bad channels and montages of real recordings (BrainVision without positions, Dryad)."""

import matplotlib

matplotlib.use("Agg")

import mne  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import soundfile as sf  # noqa: E402

from neuro_sae.io import read_broderick_dryad, read_raw_runs, read_subject_eeg  # noqa: E402
from neuro_sae.manifest import load_manifest  # noqa: E402

from ._fixtures import write_dryad  # noqa: E402

# 10-20 names as a lab writes them (upper case: the montage spells them Fp1, Fz, ...)
NAMES = ["FP1", "FP2", "FZ", "CZ", "PZ", "OZ", "T7", "T8", "C3"]


def _write_vhdr(folder, names=NAMES, sfreq=250.0, dur=20.0, seed=3):
    """A BrainVision file written by pybv: no channel positions in it."""
    from pybv import write_brainvision

    rng = np.random.default_rng(seed)
    data = rng.normal(size=(len(names), int(dur * sfreq))) * 1e-5  # volts, stored in µV
    write_brainvision(data=data, sfreq=sfreq, ch_names=names, fname_base="rec",
                      folder_out=str(folder), events=None, unit="µV", overwrite=True)
    return folder / "rec.vhdr"


def _manifest(tmp_path, eeg, subjects=("01",)):
    (tmp_path / "stim").mkdir(exist_ok=True)
    sf.write(tmp_path / "stim" / "a.wav", np.zeros(16000, np.float32), 16000)
    text = (
        "name: t\nderivatives: deriv\nsubjects: [" + ", ".join(f'"{s}"' for s in subjects) + "]\n"
        "stimuli:\n  root: stim\n  runs:\n    - {id: a, file: a.wav}\n"
        "eeg:\n" + "".join(f"  {k}: {v}\n" for k, v in eeg.items())
    )
    (tmp_path / "m.yaml").write_text(text)
    return load_manifest(tmp_path / "m.yaml")


def test_brainvision_montage_from_manifest(tmp_path):
    """eeg.montage is applied to a BrainVision file without positions (names matched
    without case); a topomap can then be drawn. Before: no positions, MNE's
    'No digitization points found' in every figure."""
    import matplotlib.pyplot as plt

    vhdr = _write_vhdr(tmp_path)
    assert mne.io.read_raw(vhdr, verbose=False).get_montage() is None
    m = _manifest(tmp_path, dict(format="mne", files=str(vhdr), montage="colin27_1020"))
    raw = read_subject_eeg(m, "01")
    mont = raw.get_montage()
    assert mont is not None
    pos = mont.get_positions()["ch_pos"]
    ref = mne.channels.make_standard_montage("colin27_1020").get_positions()["ch_pos"]
    assert sorted(pos) == sorted(NAMES)
    # FP1 got Fp1's position (in the head frame MNE sets it in)
    head = raw.info["chs"][raw.ch_names.index("FP1")]["loc"][:3]
    assert np.linalg.norm(head) > 0.05
    assert np.isclose(np.linalg.norm(pos["CZ"] - pos["FZ"]),
                      np.linalg.norm(ref["Cz"] - ref["Fz"]), rtol=0.05)
    fig, ax = plt.subplots()
    im, _ = mne.viz.plot_topomap(np.arange(len(NAMES), dtype=float), raw.info, axes=ax, show=False)
    assert im is not None
    plt.close(fig)


def test_default_montage_keeps_file_positions(tmp_path):
    """Left at its default, eeg.montage does not replace a file's own digitisation."""
    raw = mne.io.RawArray(np.zeros((3, 2500)), mne.create_info(["Fz", "Cz", "Pz"], 250.0, "eeg"),
                          verbose=False)
    mont = mne.channels.make_standard_montage("colin27_1020")
    raw.set_montage(mont)
    fname = tmp_path / "r_raw.fif"
    raw.save(fname, verbose=False)
    m = _manifest(tmp_path, dict(format="fif", files=str(fname)))  # montage: default
    back = read_subject_eeg(m, "01")
    np.testing.assert_allclose(back.info["chs"][1]["loc"][:3], raw.info["chs"][1]["loc"][:3])
    # without positions, the default montage is applied (and lists what it cannot place)
    raw.set_montage(None)
    raw.save(fname, overwrite=True, verbose=False)
    back = read_subject_eeg(m, "01")
    assert back.get_montage() is not None


def test_unmatched_channels_listed(tmp_path):
    """Channels the montage does not name: an error listing them and the fix; bads and
    on_missing='ignore' let them through."""
    vhdr = _write_vhdr(tmp_path, names=["Fz", "Cz", "X1", "X2"])
    with pytest.raises(ValueError, match=r"2 of the 4 EEG channels.*\['X1', 'X2'\].*rename"):
        read_raw_runs(vhdr, montage="colin27_1020")
    raw = read_raw_runs(vhdr, montage="colin27_1020", bads=["X1", "X2"])
    assert raw.info["bads"] == ["X1", "X2"]
    raw = read_raw_runs(vhdr, montage="colin27_1020", on_missing="ignore")
    assert np.all(np.isnan(raw.info["chs"][2]["loc"][:3]) | (raw.info["chs"][2]["loc"][:3] == 0))


def test_manifest_bads_added(tmp_path):
    """eeg.bads adds to the channels the file marks; unknown names raise naming the key."""
    vhdr = _write_vhdr(tmp_path)
    m = _manifest(tmp_path, dict(format="mne", files=str(vhdr), montage="colin27_1020",
                                 bads='{"01": ["T7"]}'))
    raw = read_subject_eeg(m, "01")
    assert raw.info["bads"] == ["T7"]
    m = _manifest(tmp_path, dict(format="mne", files=str(vhdr), montage="colin27_1020",
                                 bads='{"01": ["t7x"]}'))
    with pytest.raises(ValueError, match=r"eeg.bads.01 lists channels \['t7x'\]"):
        read_subject_eeg(m, "01")


@pytest.mark.parametrize("reference", ["average", "mastoids"])
def test_dryad_bads_before_reference(tmp_path, reference):
    """A planted huge-noise channel marked bad does not enter the reference: the other
    channels equal the reference computed without it; bads are added, not overwritten."""
    truth = write_dryad(tmp_path, subject=3, runs=(1,), durs=(6.0,))
    noisy = "B7" if reference == "average" else "M2"
    eeg, mast = truth[1]["eeg"].copy(), truth[1]["mastoids"].copy()
    from scipy.io import savemat

    col = 32 + 6
    if reference == "average":
        eeg[:, col] += np.random.default_rng(9).normal(size=len(eeg)) * 1e6
    else:
        mast[:, 1] += np.random.default_rng(9).normal(size=len(mast)) * 1e6
    savemat(tmp_path / "EEG" / "Subject3" / "Subject3_Run1.mat",
            dict(eegData=eeg, mastoids=mast, fs=np.array([[128.0]])))
    raw = read_broderick_dryad(tmp_path, 3, reference=reference, bads=[noisy, "A1"])
    if reference == "average":
        good = [i for i in range(128) if i not in (col, 0)]
        expected = (eeg[:, good] - eeg[:, good].mean(axis=1, keepdims=True)) * 1e-6
        np.testing.assert_allclose(raw.get_data(picks=[raw.ch_names[i] for i in good]), expected.T,
                                   atol=1e-12)
        assert raw.info["bads"] == [noisy, "A1"]
    else:  # only the good mastoid M1 is the reference; the mastoids are dropped
        expected = (eeg[:, 1] - mast[:, 0]) * 1e-6
        np.testing.assert_allclose(raw.get_data(picks=["A2"])[0], expected, atol=1e-12)
        assert raw.info["bads"] == ["A1"] and "M2" not in raw.ch_names
    # marked bads stay marked when more are added
    raw.info["bads"] = ["C3"]
    from neuro_sae.io._channels import add_bads

    add_bads(raw, ["D4"])
    assert raw.info["bads"] == ["C3", "D4"]
