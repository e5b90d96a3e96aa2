"""The SSL study's statistics: paired t intervals over seeds, Holm, image bootstrap, power, verdicts.

Every arm of one seed starts from the control's weights and sees the control's batches, so an
arm's effect is a *paired* difference over seeds, ``d_s = score(arm, s) - score(control, s)``:

- ``paired_t_interval`` gives the mean of ``d_s`` with a Student-t interval over seeds and its
  two-sided p-value. The t distribution is computed here (``t_cdf``/``t_ppf``, through the
  regularized incomplete beta function) because scipy is not a dependency.
- ``holm`` / ``holm_intervals`` correct across arms (Holm's step-down); each arm's interval is
  widened to the level that agrees with Holm's decision about it.
- ``paired_bootstrap`` / ``pooled_paired_bootstrap`` give the other uncertainty: which val images
  were drawn. Images are resampled with replacement, the same images for both runs (and for all
  seeds), and the metric is recomputed from the summed per-image confusion matrices.
- ``seeds_needed`` / ``smallest_detectable`` are the power plan, stated before the results.
- ``verdict`` writes the sentence: a direction with its interval, or "no difference detected"
  with the smallest effect the study could have detected. Never a "2 standard errors" rule.

Differences are in the metric's unit; ``miou_of`` returns points (percent), the unit of the verdicts.
This module imports nothing from lipkit.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from statistics import NormalDist

import numpy as np

from lipkit.metrics import scores_from_matrix

_EPS = 1e-16  # relative step at which the continued fraction has converged
_TINY = 1e-300  # Lentz's guard against division by zero


# --- Student's t without scipy ------------------------------------------------------------------


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz, Numerical Recipes 6.4).

    Converges fast for ``x < (a + 1) / (a + b + 2)``; the number of terms grows like
    ``sqrt(max(a, b))``, hence the iteration cap scales with it.
    """
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > _TINY else _TINY)
    h = d
    for m in range(1, int(20 * math.sqrt(a + b)) + 300):
        m2 = 2 * m
        for aa in (m * (b - m) * x / ((qam + m2) * (a + m2)),
                   -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))):
            d = 1.0 + aa * d
            d = 1.0 / (d if abs(d) > _TINY else _TINY)
            c = 1.0 + aa / c
            c = c if abs(c) > _TINY else _TINY
            h *= d * c
        if abs(d * c - 1.0) < _EPS:
            return h
    raise ArithmeticError(f"incomplete beta continued fraction did not converge (a={a}, b={b}, x={x})")


def _betai(a: float, b: float, x: float, y: float) -> float:
    """Regularized incomplete beta ``I_x(a, b)``; ``y = 1 - x`` is passed in, computed without cancellation."""
    if x <= 0.0:
        return 0.0
    if y <= 0.0:
        return 1.0
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log(y)
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _betacf(a, b, x) / a
    return 1.0 - math.exp(log_front) * _betacf(b, a, y) / b


def _check_df(df: float) -> None:
    if not df > 0:  # also rejects NaN
        raise ValueError(f"degrees of freedom must be positive, got {df}")


def t_sf(x: float, df: float) -> float:
    """Upper tail ``P(T > x)`` of Student's t with ``df`` degrees of freedom (``df`` may be fractional or inf).

    For ``x >= 0`` it is ``I_{df/(df+x^2)}(df/2, 1/2) / 2``; kept separate from ``t_cdf`` so tail
    probabilities (p-values, the quantile search) keep their relative precision.
    """
    _check_df(df)
    if math.isnan(x):
        return math.nan
    if math.isinf(df):
        return NormalDist().cdf(-x)
    if x < 0:
        return 1.0 - t_sf(-x, df)
    if math.isinf(x):
        return 0.0
    return 0.5 * _betai(df / 2.0, 0.5, df / (df + x * x), x * x / (df + x * x))


def t_cdf(x: float, df: float) -> float:
    """``P(T <= x)`` for Student's t with ``df`` degrees of freedom (``df = inf`` is the standard normal)."""
    return t_sf(-x, df)


def t_pdf(x: float, df: float) -> float:
    """Density of Student's t; the derivative ``t_ppf``'s Newton steps use."""
    _check_df(df)
    if math.isinf(df):
        return NormalDist().pdf(x)
    log_norm = math.lgamma((df + 1) / 2) - math.lgamma(df / 2) - 0.5 * math.log(df * math.pi)
    return math.exp(log_norm - (df + 1) / 2 * math.log1p(x * x / df))


def t_ppf(p: float, df: float) -> float:
    """Quantile of Student's t: the ``x`` with ``t_cdf(x, df) = p`` (relative accuracy ~1e-10).

    Solves ``t_sf(x) = min(p, 1 - p)`` for ``x >= 0`` by Newton steps kept inside a bracket
    (bisection when a step leaves it), then restores the sign by symmetry.
    """
    _check_df(df)
    if math.isnan(p) or not 0.0 <= p <= 1.0:
        raise ValueError(f"p must be a probability, got {p}")
    if p in (0.0, 1.0):
        return math.copysign(math.inf, p - 0.5)
    if p == 0.5:
        return 0.0
    if math.isinf(df):
        return NormalDist().inv_cdf(p)
    q = min(p, 1.0 - p)
    lo, hi = 0.0, max(1.0, -2.0 * NormalDist().inv_cdf(q))
    while t_sf(hi, df) > q:  # heavy tails (df = 1) can put the quantile far beyond the normal's
        lo, hi = hi, 2.0 * hi
    x = 0.5 * (lo + hi)
    for _ in range(200):
        gap = t_sf(x, df) - q  # decreasing in x: positive means x is too small
        if gap > 0:
            lo = x
        else:
            hi = x
        step = gap / t_pdf(x, df)
        nxt = x + step if lo < x + step < hi else 0.5 * (lo + hi)
        x, moved = nxt, abs(nxt - x)
        if moved <= 1e-14 * max(1.0, x) or hi - lo <= 1e-15 * max(1.0, hi):
            break
    return x if p > 0.5 else -x


# --- paired differences over seeds --------------------------------------------------------------


@dataclass(frozen=True)
class Interval:
    """Mean of paired differences over seeds with its Student-t interval and two-sided p-value.

    ``note`` says why the numbers are NaN (fewer than 2 seeds) or degenerate (no spread at all).
    """

    mean: float
    lower: float
    upper: float
    sd: float  # sample standard deviation of the differences (ddof = 1): the power plan's input
    n: int
    df: int
    p_value: float
    level: float
    note: str = ""

    @property
    def half_width(self) -> float:
        return (self.upper - self.lower) / 2

    @property
    def excludes_zero(self) -> bool:
        """True when the whole interval lies on one side of 0 (NaN intervals exclude nothing)."""
        return bool(self.lower > 0 or self.upper < 0)


def _check_level(level: float) -> None:
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must lie in (0, 1), got {level}")


def paired_t_interval(diffs: Sequence[float], level: float = 0.95) -> Interval:
    """Mean of the per-seed differences ``arm - control`` with a ``level`` t interval over seeds.

    Interval ``mean +- t_{(1+level)/2, n-1} * sd / sqrt(n)``; p-value of the two-sided one-sample
    t-test of mean 0, so the interval excludes 0 exactly when ``p_value < 1 - level``. With fewer
    than 2 seeds there is no spread to estimate: everything but the mean is NaN and ``note`` says so.
    """
    _check_level(level)
    d = np.asarray(diffs, dtype=np.float64)
    if d.ndim != 1 or not np.isfinite(d).all():
        raise ValueError("diffs must be a flat sequence of finite numbers (one per seed)")
    n = int(d.size)
    mean = float(d.mean()) if n else math.nan
    if n < 2:
        note = f"needs at least 2 seeds for a t interval, got {n}"
        return Interval(mean, math.nan, math.nan, math.nan, n, max(n - 1, 0), math.nan, level, note)
    sd = float(d.std(ddof=1))
    se = sd / math.sqrt(n)
    half = t_ppf((1 + level) / 2, n - 1) * se
    if sd <= 1e-12 * abs(mean):  # every seed gave the same difference (up to rounding): no t-test is possible
        note = "all differences are equal: zero spread, the interval has no width"
        return Interval(mean, mean, mean, sd, n, n - 1, 1.0 if mean == 0 else 0.0, level, note)
    p = 2.0 * t_sf(abs(mean) / se, n - 1)
    return Interval(mean, mean - half, mean + half, sd, n, n - 1, min(1.0, p), level)


# --- Holm across arms ---------------------------------------------------------------------------


@dataclass(frozen=True)
class HolmResult:
    """One arm's Holm decision.

    ``rank`` 1 is the smallest p; ``threshold`` is Holm's step level ``alpha / (m - rank + 1)``;
    ``interval_alpha`` is the ``1 - level`` of the confidence interval that agrees with the decision
    (see ``holm``).
    """

    p: float
    adjusted: float
    rank: int
    threshold: float
    reject: bool
    interval_alpha: float


def holm_level(rank: int, m: int, alpha: float = 0.05) -> float:
    """Holm's threshold for the ``rank``-th smallest of ``m`` p-values (rank from 1): ``alpha / (m - rank + 1)``."""
    if not 1 <= rank <= m:
        raise ValueError(f"rank must lie in 1..{m}, got {rank}")
    return alpha / (m - rank + 1)


def holm(p_values: Mapping[str, float], alpha: float = 0.05) -> dict[str, HolmResult]:
    """Holm's step-down correction of one p-value per arm (family-wise error rate ``alpha``).

    Adjusted p of rank r: ``max_{j <= r} min(1, (m - j + 1) p_(j))`` (monotone in rank, capped at 1);
    an arm is rejected when its adjusted p is ``<= alpha``. Ties keep the mapping's order.

    ``interval_alpha``: Holm walks up the ranks and stops at the first arm ``s`` it cannot reject.
    Arms before ``s`` get intervals at ``1 - alpha / (m - r + 1)`` (their own step, which excludes
    0 because they were rejected); arms from ``s`` on get the level of step ``s``,
    ``1 - alpha / (m - s + 1)``, which contains 0 for all of them. The plain "rank r gets
    ``1 - alpha / (m - r + 1)``" rule can disagree with Holm: with m = 3 and p = 0.02, 0.024, 0.5
    Holm rejects nothing (0.02 > 0.05/3) yet the rank-2 interval at 97.5% excludes 0.
    These intervals match Holm's decisions; only the Bonferroni level ``1 - alpha / m`` for every
    arm guarantees simultaneous coverage.
    """
    if any(not 0.0 <= p <= 1.0 for p in p_values.values()):  # NaN fails too
        raise ValueError(f"p-values must lie in [0, 1] (an arm with < 2 seeds has none): {dict(p_values)}")
    order = sorted(p_values, key=lambda arm: p_values[arm])
    m = len(order)
    out: dict[str, HolmResult] = {}
    running, stop = 0.0, None
    for rank, arm in enumerate(order, start=1):
        p = p_values[arm]
        running = max(running, min(1.0, (m - rank + 1) * p))
        reject = running <= alpha
        if not reject and stop is None:
            stop = rank
        step_alpha = holm_level(rank if stop is None else stop, m, alpha)
        out[arm] = HolmResult(p, running, rank, holm_level(rank, m, alpha), reject, step_alpha)
    return {arm: out[arm] for arm in p_values}


@dataclass(frozen=True)
class HolmArm:
    """An arm's t interval at its Holm-consistent level, with the Holm decision it agrees with."""

    interval: Interval
    holm: HolmResult


def holm_intervals(diffs_by_arm: Mapping[str, Sequence[float]], alpha: float = 0.05) -> dict[str, HolmArm]:
    """Per arm: the paired t interval at level ``1 - holm[arm].interval_alpha``, and the Holm result.

    The p-values come from ``paired_t_interval`` (they do not depend on the level); an interval
    excludes 0 exactly when Holm rejects that arm. Pass ``arm.interval.level`` to the bootstrap to
    correct the image-resampling interval the same way.
    """
    p_values = {arm: paired_t_interval(d).p_value for arm, d in diffs_by_arm.items()}
    results = holm(p_values, alpha)
    return {arm: HolmArm(paired_t_interval(d, 1.0 - results[arm].interval_alpha), results[arm])
            for arm, d in diffs_by_arm.items()}


# --- bootstrap over val images ------------------------------------------------------------------


def miou_of(matrix: np.ndarray) -> float:
    """Mean IoU in points (percent) of a ``(K, K)`` confusion matrix (rows = ground truth).

    LIP_SSL's rule: a class with union 0 (in neither ground truth nor prediction) is left out of
    the mean; NaN when no class is present. Equals ``lipkit.metrics`` ``mean_iou * 100``.
    """
    if not np.asarray(matrix).any():
        return math.nan
    return float(100.0 * scores_from_matrix(np.asarray(matrix, dtype=np.int64), "nan").mean_iou)


@dataclass(frozen=True)
class BootstrapInterval:
    """Observed metric difference ``A - B`` with a percentile interval from resampling val images.

    ``draws`` holds every resampled difference; ``nan_draws`` counts those the metric left
    undefined (e.g. a class absent from a resample), which the percentiles skip.
    """

    observed: float
    lower: float
    upper: float
    level: float
    repeats: int
    n_images: int
    n_seeds: int
    nan_draws: int
    draws: np.ndarray = field(repr=False, compare=False)

    @property
    def excludes_zero(self) -> bool:
        return bool(self.lower > 0 or self.upper < 0)


def _stack_pairs(pairs: Sequence[tuple[np.ndarray, np.ndarray]]) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Check the per-image matrices: every run ``(images, K, K)`` of one shape; flatten to ``(images, K*K)``."""
    if not pairs:
        raise ValueError("need at least one (conf_a, conf_b) pair")
    runs_a, runs_b = [], []
    shape = np.shape(pairs[0][0])
    for a, b in pairs:
        a, b = np.asarray(a), np.asarray(b)
        if a.ndim != 3 or a.shape[1] != a.shape[2] or a.shape[0] == 0:
            raise ValueError(f"per-image confusion matrices must have shape (images, K, K), got {a.shape}")
        if a.shape != shape or b.shape != shape:
            raise ValueError(f"every run must score the same images and classes: {a.shape}, {b.shape} vs {shape}")
        runs_a.append(a.reshape(len(a), -1).astype(np.float64))
        runs_b.append(b.reshape(len(b), -1).astype(np.float64))
    return runs_a, runs_b


def pooled_paired_bootstrap(pairs: Sequence[tuple[np.ndarray, np.ndarray]],
                            metric: Callable[[np.ndarray], float] = miou_of, repeats: int = 1000,
                            seed: int = 0, level: float = 0.95, chunk: int = 100) -> BootstrapInterval:
    """Image-bootstrap interval of the seed-averaged difference ``metric(A) - metric(B)``.

    ``pairs`` holds one ``(conf_a, conf_b)`` per seed: per-image confusion matrices
    ``(images, K, K)`` of the arm and the control on the same val images in the same order. Each
    draw resamples image indices with replacement once (the same images for both runs and every
    seed), sums each run's matrices over the drawn images, and averages the per-seed differences.
    The seeds stay fixed: this is the uncertainty from which images were chosen, not from training.
    Percentile interval; draws are reproducible from ``seed``.
    """
    _check_level(level)
    if repeats < 1 or chunk < 1:
        raise ValueError(f"repeats and chunk must be positive, got {repeats}, {chunk}")
    runs_a, runs_b = _stack_pairs(pairs)
    n, k = len(runs_a[0]), int(math.isqrt(runs_a[0].shape[1]))

    def diffs(weights: np.ndarray) -> np.ndarray:
        """Seed-averaged differences for a block of draws (rows of ``weights``: how often each image is drawn)."""
        per_seed = [[metric(sa.reshape(k, k)) - metric(sb.reshape(k, k)) for sa, sb in zip(weights @ a, weights @ b)]
                    for a, b in zip(runs_a, runs_b)]
        return np.mean(np.asarray(per_seed, dtype=np.float64), axis=0)

    rng = np.random.default_rng(seed)
    draws = np.empty(repeats)
    for start in range(0, repeats, chunk):
        size = min(chunk, repeats - start)
        picks = rng.integers(0, n, size=(size, n)) + n * np.arange(size)[:, None]  # image indices, with replacement
        weights = np.bincount(picks.ravel(), minlength=size * n).reshape(size, n).astype(np.float64)
        draws[start:start + size] = diffs(weights)
    finite = draws[np.isfinite(draws)]
    tail = (1 - level) / 2
    lower, upper = np.quantile(finite, [tail, 1 - tail]) if finite.size else (math.nan, math.nan)
    observed = float(diffs(np.ones((1, n)))[0])
    return BootstrapInterval(observed, float(lower), float(upper), level, repeats, n, len(pairs),
                             int(repeats - finite.size), draws)


def paired_bootstrap(conf_a: np.ndarray, conf_b: np.ndarray, metric: Callable[[np.ndarray], float] = miou_of,
                     repeats: int = 1000, seed: int = 0, level: float = 0.95) -> BootstrapInterval:
    """Image-bootstrap interval of ``metric(A) - metric(B)`` for two runs scored on the same images.

    ``conf_a``, ``conf_b``: per-image confusion matrices ``(images, K, K)``. Each draw resamples
    image indices with replacement (the same indices for both runs), sums each run's matrices and
    takes the difference of the metric; percentile interval. One seed pair of
    ``pooled_paired_bootstrap``.
    """
    return pooled_paired_bootstrap([(conf_a, conf_b)], metric, repeats, seed, level)


# --- power ----------------------------------------------------------------------------------------


def _power_factor(n: int, alpha: float, power: float) -> float:
    """``t_{1-alpha/2, n-1} + t_{power, n-1}``: how many standard errors a detectable effect spans."""
    if not 0 < alpha < 1 or not 0.5 <= power < 1:  # below 50% power the approximation means nothing
        raise ValueError(f"need 0 < alpha < 1 and 0.5 <= power < 1, got {alpha}, {power}")
    return t_ppf(1 - alpha / 2, n - 1) + t_ppf(power, n - 1)


def smallest_detectable(sd: float, n: int, alpha: float = 0.05, power: float = 0.8) -> float:
    """Smallest paired mean difference a two-sided ``alpha`` t-test over ``n`` seeds detects with ``power``.

    ``(t_{1-alpha/2, n-1} + t_{power, n-1}) * sd / sqrt(n)``, ``sd`` the seed-to-seed standard
    deviation of the paired differences. The usual approximation of the noncentral-t power (it
    ignores the far rejection tail and the skew of the noncentral t; close at the 80% power
    planned here). Holm tests the best arm at ``alpha / m``: pass that for the worst case.
    """
    if n < 2:
        raise ValueError(f"a t-test needs at least 2 seeds, got {n}")
    if not sd >= 0:
        raise ValueError(f"sd must be a non-negative number, got {sd}")
    return _power_factor(n, alpha, power) * sd / math.sqrt(n)


def seeds_needed(sd: float, delta: float, alpha: float = 0.05, power: float = 0.8, minimum: int = 2,
                 maximum: int = 100_000) -> int:
    """Fewest seeds ``n >= minimum`` with ``n >= ((t_{1-alpha/2, n-1} + t_{power, n-1}) * sd / delta)^2``.

    The same approximation as ``smallest_detectable`` (so ``smallest_detectable(sd, n) <= delta``
    at the returned ``n``), iterated upward because the t quantiles depend on n; the search starts
    at the normal-quantile answer, below which no n can pass.
    ``sd``: the pilot's seed-to-seed standard deviation of the paired differences; ``delta``: the
    difference to detect, in the same unit. For Holm's worst case (the first step) pass
    ``alpha / m``. The study's rules ask for at least 5 seeds: ``minimum=5``.
    """
    if not delta > 0 or not sd >= 0:
        raise ValueError(f"need delta > 0 and sd >= 0, got delta={delta}, sd={sd}")
    _power_factor(2, alpha, power)  # checks alpha and power before the normal quantiles use them
    z = NormalDist().inv_cdf(1 - alpha / 2) + NormalDist().inv_cdf(power)
    n = max(minimum, 2, math.floor((z * sd / delta) ** 2))  # t quantiles exceed z's: no smaller n can pass
    while n < (_power_factor(n, alpha, power) * sd / delta) ** 2:
        n += 1
        if n > maximum:
            raise ValueError(f"more than {maximum} seeds needed (sd={sd}, delta={delta})")
    return n


# --- verdict --------------------------------------------------------------------------------------


def _signed(x: float) -> str:
    return f"{x:+.2f}"


def verdict(interval: Interval, detectable: float, unit: str = "points", power: float = 0.8) -> str:
    """One sentence about an arm's difference to the control.

    Interval excluding 0: the signed difference, its direction and interval. Interval spanning 0:
    "no difference detected" with the smallest difference the seeds could detect at ``power``
    (``smallest_detectable``): a null result is never stated without it.
    """
    if math.isnan(interval.lower):
        return f"no interval: {interval.note or 'undefined'} (mean difference {_signed(interval.mean)} {unit})"
    ci = (f"{interval.level * 100:.4g}% CI {_signed(interval.lower)} to {_signed(interval.upper)}, "
          f"n={interval.n} seeds")
    if interval.excludes_zero:
        direction = "higher" if interval.mean > 0 else "lower"
        return f"{_signed(interval.mean)} {unit}, {direction} than the control ({ci})"
    return (f"no difference detected: {_signed(interval.mean)} {unit} ({ci}; "
            f"smallest detectable at {power * 100:.0f}% power: {detectable:.2f} {unit})")
