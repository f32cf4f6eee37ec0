"""Tests of the synthetic sparse-dictionary generator."""

import numpy as np
import pytest

from neuro_sae.simulation._dictionary import make_sparse_dictionary_data


def test_planted_structure():
    X, atoms, codes = make_sparse_dictionary_data(
        211, 13, 29, 4, coef_range=(0.5, 1.5), random_state=0
    )
    assert X.shape == (211, 13) and atoms.shape == (29, 13) and codes.shape == (211, 29)
    np.testing.assert_allclose(np.linalg.norm(atoms, axis=1), 1.0)
    dense = codes.toarray()
    assert ((dense > 0).sum(axis=1) == 4).all()  # exactly k distinct atoms per frame
    vals = dense[dense > 0]
    assert vals.min() >= 0.5 and vals.max() <= 1.5
    np.testing.assert_allclose(X, dense @ atoms, rtol=1e-12, atol=1e-12)
    # every atom is used (uniform choice; 211 * 4 / 29 ~ 29 uses each)
    assert (dense > 0).sum(axis=0).min() > 5


def test_noise_and_determinism():
    X0, atoms, codes = make_sparse_dictionary_data(4000, 17, 23, 2, noise=0.3, random_state=3)
    resid = X0 - codes @ atoms
    assert resid.std() == pytest.approx(0.3, rel=0.05)
    X1, atoms1, _ = make_sparse_dictionary_data(4000, 17, 23, 2, noise=0.3, random_state=3)
    np.testing.assert_array_equal(X0, X1)
    np.testing.assert_array_equal(atoms, atoms1)
    X2, _, _ = make_sparse_dictionary_data(4000, 17, 23, 2, noise=0.3, random_state=4)
    assert not np.array_equal(X0, X2)


@pytest.mark.parametrize(
    "kwargs, err, match",
    [
        (dict(k=30), ValueError, r"k \(30\) cannot exceed n_atoms \(29\)"),
        (dict(k=0), ValueError, "k must be a finite number > 0"),
        (dict(noise=-1.0), ValueError, "noise must be a finite number >= 0"),
        (dict(coef_range=(1.0, 0.5)), ValueError, "coef_range must be"),
        (dict(d_in=3.5), TypeError, "d_in must be an instance of int"),
    ],
)
def test_errors(kwargs, err, match):
    args = dict(n_samples=10, d_in=13, n_atoms=29, k=4)
    args.update(kwargs)
    with pytest.raises(err, match=match):
        make_sparse_dictionary_data(**args)
