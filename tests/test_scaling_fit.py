"""data_scaling fits: known exponents are recovered, flat data is called flat, intervals are honest."""

import warnings

import numpy as np
import pandas as pd
import pytest

from ftlab.studies.data_scaling import fit as F

NS = 16 * 2 ** np.arange(7)  # 16, 32, ..., 1024
SEEDS, EXAMPLES = 5, 300


def frame_from(errors):
    """Rows (n, seed, example_id, error) from an (N, seed, example) array of 0/1 errors."""
    index = pd.MultiIndex.from_product(
        [NS, range(SEEDS), [f"ex{i:03d}" for i in range(EXAMPLES)]],
        names=["n", "seed", "example_id"],
    )
    return pd.DataFrame({"error": errors.ravel().astype(float)}, index=index).reset_index()


def synthetic(rate, rng_seed=0):
    """Binomial noise around a known error curve: each (n, seed, example) errs with rate(n)."""
    rng = np.random.default_rng(rng_seed)
    p = np.broadcast_to(rate(NS.astype(float)), NS.shape)
    return frame_from(rng.random((len(NS), SEEDS, EXAMPLES)) < p[:, None, None])


def mean_error(frame):
    means = frame.groupby("n")["error"].mean()
    return means.index.to_numpy(), means.to_numpy()


@pytest.fixture(scope="module")
def power_data():
    return synthetic(lambda n: 0.9 * n**-0.35)


@pytest.fixture(scope="module")
def offset_data():
    return synthetic(lambda n: 0.9 * n**-0.35 + 0.1, rng_seed=1)


def test_exact_curves_are_recovered():
    n = NS.astype(float)
    pl = F.fit(n, 0.9 * n**-0.35)
    assert pl.params == pytest.approx({"a": 0.9, "b": 0.35})
    assert pl.r2 == pytest.approx(1.0) and pl.converged and pl.n_points == 7
    off = F.fit(n, 0.9 * n**-0.35 + 0.1, "power_law_offset")
    assert off.params == pytest.approx({"a": 0.9, "b": 0.35, "c": 0.1}, rel=1e-4)
    assert F.fit(n, np.full(7, 0.4), "plateau").params == pytest.approx({"c": 0.4})


def test_bootstrap_interval_of_b_contains_the_true_exponent(power_data):
    table = F.bootstrap_fit(power_data, model="power_law", resamples=1000, seed=0)
    assert list(table.index) == ["a", "b", "r2"]
    b = table.loc["b"]
    assert b["lo"] <= 0.35 <= b["hi"]
    assert b["lo"] > 0  # the error does fall with N
    assert b["estimate"] == pytest.approx(0.35, abs=0.05)
    assert b["lo"] <= b["estimate"] <= b["hi"]
    assert table["resamples"].iloc[0] == table["converged"].iloc[0] == 1000
    assert table.loc["r2", "lo"] <= table.loc["r2", "hi"] <= 1


def test_offset_model_recovers_the_irreducible_error(offset_data):
    table = F.bootstrap_fit(offset_data, model="power_law_offset", resamples=1000, seed=0)
    assert list(table.index) == ["a", "b", "c", "r2"]
    c = table.loc["c"]
    assert c["lo"] <= 0.1 <= c["hi"]
    assert 0 <= c["lo"]
    assert table.loc["b", "lo"] <= 0.35 <= table.loc["b", "hi"]


def test_flat_data_prefers_the_plateau():
    """A statistical property, so checked over 10 draws: a flat curve shows a chance trend now
    and then (AIC prefers the power law when the likelihood-ratio statistic exceeds 4, ~5%)."""
    plateau_wins = b_covers_zero = 0
    for rng_seed in range(10):
        data = synthetic(lambda n: np.full(n.shape, 0.4), rng_seed=100 + rng_seed)
        table = F.compare_models(*mean_error(data))
        assert list(table.columns) == ["model", "params", "aic", "delta_aic", "r2", "converged"]
        assert sorted(table["model"]) == sorted(F.MODELS)
        assert table["aic"].is_monotonic_increasing and table["delta_aic"].iloc[0] == 0
        plateau_wins += table.set_index("model").loc["plateau", "delta_aic"] < 2
        b = F.bootstrap_fit(data, model="power_law", resamples=500, seed=rng_seed).loc["b"]
        b_covers_zero += b["lo"] <= 0 <= b["hi"]
    assert plateau_wins >= 8 and b_covers_zero >= 8, (plateau_wins, b_covers_zero)


def test_interval_of_b_covers_the_truth_in_most_draws():
    """The 95% interval is not much too narrow: it holds 0.35 in at least 16 of 20 draws."""
    covered = 0
    for k in range(20):
        data = synthetic(lambda n: 0.9 * n**-0.35, rng_seed=200 + k)
        b = F.bootstrap_fit(data, model="power_law", resamples=500, seed=k).loc["b"]
        covered += b["lo"] <= 0.35 <= b["hi"]
    assert covered >= 16, covered


def test_power_law_data_rejects_the_plateau(power_data):
    table = F.compare_models(*mean_error(power_data)).set_index("model")
    assert table.loc["plateau", "delta_aic"] > 10
    assert table.loc["power_law", "r2"] > 0.95


def test_holdout_predicts_the_largest_n(power_data):
    n = NS.astype(float)
    clean = F.holdout_error(n, 0.9 * n**-0.35)
    assert clean.n == 1024 and clean.fit.n_points == 6
    assert clean.predicted == pytest.approx(0.9 * 1024**-0.35)
    assert clean.abs_log_error < 1e-9 and clean.abs_error < 1e-9
    noisy = F.holdout_error(*mean_error(power_data))
    assert noisy.abs_log_error < 0.15
    assert noisy.abs_error == pytest.approx(abs(noisy.predicted - noisy.observed))
    offset = F.holdout_error(n, 0.9 * n**-0.35 + 0.1, "power_law_offset")
    assert offset.abs_log_error < 1e-3


def test_bootstrap_is_deterministic_for_a_seed(power_data):
    first = F.bootstrap_fit(power_data, model="power_law", resamples=200, seed=7)
    again = F.bootstrap_fit(power_data, model="power_law", resamples=200, seed=7)
    pd.testing.assert_frame_equal(first, again)
    other = F.bootstrap_fit(power_data, model="power_law", resamples=200, seed=8)
    assert not first[["lo", "hi"]].equals(other[["lo", "hi"]])
    pd.testing.assert_series_equal(first["estimate"], other["estimate"])


def test_too_few_points_raise_a_clear_error():
    with pytest.raises(ValueError, match="at least 3 distinct N; got 2"):
        F.fit([16, 32], [0.5, 0.4])
    with pytest.raises(ValueError, match="at least 3 distinct N; got 2"):
        F.fit([16, 16, 32], [0.5, 0.5, 0.4], "power_law_offset")
    with pytest.raises(ValueError, match=r"got 2 \(3 points in total\)"):
        F.holdout_error([16, 32, 64], [0.5, 0.4, 0.3])
    with pytest.raises(ValueError, match="unknown model"):
        F.fit(NS, np.full(7, 0.4), "exponential")


def test_zero_error_is_floored_not_logged():
    n = NS.astype(float)
    err = np.where(n >= 512, 0.0, 0.9 * n**-0.35)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for model in F.MODELS:
            result = F.fit(n, err, model)
            assert all(np.isfinite(v) for v in result.params.values()), model
            assert np.isfinite(result.aic) and np.isfinite(result.r2)
        table = F.bootstrap_fit(
            synthetic(lambda n: np.where(n >= 512, 0.0, 0.9 * n**-0.35)),
            model="power_law",
            resamples=100,
            seed=0,
        )
    assert np.isfinite(table[["estimate", "lo", "hi"]].to_numpy()).all()
    # the floor is what the zeros become, so it moves the fit
    assert F.fit(n, err, floor=1e-2).params["b"] < F.fit(n, err, floor=1e-4).params["b"]


def test_bootstrap_rejects_duplicate_rows(power_data):
    with pytest.raises(ValueError, match="one row per"):
        F.bootstrap_fit(pd.concat([power_data, power_data.head(1)]), resamples=10, seed=0)


def kinds_frame(rng_seed=3):
    """Format error vanishes by N=512 while reasoning error keeps falling as 0.5 * N**-0.3."""
    rng = np.random.default_rng(rng_seed)
    n = NS.astype(float)[:, None, None]
    p_format = np.where(n >= 512, 0.0, 0.6 * (16 / n) ** 2)
    p_reasoning = 0.5 * n**-0.3
    u = rng.random((len(NS), SEEDS, EXAMPLES))
    kind = np.where(u < p_format, "format_error", "correct")
    kind = np.where((u >= p_format) & (u < p_format + p_reasoning), "reasoning_error", kind)
    frame = frame_from(np.zeros(kind.shape))
    return frame.assign(kind=kind.ravel())


def test_by_error_type_pools_seeds_and_keeps_zero_rates():
    rates = F.by_error_type(kinds_frame())
    assert list(rates.columns) == ["n", "kind", "rate"]
    assert len(rates) == len(NS) * len(F.KINDS)
    assert rates.groupby("n")["rate"].sum().to_numpy() == pytest.approx(np.ones(len(NS)))
    wide = rates.pivot(index="n", columns="kind", values="rate")
    assert wide.loc[1024, "format_error"] == 0.0
    assert wide.loc[16, "format_error"] == pytest.approx(0.6, abs=0.05)
    with pytest.raises(ValueError, match="unknown kinds"):
        F.by_error_type(kinds_frame().assign(kind="timeout"))


def test_reasoning_error_still_falls_after_format_is_learned():
    rates = F.by_error_type(kinds_frame())
    ns, result = F.reasoning_after_format(rates, format_threshold=0.02)
    assert ns == [128, 256, 512, 1024]
    assert result.model == "power_law" and result.n_points == 4
    assert result.params["b"] == pytest.approx(0.3, abs=0.15)
    assert F.reasoning_after_format(rates, format_threshold=0.0) is None  # only 512 and 1024
