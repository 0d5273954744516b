"""Training tables: Q1(a) per model, the best configurations, Q2's CPU/GPU speedup, FLOPs per model.

Explicit lead columns, then whatever other case field varies among the rows; columns every
row shares are said once above the table (Table.liftable), not repeated in each row.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Iterable
from typing import NamedTuple

from mnistbench.report.group import (
    Table,
    best,
    column_label,
    display,
    extras,
    group,
    model_title,
    on_hardware,
    present,
    row_order,
    sort_rows,
    sort_value,
    value_of,
    varying,
)
from mnistbench.results.record import JOINS, ok
from mnistbench.results.stats import hashable, is_number, ratio, stat

BEST_TRAIN = ["dataset", "model", "stem", "image_size", "batch_size", "optimizer", "lr", "epochs",
              "pin_memory", "amp", "path", "loader", "device", "hardware", "split", "train_limit"]
TARGET_METRICS = {"epochs_to_target": "epochs to target", "time_to_target_s": "time to target (s)"}
SPEEDUP_LEAD = ["dataset", "model", "batch_size", "optimizer", "lr"]
CHOSEN_BY = "val acc (%), chosen by"  # group.best picks on validation; the test accuracy beside it is reported


def model_table(rows: list[dict], name: str, title: str, lead: list[str], fixed: Iterable[str]) -> Table:
    """One row per configuration, one accuracy and one time column per model (the write-ups' shape)
    where every configuration ran every model; else one row per configuration and model, and a note
    saying so, so that no cell is a hole standing for a run nobody made."""
    columns = lead + varying(rows, extras("train", lead, ["model", "seed", *fixed]))
    models = present(rows, "model")
    cells = _by_configuration(rows, columns)
    if len(models) > 1 and any(len(by_model) < len(models) for by_model in cells.values()):
        return _model_rows_table(rows, name, title, columns, len(cells))
    body = []
    for key, by_model in cells.items():
        accs = [value_of(by_model.get(m), "test_acc_pct") for m in models]
        times = [value_of(by_model.get(m), "train_time_s") for m in models]
        body.append([display(c, v) for c, v in zip(columns, key, strict=True)] + accs + times)
    headers = ([column_label(c) for c in columns] + [f"{model_title(m)} acc (%)" for m in models]
               + [f"{model_title(m)} time (s)" for m in models])
    return Table(name, title + on_hardware(rows, columns), headers, body, _labels(columns))


def _model_rows_table(rows: list[dict], name: str, title: str, columns: list[str], configurations: int) -> Table:
    """The long shape of model_table: the model is a column, each run configuration a row."""
    columns = ["model", *columns]
    body = [[display(c, r.get(c)) for c in columns] + [value_of(r, "test_acc_pct"), value_of(r, "train_time_s")]
            for r in sort_rows(rows, columns)]
    note = (f"Not every one of the {configurations} configurations ran every model, so each model has rows of "
            "its own.")
    return Table(name, title + on_hardware(rows, columns), [*_labels(columns), "test acc (%)", "train time (s)"],
                 body, _labels(columns[1:]), note)


def _by_configuration(rows: list[dict], columns: list[str]) -> dict[tuple, dict[str, dict]]:
    """Rows keyed by their values of `columns`, then by model: one table row per key."""
    cells: dict[tuple, dict[str, dict]] = {}
    for row in sort_rows(rows, columns):
        cells.setdefault(tuple(hashable(row.get(c)) for c in columns), {})[row["model"]] = row
    return cells


def best_train_table(rows: list[dict], by: list[str], name: str, title: str) -> Table:
    """The winners per value of `by`; time-to-target columns (and the target) when any run reached one."""
    targets = [m for m in TARGET_METRICS if any(r.get(m) for r in rows)]
    columns = BEST_TRAIN + (["target_val_acc_pct"] if targets else [])
    headers = ([column_label(c) for c in columns] + [CHOSEN_BY, "test acc (%)", "train time (s)"]
               + [TARGET_METRICS[m] for m in targets])
    body = [[display(c, r.get(c)) for c in columns] + [r["val_acc_pct"], r["test_acc_pct"], r["train_time_s"]]
            + [r.get(m) for m in targets] for r in best(rows, by)]
    return Table(name, title, headers, body, _labels([c for c in columns if c not in by]))


def speedup_columns(pairs: list[tuple[dict, dict]]) -> list[str]:
    """The lead columns and whatever else varies among the joined configurations."""
    candidates = [c for c in extras("train", SPEEDUP_LEAD, [*JOINS["devices"], "model"]) if c != "hardware"]
    return SPEEDUP_LEAD + varying([c for c, _ in pairs], candidates)


def hardware_varies(pairs: list[tuple[dict, dict]]) -> bool:
    return len({(c["hardware"], g["hardware"]) for c, g in pairs}) > 1


def speedup_table(pairs: list[tuple[dict, dict]]) -> Table:
    """CPU and GPU time per configuration and their ratio (ratio of mean training times)."""
    columns = speedup_columns(pairs)
    show_hw = hardware_varies(pairs)
    headers = ([column_label(c) for c in columns] + (["CPU", "GPU"] if show_hw else [])
               + ["CPU time (s)", "GPU time (s)", "speedup (CPU/GPU)", "CPU acc (%)", "GPU acc (%)"])
    body = []
    for cpu, gpu in sorted(pairs, key=row_order(columns, lambda pair: pair[0])):
        times = [cpu["train_time_s"], gpu["train_time_s"]]
        body.append([display(c, cpu.get(c)) for c in columns]
                    + ([cpu["hardware"], gpu["hardware"]] if show_hw else [])
                    + [*times, ratio(*times), cpu["test_acc_pct"], gpu["test_acc_pct"]])
    return Table("q2-speedup", "GPU speedup over CPU, same configuration (ratio of mean training times)",
                 headers, body, _labels(columns[2:]))


def flops_table(records: Iterable[dict]) -> Table:
    """fvcore's count per model, stem and input size, from FLOP cases and from training runs alike."""
    found: dict[tuple, dict] = {}
    for rec in ok(records):
        if rec["kind"] == "svm" or not is_number(rec.get("gmacs_fvcore")):
            continue
        key = (rec["model"], rec.get("stem") or "imagenet", rec.get("image_size"), rec.get("channels", 1))
        entry = found.setdefault(key, {"gmacs": set(), "params": set(), "from": Counter()})
        entry["gmacs"].add(round(rec["gmacs_fvcore"], 6))
        entry["params"].add(round(rec.get("params_m") or 0, 4))
        entry["from"][rec["kind"]] += 1
    body = []
    for key in sorted(found, key=lambda k: (sort_value("model", k[0]), *k[1:])):
        entry = found[key]
        sources = ", ".join(f"{n} {kind}" for kind, n in sorted(entry["from"].items()))
        body.append([model_title(key[0]), *key[1:], _one_or_all(entry["gmacs"]), _one_or_all(entry["params"]),
                     _one_or_all({round(3 * g, 6) for g in entry["gmacs"]}), sources])
    headers = ["model", "stem", "image size (px)", "channels", "GMACs/image (fvcore, forward)", "params (M)",
               "training GMACs/image (~3x forward)", "records"]
    return Table("flops", "FLOPs and parameters per model and input size", headers, body, tuple(headers[1:4]))


def _one_or_all(values: set):
    """One value as itself; disagreeing values side by side, so the disagreement shows."""
    return next(iter(values)) if len(values) == 1 else " / ".join(f"{v:g}" for v in sorted(values))


def _labels(columns: Iterable[str]) -> tuple[str, ...]:
    return tuple(column_label(c) for c in columns)


# ---------------------------------------------------------------- time to target, as MLPerf scores it

MLPERF_MIN_SEEDS = 5  # MLPerf Training scores a result from at least five runs


class TargetScore(NamedTuple):
    seconds: float | None  # the olympic mean of time to target; None when there is no score
    converged: int
    seeds: int
    verdict: str


def reached(runs: list[dict]) -> list[dict]:
    """The runs that finished ok and met their target; a failed run never reached it."""
    return [r for r in runs if r.get("status") == "ok" and is_number(r.get("time_to_target_s"))]


def target_score(runs: list[dict]) -> TargetScore:
    """MLPerf Training's score over one configuration's seeds: drop the fastest and the slowest
    time to target and average the rest. One seed that never reached the target counts as the
    slowest (and is dropped); more than one makes the result invalid. Fewer than five: no score."""
    times = sorted(r["time_to_target_s"] for r in reached(runs))
    seeds, failed = len(runs), len(runs) - len(times)
    if seeds < MLPERF_MIN_SEEDS:
        return TargetScore(None, len(times), seeds, f"no score: {seeds} seed(s), MLPerf needs {MLPERF_MIN_SEEDS}")
    if failed > 1:
        return TargetScore(None, len(times), seeds, f"invalid: {failed} seeds did not reach the target")
    kept = (times + [math.inf] * failed)[1:-1]
    return TargetScore(statistics.fmean(kept), len(times), seeds, "valid")


def time_to_target_table(records: Iterable[dict]) -> Table:
    """Every configuration with a target, over all its seeds (a run that failed counts as one that
    never reached the target): how many converged, their time to target, and MLPerf's score."""
    runs = [r for r in records if r["kind"] == "train" and r.get("target_val_acc_pct") is not None]
    groups = group(sort_rows(runs, SPEEDUP_LEAD))
    columns = SPEEDUP_LEAD + varying([g[0] for g in groups], extras("train", SPEEDUP_LEAD, ["seed"]))
    body = []
    for seeds in groups:
        score, met = target_score(seeds), reached(seeds)
        body.append([display(c, seeds[0].get(c)) for c in columns]
                    + [seeds[0]["target_val_acc_pct"], f"{score.converged}/{score.seeds}",
                       stat((r["epochs_to_target"] for r in met), ".1f"),
                       stat((r["time_to_target_s"] for r in met), ",.2f"),
                       None if score.seconds is None else round(score.seconds, 2), score.verdict])
    headers = [column_label(c) for c in columns] + [
        "val target (%)", "reached", "epochs to target", "time to target (s)", "MLPerf score (s)", "verdict"]
    return Table("time-to-target", "Time to target, scored as MLPerf Training scores it", headers, body,
                 _labels(columns), "The score is the olympic mean over 5 or more seeds: the fastest and the slowest "
                 "dropped, the rest averaged.")
