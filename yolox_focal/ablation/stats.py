"""Paired differences between a variant and the baseline, over seeds."""

import math
import statistics
from typing import NamedTuple

__all__ = ["T_CRITICAL", "Difference", "mean_std", "paired_diffs", "paired_difference", "pooled_sd", "seeds_needed"]

# two-sided 95 % critical values of Student's t, by degrees of freedom (1-10)
T_CRITICAL = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262,
              10: 2.228}


def mean_std(values):
    values = [v for v in values if v is not None]
    if not values:
        return None, None
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


class Difference(NamedTuple):
    """Variant minus baseline over the paired seeds: ``mean ± half_width`` is the 95 % confidence
    interval of the mean, and the difference is distinguishable from seed noise where it leaves
    out 0 (the two-sided paired t-test at 95 %)."""
    mean: float
    sd: float
    n: int
    half_width: float
    distinguishable: bool


def paired_diffs(variant_finals, baseline_finals, metric):
    """Variant - baseline at each seed both finished and both evaluated."""
    pairs = [(variant_finals[s].get(metric), baseline_finals[s].get(metric))
             for s in variant_finals if s in baseline_finals]
    return [v - b for v, b in pairs if v is not None and b is not None]


def paired_difference(variant_finals, baseline_finals, metric):
    """The ``Difference`` over the paired seeds; None where fewer than two seeds pair up."""
    diffs = paired_diffs(variant_finals, baseline_finals, metric)
    if len(diffs) < 2:
        return None
    mean, sd = statistics.fmean(diffs), statistics.stdev(diffs)
    half_width = T_CRITICAL.get(len(diffs) - 1, 1.96) * sd / math.sqrt(len(diffs))
    return Difference(mean, sd, len(diffs), half_width, abs(mean) > half_width)


def pooled_sd(differences):
    """The paired spread of several variants' ``Difference``s in one figure: their variances
    pooled by degrees of freedom, sqrt(sum((n_i - 1) sd_i^2) / sum(n_i - 1)); None for none."""
    differences = [d for d in differences if d is not None]
    dof = sum(d.n - 1 for d in differences)
    if not dof:
        return None
    return math.sqrt(sum((d.n - 1) * d.sd ** 2 for d in differences) / dof)


def seeds_needed(sd, effect, alpha=0.05, power=0.8):
    """How many paired seeds a two-sided paired t-test at level ``alpha`` needs to tell a true
    difference of ``effect`` from 0 with probability ``power``, where the paired differences
    spread with standard deviation ``sd``.

    Guenther's approximation of the paired (one-sample) t-test's sample size (W. C. Guenther,
    "Sample size formulas for normal theory t tests", The American Statistician 35(4), 1981):

        n = ((z_{1-alpha/2} + z_{power}) * sd / effect)^2 + z_{1-alpha/2}^2 / 2

    the normal-theory size plus the correction for estimating ``sd`` (within a seed or so of the
    exact t-based size for n of 5 and more), rounded up, and at least 2 (a spread needs two). At
    alpha 0.05 and power 0.8: n = (2.80 * sd / effect)^2 + 1.92."""
    if effect <= 0:
        raise ValueError(f"effect must be above 0, got {effect}")
    normal = statistics.NormalDist()
    z_alpha, z_power = normal.inv_cdf(1 - alpha / 2), normal.inv_cdf(power)
    n = ((z_alpha + z_power) * sd / effect) ** 2 + z_alpha ** 2 / 2
    return max(2, math.ceil(n - 1e-9))
