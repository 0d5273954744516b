"""Statistics over runs: a mean with its spread and n, a ratio of two means, a signed difference.

Every table, the compare gate and the twin ratios summarise runs with these; a cell reads
`mean ± std (n=k)`, and a single run has no spread to show (std None, never 0).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable
from typing import NamedTuple


class Stat(NamedTuple):
    """Mean over runs; std is None for a single run, which has no spread to show."""

    mean: float
    std: float | None
    n: int
    fmt: str = ".2f"


class Ratio(NamedTuple):
    """A ratio of two means, with the first-order propagated spread when both sides have one."""

    value: float
    std: float | None
    n_a: int
    n_b: int


class Signed(NamedTuple):
    """A difference, shown with its sign so a gain and a loss read apart."""

    value: float


def is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def stat(values: Iterable, fmt: str = ".2f") -> Stat | None:
    xs = [float(v) for v in values if is_number(v)]
    if not xs:
        return None
    return Stat(statistics.fmean(xs), statistics.stdev(xs) if len(xs) > 1 else None, len(xs), fmt)


def scaled(s: Stat | None, factor: float, fmt: str) -> Stat | None:
    if s is None:
        return None
    return Stat(s.mean * factor, None if s.std is None else s.std * factor, s.n, fmt)


def ratio(a: Stat | None, b: Stat | None) -> Ratio | None:
    if a is None or b is None or not b.mean:
        return None
    value = a.mean / b.mean
    std = None
    if a.std is not None and b.std is not None and a.mean:
        std = value * math.hypot(a.std / a.mean, b.std / b.mean)
    return Ratio(value, std, a.n, b.n)


def difference(a: Stat | None, b: Stat | None) -> Signed | None:
    """b's mean minus a's."""
    return Signed(b.mean - a.mean) if a and b else None


def hashable(value):
    return tuple(value) if isinstance(value, list) else value
