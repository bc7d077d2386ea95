"""The shared statistics give honest intervals, and claims rows carry verdicts that respect them."""

import math

import numpy as np
import pyarrow as pa
import pytest

from ftlab import claims, stats


def correlated_arms(seeds=5, examples=400, p_a=0.6, p_b=0.5, seed=0):
    """Arms on the same examples: a shared per-example difficulty, a small per-seed jitter."""
    rng = np.random.default_rng(seed)
    difficulty = rng.random(examples)
    jitter = rng.normal(0, 0.02, size=(seeds, examples))
    a = (difficulty + jitter < p_a).astype(float)
    b = (difficulty + jitter < p_b).astype(float)
    return a, b


def estimate(low, high, effect=None, n=100, seeds=1, p=0.01, level=0.95):
    effect = (low + high) / 2 if effect is None else effect
    return stats.Estimate(effect, low, high, n, seeds, p, "test", level)


# proportion_ci


def test_wilson_at_zero_matches_the_hand_value():
    z2 = 1.959963984540054**2
    low, high = stats.proportion_ci(0, 10)
    assert low == 0.0
    assert high == pytest.approx(z2 / (10 + z2), abs=1e-9)
    assert high == pytest.approx(0.2775, abs=1e-4)


def test_wilson_at_all_successes_has_width_and_contains_the_truth():
    low, high = stats.proportion_ci(10, 10)
    assert high == 1.0 and low == pytest.approx(1 - 0.2775, abs=1e-4)
    assert high - low > 0
    low, high = stats.proportion_ci(0, 50)
    assert low <= 0.0 < high  # true p = 0 is inside, and the interval is not a point


def test_clopper_pearson_at_zero():
    low, high = stats.proportion_ci(0, 10, method="exact")
    assert low == 0.0
    assert high == pytest.approx(1 - 0.025 ** (1 / 10), abs=1e-9)


def test_exact_is_wider_than_wilson_and_empty_is_nan():
    wilson, exact = stats.proportion_ci(3, 40), stats.proportion_ci(3, 40, method="exact")
    assert exact[1] - exact[0] > wilson[1] - wilson[0]
    assert all(math.isnan(v) for v in stats.proportion_ci(0, 0))
    with pytest.raises(ValueError):
        stats.proportion_ci(1, 2, method="wald")


# paired_bootstrap


def test_paired_bootstrap_covers_the_true_difference_and_excludes_zero():
    a, b = correlated_arms()
    est = stats.paired_bootstrap(a, b, resamples=2000, seed=0)
    assert est.low < 0.1 < est.high
    assert est.low > 0
    assert est.effect == pytest.approx(a.mean() - b.mean())
    assert (est.n_examples, est.n_seeds) == (400, 5)
    assert est.method == stats.BOOTSTRAP
    assert 0 < est.p_value < 0.01


def test_pairing_narrows_the_interval_versus_independent_resampling():
    a, b = correlated_arms(seeds=1, examples=400)
    paired = stats.paired_bootstrap(a, b, resamples=2000, seed=0)
    rng = np.random.default_rng(0)
    reps = [
        a[0, rng.integers(0, 400, 400)].mean() - b[0, rng.integers(0, 400, 400)].mean()
        for _ in range(2000)
    ]
    low, high = np.quantile(reps, [0.025, 0.975])
    # sd of a difference of 0/1 scores: sqrt(0.1 * 0.9) paired vs sqrt(0.24 + 0.25) unpaired
    assert (paired.high - paired.low) < 0.6 * (high - low)


def test_a_single_base_row_is_paired_with_every_seed():
    a, b = correlated_arms(seeds=4)
    base = b[:1]
    est = stats.paired_bootstrap(a, base, resamples=1000, seed=0)
    assert est.n_seeds == 4
    assert est.effect == pytest.approx(a.mean() - base.mean())
    assert est.low < est.effect < est.high
    flipped = stats.paired_bootstrap(base, a, resamples=1000, seed=0)
    assert flipped.effect == pytest.approx(-est.effect)
    assert (flipped.low, flipped.high) == pytest.approx((-est.high, -est.low))


def test_unequal_seed_counts_resample_each_arm_on_its_own():
    a, b = correlated_arms(seeds=3)
    est = stats.paired_bootstrap(a, b[:2], resamples=1000, seed=0)
    assert est.n_seeds == 3
    assert est.low < est.effect < est.high


def test_seed_variation_widens_the_interval():
    rng = np.random.default_rng(0)
    difficulty = rng.random(400)
    shifts = np.array([-0.15, 0.15, -0.1, 0.1, 0.0])[:, None]
    noisy = (difficulty < 0.6 + shifts).astype(float)
    steady = (difficulty < np.full((5, 1), 0.6)).astype(float)
    base = (difficulty < 0.5).astype(float)[None]
    wide = stats.paired_bootstrap(noisy, base, resamples=2000, seed=0)
    narrow = stats.paired_bootstrap(steady, base, resamples=2000, seed=0)
    assert wide.high - wide.low > 2 * (narrow.high - narrow.low)


def test_all_ones_falls_back_to_newcombe_with_nonzero_width():
    ones = np.ones((3, 200))
    est = stats.paired_bootstrap(ones, ones, resamples=500, seed=0)
    assert est.method == stats.NEWCOMBE
    assert est.low < 0 < est.high
    assert est.effect == 0.0 and est.p_value == 1.0


def test_all_discordant_one_way_falls_back_to_newcombe_and_excludes_zero():
    est = stats.paired_bootstrap(np.ones(50), np.zeros(50), resamples=500, seed=0)
    assert est.method == stats.NEWCOMBE
    assert 0 < est.low < 1.0 <= est.high + 1e-12
    assert est.p_value < 1e-10  # McNemar exact: 50 discordant pairs, all one way


def test_newcombe_reference_tables():
    # Bentur et al. (2009), paired 2x2 [[1, 1], [7, 12]]: estimate -6/21
    low, high = stats.newcombe_paired_ci(1, 1, 7, 12)
    assert (low, high) == pytest.approx((-0.5069, -0.0256), abs=1e-4)
    # no discordant pairs: symmetric around 0, still of positive width
    low, high = stats.newcombe_paired_ci(100, 0, 0, 0)
    assert low == pytest.approx(-high) and high > 0


def test_non_binary_constant_difference_is_marked_degenerate():
    scores = np.full((2, 30), 0.7)
    est = stats.paired_bootstrap(scores, scores - 0.2, resamples=500, seed=0)
    assert est.method == stats.DEGENERATE
    assert est.low == pytest.approx(0.2) and est.high == pytest.approx(0.2)


def test_same_seed_same_answer_and_other_seed_differs():
    a, b = correlated_arms()
    one = stats.paired_bootstrap(a, b, resamples=500, seed=7)
    assert stats.paired_bootstrap(a, b, resamples=500, seed=7) == one
    assert stats.paired_bootstrap(a, b, resamples=500, seed=8) != one


def test_bad_inputs():
    with pytest.raises(ValueError, match="share examples"):
        stats.paired_bootstrap(np.ones((2, 5)), np.ones((2, 6)), resamples=10, seed=0)
    with pytest.raises(ValueError, match="NaN"):
        stats.paired_bootstrap([1.0, np.nan], [1.0, 0.0], resamples=10, seed=0)
    empty = stats.paired_bootstrap(np.ones((2, 0)), np.ones((2, 0)), resamples=10, seed=0)
    assert empty.n_examples == 0 and math.isnan(empty.effect)


def test_lower_level_gives_a_nested_narrower_interval():
    a, b = correlated_arms()
    wide = stats.paired_bootstrap(a, b, resamples=2000, seed=0)
    narrow = stats.paired_bootstrap(a, b, resamples=2000, seed=0, level=stats.TOST_LEVEL)
    assert wide.low <= narrow.low < narrow.high <= wide.high
    assert narrow.level == 0.90


# mean_ci


def test_mean_ci_covers_the_mean_of_a_continuous_score():
    rng = np.random.default_rng(0)
    x = rng.beta(2, 3, size=(4, 300))  # true mean 0.4
    est = stats.mean_ci(x, resamples=2000, seed=0)
    assert est.low < 0.4 < est.high
    assert est.high - est.low < 0.05
    assert est.method == stats.BOOTSTRAP
    null = stats.mean_ci(x, resamples=2000, seed=0, null=0.4)
    assert null.p_value > 0.05 and est.p_value < 0.01


def test_mean_ci_of_all_ones_uses_wilson():
    est = stats.mean_ci(np.ones((2, 50)), resamples=500, seed=0)
    assert est.method == stats.WILSON
    assert est.low == pytest.approx(stats.proportion_ci(100, 100)[0]) and est.high == 1.0


# tost and holm


def test_tost_needs_the_whole_interval_inside_the_margin():
    assert stats.tost(-0.01, 0.02, 0.03)
    assert not stats.tost(-0.01, 0.04, 0.03)
    assert not stats.tost(-0.03, 0.0, 0.03)  # the margin itself is not inside
    assert stats.equivalent(estimate(-0.01, 0.01), 0.02)


def test_holm_matches_a_hand_example():
    assert stats.holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])


def test_holm_caps_at_one_and_passes_nan_through():
    out = stats.holm([0.5, math.nan, 0.01, 0.9])
    assert math.isnan(out[1])
    assert out[0] == pytest.approx(1.0) and out[3] == pytest.approx(1.0)
    assert out[2] == pytest.approx(0.03)  # m = 3: the NaN is not counted
    assert stats.holm([]) == []


# verdict


@pytest.mark.parametrize(
    ("low", "high", "direction", "expected"),
    [
        (0.01, 0.05, "greater", "supported"),
        (-0.05, -0.01, "greater", "contradicted"),
        (-0.01, 0.05, "greater", "inconclusive"),
        (-0.05, -0.01, "less", "supported"),
        (0.01, 0.05, "less", "contradicted"),
        (-0.05, 0.01, "less", "inconclusive"),
    ],
)
def test_directional_verdicts(low, high, direction, expected):
    verdict, reason = stats.verdict(estimate(low, high), direction=direction)
    assert verdict == expected
    assert f"[{low:.3f}, {high:.3f}]" in reason


def test_inconclusive_reason_says_the_interval_contains_zero():
    verdict, reason = stats.verdict(estimate(-0.012, 0.0456), direction="greater")
    assert verdict == "inconclusive"
    assert "contains 0" in reason and "[-0.012, 0.046]" in reason


def test_point_estimate_never_decides():
    verdict, _ = stats.verdict(estimate(-0.01, 0.05, effect=0.04), direction="greater")
    assert verdict == "inconclusive"


@pytest.mark.parametrize(
    ("low", "high", "expected"),
    [
        (-0.01, 0.015, "equivalent"),
        (0.03, 0.06, "contradicted"),
        (-0.08, -0.03, "contradicted"),
        (-0.01, 0.04, "inconclusive"),
    ],
)
def test_equal_verdicts(low, high, expected):
    est = estimate(low, high, level=0.90)
    assert stats.verdict(est, direction="equal", margin=0.02)[0] == expected


def test_not_tested_verdicts():
    nan = estimate(math.nan, math.nan, effect=math.nan)
    assert stats.verdict(nan, direction="greater")[0] == "not_tested"
    empty = estimate(0.1, 0.2, n=0)
    assert stats.verdict(empty, direction="greater")[0] == "not_tested"
    few, reason = stats.verdict(estimate(0.1, 0.2, n=5), direction="greater", min_n=20)
    assert few == "not_tested" and "5 examples" in reason


def test_verdict_rejects_a_missing_or_stray_margin():
    with pytest.raises(ValueError):
        stats.verdict(estimate(0, 0.1), direction="equal")
    with pytest.raises(ValueError):
        stats.verdict(estimate(0, 0.1), direction="greater", margin=0.1)
    with pytest.raises(ValueError):
        stats.verdict(estimate(0, 0.1), direction="up")


# claims


UP = claims.Claim("cot_helps", "CoT beats direct answers.", "cot - direct", "greater")
SAME = claims.Claim("same_acc", "Accuracy is unchanged.", "after - before", "equal", 0.05)


def test_row_carries_the_verdict_and_numbers():
    r = claims.row("s", UP, "gsm8k", estimate(0.02, 0.08, seeds=3), ["m1", "m2"])
    assert r["verdict"] == "supported"
    assert (r["ci_low"], r["ci_high"], r["n"], r["n_seeds"]) == (0.02, 0.08, 300, 3)
    assert r["models"] == "m1,m2" and math.isnan(r["p_holm"])
    assert [name for name, _ in claims.COLUMNS] == list(r)


def test_with_holm_downgrades_what_does_not_survive_correction():
    rows = [
        claims.row("s", UP, "t1", estimate(0.01, 0.05, p=0.01), "m"),
        claims.row("s", UP, "t2", estimate(0.01, 0.05, p=0.04), "m"),
        claims.row("s", UP, "t3", estimate(-0.01, 0.05, p=0.03), "m"),
        claims.not_tested_row("s", UP, "t4", "No run for this task."),
    ]
    out = claims.with_holm(rows)
    assert [r["p_holm"] for r in out[:3]] == pytest.approx([0.03, 0.06, 0.06])
    assert math.isnan(out[3]["p_holm"])
    assert [r["verdict"] for r in out] == [
        "supported",
        "inconclusive",
        "inconclusive",
        "not_tested",
    ]
    assert "Holm-adjusted p = 0.060" in out[1]["reason"] and "supported" in out[1]["reason"]
    assert out[2]["reason"] == rows[2]["reason"]  # already inconclusive: untouched
    assert rows[1]["verdict"] == "supported"  # the input rows are not modified


def test_with_holm_keeps_equivalence_and_refuses_mixed_studies():
    eq = claims.row("s", SAME, "t", estimate(-0.01, 0.01, p=0.9, level=0.9), "m")
    assert claims.with_holm([eq])[0]["verdict"] == "equivalent"
    other = claims.row("other", UP, "t", estimate(0.01, 0.05), "m")
    with pytest.raises(ValueError, match="one study"):
        claims.with_holm([eq, other])


def test_claim_validates_direction_and_margin():
    with pytest.raises(ValueError):
        claims.Claim("x", "x", "x", "bigger")
    with pytest.raises(ValueError):
        claims.Claim("x", "x", "x", "equal")
    with pytest.raises(ValueError):
        claims.Claim("x", "x", "x", "greater", 0.1)


def test_schema_accepts_rows_from_a_real_estimate():
    a, b = correlated_arms()
    est = stats.paired_bootstrap(a, b, resamples=500, seed=0)
    rows = claims.with_holm(
        [
            claims.row("s", UP, "t", est, "m"),
            claims.not_tested_row("s", SAME, "t", "Not measured.", models="m"),
        ]
    )
    table = pa.Table.from_pylist(rows, schema=claims.SCHEMA)
    assert table.schema == claims.SCHEMA and table.num_rows == 2
    assert claims.table(rows).column("verdict").to_pylist() == ["supported", "not_tested"]
    assert set(claims.VERDICTS) == {
        "supported",
        "contradicted",
        "equivalent",
        "inconclusive",
        "not_tested",
    }
