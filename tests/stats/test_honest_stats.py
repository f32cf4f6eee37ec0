"""Honest statistics: nested alpha search in every permutation, GPD tail p-values,
the FDR floor, no hidden threads, named group tables, compatible sweeps."""

import logging
import threading

import numpy as np
import pytest
from scipy.signal import lfilter
from scipy.stats import norm

from neuro_sae.encoding import check_sweeps_compatible, univariate_sweep
from neuro_sae.stats import (
    fdr_correction,
    gpd_pvalue,
    group_permutation_test,
    read_group_result,
    sweep_permutation_test,
)
from neuro_sae.stats._refit import _refit_null

SFREQ = 50.0
GRID5 = list(np.logspace(-1, 3, 5))


def _null_subject(rng, n_times=(150, 160, 170), n_feat=3, n_ch=4):
    X = [lfilter([1.0], [1.0, -0.7], rng.standard_normal((n, n_feat)), axis=0) for n in n_times]
    Y = [lfilter([1.0], [1.0, -0.85], rng.standard_normal((n, n_ch)), axis=0) for n in n_times]
    return X, Y


def test_nested_null_is_the_sweep_on_shifted_eeg():
    """Each permutation of the nested null equals refitting the whole nested-CV sweep on
    the circularly shifted EEG (alphas re-chosen); no shift gives sweep.r and alpha."""
    rng = np.random.default_rng(0)
    n_times = (150, 160, 170, 180)
    X, Y = _null_subject(rng, n_times=n_times)
    for x, y in zip(X, Y):
        y[:, 1] += 0.5 * np.roll(x[:, 0], 2)
    kw = dict(sfreq=SFREQ, tmin=-0.02, tmax=0.06, alphas=GRID5)
    sw = univariate_sweep(X, Y, **kw)
    assert len(np.unique(sw.alpha)) > 1
    shifts = np.array([[0, 0, 0, 0], [10, 20, 30, 40], [57, 3, 111, 90]])
    nested = _refit_null(X, Y, sw, shifts, nested=True)
    np.testing.assert_allclose(nested[0], sw.r, rtol=0, atol=1e-12)
    for s in shifts[1:]:
        Ys = [np.roll(y, k, axis=0) for y, k in zip(Y, s)]
        ref = univariate_sweep(X, Ys, **kw)
        np.testing.assert_allclose(nested[list(shifts[:, 0]).index(s[0])], ref.r, atol=1e-12)
    # the observed-alpha null differs (the alphas are not re-chosen)
    held = _refit_null(X, Y, sw, shifts, nested=False)
    assert np.max(np.abs(held[1:] - nested[1:])) > 1e-3
    # the public test: default nested, float32 products, same observed r
    res = sweep_permutation_test(X, Y, sw, n_permutations=19, alpha=0.1, random_state=1,
                                 return_null=True)  # fmt: skip
    assert res.provenance["alpha_selection"] == "nested"
    np.testing.assert_allclose(res.r, sw.r, atol=1e-5)
    ref = _refit_null(X, Y, sw, np.concatenate([shifts[:1], res.shifts]), nested=True)
    np.testing.assert_allclose(res.null, ref[1:], atol=1e-5)
    old = sweep_permutation_test(X, Y, sw, n_permutations=19, alpha=0.1, random_state=1,
                                 alpha_selection="observed")  # fmt: skip
    assert old.provenance["config_hash"] != res.provenance["config_hash"]


def test_nested_max_t_fwer_calibrated():
    """FWER of max-T at 0.05 with a 5-alpha grid, 300 null simulations, 19 permutations
    (p_fwe <= 0.05 iff no permutation max reaches the observed one: exactly 1/20 under
    exchangeability). Binomial SE sqrt(.05 * .95 / 300) = 0.0126; band +-3 SE."""
    rng = np.random.default_rng(20261201)
    hits = 0
    n_sim = 300
    for _ in range(n_sim):
        X, Y = _null_subject(rng)
        sw = univariate_sweep(X, Y, sfreq=SFREQ, tmin=0.0, tmax=0.06, alphas=GRID5)
        res = sweep_permutation_test(X, Y, sw, n_permutations=19, min_shift_s=0.5,
                                     random_state=rng, alpha=0.06)  # fmt: skip
        hits += bool(np.any(res.p_fwe <= 0.05))
    se = np.sqrt(0.05 * 0.95 / n_sim)
    assert abs(hits / n_sim - 0.05) <= 3 * se, hits / n_sim


def test_nested_unsupported_paths_name_the_fix():
    rng = np.random.default_rng(1)
    X, Y = _null_subject(rng)
    sw = univariate_sweep(X, Y, sfreq=SFREQ, tmin=0.0, tmax=0.06, alphas=[1.0, 10.0])
    for kw in (dict(null="mismatch"), dict(device="torch-cpu"), dict(rank_tol=1e-4)):
        with pytest.raises(ValueError, match=r'alpha_selection="nested".*pass\s+'
                           r'alpha_selection="observed"'):  # fmt: skip
            sweep_permutation_test(X, Y, sw, n_permutations=19, alpha=0.1, **kw)
    with pytest.raises(ValueError, match="alpha_selection"):
        sweep_permutation_test(X, Y, sw, n_permutations=19, alpha=0.1, alpha_selection="x")


@pytest.mark.parametrize("seed", range(20))
def test_gpd_pvalue_gaussian_tail(seed):
    """Standard normal null of 10,000 values: at a true p of 1e-5 (empirical floor 1e-4)
    the GPD p-value is within a factor 0.5-15 of it (measured over 100 nulls: 0.8-12.4,
    median 3.4); where >= 10 null values reach the observed value, it is empirical."""
    null = np.random.default_rng(seed).standard_normal(10_000)
    p = gpd_pvalue(null, norm.isf(1e-5))
    assert 0.5 <= p / 1e-5 <= 15, p
    x = norm.isf(1e-2)
    assert gpd_pvalue(null, x) == (1 + np.sum(null >= x)) / 10_001
    p3 = gpd_pvalue(null, norm.isf(1e-3))  # ~10 exceedances: either way close to 1e-3
    assert 0.2 <= p3 / 1e-3 <= 5


def test_gpd_tail_in_permutation_test():
    """tail='gpd': a planted effect gets p below the floor, nulls keep empirical p;
    BH then rejects it where the empirical p-values cannot."""
    rng = np.random.default_rng(3)
    X, Y = _null_subject(rng, n_times=(400, 420, 410), n_feat=5, n_ch=6)
    for x, y in zip(X, Y):
        y[:, 2] += 1.5 * np.roll(x[:, 1], 1)
    sw = univariate_sweep(X, Y, sfreq=SFREQ, tmin=0.0, tmax=0.06, alphas=[10.0])
    kw = dict(n_permutations=999, min_shift_s=0.5, random_state=0, return_null=True)
    emp = sweep_permutation_test(X, Y, sw, **kw)
    gpd = sweep_permutation_test(X, Y, sw, tail="gpd", **kw)
    floor = 1 / 1000
    assert emp.p_uncorrected[1, 2] == floor and emp.p_fwe[1, 2] == floor
    assert gpd.p_uncorrected[1, 2] < floor / 10 and gpd.p_fwe[1, 2] < floor / 10
    # tests with >= 10 exceedances are untouched
    many = (emp.null >= emp.r).sum(0) >= 10
    np.testing.assert_array_equal(gpd.p_uncorrected[many], emp.p_uncorrected[many])
    assert gpd.provenance["tail"] == "gpd" and gpd.provenance["n_gpd"] >= 1
    np.testing.assert_allclose(gpd.p_fdr, fdr_correction(gpd.p_uncorrected))
    ref = gpd_pvalue(gpd.null[:, 1, 2], gpd.r[1, 2])
    assert gpd.p_uncorrected[1, 2] == pytest.approx(ref, rel=1e-12)
    with pytest.raises(ValueError, match="'tail'"):
        sweep_permutation_test(X, Y, sw, n_permutations=19, alpha=0.1, tail="pareto")
    with pytest.raises(ValueError, match=r'tail="gpd" needs at least 300 permutations.*got 199'):
        sweep_permutation_test(X, Y, sw, n_permutations=199, tail="gpd")


def test_fdr_floor_warning(caplog):
    """Tests at the permutation floor that BH cannot reject: say how many permutations
    it would take (log from the test, warning from fdr_correction)."""
    rng = np.random.default_rng(4)
    X, Y = _null_subject(rng, n_times=(300, 310, 320), n_feat=6, n_ch=8)
    for x, y in zip(X, Y):
        y[:, 0] += 2.0 * np.roll(x[:, 0], 1)
    sw = univariate_sweep(X, Y, sfreq=SFREQ, tmin=0.0, tmax=0.06, alphas=[10.0])
    with caplog.at_level(logging.WARNING, logger="neuro_sae"):
        res = sweep_permutation_test(X, Y, sw, n_permutations=39, min_shift_s=0.5,
                                     random_state=0)  # fmt: skip
    m, n_floor = 48, int(np.sum(res.p_uncorrected == 1 / 40))
    assert 1 <= n_floor < 48 * (1 / 40) / 0.05
    need = int(np.ceil(m / (n_floor * 0.05))) - 1
    msg = f"{n_floor} of {m} tests .* would need at least {need} permutations"
    assert any(
        __import__("re").search(msg, r.getMessage()) for r in caplog.records
    ), caplog.text
    with pytest.warns(UserWarning, match=msg):
        fdr_correction(res.p_uncorrected, n_permutations=39, q=0.05)
    p = np.full(10, 0.5)
    p[0] = 1 / 1001  # 1/1001 <= 1 * 0.05 / 10: BH can reject, no warning
    fdr_correction(p, n_permutations=1000)


def _count_thread_starts(monkeypatch):
    starts = []
    orig = threading.Thread.start

    def start(self, *a, **k):
        starts.append(self.name)
        return orig(self, *a, **k)

    monkeypatch.setattr(threading.Thread, "start", start)
    return starts


def test_n_jobs_no_hidden_threads(monkeypatch):
    """n_jobs=1 (and None) start no thread; BLAS is single-threaded inside; n_jobs=2
    (or a joblib parallel_config) gives identical results."""
    import joblib
    from threadpoolctl import threadpool_info

    from neuro_sae.stats import _refit

    rng = np.random.default_rng(5)
    X, Y = _null_subject(rng, n_feat=4)
    sw = univariate_sweep(X, Y, sfreq=SFREQ, tmin=0.0, tmax=0.06, alphas=GRID5)
    blas = []
    orig = _refit._feature_null

    def spy(*a, **k):
        blas.extend(i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas")
        return orig(*a, **k)

    monkeypatch.setattr(_refit, "_feature_null", spy)
    starts = _count_thread_starts(monkeypatch)
    kw = dict(n_permutations=19, alpha=0.1, random_state=0, return_null=True, chunk_size=2)
    one = sweep_permutation_test(X, Y, sw, n_jobs=1, **kw)
    default = sweep_permutation_test(X, Y, sw, **kw)
    assert starts == [] and threading.active_count() >= 1
    assert blas and set(blas) == {1}
    two = sweep_permutation_test(X, Y, sw, n_jobs=2, **kw)
    assert len(starts) >= 1
    with joblib.parallel_config(n_jobs=2):
        cfg = sweep_permutation_test(X, Y, sw, **kw)
    assert cfg.provenance["n_jobs"] == 2 and one.provenance["n_jobs"] == 1
    for res in (default, two, cfg):
        np.testing.assert_array_equal(res.null, one.null)
        np.testing.assert_array_equal(res.p_fwe, one.p_fwe)
    with pytest.raises(ValueError, match="n_jobs=0"):
        sweep_permutation_test(X, Y, sw, n_jobs=0, **kw)


def _subject_sweeps(n_sub=3, **over):
    sweeps = []
    for s in range(n_sub):
        rng = np.random.default_rng(10 + s)
        X, Y = _null_subject(rng, n_feat=3, n_ch=4)
        kw = dict(sfreq=SFREQ, tmin=0.0, tmax=0.06, alphas=[10.0],
                  feature_names=["1031", "17", "4090"], ch_names=["Fz", "Cz", "Pz", "Oz"])  # fmt: skip
        if s == n_sub - 1:
            kw.update(over)
        sweeps.append(univariate_sweep(X, Y, **kw))
    return sweeps


def test_group_tables_keep_names(tmp_path):
    """Names given (or taken from the sweeps) are in the table, never f0/ch0; per-lag
    statistics get a time column; all survive save/read."""
    sweeps = _subject_sweeps()
    rng = np.random.default_rng(0)
    nulls = [rng.standard_normal((50, 3, 4)) * 0.05 for _ in sweeps]
    res = group_permutation_test(sweeps, nulls, n_permutations=200, random_state=0,
                                 labels=["sub-01", "sub-02", "sub-03"])  # fmt: skip
    df = res.to_frame()
    assert list(df["feature"].unique()) == ["1031", "17", "4090"]
    assert list(df["channel"].unique()) == ["Fz", "Cz", "Pz", "Oz"]
    r = np.stack([sw.r for sw in sweeps])
    same = group_permutation_test(r, nulls, n_permutations=200, random_state=0,
                                  feature_names=["1031", "17", "4090"],
                                  ch_names=["Fz", "Cz", "Pz", "Oz"])  # fmt: skip
    np.testing.assert_array_equal(same.p_fwe, res.p_fwe)
    assert same.to_frame().equals(df)
    back = read_group_result(res.save(tmp_path / "group.npz"))
    assert back.to_frame().equals(df)
    # per-lag values (kernels): features x channels x lags, times named in the table
    k = np.stack([sw.coef for sw in sweeps])  # (S, F, C, L)
    times = sweeps[0].times
    kr = group_permutation_test(k, method="sign-flip", n_permutations=8, alpha=0.2,
                                feature_names=sweeps[0].feature_names,
                                ch_names=sweeps[0].ch_names, times=times)  # fmt: skip
    kdf = kr.to_frame()
    assert kr.statistic.shape == (3, 4, len(times)) and len(kdf) == 3 * 4 * len(times)
    row = kdf.iloc[len(times) + 2]  # feature 0, channel 1 ("Cz"), lag 2
    assert (row["feature"], row["channel"], row["time"]) == ("1031", "Cz", times[2])
    assert row["statistic"] == kr.statistic[0, 1, 2]
    back = read_group_result(kr.save(tmp_path / "kernels.npz"))
    np.testing.assert_array_equal(back.times, times)
    assert back.to_frame().equals(kdf)
    with pytest.raises(ValueError, match="times is None"):
        group_permutation_test(k, method="sign-flip", n_permutations=8, alpha=0.2)


@pytest.mark.parametrize(
    "over, what",
    [
        (dict(tmax=0.08), r"lags 0 \.\.\. 0\.08 s \(5 delays\) instead of 0 \.\.\. 0\.06 s"),
        (dict(sfreq=64.0), "sfreq 64 Hz instead of 50 Hz"),
        (dict(feature_names=["1031", "18", "4090"]),
         "feature names differ at 1 position.*'18' instead of '17'"),
        (dict(ch_names=["Fz", "Cz", "Pz", "O2"]), "channel names differ.*'O2' instead of 'Oz'"),
    ],
)
def test_check_sweeps_compatible(over, what):
    sweeps = _subject_sweeps(**over)
    labels = ["sub-01", "sub-02", "sub-07"]
    with pytest.raises(ValueError, match=f"The sweep of sub-07 does not match the sweep of "
                       f"sub-01: .*{what}.*Refit the sweeps"):  # fmt: skip
        check_sweeps_compatible(sweeps, labels)
    with pytest.raises(ValueError, match="sub-07"):
        group_permutation_test(sweeps, method="sign-flip", n_permutations=8, alpha=0.2,
                               labels=labels)  # fmt: skip
    assert check_sweeps_compatible(sweeps[:2], labels[:2]) == sweeps[:2]
