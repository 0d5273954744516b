"""gate: did a new run get slower or less accurate than its baseline, beyond a threshold and beyond noise?

Per configuration (record.JOINS["compare"]: seeds, repeats, device, pin_memory and num_workers
pooled), two checks when asked for: time, over every timed sample of every run (measures.time_samples:
the epochs of a training run, pytest-benchmark's rounds; the SVC fit of an SVM run), and test accuracy,
one sample per run. A check is a regression when the change is past its threshold in the
bad direction AND Welch's t-test (scipy.stats, unequal variances, two-sided) gives p < alpha;
an improvement the same way in the good direction; too noisy to judge when either side has
fewer than two samples or the (1 - alpha) confidence interval of the change reaches further
than the threshold (a change of the threshold's size would not show); unchanged otherwise.
A time threshold is relative to the baseline's mean; an accuracy threshold is in points.

A fixed threshold alone is what makes other gates noisy (TorchBench raised its threshold to
30% to stop false alerts); a significance test alone flags a real but harmless 1% change.
Both must hold here. With a noise file (repeated runs of the same cases), each case's time
threshold becomes max(threshold, 3 x the coefficient of variation measured for it).

Runs on different hardware (record.hardware) are a speed comparison, never a verdict,
unless across_machines says otherwise. The verdicts are data; report/compare.py renders them,
and the pytest plugin calls `verdicts` and `failed` for a run against a saved baseline.
Records are as results.load gives them: each carries the `machine` it ran on.
"""

from __future__ import annotations

import math
import re
import statistics
from collections.abc import Iterable
from dataclasses import dataclass

from scipy import stats as sps

from mnistbench.cases.registry import ConfigError
from mnistbench.results.measures import time_samples
from mnistbench.results.record import JOINS, config_key, hardware, label, ok
from mnistbench.results.stats import Ratio, Stat, is_number, ratio, stat

NOISE_FACTOR = 3  # a case's time threshold is at least this many coefficients of variation
DEFAULT_ALPHA = 0.05

# verdicts of one check, and of a case; the order is a case's: its worst check decides
REGRESSION, NOISY, IMPROVEMENT, UNCHANGED = "regression", "too noisy", "improvement", "unchanged"
OTHER_HARDWARE, BASE_ONLY, NEW_ONLY = "different hardware", "only in base", "only in new"
CHECK_ORDER = (REGRESSION, NOISY, IMPROVEMENT, UNCHANGED)

_THRESHOLD = re.compile(r"^(time|acc):([+-]?)(\d+(?:\.\d+)?|\.\d+)(%|pts?)$")
_UNITS = {"time": ("%", "+"), "acc": ("pt", "-")}  # metric -> (unit, the bad direction's sign)


@dataclass(frozen=True)
class Threshold:
    """How far a metric may move the bad way before the gate looks at significance."""

    metric: str  # "time" or "acc"
    limit: float  # time: a fraction of the baseline's mean (0.10 is +10%); acc: points lost

    @classmethod
    def parse(cls, text: str) -> Threshold:
        """'time:+10%' (10% slower) or 'acc:-0.5pt' (half a point less accurate); the sign may be left out."""
        found = _THRESHOLD.match(text.strip())
        usage = "Valid forms: time:+N% (N percent slower), acc:-Npt (N points less accurate), e.g. time:+10%."
        if not found:
            raise ConfigError(f"Invalid threshold {text!r}. {usage}")
        metric, sign, number, unit = found.groups()
        want_unit, bad_sign = _UNITS[metric]
        if unit.rstrip("s") != want_unit or sign not in ("", bad_sign):
            raise ConfigError(f"Invalid threshold {text!r}: {metric} takes {bad_sign}N{want_unit}. {usage}")
        value = float(number)
        if value <= 0:
            raise ConfigError(f"Invalid threshold {text!r}: the limit must be above 0. {usage}")
        return cls(metric, value / 100 if metric == "time" else value)

    def __str__(self) -> str:
        return f"time:+{self.limit * 100:g}%" if self.metric == "time" else f"acc:-{self.limit:g}pt"


@dataclass(frozen=True)
class Check:
    """One metric of one configuration, base against new."""

    metric: str  # "time" or "acc"
    base: Stat | None  # time: seconds per sample (an epoch, an SVC fit); acc: test accuracy, %
    new: Stat | None
    change: float | None  # time: new mean / base mean - 1; acc: new mean - base mean, points
    ci: tuple[float, float] | None  # the change's (1 - alpha) confidence interval, same units
    p: float | None  # Welch's t-test, two-sided
    threshold: float  # the one applied: time's is max(given, 3 x noise)
    noise_cv: float | None  # time: the coefficient of variation from the noise file, a fraction
    verdict: str  # REGRESSION, IMPROVEMENT, NOISY or UNCHANGED
    why: str


@dataclass(frozen=True)
class Verdict:
    """One configuration: its checks and what they add up to."""

    case: str  # record.label with the compare join's fields left out
    kind: str
    verdict: str  # the worst check's, or OTHER_HARDWARE, BASE_ONLY, NEW_ONLY
    checks: tuple[Check, ...]
    hardware: tuple[str, str]  # base's, new's ("" on the side it is missing from)
    times: tuple[Stat | None, Stat | None]  # base's and new's seconds per timed sample (an epoch, a fit)
    speed: Ratio | None  # base time / new time with its spread: new's speedup, what other hardware gets
    why: str


def verdicts(base_records: Iterable[dict], new_records: Iterable[dict], thresholds: Iterable[Threshold | str],
             alpha: float = DEFAULT_ALPHA, noise: Iterable[dict] | None = None,
             across_machines: bool = False) -> list[Verdict]:
    """A verdict per configuration in either run, sorted by kind and case; `noise` is a noise file's records."""
    limits = _limits(thresholds)
    if not 0 < alpha < 1:
        raise ConfigError(f"Invalid alpha {alpha!r}: expected a probability between 0 and 1, e.g. 0.05.")
    levels = noise_levels(noise) if noise is not None else {}
    base_records, new_records = list(base_records), list(new_records)
    sides = _by_key(base_records), _by_key(new_records)
    out = []
    for key in dict.fromkeys([*sides[0], *sides[1]]):
        base, new = sides[0].get(key, []), sides[1].get(key, [])
        if base and new:
            cv = levels.get((key, _hardware(new)))
            out.append(_verdict(base, new, limits, alpha, cv, across_machines))
        else:
            out.append(_one_side(base or new, BASE_ONLY if base else NEW_ONLY,
                                 new_records if base else base_records))
    return sorted(out, key=lambda v: (v.kind, v.case))


def failed(verdicts: Iterable[Verdict]) -> bool:
    """Whether any configuration regressed: the gate's exit status."""
    return any(v.verdict == REGRESSION for v in verdicts)


def summary(verdicts: list[Verdict]) -> str:
    """'FAIL: 1 regression; 2 checks too noisy to judge; ...' in one line."""
    checks = [c for v in verdicts for c in v.checks]
    counts = [(sum(c.verdict == name for c in checks), name) for name in CHECK_ORDER]
    counts += [(sum(v.verdict == name for v in verdicts), name) for name in (OTHER_HARDWARE, BASE_ONLY, NEW_ONLY)]
    said = "; ".join(f"{n} {NOUNS[name][n != 1]}" for n, name in counts if n)
    return f"{'FAIL' if failed(verdicts) else 'PASS'}: {said or 'nothing to compare'}"


NOUNS = {  # verdict -> (one, several)
    REGRESSION: ("regression", "regressions"),
    NOISY: ("check too noisy to judge", "checks too noisy to judge"),
    IMPROVEMENT: ("improvement", "improvements"),
    UNCHANGED: ("check within the threshold", "checks within the threshold"),
    OTHER_HARDWARE: ("case on different hardware (speed only)", "cases on different hardware (speed only)"),
    BASE_ONLY: ("case only in base", "cases only in base"),
    NEW_ONLY: ("case only in new", "cases only in new"),
}


# ---------------------------------------------------------------- samples and noise


def acc_samples(rec: dict) -> list[float]:
    return [rec["test_acc_pct"]] if is_number(rec.get("test_acc_pct")) else []


SAMPLES = {"time": time_samples, "acc": acc_samples}


def noise_levels(records: Iterable[dict]) -> dict[tuple, float]:
    """(compare key, hardware) -> coefficient of variation of time (std / mean of every timed sample of
    every run of the configuration: seeds and repeats), for configurations with two samples or more."""
    levels = {}
    for key, runs in _by_key(records).items():
        xs = [t for r in runs for t in time_samples(r)]
        if len(xs) > 1 and statistics.fmean(xs) > 0:
            levels[(key, _hardware(runs))] = statistics.stdev(xs) / statistics.fmean(xs)
    return levels


def _by_key(records: Iterable[dict]) -> dict[tuple, list[dict]]:
    """Finished runs by configuration, record.JOINS["compare"]; FLOP counts are not runs."""
    runs: dict[tuple, list[dict]] = {}
    for rec in ok(records):
        if rec["kind"] != "flops":
            runs.setdefault(config_key(rec, JOINS["compare"]), []).append(rec)
    return runs


def _hardware(runs: list[dict]) -> str:
    """The hardware a side ran on; a side pooled over several says all of them."""
    return " / ".join(dict.fromkeys(hardware(r) for r in runs))


def _limits(thresholds: Iterable[Threshold | str]) -> dict[str, float]:
    parsed = [t if isinstance(t, Threshold) else Threshold.parse(t) for t in thresholds]
    if not parsed:
        raise ConfigError("No threshold given. Valid forms: time:+N%, acc:-Npt, e.g. time:+10%.")
    limits: dict[str, float] = {}
    for t in parsed:
        if t.metric in limits:
            raise ConfigError(f"Threshold for {t.metric} given twice; give one per metric.")
        limits[t.metric] = t.limit
    return limits


# ---------------------------------------------------------------- one configuration


def _one_side(runs: list[dict], side: str, other: list[dict]) -> Verdict:
    """A configuration with finished runs on one side only; the other side's unfinished runs say why."""
    key, missing = config_key(runs[0], JOINS["compare"]), "new" if side == BASE_ONLY else "base"
    statuses = sorted({r.get("status") for r in other if config_key(r, JOINS["compare"]) == key}, key=str)
    why = f"no run in {missing}" + (f" finished ok (status {', '.join(map(str, statuses))})" if statuses else "")
    where, times = ((_hardware(runs), ""), (_time(runs), None)) if side == BASE_ONLY else \
        (("", _hardware(runs)), (None, _time(runs)))
    return Verdict(label(runs[0], JOINS["compare"]), runs[0]["kind"], side, (), where, times, None, why)


def _time(runs: list[dict]) -> Stat | None:
    return stat([t for r in runs for t in time_samples(r)], ",.3f")


def _verdict(base: list[dict], new: list[dict], limits: dict[str, float], alpha: float, cv: float | None,
             across_machines: bool) -> Verdict:
    case, kind = label(base[0], JOINS["compare"]), base[0]["kind"]
    where = (_hardware(base), _hardware(new))
    times = _time(base), _time(new)
    speed = ratio(*times)
    if where[0] != where[1] and not across_machines:
        return Verdict(case, kind, OTHER_HARDWARE, (), where, times, speed,
                       f"{where[0]} against {where[1]}: a speed comparison, not a regression verdict "
                       "(--across-machines to judge it anyway)")
    checks = tuple(_check(metric, base, new, limit, alpha, cv if metric == "time" else None)
                   for metric, limit in limits.items())
    worst = min((c.verdict for c in checks), key=CHECK_ORDER.index)
    return Verdict(case, kind, worst, checks, where, times, speed, "; ".join(describe(c, alpha) for c in checks))


def _check(metric: str, base: list[dict], new: list[dict], given: float, alpha: float,
           cv: float | None) -> Check:
    a = [x for r in base for x in SAMPLES[metric](r)]
    b = [x for r in new for x in SAMPLES[metric](r)]
    threshold = max(given, NOISE_FACTOR * cv) if cv is not None else given
    fmt = ",.3f" if metric == "time" else ".2f"
    sa, sb = stat(a, fmt), stat(b, fmt)

    def done(verdict, why, change=None, ci=None, p=None):
        return Check(metric, sa, sb, change, ci, p, threshold, cv, verdict, why)

    if len(a) < 2 or len(b) < 2:
        return done(NOISY, f"n < 2 (base n={len(a)}, new n={len(b)})")
    p, (low, high) = welch(a, b, alpha)
    scale = 1 / sa.mean if metric == "time" else 1.0  # time: relative to the baseline's mean
    change, ci = (sb.mean - sa.mean) * scale, (low * scale, high * scale)
    bad = change if metric == "time" else -change  # positive is the bad direction
    limit = show_threshold(metric, threshold) + (" (3 × noise)" if cv is not None and threshold > given else "")
    if p < alpha and bad > threshold:
        return done(REGRESSION, f"past {limit}", change, ci, p)
    if p < alpha and -bad > threshold:
        return done(IMPROVEMENT, f"past {show_threshold(metric, -threshold)}", change, ci, p)
    if (ci[1] - ci[0]) / 2 > threshold:
        return done(NOISY, f"CI wider than ±{limit.lstrip('+-')}", change, ci, p)
    return done(UNCHANGED, f"not significant (p ≥ {alpha:g})" if p >= alpha else f"within {limit}", change, ci, p)


def describe(check: Check, alpha: float = DEFAULT_ALPHA) -> str:
    """'time +15.2% (p=0.0012, 95% CI +8.1% to +22.3%): past +10.0%' in one line."""
    if check.change is None:
        return f"{check.metric}: {check.why}"
    low, high = check.ci
    return (f"{check.metric} {_show(check.metric, check.change)} (p={check.p:.2g}, {1 - alpha:.0%} CI "
            f"{_show(check.metric, low)} to {_show(check.metric, high)}): {check.why}")


def welch(a: list[float], b: list[float], alpha: float) -> tuple[float, tuple[float, float]]:
    """Welch's t-test of mean(b) - mean(a): the two-sided p and the (1 - alpha) confidence interval.

    Both sides without spread (a deterministic SVC's accuracy) leave nothing to estimate: the
    difference is then exact, p = 0 when the means differ and 1 when they do not.
    """
    diff = statistics.fmean(b) - statistics.fmean(a)
    if statistics.variance(a) == 0 and statistics.variance(b) == 0:
        return (1.0 if diff == 0 else 0.0), (diff, diff)
    result = sps.ttest_ind(b, a, equal_var=False)
    ci = result.confidence_interval(1 - alpha)
    return float(result.pvalue), (float(ci.low), float(ci.high))


def _show(metric: str, value: float) -> str:
    """A change in the metric's unit: '+15.2%' for time, '-1.00 pts' for accuracy."""
    if metric == "time":
        return f"{value * 100:+.1f}%"
    return f"{value:+.2f} pts"


def show_change(metric: str, value: float | None) -> str | None:
    return None if value is None or not math.isfinite(value) else _show(metric, value)


def show_threshold(metric: str, threshold: float) -> str:
    """'+10.0%' or '-0.50 pts': a threshold, signed the bad way."""
    return _show(metric, threshold if metric == "time" else -threshold)
