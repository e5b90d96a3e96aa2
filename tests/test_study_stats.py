"""The study's statistics against independent expectations: t tables and closed forms, hand-computed
intervals, Holm by its step-down definition, bootstrap cases whose answer is known, power by simulation."""

from __future__ import annotations

import math
import re
from statistics import NormalDist

import numpy as np
import pytest

from lipkit.metrics import scores_from_matrix
from lipkit.study_stats import (holm, holm_intervals, holm_level, miou_of, paired_bootstrap, paired_t_interval,
                                pooled_paired_bootstrap, seeds_needed, smallest_detectable, t_cdf, t_ppf, t_sf,
                                verdict)

# Published two-sided 95% (and one 80%) t quantiles, to 9 significant digits.
T_TABLE = [(0.975, 1, 12.7062047), (0.975, 2, 4.30265273), (0.975, 3, 3.18244631), (0.975, 4, 2.77644511),
           (0.975, 10, 2.22813885), (0.975, 30, 2.04227246), (0.8, 5, 0.91954378)]


# --- t distribution -------------------------------------------------------------------------------


@pytest.mark.parametrize("p, df, expected", T_TABLE)
def test_t_quantiles_match_the_table(p, df, expected):
    assert t_ppf(p, df) == pytest.approx(expected, rel=1e-8)
    assert t_ppf(1 - p, df) == pytest.approx(-expected, rel=1e-8)
    assert t_cdf(expected, df) == pytest.approx(p, abs=1e-8)


def test_a_wrong_t_value_fails_the_check():
    """The tolerance is tight enough to tell t from z and from a neighbouring df."""
    assert t_ppf(0.975, 10) != pytest.approx(NormalDist().inv_cdf(0.975), rel=1e-8)
    assert t_ppf(0.975, 10) != pytest.approx(2.20098516, rel=1e-8)  # t_{0.975, 11}
    assert t_ppf(0.975, 4) != pytest.approx(2.7764451 + 1e-6, rel=1e-8)


@pytest.mark.parametrize("x", [-1e6, -40.0, -3.0, -1.0, -0.2, 0.0, 0.5, 1.0, 7.5, 250.0])
def test_one_degree_of_freedom_is_cauchy(x):
    assert t_cdf(x, 1) == pytest.approx(0.5 + math.atan(x) / math.pi, abs=1e-12)


@pytest.mark.parametrize("x", [-6.0, -1.3, 0.0, 0.7, 2.5, 30.0])
def test_two_and_three_degrees_of_freedom_match_closed_forms(x):
    assert t_cdf(x, 2) == pytest.approx(0.5 + x / (2 * math.sqrt(2 + x * x)), abs=1e-12)
    s = x / math.sqrt(3)
    assert t_cdf(x, 3) == pytest.approx(0.5 + (s / (1 + s * s) + math.atan(s)) / math.pi, abs=1e-12)


@pytest.mark.parametrize("p", [1e-9, 0.001, 0.1, 0.4, 0.6, 0.975, 0.999999])
def test_two_degrees_of_freedom_quantile_closed_form(p):
    assert t_ppf(p, 2) == pytest.approx((2 * p - 1) / math.sqrt(2 * p * (1 - p)), rel=1e-9)


def test_large_df_approaches_the_normal():
    normal = NormalDist()
    for x in (-2.5, -1.0, 0.3, 1.96):
        assert t_cdf(x, 1e6) == pytest.approx(normal.cdf(x), abs=1e-6)
        assert t_cdf(x, 1e6) != normal.cdf(x) or x == 0  # still a t distribution, not a switch to the normal
        assert t_cdf(x, math.inf) == normal.cdf(x)
    assert t_ppf(0.975, 1e6) == pytest.approx(normal.inv_cdf(0.975), abs=1e-5)
    gaps = [t_ppf(0.975, df) - normal.inv_cdf(0.975) for df in (5, 20, 100, 1000)]
    assert all(a > b > 0 for a, b in zip(gaps, gaps[1:]))  # heavier tails, shrinking towards z


@pytest.mark.parametrize("df", [1, 2.5, 4, 9, 60, 5000])
def test_quantile_inverts_the_cdf(df):
    for x in (-25.0, -3.0, -0.8, 0.0, 0.01, 1.5, 4.0, 12.0):
        if t_cdf(x, df) < 1 - 1e-6:  # an upper tail that rounds to 1 in double has no quantile left
            assert t_ppf(t_cdf(x, df), df) == pytest.approx(x, rel=1e-8, abs=1e-10)
        assert t_ppf(t_sf(abs(x), df), df) == pytest.approx(-abs(x), rel=1e-8, abs=1e-10)  # far tails too
        assert t_cdf(-x, df) == pytest.approx(1 - t_cdf(x, df), abs=1e-14)
        assert t_sf(x, df) == pytest.approx(1 - t_cdf(x, df), abs=1e-14)


def test_far_tail_and_edges():
    assert t_ppf(1e-12, 1) == pytest.approx(-1 / math.tan(math.pi * 1e-12), rel=1e-8)  # Cauchy: -cot(pi p)
    assert t_ppf(0.0, 3) == -math.inf and t_ppf(1.0, 3) == math.inf and t_ppf(0.5, 3) == 0.0
    with pytest.raises(ValueError):
        t_ppf(1.2, 3)
    with pytest.raises(ValueError):
        t_cdf(1.0, 0)


# --- paired t interval ----------------------------------------------------------------------------


def _t3_cdf(t: float) -> float:
    """Closed form of the t CDF with 3 degrees of freedom (independent of the incomplete beta)."""
    s = t / math.sqrt(3)
    return 0.5 + (s / (1 + s * s) + math.atan(s)) / math.pi


def test_paired_interval_by_hand():
    iv = paired_t_interval([1, 2, 3, 4])
    sd = math.sqrt(5 / 3)  # squared deviations 2.25 + 0.25 + 0.25 + 2.25 = 5, over n - 1 = 3
    half = 3.18244631 * sd / 2  # t_{0.975, 3} * sd / sqrt(4)
    assert (iv.mean, iv.n, iv.df, iv.level) == (2.5, 4, 3, 0.95)
    assert iv.sd == pytest.approx(sd, rel=1e-12)
    assert (iv.lower, iv.upper) == (pytest.approx(2.5 - half, rel=1e-8), pytest.approx(2.5 + half, rel=1e-8))
    assert iv.p_value == pytest.approx(2 * (1 - _t3_cdf(2.5 / (sd / 2))), rel=1e-9)  # ~0.0305
    assert iv.half_width != pytest.approx(1.96 * sd / 2, rel=1e-3)  # a z interval would be wrong here
    assert iv.excludes_zero and iv.note == ""


def test_interval_excludes_zero_exactly_when_p_is_below_one_minus_level():
    diffs = [1, 2, 3, 4]
    p = paired_t_interval(diffs).p_value
    assert paired_t_interval(diffs, level=1 - p * 1.01).excludes_zero
    assert not paired_t_interval(diffs, level=1 - p * 0.99).excludes_zero


def test_p_value_is_symmetric_and_interval_mirrors():
    a, b = paired_t_interval([0.3, -0.1, 0.5, 0.2]), paired_t_interval([-0.3, 0.1, -0.5, -0.2])
    assert a.p_value == pytest.approx(b.p_value, rel=1e-12)
    assert (a.lower, a.upper) == (pytest.approx(-b.upper), pytest.approx(-b.lower))
    assert paired_t_interval([-1, 1, -2, 2]).p_value == pytest.approx(1.0)


@pytest.mark.parametrize("diffs", [[0.7], []])
def test_fewer_than_two_seeds_give_nan_with_a_reason(diffs):
    iv = paired_t_interval(diffs)
    assert math.isnan(iv.lower) and math.isnan(iv.upper) and math.isnan(iv.p_value) and math.isnan(iv.sd)
    assert "at least 2 seeds" in iv.note and not iv.excludes_zero


def test_zero_spread_and_bad_input():
    iv = paired_t_interval([0.4, 0.4, 0.4])
    assert iv.lower == iv.upper == iv.mean == pytest.approx(0.4) and "zero spread" in iv.note
    assert iv.p_value == 0.0 and paired_t_interval([0.0, 0.0]).p_value == 1.0
    with pytest.raises(ValueError):
        paired_t_interval([0.1, math.nan])


# --- Holm -----------------------------------------------------------------------------------------


def test_holm_by_hand():
    res = holm({"paper": 0.01, "soft": 0.04, "shuffled": 0.03})
    # sorted: 0.01 (x3 = 0.03), 0.03 (x2 = 0.06), 0.04 (x1 = 0.04, raised to 0.06 by monotonicity)
    assert {a: r.adjusted for a, r in res.items()} == pytest.approx({"paper": 0.03, "soft": 0.06, "shuffled": 0.06})
    assert {a: r.rank for a, r in res.items()} == {"paper": 1, "soft": 3, "shuffled": 2}
    assert {a: r.reject for a, r in res.items()} == {"paper": True, "soft": False, "shuffled": False}
    assert list(res) == ["paper", "soft", "shuffled"]  # the caller's order
    capped = holm({"a": 0.6, "b": 0.7, "c": 0.9})
    assert [capped[a].adjusted for a in "abc"] == [1.0, 1.0, 1.0]
    assert holm_level(1, 3) == pytest.approx(0.05 / 3) and holm_level(3, 3) == pytest.approx(0.05)


def _holm_step_down(p: dict[str, float], alpha: float) -> set[str]:
    """Holm's procedure as published: walk up the sorted p-values, stop at the first p_(j) > alpha/(m-j+1)."""
    rejected = set()
    for j, arm in enumerate(sorted(p, key=p.get), start=1):
        if p[arm] > alpha / (len(p) - j + 1):
            break
        rejected.add(arm)
    return rejected


def test_holm_agrees_with_the_step_down_procedure_and_is_monotone():
    rng = np.random.default_rng(3)
    for _ in range(300):
        m = int(rng.integers(1, 8))
        p = {f"arm{i}": float(v) for i, v in enumerate(rng.uniform(0, 0.08, m) ** rng.uniform(0.5, 2))}
        res = holm(p)
        assert {a for a, r in res.items() if r.reject} == _holm_step_down(p, 0.05)
        adjusted = [r.adjusted for r in sorted(res.values(), key=lambda r: r.rank)]
        assert adjusted == sorted(adjusted) and all(p[a] <= r.adjusted <= 1 for a, r in res.items())


def test_holm_interval_levels_agree_with_the_decisions():
    # Holm rejects nothing (0.02 > 0.05/3); the rank-2 arm would get 97.5% under the naive rule, where
    # p = 0.024 < 0.025 would exclude 0. The consistent level stays at step 1's 1 - 0.05/3.
    res = holm({"a": 0.02, "b": 0.024, "c": 0.5})
    assert not any(r.reject for r in res.values())
    assert all(r.interval_alpha == pytest.approx(0.05 / 3) for r in res.values())
    res = holm({"a": 0.001, "b": 0.02, "c": 0.3})  # a and b rejected, c is the stopping step
    assert [res[x].interval_alpha for x in "abc"] == pytest.approx([0.05 / 3, 0.05 / 2, 0.05])


def test_holm_intervals():
    diffs = {"paper": [0.3, 0.5, 0.8, 0.4, 0.9, 0.85], "soft": [-0.2, 0.1, 0.05, -0.1, 0.0, -0.03],
             "shuffled": [1, 2, 3, 4, 2, 3]}
    arms = holm_intervals(diffs)
    m = len(diffs)
    first = min(arms.values(), key=lambda a: a.holm.p)
    assert first.holm.rank == 1 and first.interval.level == pytest.approx(1 - 0.05 / m)
    for name, arm in arms.items():
        assert arm.interval.p_value == pytest.approx(paired_t_interval(diffs[name]).p_value)
        assert arm.interval.excludes_zero == arm.holm.reject
        assert arm.interval.half_width >= paired_t_interval(diffs[name]).half_width  # never narrower than 95%


def test_holm_refuses_missing_p_values():
    with pytest.raises(ValueError):
        holm({"a": 0.01, "b": math.nan})


# --- bootstrap over val images --------------------------------------------------------------------


def test_miou_of_by_hand_and_against_metrics():
    m = np.array([[4, 1, 0], [1, 4, 0], [0, 0, 0]])  # class 2: union 0, left out
    assert miou_of(m) == pytest.approx(100 * (4 / 6 + 4 / 6) / 2)
    assert math.isnan(miou_of(np.zeros((3, 3))))
    rng = np.random.default_rng(0)
    for _ in range(20):
        c = rng.integers(0, 5, (4, 4)) * (rng.random((4, 4)) < 0.6)
        assert miou_of(c) == pytest.approx(100 * scores_from_matrix(c).mean_iou, nan_ok=True)


def _pair_a_better(images: int = 30, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Per-image 2-class matrices: A is perfect on every image, B misreads a few pixels of each."""
    rng = np.random.default_rng(seed)
    conf_a = np.zeros((images, 2, 2), np.int64)
    conf_a[:, 0, 0], conf_a[:, 1, 1] = rng.integers(5, 50, images), rng.integers(5, 50, images)
    conf_b = conf_a.copy()
    moved = rng.integers(1, 4, images)
    conf_b[:, 0, 0] -= moved
    conf_b[:, 0, 1] += moved
    return conf_a, conf_b


def test_observed_difference_by_hand():
    conf_a = np.array([[[3, 1], [0, 2]], [[1, 0], [1, 2]]])  # sums to [[4, 1], [1, 4]]: IoU 4/6, 4/6
    conf_b = np.array([[[2, 2], [0, 3]], [[0, 1], [0, 2]]])  # sums to [[2, 3], [0, 5]]: IoU 2/5, 5/8
    res = paired_bootstrap(conf_a, conf_b, repeats=50)
    assert res.observed == pytest.approx(100 * (4 / 6) - 100 * (2 / 5 + 5 / 8) / 2)  # 66.67 - 51.25
    assert (res.n_images, res.n_seeds, res.repeats, len(res.draws)) == (2, 1, 50, 50)


def test_identical_runs_give_zero_everywhere():
    conf, _ = _pair_a_better()
    res = paired_bootstrap(conf, conf.copy(), repeats=200)
    assert res.observed == 0 and np.all(res.draws == 0) and (res.lower, res.upper) == (0, 0)
    assert not res.excludes_zero


def test_better_on_every_image_gives_a_positive_interval():
    conf_a, conf_b = _pair_a_better()
    res = paired_bootstrap(conf_a, conf_b, repeats=300)
    assert 0 < res.lower <= res.observed <= res.upper and res.excludes_zero
    assert paired_bootstrap(conf_b, conf_a, repeats=300).upper < 0  # the sign is metric(A) - metric(B)


def test_bootstrap_is_reproducible_from_its_seed():
    conf_a, conf_b = _pair_a_better()
    one, two = paired_bootstrap(conf_a, conf_b, repeats=100, seed=5), paired_bootstrap(conf_a, conf_b, repeats=100, seed=5)
    assert np.array_equal(one.draws, two.draws) and (one.lower, one.upper) == (two.lower, two.upper)
    assert not np.array_equal(one.draws, paired_bootstrap(conf_a, conf_b, repeats=100, seed=6).draws)


def test_resampling_is_with_replacement():
    """Metric = pixel count; A has one extra pixel on image 0, so each draw counts how often image 0 was drawn."""
    images = 20
    conf_b = np.ones((images, 2, 2), np.int64)
    conf_a = conf_b.copy()
    conf_a[0, 0, 0] += 1
    res = paired_bootstrap(conf_a, conf_b, metric=lambda m: float(m.sum()), repeats=2000)
    counts = res.draws
    assert res.observed == 1 and np.all(counts == np.round(counts)) and counts.min() == 0 and counts.max() >= 3
    assert counts.mean() == pytest.approx(1.0, abs=0.1)  # Binomial(20, 1/20): mean 1, variance 0.95
    assert counts.var() == pytest.approx(0.95, abs=0.15)


def test_pooled_bootstrap_uses_the_same_images_for_every_seed():
    conf_a, conf_b = _pair_a_better()
    single = paired_bootstrap(conf_a, conf_b, repeats=100, seed=2)
    same = pooled_paired_bootstrap([(conf_a, conf_b), (conf_a, conf_b)], repeats=100, seed=2)
    assert np.allclose(same.draws, single.draws) and same.n_seeds == 2
    # seed 2 reversed: its difference cancels seed 1's in every draw only if both saw the same images
    cancelled = pooled_paired_bootstrap([(conf_a, conf_b), (conf_b, conf_a)], repeats=100, seed=2)
    assert np.allclose(cancelled.draws, 0) and cancelled.observed == pytest.approx(0)
    other_a, other_b = _pair_a_better(seed=1)
    mixed = pooled_paired_bootstrap([(conf_a, conf_b), (other_a, other_b)], repeats=10)
    expected = (paired_bootstrap(conf_a, conf_b).observed + paired_bootstrap(other_a, other_b).observed) / 2
    assert mixed.observed == pytest.approx(expected)


def test_bootstrap_refuses_mismatched_runs():
    conf_a, conf_b = _pair_a_better()
    with pytest.raises(ValueError):
        paired_bootstrap(conf_a, conf_b[:-1])
    with pytest.raises(ValueError):
        pooled_paired_bootstrap([(conf_a, conf_b), (conf_a[:5], conf_b[:5])])


# --- power ----------------------------------------------------------------------------------------


def test_seeds_needed_known_value():
    # n = 9: (t_{.975,8} + t_{.8,8})^2 = (2.30600414 + 0.88888952)^2 = 10.207 > 9   -> not enough
    # n = 10: (t_{.975,9} + t_{.8,9})^2 = (2.26215716 + 0.88340386)^2 = 9.895 <= 10 -> enough
    assert seeds_needed(1.0, 1.0) == 10
    assert seeds_needed(1.0, 1.0) != 8  # the z-only formula (1.96 + 0.84)^2 = 7.85 would give 8
    assert smallest_detectable(1.0, 10) == pytest.approx((2.26215716 + 0.88340386) / math.sqrt(10), rel=1e-7)


def test_seeds_needed_moves_the_right_way():
    by_delta = [seeds_needed(0.6, d) for d in (0.2, 0.3, 0.5, 0.8, 1.5)]
    by_sd = [seeds_needed(s, 0.5) for s in (0.1, 0.3, 0.6, 1.0)]
    assert by_delta == sorted(by_delta, reverse=True) and by_delta[0] > by_delta[-1]
    assert by_sd == sorted(by_sd) and by_sd[0] < by_sd[-1]
    assert seeds_needed(0.6, 0.5, alpha=0.05 / 6) > seeds_needed(0.6, 0.5)  # Holm's worst case costs seeds
    assert seeds_needed(0.01, 1.0, minimum=5) == 5 and seeds_needed(0.0, 0.5) == 2
    with pytest.raises(ValueError):
        seeds_needed(1.0, 0.0)
    with pytest.raises(ValueError):
        smallest_detectable(1.0, 1)


@pytest.mark.parametrize("sd, delta", [(0.3, 0.5), (0.6, 0.5), (1.0, 0.5), (2.0, 0.7)])
def test_needed_seeds_detect_delta_and_one_fewer_does_not(sd, delta):
    n = seeds_needed(sd, delta)
    assert smallest_detectable(sd, n) <= delta
    if n > 2:
        assert smallest_detectable(sd, n - 1) > delta


def test_power_approximation_against_simulation():
    """10 seeds, sd 1, true effect 1: the approximation promises ~80% power (exact noncentral t: 0.803)."""
    rng = np.random.default_rng(11)
    d = rng.normal(1.0, 1.0, size=(4000, 10))
    t = d.mean(axis=1) / (d.std(axis=1, ddof=1) / math.sqrt(10))
    assert np.mean(np.abs(t) > t_ppf(0.975, 9)) == pytest.approx(0.80, abs=0.03)


# --- verdict ----------------------------------------------------------------------------------------


def test_verdict_when_the_interval_excludes_zero():
    iv = paired_t_interval([0.3, 0.5, 0.8, 0.4, 0.9, 0.85])
    text = verdict(iv, smallest_detectable(iv.sd, iv.n))
    assert text == f"+0.62 points, higher than the control (95% CI {iv.lower:+.2f} to {iv.upper:+.2f}, n=6 seeds)"
    low = verdict(paired_t_interval([-0.3, -0.5, -0.8, -0.4, -0.9, -0.85]), 0.4, unit="L/R points")
    assert low.startswith("-0.62 L/R points, lower than the control (95% CI -0.")


def test_verdict_when_the_interval_spans_zero():
    iv = paired_t_interval([-0.2, 0.1, 0.05, -0.1, 0.0, -0.03])
    text = verdict(iv, 0.4)
    assert text == ("no difference detected: -0.03 points (95% CI -0.14 to +0.08, n=6 seeds; "
                    "smallest detectable at 80% power: 0.40 points)")
    assert "98.33% CI" in verdict(paired_t_interval([-0.2, 0.1, 0.05, -0.1, 0.0, -0.03], level=1 - 0.05 / 3), 0.4)


def test_verdict_never_speaks_of_standard_errors():
    cases = [paired_t_interval([0.3, 0.5, 0.8]), paired_t_interval([-0.2, 0.3, 0.0]), paired_t_interval([1.0])]
    for iv in cases:
        text = verdict(iv, 0.5)
        assert "standard error" not in text.lower() and not re.search(r"\b(2|two) ?s\.?e\b", text.lower())
    assert "at least 2 seeds" in verdict(cases[-1], 0.5)
