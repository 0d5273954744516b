"""The study's measures, each defined once: what "time" and "the same accuracy" mean.

- **training time** of a run (`run_time_s`): the timed epochs of a ResNet run
  (`train_time_s`, their sum), the fit of an SVM (`fit_time_ms`). An SVM's predict is
  evaluation, recorded apart (`predict_time_ms`) and in no time of this module, just as a
  ResNet's validation and test are not.
- **timed samples** of a run (`time_samples`): each epoch of a ResNet run (a
  pytest-benchmark round), the one fit of an SVM: what the compare gate tests and the noise
  is measured over.
- **time per unit of work** (`unit_time_s`): the median timed sample, so a slow first epoch
  does not count: the basis of every twin ratio (fast against classic, sklearnex against
  sklearn), recorded in the run and recomputed by the report alike.
- **accuracies agree** (`accuracies_agree`): two sides' test accuracies (means over seeds)
  are within max(1 point, 2 x the larger seed-to-seed std). One point is about one binomial
  std of a ~90% accuracy on 1,000 test images (sqrt(0.9 x 0.1 / 1000) = 0.95 pts) and three
  on 10,000: below it a single run of each side cannot tell two implementations apart; with
  seeds, two stds of the noisier side is what seeds alone move a mean by.
"""

from __future__ import annotations

import statistics
from typing import NamedTuple

from mnistbench.results.stats import Stat, is_number

ACC_TOLERANCE_PTS = 1.0
ACC_TOLERANCE_SPREADS = 2
AGREEMENT_RULE = f"|Δ| ≤ max({ACC_TOLERANCE_PTS:g} pt, {ACC_TOLERANCE_SPREADS} × the larger seed std)"


def run_time_s(rec: dict) -> float | None:
    """Training time in seconds: the timed epochs of a ResNet run, the fit of an SVM; None when not recorded."""
    if rec["kind"] == "svm":
        ms = rec.get("fit_time_ms")
        return ms / 1000 if is_number(ms) else None
    seconds = rec.get("train_time_s")
    return seconds if is_number(seconds) else None


def time_samples(rec: dict) -> list[float]:
    """Seconds of every timed sample of a run: each epoch of a ResNet run (train_time_s whole for a run
    that predates epoch_time_s), the fit of an SVM."""
    if rec["kind"] == "train":
        epochs = [t for t in rec.get("epoch_time_s") or () if is_number(t)]
        if epochs:
            return epochs
    seconds = run_time_s(rec)
    return [] if seconds is None else [seconds]


def unit_time_s(rec: dict) -> float | None:
    """The median timed sample: seconds per epoch of a ResNet run, per fit of an SVM."""
    samples = time_samples(rec)
    return statistics.median(samples) if samples else None


class Agreement(NamedTuple):
    """Whether two sides' test accuracies agree within the rule above, and the words for it."""

    comparable: bool
    text: str


def accuracies_agree(base: Stat | None, other: Stat | None, names: tuple[str, str]) -> Agreement:
    """Do `base` and `other` (mean test accuracy over seeds) agree within ACC_TOLERANCE?"""
    if base is None or other is None:
        return Agreement(False, "not comparable: test accuracy not recorded on both sides")
    tolerance = max(ACC_TOLERANCE_PTS, ACC_TOLERANCE_SPREADS * max(base.std or 0.0, other.std or 0.0))
    delta = abs(other.mean - base.mean)
    if delta <= tolerance:
        return Agreement(True, f"agree: |Δ| {delta:.2f} ≤ {tolerance:.2f} pts")
    return Agreement(False, f"not comparable: accuracies differ by {delta:.2f} pts ({names[0]} {base.mean:.2f}, "
                            f"{names[1]} {other.mean:.2f}; tolerance {tolerance:.2f})")
