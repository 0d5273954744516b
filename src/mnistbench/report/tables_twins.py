"""Twin tables: one implementation against another, same configuration (record.TWINS).

Throughput and test accuracy per path (fast against classic), fit time per SVM backend
(sklearnex against sklearn). Rows are paired by record.twin_key with seeds pooled, on the
same hardware; every speedup is a ratio of mean results.measures.unit_time_s, the basis of
the ratio each compared run recorded, so the two agree.

A speedup is only fair between two implementations that learn equally well: it is shown
only where the two sides' test accuracies agree (results.measures.accuracies_agree, the one
rule); otherwise the row keeps both sides' times and says by how much the accuracies differ.
"""

from __future__ import annotations

from collections.abc import Iterable

from mnistbench.report.group import (
    THROUGHPUT,
    TWIN,
    Table,
    column_label,
    display,
    extras,
    not_throughput,
    on_hardware,
    row_order,
    run_value,
    summaries,
    twin_pairs,
    twin_speedup,
    unit_time_stat,
    value_of,
    varying,
)
from mnistbench.report.tables_svm import svm_cell
from mnistbench.results.measures import AGREEMENT_RULE, Agreement, accuracies_agree
from mnistbench.results.record import Twin, ok
from mnistbench.results.stats import Stat, difference, hashable, scaled

THROUGHPUT_LEAD = ["model", "batch_size", "device", "hardware"]
FAST_PLAN = {"plan_loader": "fast loader", "amp_dtype": "fast amp", "channels_last": "channels_last",
             "fused_optimizer": "fused optimizer", "cuda_graph": "CUDA graph"}
PATH_LEAD = ["dataset", "model", "batch_size", "optimizer", "lr"]
BACKEND_LEAD = ["dataset", "kernel", "degree", "C"]
TOLERANCE = f"a speedup only where the test accuracies agree: {AGREEMENT_RULE}"


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
    return Table("throughput", "Throughput: classic and fast path, same configuration", headers, body,
                 (*(column_label(c) for c in columns[1:]), *plan),
                 f"Median-round images/s, mean over seeds; {TOLERANCE}.")


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


def path_accuracy_table(pairs: list[tuple[dict, dict]]) -> Table:
    """Test accuracy per path, the difference of means and whether they agree (measures.accuracies_agree)."""
    twin = TWIN["path"]
    fixed = [*twin.leave_out, "seed", "model"]
    columns = PATH_LEAD + varying([b for b, _ in pairs], extras("train", PATH_LEAD, fixed))
    # the fields the path decides are left out of the join; when they differ between pairs, both sides show
    variants = [c for c in twin.follows
                if len({(hashable(b.get(c)), hashable(o.get(c))) for b, o in pairs}) > 1]
    sides = (twin.base, twin.other)
    headers = ([column_label(c) for c in columns] + [f"{side} {c}" for c in variants for side in sides]
               + [f"{side} acc (%)" for side in sides]
               + [f"Δ acc ({twin.other}−{twin.base}, pts)", "accuracies"])
    body = []
    for base, other in sorted(pairs, key=row_order(columns, _either)):
        acc_b, acc_o = base["test_acc_pct"], other["test_acc_pct"]
        body.append([display(c, base.get(c)) for c in columns]
                    + [row.get(c) for c in variants for row in (base, other)]
                    + [acc_b, acc_o, difference(acc_b, acc_o), _agreement(base, other, twin).text])
    title = "Fast path against classic path: test accuracy, same configuration"
    return Table("path-accuracy", title + on_hardware([pairs[0][0]], columns), headers, body,
                 tuple(column_label(c) for c in columns[2:]))


# ---------------------------------------------------------------- SVM backends


def backend_pairs(records: Iterable[dict]) -> tuple[list[tuple[dict, dict]], list[dict]]:
    """(sklearn row, sklearnex row) per SVM configuration run with both backends."""
    return twin_pairs(summaries(ok(records, "svm")), TWIN["backend"])


def backend_table(pairs: list[tuple[dict, dict]]) -> Table:
    """Fit time per backend, the speedup and the accuracy difference, per dataset, kernel and C."""
    twin = TWIN["backend"]
    fixed = [*twin.leave_out, "seed", "gamma", "train_limit", "device"]
    candidates = ["gamma", "n_train"] + extras("svm", BACKEND_LEAD, fixed)
    columns = BACKEND_LEAD + varying([b for b, _ in pairs], candidates)
    version = f"{twin.other} version"
    sides = (twin.base, twin.other)
    headers = ([column_label(c) for c in columns] + [f"{side} fit (ms)" for side in sides]
               + [f"speedup ({twin.base}/{twin.other})", "recorded speedup",
                  f"Δ acc ({twin.other}−{twin.base}, pts)", "accuracies", version])
    body = []
    for base, other in sorted(pairs, key=row_order(columns, _either)):
        fair = _agreement(base, other, twin)
        body.append([svm_cell(base, c) for c in columns]
                    + [_ms(base), _ms(other), twin_speedup(base, other) if fair.comparable else None,
                       other.get(twin.ratio) if fair.comparable else None,
                       difference(base["test_acc_pct"], other["test_acc_pct"]), fair.text,
                       run_value(other, "backend_version")])
    return Table("svm-backends", "SVM backends: scikit-learn against scikit-learn-intelex, same configuration",
                 headers, body, (*(column_label(c) for c in columns[2:]), version),
                 f"Fit time, mean over runs; {TOLERANCE}.")


def _agreement(base: dict, other: dict, twin: Twin) -> Agreement:
    return accuracies_agree(base.get("test_acc_pct"), other.get("test_acc_pct"), (twin.base, twin.other))


def _ms(row: dict) -> Stat | None:
    """The fit in milliseconds: measures.unit_time_s of an SVM, scaled."""
    return scaled(unit_time_stat(row), 1000, ",.0f")
