"""The torch backend of the refit circular-shift null equals the NumPy one."""

import numpy as np
import pytest
import scipy.sparse as sp

from neuro_sae.encoding import univariate_sweep
from neuro_sae.stats import sweep_permutation_test
from neuro_sae.stats._refit import _refit_null
from neuro_sae.stats._refit_device import _refit_null_torch

from .test_permutation import SFREQ, _data

torch = pytest.importorskip("torch")
HAS_CUDA = torch.cuda.is_available()


def _case(seed=6):
    """4 runs of distinct lengths, 3 features, 4 channels, one planted effect (f1 -> ch2);
    delays -3 ... 5 so both zero-padded edges matter, several chosen alphas."""
    rng = np.random.default_rng(seed)
    X, Y = _data(rng, n_times=(61, 67, 73, 59), n_feat=3, n_ch=4, gain=0.7)
    sw = univariate_sweep(X, Y, sfreq=SFREQ, tmin=-0.06, tmax=0.1, alphas=[0.5, 20.0, 300.0])
    assert len(np.unique(sw.alpha)) > 1
    shifts = np.array([[0, 0, 0, 0], [5, 17, 60, 3], [1, 66, 2, 30], [58, 33, 72, 1]])
    return X, Y, sw, shifts


@pytest.mark.parametrize("chunk_size", [1, 2, 3])
def test_torch_null_equals_numpy_null(chunk_size):
    """torch-cpu (float64 and float32) equals the NumPy refit null; batches and tiny
    permutation blocks change nothing."""
    X, Y, sw, shifts = _case()
    ref = _refit_null(X, Y, sw, shifts, chunk_size=2)  # float64 NumPy, checked by hand
    t64 = _refit_null_torch(X, Y, sw, shifts, "torch-cpu", chunk_size, np.float64, 200)
    np.testing.assert_allclose(t64, ref, rtol=1e-10, atol=1e-13)
    t32 = _refit_null_torch(X, Y, sw, shifts, "torch-cpu", chunk_size, np.float32, 200)
    assert np.max(np.abs(t32 - ref)) < 1e-5
    np.testing.assert_allclose(t32[0], sw.r, atol=1e-5)  # no shift: the observed r


@pytest.mark.filterwarnings("ignore:n_permutations=.* is too small:UserWarning")
def test_public_test_torch_cpu_equals_cpu():
    """sweep_permutation_test(device='torch-cpu') gives the NumPy p-values (sparse X)."""
    rng = np.random.default_rng(2)
    X, Y = _data(rng, n_times=(310, 330, 320), n_feat=4, n_ch=5, gain=1.0)
    Xs = [sp.csr_array(np.where(np.abs(x) > 1.0, x, 0.0)) for x in X]
    sw = univariate_sweep(Xs, Y, sfreq=SFREQ, tmin=-0.04, tmax=0.1, alphas=[1.0, 100.0])
    kw = dict(n_permutations=99, min_shift_s=0.5, random_state=3, return_null=True,
              alpha_selection="observed")  # fmt: skip
    res_np = sweep_permutation_test(Xs, Y, sw, chunk_size=3, **kw)
    res_t = sweep_permutation_test(Xs, Y, sw, chunk_size=3, device="torch-cpu", **kw)
    np.testing.assert_array_equal(res_t.shifts, res_np.shifts)
    assert np.max(np.abs(res_t.r - res_np.r)) < 1e-5
    assert np.max(np.abs(res_t.null - res_np.null)) < 1e-5
    np.testing.assert_allclose(res_t.max_null, res_np.max_null, atol=1e-5)
    np.testing.assert_array_equal(res_t.p_uncorrected, res_np.p_uncorrected)
    np.testing.assert_array_equal(res_t.p_fwe, res_np.p_fwe)
    assert res_t.p_fwe[1, 2] == pytest.approx(1 / 100)  # the planted effect
    assert res_t.provenance["device"] == "torch-cpu"
    assert res_np.provenance["device"] == "cpu"
    assert res_t.provenance["config_hash"] == res_np.provenance["config_hash"]


def test_bad_device():
    X, Y, sw, _ = _case()
    kw = dict(n_permutations=19, min_shift_s=0.1, random_state=0, alpha_selection="observed")
    for bad in ("gpu", "cuda:x", "CPU", 0, None):
        with pytest.raises(ValueError, match="'device' parameter.*torch-cpu.*cuda:N"):
            sweep_permutation_test(X, Y, sw, device=bad, **kw)
    with pytest.raises(ValueError, match='refit" with rank_tol=None only'):
        sweep_permutation_test(X, Y, sw, device="torch-cpu", rank_tol=1e-4, **kw)
    with pytest.raises(ValueError, match='refit" with rank_tol=None only'):
        sweep_permutation_test(X, Y, sw, device="torch-cpu", null="mismatch", **kw)
    if not HAS_CUDA:
        with pytest.raises(RuntimeError, match="CUDA is not available"):
            sweep_permutation_test(X, Y, sw, device="cuda", **kw)
    else:
        n_gpu = torch.cuda.device_count()
        with pytest.raises(ValueError, match="CUDA device"):
            sweep_permutation_test(X, Y, sw, device=f"cuda:{n_gpu}", **kw)


@pytest.mark.gpu
@pytest.mark.skipif(not HAS_CUDA, reason="needs CUDA")
def test_cuda_null_equals_numpy_null():
    X, Y, sw, shifts = _case()
    ref = _refit_null(X, Y, sw, shifts, chunk_size=2)
    t64 = _refit_null_torch(X, Y, sw, shifts, "cuda", 2, np.float64)
    np.testing.assert_allclose(t64, ref, rtol=1e-9, atol=1e-12)
    t32 = _refit_null_torch(X, Y, sw, shifts, "cuda", 3, np.float32)
    assert np.max(np.abs(t32 - ref)) < 1e-5
