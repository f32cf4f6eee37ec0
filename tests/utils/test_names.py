"""Name helpers, integer checks, feature x channel tables, n_jobs."""

import numpy as np
import pytest

from neuro_sae.utils import check_int, check_n_jobs, check_names, tidy_frame


def test_check_names():
    assert check_names(None, 3, "f", "feature_names") == ["f0", "f1", "f2"]
    assert check_names([1031, 17], 2, "f", "feature_names") == ["1031", "17"]
    with pytest.raises(ValueError, match="ch_names has 2 names but the data have 3"):
        check_names(["Fz", "Cz"], 3, "ch", "ch_names")
    with pytest.raises(TypeError, match="ch_names must be a list of str, got the str 'Fz'"):
        check_names("Fz", 2, "ch", "ch_names")


def test_check_int():
    assert check_int(np.int64(4), "n") == 4 and isinstance(check_int(np.int64(4), "n"), int)
    assert check_int(0, "n", min_value=0) == 0
    with pytest.raises(ValueError, match="n_permutations must be a positive int, got 0"):
        check_int(0, "n_permutations")
    with pytest.raises(ValueError, match="must be an int >= 2, got 1"):
        check_int(1, "k", min_value=2)
    for bad in (True, 2.5, "3"):
        with pytest.raises((TypeError, ValueError), match="chunk_size"):
            check_int(bad, "chunk_size")


def test_tidy_frame_orders_rows_feature_major():
    r = np.arange(6.0).reshape(2, 3)
    df = tidy_frame(["1031", "17"], ["Fz", "Cz", "Pz"], r=r, p=r / 10)
    assert list(df.columns) == ["feature", "channel", "r", "p"]
    assert list(df["feature"]) == ["1031"] * 3 + ["17"] * 3
    assert list(df["channel"]) == ["Fz", "Cz", "Pz"] * 2
    np.testing.assert_array_equal(df["r"], np.arange(6.0))
    with pytest.raises(ValueError, match=r"p has shape \(3, 2\), expected \(2, 3\)"):
        tidy_frame(["a", "b"], ["x", "y", "z"], p=r.T)


def test_check_n_jobs():
    import joblib

    from neuro_sae.utils._parallel import _n_cpus

    assert check_n_jobs(None) == 1 and check_n_jobs(3) == 3
    assert check_n_jobs(-1) == _n_cpus()
    assert check_n_jobs(-_n_cpus() - 5) == 1
    with joblib.parallel_config(n_jobs=4):
        assert check_n_jobs(None) == 4 and check_n_jobs(2) == 2
    with joblib.parallel_config(n_jobs=-1):
        assert check_n_jobs(None) == _n_cpus()
    with pytest.raises(ValueError, match="n_jobs=0 is not allowed"):
        check_n_jobs(0)
    with pytest.raises(TypeError, match="n_jobs"):
        check_n_jobs(1.5)
