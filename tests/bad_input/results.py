"""Bad saved results: overwrite refused, wrong kind, future or unknown versions, names."""

import json
from functools import cache

import numpy as np

from neuro_sae.activations import Activations, read_activations
from neuro_sae.encoding import read_sweep_result, univariate_sweep
from neuro_sae.stats import read_permutation_result, sweep_permutation_test
from tests.bad_input import BadInput


@cache
def _sweep():
    rng = np.random.default_rng(0)
    X = [rng.standard_normal((n, 2)) for n in (100, 110, 120)]
    Y = [rng.standard_normal((n, 3)) for n in (100, 110, 120)]
    return X, Y, univariate_sweep(X, Y, sfreq=50.0, tmin=0.0, tmax=0.04, alphas=[1.0],
                                  verbose="error")  # fmt: skip


def _overwrite(root):
    fname = root / "sub-01_sweep.npz"
    _sweep()[2].save(fname)
    return lambda: _sweep()[2].save(fname), None


def _not_npz(root):
    return lambda: _sweep()[2].save(root / "sub-01_sweep.h5"), None


def _wrong_kind(root):
    X, Y, sw = _sweep()
    res = sweep_permutation_test(X, Y, sw, n_permutations=19, alpha=0.1, random_state=0,
                                 min_shift_s=0.3)
    res.save(root / "sub-01_perm.npz")
    return lambda: read_sweep_result(root / "sub-01_perm.npz"), None


def _set_version(fname, version):
    with np.load(fname, allow_pickle=False) as npz:
        data = {k: npz[k] for k in npz.files}
    md = json.loads(str(data.pop("metadata")))
    md["format_version"] = version
    np.savez(fname, metadata=np.array(json.dumps(md)), **data)


def _future_version(root):
    fname = root / "sub-01_sweep.npz"
    _sweep()[2].save(fname)
    _set_version(fname, 7)
    return lambda: read_sweep_result(fname), None


def _no_migration(root):
    fname = root / "sub-01_sweep.npz"
    _sweep()[2].save(fname)
    _set_version(fname, 0)
    return lambda: read_sweep_result(fname), None


def _plain_npz(root):
    np.savez(root / "arrays.npz", r=np.zeros((2, 3)))
    return lambda: read_permutation_result(root / "arrays.npz"), None


def _missing_file(root):
    return lambda: read_sweep_result(root / "sub-02_sweep.npz"), None


def _missing_layer(root):
    acts = Activations(data={2: np.zeros((5, 4))}, times=np.arange(5) / 50.0,
                       mask=np.ones(5, bool), backbone="whisper-tiny")  # fmt: skip
    acts.save(root / "run-1_acts.npz")
    return lambda: read_activations(root / "run-1_acts.npz", layers=[2, 6]), None


def _unserialisable_provenance(root):
    sw = _sweep()[2]
    return lambda: sw.save(root / "sweep.npz", provenance=dict(fn=print)), None


CASES = [
    BadInput("save-existing-file", _overwrite, FileExistsError,
             [r"sub-01_sweep\.npz exists", "overwrite=True"],
             "a result saved over an existing file without overwrite=True"),
    BadInput("save-not-npz", _not_npz, ValueError,
             ["fname must end with '.npz'", r"sub-01_sweep\.h5", r"sub-01_sweep\.npz"],
             "a result saved to a name without .npz"),
    BadInput("read-wrong-kind", _wrong_kind, ValueError,
             [r"sub-01_perm\.npz holds a PermutationResult, not a SweepResult",
              r"read_permutation_result\(\)"], "a permutation file read as a sweep"),
    BadInput("read-future-version", _future_version, ValueError,
             [r"sub-01_sweep\.npz", "format_version 7", "up to format_version 2",
              "upgrade neuro_sae"], "a file written by a newer neuro_sae"),
    BadInput("read-version-without-migration", _no_migration, ValueError,
             [r"sub-01_sweep\.npz", "format_version 0", "no migration", "recompute"],
             "a file of a version no migration reads"),
    BadInput("read-plain-npz", _plain_npz, ValueError,
             [r"arrays\.npz is not a saved neuro_sae result", r"\.save\(\)"],
             "an npz file that no result's save wrote"),
    BadInput("read-missing-file", _missing_file, FileNotFoundError,
             [r"sub-02_sweep\.npz"], "a result file that does not exist"),
    BadInput("read-missing-layer", _missing_layer, KeyError,
             [r"Layers \[6\]", r"run-1_acts\.npz", r"holds \[2\]", "layers="],
             "activations read for a layer that was not extracted"),
    BadInput("save-provenance-not-json", _unserialisable_provenance, TypeError,
             ["builtin_function_or_method", "not JSON serialisable"],
             "provenance that JSON cannot hold"),
]
