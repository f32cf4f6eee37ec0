"""Montage names: every name MNE's make_standard_montage accepts works, deprecated
aliases (``standard_1020``) with MNE's own FutureWarning."""

import mne
import numpy as np
import pytest
import yaml

from neuro_sae.io import read_subject_eeg
from neuro_sae.manifest import ManifestError, load_manifest
from neuro_sae.utils import is_standard_montage, standard_montage
from tests.io.test_channels import NAMES, _write_vhdr
from tests.io.test_channels import _manifest as _eeg_manifest

ALIAS_WARNING = r"(?s)'standard_1020' is deprecated.*colin27_1020"


def _manifest(tmp_path, montage):
    (tmp_path / "stim").mkdir(exist_ok=True)
    (tmp_path / "stim" / "a.wav").write_bytes(b"")
    fname = tmp_path / "study.yaml"
    fname.write_text(yaml.safe_dump(dict(
        name="mini", subjects=["01"], eeg=dict(montage=montage),
        stimuli=dict(root="stim", runs=[dict(id="a", file="a.wav")]))))
    return fname


def test_manifest_accepts_the_deprecated_alias_with_mne_warning(tmp_path):
    with pytest.warns(FutureWarning, match=ALIAS_WARNING):
        m = load_manifest(_manifest(tmp_path, "standard_1020"))
    assert m.eeg.montage == "standard_1020"
    m = load_manifest(_manifest(tmp_path, "colin27_1020"))  # no warning (errors in tests)
    assert m.eeg.montage == "colin27_1020"


def test_manifest_still_refuses_unknown_montage_names(tmp_path):
    with pytest.raises(ManifestError, match=r"(?s)'eeg.montage'.*'standard_1O20'.*colin27_1020"):
        load_manifest(_manifest(tmp_path, "standard_1O20"))


def test_alias_in_a_manifest_positions_like_its_target(tmp_path):
    """eeg.montage: standard_1020 reads a BrainVision file exactly as colin27_1020 does."""
    vhdr = _write_vhdr(tmp_path)
    pos = {}
    for name in ("standard_1020", "colin27_1020"):
        folder = tmp_path / name
        folder.mkdir()
        if name == "standard_1020":
            with pytest.warns(FutureWarning, match=ALIAS_WARNING):
                m = _eeg_manifest(folder, dict(format="mne", files=str(vhdr), montage=name))
            with pytest.warns(FutureWarning, match=ALIAS_WARNING):
                raw = read_subject_eeg(m, "01", verbose="WARNING")
        else:
            m = _eeg_manifest(folder, dict(format="mne", files=str(vhdr), montage=name))
            raw = read_subject_eeg(m, "01", verbose="WARNING")
        pos[name] = raw.get_montage().get_positions()["ch_pos"]
    assert sorted(pos["standard_1020"]) == sorted(NAMES)
    for ch in NAMES:
        np.testing.assert_array_equal(pos["standard_1020"][ch], pos["colin27_1020"][ch])


def test_every_name_mne_accepts_is_accepted():
    for name in mne.channels.get_builtin_montages():
        assert is_standard_montage(name), name
    assert not is_standard_montage("biosemi_64")
    assert not is_standard_montage(64)
    with pytest.raises(ValueError, match=r"'eeg.montage' parameter.*'biosemi_64'"):
        standard_montage("biosemi_64", "eeg.montage")
    with pytest.warns(FutureWarning, match=ALIAS_WARNING):
        assert len(standard_montage("standard_1020").ch_names) == 94
