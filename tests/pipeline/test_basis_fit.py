"""``trf.basis_width`` in the fit step: the sweep is fitted in the lag basis and its null
draws shifts on the kernels' spacing; without it the step's settings are unchanged."""

import numpy as np
import pytest

from neuro_sae.encoding import lag_basis, read_sweep_result
from neuro_sae.manifest import load_manifest
from neuro_sae.pipeline import StudyPaths
from neuro_sae.pipeline._eeg_steps import fit_config
from neuro_sae.stats import read_permutation_result

from .conftest import copy_study


@pytest.mark.filterwarnings("ignore:.*FDR cannot reject.*:UserWarning",
                            "ignore:.*edge of the alpha grid.*:UserWarning")  # fmt: skip
def test_fit_in_a_lag_basis(built_study, tmp_path):
    from neuro_sae.pipeline import run_step, study_status

    plain = load_manifest(built_study / "tiny.yaml")
    assert "basis_width" not in fit_config(_Study(plain), "01")["trf"]  # earlier keys kept
    manifest = load_manifest(copy_study(built_study, tmp_path / "study",
                                        trf=dict(basis_width=0.08)))  # fmt: skip
    stale = {name for name, why in study_status(manifest).items() if why}
    assert any(n.startswith("04_fit_trf") for n in stale)
    assert not any(n.startswith(("01_", "02_", "03_")) for n in stale)
    run_step(manifest, "fit", subject="01", upstream=True, verbose="WARNING")
    paths = StudyPaths(manifest.derivatives_dir())
    layer = 3
    sweep = read_sweep_result(paths.sweep("01", layer))
    B = lag_basis(64.0, -0.15, 0.35, 0.08, placement="inside")  # tmin/tmax -/+ edge_s
    np.testing.assert_array_equal(sweep.basis, B)
    perm = read_permutation_result(paths.permutation("01", layer))
    step = int(np.diff([np.nonzero(B[:, b])[0][0] for b in range(2)])[0])
    assert step > 1 and perm.provenance["shift_step"] == step
    assert np.all(perm.shifts % step == 0)


def test_basis_width_longer_than_the_window_names_the_key(built_study, tmp_path):
    with pytest.raises(ValueError, match=r"trf\.basis_width \(0\.6 s\) must be below"):
        load_manifest(copy_study(built_study, tmp_path / "study", trf=dict(basis_width=0.6)))


class _Study:
    def __init__(self, manifest):
        self.manifest = manifest
