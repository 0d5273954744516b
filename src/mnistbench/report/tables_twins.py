"""Twin tables: one implementation against another, same configuration (record.TWINS).

Throughput and test accuracy per path (fast against classic), fit + predict time per SVM
backend (sklearnex against sklearn). Rows are paired by record.twin_key with seeds pooled,
on the same hardware; every speedup is a ratio of mean record.cost_s, the basis of the
ratio each compared run recorded, so the two agree.

A speedup is only fair between two implementations that learn equally well: it is shown
only where the two sides' test accuracies agree within the tolerance below; otherwise the
row keeps both sides' times and says the two are not comparable, and by how much they differ.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

from mnistbench.record import Twin
from mnistbench.report.group import (
    THROUGHPUT,
    TWIN,
    Stat,
    Table,
    column_label,
    cost_stat,
    difference,
    display,
    extras,
    hashable,
    not_throughput,
    ok,
    on_hardware,
    row_order,
    run_value,
    scaled,
    summaries,
    twin_pairs,
    twin_speedup,
    value_of,
    varying,
)
from mnistbench.report.tables_svm import svm_cell

THROUGHPUT_LEAD = ["model", "batch_size", "device", "hardware"]
FAST_PLAN = {"plan_loader": "fast loader", "amp_dtype": "fast amp", "channels_last": "channels_last",
             "fused_optimizer": "fused optimizer", "cuda_graph": "CUDA graph"}
PATH_LEAD = ["dataset", "model", "batch_size", "optimizer", "lr"]
BACKEND_LEAD = ["dataset", "kernel", "degree", "C"]
# Two sides' test accuracies agree when |Δ| ≤ max(ACC_TOLERANCE_PTS, ACC_TOLERANCE_SPREADS × the larger
# seed-to-seed std). One point is about one binomial std of a ~90% accuracy on the smoke runs' 1,000 test
# images (√(0.9 × 0.1 / 1000) ≈ 0.95 pts) and three on the full 10,000: below it, a single run of each side
# cannot tell two implementations apart. With seeds, two stds of the noisier side is what seeds alone move by.
ACC_TOLERANCE_PTS = 1.0
ACC_TOLERANCE_SPREADS = 2
TOLERANCE = (f"a speedup only where the test accuracies agree: |Δ| ≤ max({ACC_TOLERANCE_PTS:g} pt, "
             f"{ACC_TOLERANCE_SPREADS} × the larger seed std)")


class Agreement(NamedTuple):
    """Whether two sides' test accuracies agree within the tolerance, and the row's words for it."""

    comparable: bool
    text: str


def accuracies_agree(base: Stat | None, other: Stat | None, names: tuple[str, str]) -> Agreement:
    """Do `base` and `other` (mean test accuracy over seeds) agree within the stated tolerance?"""
    if base is None or other is None:
        return Agreement(False, "not comparable: test accuracy not recorded on both sides")
    tolerance = max(ACC_TOLERANCE_PTS, ACC_TOLERANCE_SPREADS * max(base.std or 0.0, other.std or 0.0))
    delta = abs(other.mean - base.mean)
    if delta <= tolerance:
        return Agreement(True, f"agree: |Δ| {delta:.2f} ≤ {tolerance:.2f} pts")
    return Agreement(False, f"not comparable: accuracies differ by {delta:.2f} pts ({names[0]} {base.mean:.2f}, "
                            f"{names[1]} {other.mean:.2f}; tolerance {tolerance:.2f})")


def _either(pair: tuple) -> dict:
    """The row a twin pair has on either side (one side may be missing)."""
    return pair[0] or pair[1]


# ---------------------------------------------------------------- throughput


def throughput_pairs(records: Iterable[dict]) -> list[tuple[dict | None, dict | None]]:
    """(classic row, fast row) of the throughput preset per configuration; None where a path did not run."""
    twin = TWIN["path"]
    rows = summaries(r for r in ok(records, "train") if r.get("preset") == THROUGHPUT)
    pairs, alone = twin_pairs(rows, twin)
    return pairs + [(r, None) if r.get(twin.field) == twin.base else (None, r) for r in alone]


def throughput_table(pairs: list[tuple[dict | None, dict | None]]) -> Table:
    """Median-round images/s per path, the speedup, MFU when known, and what the fast path turned on."""
    twin = TWIN["path"]
    # steps per round are fixed per device, so the train limit only restates the batch size
    fixed = [*twin.leave_out, "seed", "preset", "train_limit"]
    candidates = [c for c in extras("train", THROUGHPUT_LEAD, fixed) if c != "hardware"]
    columns = THROUGHPUT_LEAD + varying([_either(p) for p in pairs], candidates)
    mfu = any(value_of(row, "mfu_pct") for pair in pairs for row in pair)
    sides = (twin.base, twin.other)
    plan = [f"{twin.base} amp", *FAST_PLAN.values()]
    headers = ([column_label(c) for c in columns] + [f"{side} images/s" for side in sides]
               + [f"speedup ({twin.other}/{twin.base})", "recorded speedup", "accuracies"]
               + ([f"{side} MFU (%)" for side in sides] if mfu else []) + plan)
    body = [_throughput_row(base, other, columns, mfu) for base, other in
            sorted(pairs, key=row_order(columns, _either))]
    title = ("Throughput: classic and fast path, same configuration (median-round images/s, mean over seeds; "
             f"{TOLERANCE})")
    return Table("throughput", title, headers, body, (*(column_label(c) for c in columns[1:]), *plan))


def _throughput_row(base: dict | None, other: dict | None, columns: list[str], mfu: bool) -> list:
    twin = TWIN["path"]
    fair = _agreement(base, other, twin) if base and other else None
    fair_ok = fair is not None and fair.comparable
    return ([display(c, _either((base, other)).get(c)) for c in columns]
            + [value_of(base, "images_per_s_median"), value_of(other, "images_per_s_median"),
               twin_speedup(base, other) if fair_ok else None, value_of(other, twin.ratio) if fair_ok else None,
               fair and fair.text]
            + ([value_of(base, "mfu_pct"), value_of(other, "mfu_pct")] if mfu else [])
            + [run_value(base, "amp_dtype")] + [run_value(other, f) for f in FAST_PLAN])


# ---------------------------------------------------------------- accuracy per path


def path_pairs(records: Iterable[dict]) -> tuple[list[tuple[dict, dict]], list[dict]]:
    """(classic row, fast row) per configuration run on both paths (throughput preset left out)."""
    return twin_pairs(summaries(not_throughput(ok(records, "train"))), TWIN["path"])


def spread_verdict(base: Stat | None, other: Stat | None) -> str | None:
    """Is the difference of means within twice the larger seed-to-seed standard deviation?"""
    if base is None or other is None:
        return None
    if base.n < 2 or other.n < 2:
        return "n too small"
    within = abs(other.mean - base.mean) <= 2 * max(base.std, other.std)
    return "within spread" if within else "outside spread"


def path_accuracy_table(pairs: list[tuple[dict, dict]]) -> Table:
    """Test accuracy per path, the difference of means and whether it is within the seed-to-seed spread."""
    twin = TWIN["path"]
    fixed = [*twin.leave_out, "seed", "model"]
    columns = PATH_LEAD + varying([b for b, _ in pairs], extras("train", PATH_LEAD, fixed))
    # the fields the path decides are left out of the join; when they differ between pairs, both sides show
    variants = [c for c in twin.follows
                if len({(hashable(b.get(c)), hashable(o.get(c))) for b, o in pairs}) > 1]
    sides = (twin.base, twin.other)
    headers = ([column_label(c) for c in columns] + [f"{side} {c}" for c in variants for side in sides]
               + [f"{side} acc (%)" for side in sides]
               + [f"Δ acc ({twin.other}−{twin.base}, pts)", "seed spread"])
    body = []
    for base, other in sorted(pairs, key=row_order(columns, _either)):
        acc_b, acc_o = base["test_acc_pct"], other["test_acc_pct"]
        body.append([display(c, base.get(c)) for c in columns]
                    + [row.get(c) for c in variants for row in (base, other)]
                    + [acc_b, acc_o, difference(acc_b, acc_o), spread_verdict(acc_b, acc_o)])
    title = "Fast path against classic path: test accuracy, same configuration"
    return Table("path-accuracy", title + on_hardware([pairs[0][0]], columns), headers, body,
                 tuple(column_label(c) for c in columns[2:]))


# ---------------------------------------------------------------- SVM backends


def backend_pairs(records: Iterable[dict]) -> tuple[list[tuple[dict, dict]], list[dict]]:
    """(sklearn row, sklearnex row) per SVM configuration run with both backends."""
    return twin_pairs(summaries(ok(records, "svm")), TWIN["backend"])


def backend_table(pairs: list[tuple[dict, dict]]) -> Table:
    """Fit + predict time per backend, the speedup and the accuracy difference, per dataset, kernel and C."""
    twin = TWIN["backend"]
    fixed = [*twin.leave_out, "seed", "gamma", "train_limit", "device"]
    candidates = ["gamma", "n_train"] + extras("svm", BACKEND_LEAD, fixed)
    columns = BACKEND_LEAD + varying([b for b, _ in pairs], candidates)
    version = f"{twin.other} version"
    sides = (twin.base, twin.other)
    headers = ([column_label(c) for c in columns] + [f"{side} fit+predict (ms)" for side in sides]
               + [f"speedup ({twin.base}/{twin.other})", "recorded speedup",
                  f"Δ acc ({twin.other}−{twin.base}, pts)", "accuracies", version])
    body = []
    for base, other in sorted(pairs, key=row_order(columns, _either)):
        fair = _agreement(base, other, twin)
        body.append([svm_cell(base, c) for c in columns]
                    + [_ms(base), _ms(other), twin_speedup(base, other) if fair.comparable else None,
                       other[twin.ratio] if fair.comparable else None,
                       difference(base["test_acc_pct"], other["test_acc_pct"]), fair.text,
                       run_value(other, "backend_version")])
    title = ("SVM backends: scikit-learn against scikit-learn-intelex, same configuration "
             f"(fit + predict time, mean over runs; {TOLERANCE})")
    return Table("svm-backends", title, headers, body, (*(column_label(c) for c in columns[2:]), version))


def _agreement(base: dict, other: dict, twin: Twin) -> Agreement:
    return accuracies_agree(base.get("test_acc_pct"), other.get("test_acc_pct"), (twin.base, twin.other))


def _ms(row: dict) -> Stat | None:
    """Fit + predict in milliseconds: record.cost_s of an SVM, scaled."""
    return scaled(cost_stat(row), 1000, ",.0f")
