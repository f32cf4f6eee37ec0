"""The result base: one save/read path, versions, migrations, provenance, umask."""

import json
import os
import stat

import numpy as np
import pytest
import scipy.sparse as sp

from neuro_sae.activations import Activations, read_activations
from neuro_sae.encoding import SweepResult, read_sweep_result, univariate_sweep
from neuro_sae.features import FeatureSeries, read_feature_series
from neuro_sae.io import (
    FORMAT_VERSIONS,
    SavedResult,
    atomic_dir,
    atomic_path,
    json_default,
    read_provenance,
    read_result,
    register_migration,
    write_json,
)
from neuro_sae.stats import (
    group_permutation_test,
    read_group_result,
    read_permutation_result,
    sweep_permutation_test,
)


def _sweep(seed=0, n_feat=3, n_ch=4):
    rng = np.random.default_rng(seed)
    X = [rng.standard_normal((n, n_feat)) for n in (120, 130, 140)]
    Y = [rng.standard_normal((n, n_ch)) for n in (120, 130, 140)]
    sw = univariate_sweep(X, Y, sfreq=50.0, tmin=0.0, tmax=0.06, alphas=[1.0, 10.0],
                          feature_names=["a7", "b3", "c9"], ch_names=["Fz", "Cz", "Pz", "Oz"])  # fmt: skip
    return X, Y, sw


def _series():
    data = sp.random(50, 6, density=0.2, random_state=np.random.default_rng(1), format="csr")
    return FeatureSeries(data=data, times=np.arange(50) / 50 + 0.01, feature_ids=[3, 8, 11, 40, 41, 97],
                         stimulus_id="run-2", layer=4, sae_id="sae-x", provenance=dict(mode="x"))  # fmt: skip


def _acts():
    rng = np.random.default_rng(2)
    return Activations(data={1: rng.standard_normal((20, 8)), 3: rng.standard_normal((20, 8))},
                       times=np.arange(20) / 50, mask=np.arange(20) < 17, backbone="whisper-tiny",
                       stimulus_id="s1", provenance=dict(layer_convention="1-based"))  # fmt: skip


def test_overwrite_refused_then_allowed(tmp_path):
    """save refuses an existing file (names it and the fix), replaces it with overwrite=True."""
    _, _, sw = _sweep()
    fname = tmp_path / "sub-01_sweep.npz"
    sw.save(fname)
    before = fname.read_bytes()
    with pytest.raises(FileExistsError, match=r"sub-01_sweep\.npz exists; pass overwrite=True"):
        sw.save(fname)
    assert fname.read_bytes() == before
    sw.save(fname, overwrite=True)
    with pytest.raises(ValueError, match=r"must end with '\.npz'.*'sweep\.npz'"):
        sw.save(tmp_path / "sweep.txt")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sub-01_sweep.npz"]


def test_every_result_round_trips_with_provenance(tmp_path):
    """Each kind saves and reads back through the base, provenance record included."""
    X, Y, sw = _sweep()
    perm = sweep_permutation_test(X, Y, sw, n_permutations=19, alpha=0.1, random_state=0,
                                  return_null=True)  # fmt: skip
    group = group_permutation_test([sw, sw], [perm, perm], n_permutations=19, alpha=0.1,
                                   random_state=0)  # fmt: skip
    series, acts = _series(), _acts()
    given = dict(config_hash="abc123", input_hashes={"sub-01/eeg.fif": "ff00"})
    cases = [
        (sw, read_sweep_result, "SweepResult"),
        (perm, read_permutation_result, "PermutationResult"),
        (group, read_group_result, "GroupResult"),
        (series, read_feature_series, "FeatureSeries"),
        (acts, read_activations, "Activations"),
    ]
    for obj, reader, kind in cases:
        fname = tmp_path / f"{kind}.npz"
        obj.save(fname, provenance=given)
        back = reader(fname)
        assert type(back) is type(obj)
        rec = read_provenance(fname)
        assert rec["kind"] == kind and rec["format_version"] == FORMAT_VERSIONS[kind] == 2
        assert rec["config_hash"] == "abc123" and rec["input_hashes"] == given["input_hashes"]
        assert rec["numpy_version"] == np.__version__
        assert {"neuro_sae_version", "scipy_version", "mne_version", "created"} <= set(rec)
    back = read_sweep_result(tmp_path / "SweepResult.npz")
    for key in ("r", "alpha", "coef", "weights", "delays", "n_times"):
        np.testing.assert_array_equal(getattr(back, key), getattr(sw, key))
    assert back.feature_names == ["a7", "b3", "c9"] and back.ch_names == sw.ch_names
    back = read_permutation_result(tmp_path / "PermutationResult.npz")
    np.testing.assert_array_equal(back.null, perm.null)
    assert back.provenance == json.loads(json.dumps(perm.provenance, default=json_default))
    back = read_feature_series(tmp_path / "FeatureSeries.npz")
    assert (back.data != series.data).nnz == 0 and back.layer == 4
    np.testing.assert_array_equal(back.feature_ids, series.feature_ids)
    back = read_activations(tmp_path / "Activations.npz", layers=[3])
    assert back.layers == [3] and back.mask.sum() == 17
    np.testing.assert_allclose(back.data[3], acts.data[3], rtol=1e-3)  # float16 storage
    # config_hash / input_hashes in the result's own provenance are recorded too
    perm.save(tmp_path / "p2.npz")
    assert read_provenance(tmp_path / "p2.npz")["config_hash"] == perm.provenance["config_hash"]


def test_kind_checked_on_read(tmp_path):
    """A permutation file read as a sweep: error names both kinds and the right reader."""
    X, Y, sw = _sweep()
    perm = sweep_permutation_test(X, Y, sw, n_permutations=19, alpha=0.1, random_state=0)
    perm.save(tmp_path / "perm.npz")
    with pytest.raises(ValueError, match=r"perm\.npz holds a PermutationResult, not a "
                       r"SweepResult; read it with neuro_sae\.stats\.read_permutation_result"):  # fmt: skip
        read_sweep_result(tmp_path / "perm.npz")
    _series().save(tmp_path / "fs.npz")
    with pytest.raises(ValueError, match="holds a FeatureSeries, not a Activations"):
        read_activations(tmp_path / "fs.npz")
    np.savez(tmp_path / "plain.npz", a=np.zeros(3))
    with pytest.raises(ValueError, match=r"plain\.npz is not a saved neuro_sae result"):
        read_sweep_result(tmp_path / "plain.npz")


def _rewrite_metadata(fname, func):
    with np.load(fname, allow_pickle=False) as npz:
        data = {k: npz[k] for k in npz.files}
    md = json.loads(str(data.pop("metadata")))
    md = func(md)
    np.savez(fname, metadata=np.array(json.dumps(md)), **data)


def test_newer_version_refused(tmp_path):
    """A file from a newer neuro_sae: error names the file, both versions and the fix."""
    _, _, sw = _sweep()
    fname = tmp_path / "sweep.npz"
    sw.save(fname)
    _rewrite_metadata(fname, lambda md: dict(md, format_version=3))
    with pytest.raises(ValueError, match=r"sweep\.npz is a SweepResult of format_version 3.*"
                       r"up to format_version 2; upgrade neuro_sae"):  # fmt: skip
        read_sweep_result(fname)


def test_version1_files_migrate(tmp_path):
    """Files in the layouts written before the base (planted) are read through the hooks."""
    _, _, sw = _sweep()
    # stats/encoding layout of version 1: fields at the top level of "metadata"
    md = {k: getattr(sw, k) for k in ("sfreq", "tmin", "tmax", "feature_names", "ch_names",
                                      "provenance", "layers")}  # fmt: skip
    md.update(kind="SweepResult", format_version=1, neuro_sae_version="0.0.1")
    arrays = {k: np.asarray(getattr(sw, k)) for k in ("r", "r_folds", "alpha", "coef",
              "intercept", "alpha_final", "weights", "intercepts", "alphas", "delays", "n_times")}  # fmt: skip
    np.savez(tmp_path / "v1.npz", metadata=np.array(json.dumps(md, default=json_default)), **arrays)
    back = read_sweep_result(tmp_path / "v1.npz")
    np.testing.assert_array_equal(back.r, sw.r)
    np.testing.assert_array_equal(back.peak_lag_s, sw.peak_lag_s)  # recomputed
    assert read_provenance(tmp_path / "v1.npz")["format_version"] == 1
    # feature series of version 1: "meta" entry, no kind
    s = _series()
    csr = s.data.tocsr()
    meta = dict(format_version=1, sfreq=50.0, stimulus_id="run-2", layer=4, sae_id="sae-x",
                provenance={}, shape=list(s.data.shape))  # fmt: skip
    np.savez(tmp_path / "fs1.npz", values=csr.data, indices=csr.indices, indptr=csr.indptr,
             times=s.times, feature_ids=s.feature_ids, meta=np.array(json.dumps(meta)))  # fmt: skip
    back = read_feature_series(tmp_path / "fs1.npz")
    assert (back.data != s.data).nnz == 0 and back.stimulus_id == "run-2"
    with pytest.raises(ValueError, match="holds a FeatureSeries, not a SweepResult"):
        read_sweep_result(tmp_path / "fs1.npz")


class _Toy(SavedResult):
    _kind = "ToyResult"

    def __init__(self, values, unit):
        self.values, self.unit = values, unit

    def _to_saved(self):
        return dict(values=self.values), dict(unit=self.unit)

    @classmethod
    def _from_saved(cls, arrays, fields, fname):
        return cls(arrays["values"], fields["unit"])


@pytest.fixture
def toy_kind(monkeypatch):
    from neuro_sae.io import _result

    monkeypatch.setitem(_result.FORMAT_VERSIONS, "ToyResult", 1)
    monkeypatch.setattr(_result, "_MIGRATIONS", dict(_result._MIGRATIONS))
    return _result


def test_registered_migration_runs_on_v0(tmp_path, toy_kind):
    """A planted version-0 file goes through the hook registered for version 0."""
    calls = []

    @register_migration("ToyResult", 0)
    def _v0_to_v1(arrays, fields):  # v0 stored milliseconds under "ms"
        calls.append(1)
        arrays["values"] = np.asarray(arrays["ms"]) / 1000.0
        del arrays["ms"]
        return arrays, dict(unit="s")

    md = dict(kind="ToyResult", format_version=0, record={}, fields={})
    np.savez(tmp_path / "toy0.npz", metadata=np.array(json.dumps(md)), ms=np.array([1500.0, 20.0]))
    back = read_result(tmp_path / "toy0.npz", _Toy)
    assert calls == [1] and back.unit == "s"
    np.testing.assert_allclose(back.values, [1.5, 0.02])
    _Toy(np.ones(2), "s").save(tmp_path / "toy1.npz")
    assert read_result(tmp_path / "toy1.npz", _Toy).unit == "s" and calls == [1]  # current: no hook


def test_missing_migration_names_versions(tmp_path, toy_kind):
    toy_kind.FORMAT_VERSIONS["ToyResult"] = 2
    md = dict(kind="ToyResult", format_version=1, record={}, fields=dict(unit="s"))
    np.savez(tmp_path / "toy.npz", metadata=np.array(json.dumps(md)), values=np.ones(2))
    with pytest.raises(ValueError, match="format_version 1 and no migration from that version"):
        read_result(tmp_path / "toy.npz", _Toy)


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077])
def test_umask_honoured(tmp_path, umask):
    """Files get 0o666 & ~umask and folders 0o777 & ~umask (not mkstemp's 0600/0700)."""
    old = os.umask(umask)
    try:
        write_json({"a": np.int64(3)}, tmp_path / "a.json")
        with atomic_path(tmp_path / "b.bin") as tmp:
            tmp.write_bytes(b"x")
        with atomic_dir(tmp_path / "folder") as tmp:
            (tmp / "inside.txt").write_text("y")
        _series().save(tmp_path / "fs.npz")
        _sweep()[2].save(tmp_path / "sub" / "sweep.npz")
    finally:
        os.umask(old)
    for name in ("a.json", "b.bin", "fs.npz", "sub/sweep.npz", "folder/inside.txt"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o666 & ~umask, name
    for name in ("folder", "sub"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o777 & ~umask, name


def test_one_json_encoder():
    """json_default handles numpy scalars, arrays, paths and sets; it is the only one."""
    from pathlib import Path

    obj = dict(i=np.int32(3), f=np.float32(0.5), b=np.bool_(True), a=np.arange(3),
               p=Path("/x/y"), s={3, 1}, u=np.str_("z"))  # fmt: skip
    assert json.loads(json.dumps(obj, default=json_default)) == dict(
        i=3, f=0.5, b=True, a=[0, 1, 2], p="/x/y", s=[1, 3], u="z"
    )
    with pytest.raises(TypeError, match="not JSON serialisable"):
        json.dumps(dict(c=object()), default=json_default)
    root = Path(__file__).resolve().parents[2] / "neuro_sae"
    defs = [
        str(p.relative_to(root))
        for p in root.rglob("*.py")
        if "def _json_default" in p.read_text() or "def json_default" in p.read_text()
    ]
    assert defs == ["io/_atomic.py"], defs


def test_sweep_result_is_saved_result():
    for cls in (SweepResult, FeatureSeries, Activations):
        assert issubclass(cls, SavedResult)
