"""group: records into summarised rows, pairs of rows, and the order and names of columns.

A row is the runs of one configuration on one kind of hardware (record.JOINS["seeds"]):
a Stat per metric (mean ± std, n), the first run's fields, the runs themselves. Pairs of
rows (CPU and GPU, fast and classic, sklearn and sklearnex) are joined by the rules in
record.py, and every time and mean comes from results.measures and results.stats; nothing
here defines a join or a measure of its own.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import NamedTuple

from mnistbench.cases.case import DEVICES, KERNELS, OPTIMIZERS, PATHS, SVM_BACKENDS
from mnistbench.cases.registry import DATASETS, MODELS
from mnistbench.results.measures import run_time_s, unit_time_s
from mnistbench.results.record import JOINS, TWINS, Twin, case_fields, config_key, defaults, hardware, ok, twin_key
from mnistbench.results.stats import Ratio, Stat, hashable, ratio, stat

THROUGHPUT = "throughput"  # its own table only: a few timed steps, not a training run to read accuracy from
TWIN = {twin.field: twin for twin in TWINS}  # "path", "backend"
DEVICE_NAMES = {"cpu": "CPU", "cuda": "GPU"}
# The study's order of a column's values (models and datasets: registration order); unknown ones sort after.
ORDER = {"model": MODELS, "dataset": DATASETS, "optimizer": OPTIMIZERS, "device": DEVICES, "kernel": KERNELS,
         "path": PATHS, "backend": SVM_BACKENDS}
LABELS = {
    "batch_size": "batch", "image_size": "image size (px)", "train_limit": "train limit",
    "eval_limit": "eval limit", "n_train": "train size", "target_val_acc_pct": "val target (%)",
}
# Settings said above a table only when not at the suite's default: at the default they tell a reader
# nothing (pin_memory on a CPU run, amp "auto"); the provenance section and every record still hold them.
QUIET_FIELDS = ("stem", "image_size", "pin_memory", "num_workers", "amp", "loader", "split", "split_seed",
                "eval_limit", "backend", "max_iter", "deterministic", "stop_at_target")
QUIET_DEFAULTS = {LABELS.get(name, name): default for kind in ("train", "svm")
                  for name, default in defaults(kind).items() if name in QUIET_FIELDS}
# Columns shown when they vary, ahead of any other case field that happens to vary.
PREFERRED_EXTRAS = ("epochs", "pin_memory", "image_size", "train_limit", "stem", "amp", "path", "loader")
METRICS = {
    "test_acc_pct": ".2f", "val_acc_pct": ".2f", "train_time_s": ",.2f", "images_per_s": ",.0f",
    "fit_time_ms": ",.0f", "predict_time_ms": ",.0f", "gmacs_fvcore": ".4f", "params_m": ".2f",
    "images_per_s_median": ",.0f", "mfu_pct": ".1f", "epochs_to_target": ".1f", "time_to_target_s": ",.2f",
    **{twin.ratio: ".2f" for twin in TWINS},
}


class Table(NamedTuple):
    name: str  # its CSV's file stem
    title: str
    headers: list[str]
    rows: list[list]
    liftable: tuple[str, ...] = ()  # headers said once above the table when every row has the same value
    note: str = ""  # one line under the title: how the rows were chosen or compared, so the title stays short

    def as_dicts(self) -> list[dict]:
        """The rows keyed by header."""
        return [dict(zip(self.headers, row, strict=True)) for row in self.rows]


# ---------------------------------------------------------------- rows


def not_throughput(records: Iterable[dict]) -> list[dict]:
    """Every record but the throughput preset's, which only the throughput table reads."""
    return [r for r in records if r.get("preset") != THROUGHPUT]


def seed_key(rec: dict) -> tuple:
    return config_key(rec, JOINS["seeds"]) + (hardware(rec),)


def group(records: Iterable[dict], key: Callable[[dict], tuple] = seed_key) -> list[list[dict]]:
    """Runs sharing a key, in first-seen order."""
    groups: dict[tuple, list[dict]] = {}
    for rec in records:
        groups.setdefault(key(rec), []).append(rec)
    return list(groups.values())


def summarize(runs: list[dict]) -> dict:
    """One row for a group of runs: the first run's fields, a Stat per metric, the runs themselves."""
    row = {**runs[0], "hardware": hardware(runs[0]), "runs": runs, "n": len(runs)}
    for metric, fmt in METRICS.items():
        row[metric] = stat((r.get(metric) for r in runs), fmt)
    row["time_s"] = stat((run_time_s(r) for r in runs), ",.2f")
    return row


def summaries(records: Iterable[dict], key: Callable[[dict], tuple] = seed_key) -> list[dict]:
    return [summarize(runs) for runs in group(records, key)]


def unit_time_stat(row: dict) -> Stat | None:
    """measures.unit_time_s over the row's runs: the seconds every twin speedup is a ratio of."""
    return stat(unit_time_s(r) for r in row["runs"])


# ---------------------------------------------------------------- pairs


def speedup_pairs(records: Iterable[dict]) -> tuple[list[tuple[dict, dict]], list[dict]]:
    """(CPU row, GPU row) per configuration run on both (record.JOINS["devices"]); and rows on one only."""
    def key(rec):
        return config_key(rec, JOINS["devices"]) + (rec["device"], hardware(rec))

    by_config: dict[tuple, dict[str, list[dict]]] = {}
    for row in summaries(ok(records, "train"), key):
        by_config.setdefault(config_key(row, JOINS["devices"]), {}).setdefault(row["device"], []).append(row)
    return _pairs(by_config, "cpu", "cuda")


def twin_pairs(rows: list[dict], twin: Twin) -> tuple[list[tuple[dict, dict]], list[dict]]:
    """(base row, other row) for every configuration summarised with both values of the twin's field on the
    same hardware, joined by record.twin_key with seeds pooled; and the rows without a twin."""
    by_config: dict[tuple, dict[object, list[dict]]] = {}
    for row in rows:
        key = twin_key(row, twin, pool_seeds=True) + (row["hardware"],)
        by_config.setdefault(key, {}).setdefault(row.get(twin.field), []).append(row)
    return _pairs(by_config, twin.base, twin.other)


def _pairs(by_config: dict, base, other) -> tuple[list[tuple[dict, dict]], list[dict]]:
    pairs, alone = [], []
    for sides in by_config.values():
        if base in sides and other in sides:
            pairs += [(b, o) for b in sides[base] for o in sides[other]]
        else:
            alone += [r for side in sides.values() for r in side]
    return pairs, alone


def twin_speedup(base: dict, other: dict) -> Ratio | None:
    """Base cost over the other's (measures.unit_time_s, mean over runs): the recorded speedup's own basis."""
    return ratio(unit_time_stat(base), unit_time_stat(other))


# ---------------------------------------------------------------- columns and order


def present(rows: list[dict], column: str) -> list:
    """The values a column takes, in the study's order where it has one, unknown ones after."""
    values = list(dict.fromkeys(r.get(column) for r in rows))
    return sorted(values, key=lambda v: sort_value(column, v))


def varying(rows: list[dict], candidates: Iterable[str]) -> list[str]:
    return [c for c in candidates if len({hashable(r.get(c)) for r in rows}) > 1]


def extras(kind: str, shown: Iterable[str], fixed: Iterable[str]) -> list[str]:
    """Every case field not already a column nor fixed by the table, preferred ones first, hardware last."""
    taken = set(shown) | set(fixed)
    fields = case_fields(kind)
    names = [f for f in PREFERRED_EXTRAS if f in fields]
    names += [f for f in fields if f not in names]
    return [f for f in names if f not in taken] + ["hardware"]


def sort_rows(rows: list[dict], columns: Iterable[str]) -> list[dict]:
    return sorted(rows, key=row_order(list(columns)))


def row_order(columns: list[str], pick: Callable = lambda item: item) -> Callable:
    """A sort key over `columns` of the row `pick` finds in each item (a pair's first row, say)."""
    return lambda item: tuple(sort_value(c, pick(item).get(c)) for c in columns)


def sort_value(column: str, value) -> tuple:
    known = list(ORDER.get(column, ()))
    if value in known:
        value = known.index(value)
    return (value is None, isinstance(value, str), "" if value is None else value)


def best(rows: list[dict], by: Iterable[str]) -> list[dict]:
    """Per value of `by`, the row with the highest mean VALIDATION accuracy (the faster one wins a tie),
    whose test accuracy the tables then report: choosing by the test accuracy that is then reported
    is the selection bias a benchmark must not have. Rows that recorded no validation accuracy (SVM
    records before 2026-12-01) are never chosen."""
    by = list(by)
    winners: dict[tuple, dict] = {}
    for row in (r for r in rows if r.get("val_acc_pct")):
        k = tuple(row.get(c) for c in by)
        if k not in winners or _rank(row) > _rank(winners[k]):
            winners[k] = row
    return sort_rows(list(winners.values()), by)


def _rank(row: dict) -> tuple:
    acc, time = row["val_acc_pct"], row.get("time_s")
    return (acc.mean, -(time.mean if time else math.inf))


def run_value(row: dict | None, field: str):
    """A field every run of the row shares; disagreeing values side by side, so the disagreement shows."""
    if row is None:
        return None
    values = list(dict.fromkeys(r.get(field) for r in row["runs"]))
    return values[0] if len(values) == 1 else " / ".join(map(str, values))


# ---------------------------------------------------------------- names and cells


def column_label(column: str) -> str:
    return LABELS.get(column, column)


def display(column: str, value):
    if column in ("train_limit", "eval_limit") and value is None:
        return "all"
    return value


def model_title(model: str) -> str:
    """'ResNet-18'; a model this install does not register keeps its recorded name."""
    return MODELS[model].title if model in MODELS else str(model)


def device_name(device: str) -> str:
    return DEVICE_NAMES.get(device, str(device))


def on_hardware(rows: list[dict], columns: list[str]) -> str:
    """', on CPU (its name)' for a title when the hardware is not a column (then every row shares it)."""
    if "hardware" in columns:
        return ""
    return f", on {device_name(rows[0]['device'])} ({rows[0]['hardware']})"


def value_of(row: dict | None, metric: str):
    return None if row is None else row.get(metric)
