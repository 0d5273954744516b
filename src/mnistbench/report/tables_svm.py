"""SVM tables (Q1(b)): every configuration of a preset, and the best per dataset and kernel."""

from __future__ import annotations

from mnistbench.report.group import Table, best, column_label, display, extras, sort_rows, varying
from mnistbench.report.tables_train import CHOSEN_BY
from mnistbench.results.stats import Stat, scaled

SVM_LEAD = ["dataset", "kernel", "C", "degree", "gamma", "n_train"]
SVM_ORDER = ["dataset", "kernel", "degree", "C", "gamma", "n_train", "backend"]
IDENTITY = ("dataset", "kernel")  # what a row of either table is about; never said above the table


def svm_table(rows: list[dict], name: str, title: str) -> Table:
    candidates = [c for c in extras("svm", SVM_LEAD, ["seed", "preset"]) if c != "train_limit"]
    columns = SVM_LEAD + varying(rows, candidates)
    body = [[svm_cell(r, c) for c in columns] + [r["test_acc_pct"], seconds(r["fit_time_ms"]),
                                                 seconds(r["predict_time_ms"])]
            for r in sort_rows(rows, SVM_ORDER)]
    headers = [column_label(c) for c in columns] + ["test acc (%)", "fit time (s)", "predict time (s)"]
    return Table(name, title, headers, body, _liftable(columns))


def best_svm_table(rows: list[dict], name: str, title: str) -> Table:
    columns = SVM_LEAD + ["scale", "backend", "hardware"]
    body = [[svm_cell(r, c) for c in columns] + [r["val_acc_pct"], r["test_acc_pct"], seconds(r["fit_time_ms"])]
            for r in best(rows, IDENTITY)]
    headers = [column_label(c) for c in columns] + [CHOSEN_BY, "test acc (%)", "fit time (s)"]
    return Table(name, title, headers, body, _liftable(columns))


def seconds(ms: Stat | None) -> Stat | None:
    """A recorded millisecond Stat in seconds: every table of the report speaks seconds."""
    return scaled(ms, 1e-3, ",.2f")


def svm_cell(row: dict, column: str):
    if column == "degree" and row.get("kernel") == "rbf":
        return None  # rbf has no degree; the record keeps the default
    return display(column, row.get(column))


def _liftable(columns: list[str]) -> tuple[str, ...]:
    return tuple(column_label(c) for c in columns if c not in IDENTITY)
