"""The study's tables, plots and run-to-run comparisons, from the suite's own output.

load -> group -> render. Records come in flat (see record.py) from pytest-benchmark JSON,
results lines or a `.benchmarks` folder; runs of one configuration on one kind of hardware
are grouped with the seed left out, so every cell is a mean over seeds with its spread and
n; tables go out as Markdown (tabulate) and CSV, plots as PNG. Rows are joined by
`record.config_key`, never by test name or order, so a laptop CPU run and a GPU run of the
same case meet in one row wherever they were produced. Twins are joined the same way with
the compared field left out: fast and classic path (throughput, accuracy), sklearn and
sklearnex (SVM backends).

    mnistbench-report FILES... [--out DIR]      # DIR/report.md, one CSV per table, PNGs
    mnistbench-report compare A B [--out DIR]   # A against B, case by case
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import statistics
import sys
import warnings
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import NamedTuple

from tabulate import tabulate

from mnistbench.config import DATASETS, DEVICES, KERNELS, MODELS, OPTIMIZERS, PATHS, SVM_BACKENDS
from mnistbench.record import SCHEMA, case_fields, config_key
from mnistbench.results import ResultsFileError, read_results

KINDS = ("train", "svm", "flops")
SCHEMA_FAMILY = SCHEMA.rsplit("/", 1)[0] + "/"
# Without these a record cannot be placed in any table; newer case fields may be absent.
REQUIRED = {
    "train": ("dataset", "model", "batch_size", "optimizer", "lr", "device", "seed"),
    "svm": ("dataset", "kernel", "C", "device", "seed"),
    "flops": ("model", "image_size"),
}
SEED_IGNORE = ("seed",)
SPEEDUP_IGNORE = ("device", "seed", "pin_memory")
COMPARE_IGNORE = ("device", "seed", "pin_memory", "num_workers")
Q1A_PRESETS = ("q1a", "smoke")
THROUGHPUT = "throughput"  # its own table only: a few timed steps, not a training run to read accuracy from
PATH_IGNORE = ("path", "loader", "amp", "seed")  # fast and classic twins: the path picks its loader and amp
BACKEND_IGNORE = ("backend", "seed")
# Case fields added after runs were recorded, with the value every run had before the field existed.
BACKFILL = {"train": {"path": ("classic", "the classic loop was the only one"),
                      "deterministic": (False, "deterministic algorithms could not be turned on")}}

MODEL_NAMES = {"resnet18": "ResNet-18", "resnet34": "ResNet-34", "resnet50": "ResNet-50"}
DEVICE_NAMES = {"cpu": "CPU", "cuda": "GPU"}
ORDER = {"model": MODELS, "optimizer": OPTIMIZERS, "device": DEVICES, "kernel": KERNELS, "dataset": DATASETS,
         "path": PATHS, "backend": SVM_BACKENDS}
LABELS = {
    "batch_size": "batch", "lr": "lr", "image_size": "image size (px)", "train_limit": "train limit",
    "eval_limit": "eval limit", "pin_memory": "pin_memory", "n_train": "train size", "hardware": "hardware",
    "target_val_acc_pct": "val target (%)",
}
# Columns shown when they vary, ahead of any other case field that happens to vary.
PREFERRED_EXTRAS = ("epochs", "pin_memory", "image_size", "train_limit", "stem", "amp", "path", "loader")


class ReportInputError(ValueError):
    """An input that cannot be read as the suite's output; the message names the file and what is missing."""


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


class Table(NamedTuple):
    name: str  # its CSV's file stem
    title: str
    headers: list[str]
    rows: list[list]


class Plot(NamedTuple):
    name: str  # its PNG's file stem
    caption: str
    figure: object | None  # matplotlib Figure, or None when its data is absent
    missing: str = ""  # why it was skipped


# ---------------------------------------------------------------- load


def load(paths: Iterable[str | Path]) -> list[dict]:
    """Every record in the given files and folders, each carrying its machine, run date and source file."""
    records, seen = [], {}
    for path in _expand(paths):
        records += _drop_repeats(_load_file(path), seen, path)
    return _backfill(records)


def _backfill(records: list[dict]) -> list[dict]:
    """Case fields a record predates get the value they had then (path: classic); `backfilled` names them."""
    for rec in records:
        for field, (value, _) in BACKFILL.get(rec["kind"], {}).items():
            if field not in rec:
                rec[field] = value
                rec["backfilled"] = [*rec.get("backfilled", []), field]
    return records


def _expand(paths: Iterable[str | Path]) -> list[Path]:
    files = []
    for path in map(Path, paths):
        if path.is_dir():
            found = sorted(path.rglob("*.json"))
            if not found:
                raise ReportInputError(f"{path}: folder holds no *.json files "
                                       "(expected pytest-benchmark JSON, e.g. .benchmarks/ from --benchmark-save)")
            files += found
        elif path.exists():
            files.append(path)
        else:
            raise ReportInputError(f"{path}: no such file or folder")
    if not files:
        raise ReportInputError("no input files given")
    return files


def _load_file(path: Path) -> list[dict]:
    if path.suffix == ".jsonl":
        return _load_results(path)
    return _load_benchmark_json(path)


def _read_text(path: Path) -> str:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ReportInputError(f"{path}: cannot be read ({exc})") from None
    if not text.strip():
        raise ReportInputError(f"{path}: empty file (expected pytest-benchmark JSON or mnistbench results lines)")
    return text


def _load_results(path: Path) -> list[dict]:
    _read_text(path)
    try:
        records = read_results(path)
    except ResultsFileError as exc:
        raise ReportInputError(str(exc)) from None
    if not records:
        raise ReportInputError(f"{path}: no complete record (every line was torn or blank)")
    for rec in records:
        rec.setdefault("machine", {})
        rec.update(source=str(path), run_datetime=rec.get("run_datetime"))
    _check_records(records, path)
    return records


def _load_benchmark_json(path: Path) -> list[dict]:
    text = _read_text(path)
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        if _looks_like_results_lines(text):
            return _load_results(path)
        raise ReportInputError(f"{path}: not JSON ({exc.msg} at line {exc.lineno}, column {exc.colno}); "
                               "expected the file written by --benchmark-json") from None
    benchmarks = doc.get("benchmarks") if isinstance(doc, dict) else None
    if not isinstance(benchmarks, list):
        raise ReportInputError(f"{path}: not pytest-benchmark JSON: no 'benchmarks' list at the top level "
                               f"({_describe(doc)})")
    if not benchmarks:
        raise ReportInputError(f"{path}: pytest-benchmark JSON with no benchmarks (the run collected nothing?)")
    records = _records_of(benchmarks, path)
    machine, when = _machine(doc.get("machine_info")), doc.get("datetime")
    for rec in records:
        rec.update(machine=machine, run_datetime=when, source=str(path))
    _check_records(records, path)
    return records


def _records_of(benchmarks: list, path: Path) -> list[dict]:
    """extra_info of our benchmarks; a foreign benchmark is skipped, another schema version is refused."""
    records, foreign, other = [], 0, []
    for bench in benchmarks:
        info = bench.get("extra_info") if isinstance(bench, dict) else None
        schema = info.get("schema") if isinstance(info, dict) else None
        if schema == SCHEMA:
            stats = bench.get("stats") or {}
            records.append({**info, "bench_name": bench.get("name"), "bench_total_s": stats.get("total"),
                            "bench_rounds": stats.get("rounds")})
        elif isinstance(schema, str) and schema.startswith(SCHEMA_FAMILY):
            other.append((bench.get("name"), schema))
        else:
            foreign += 1
    if other:
        name, schema = other[0]
        raise ReportInputError(f"{path}: {len(other)} benchmark(s) carry schema {schema!r} (first: {name}); "
                               f"this report reads {SCHEMA!r}; report each schema version with its own mnistbench")
    if not records:
        raise ReportInputError(f"{path}: none of its {len(benchmarks)} benchmark(s) has an mnistbench record in "
                               f"extra_info (expected extra_info['schema'] == {SCHEMA!r}); "
                               "was it written by this suite?")
    if foreign:
        warnings.warn(f"{path}: skipped {foreign} of {len(benchmarks)} benchmark(s) without an mnistbench "
                      "record in extra_info", stacklevel=2)
    return records


def _looks_like_results_lines(text: str) -> bool:
    """A results file saved as .json: its first line alone is one of our records."""
    first = text.lstrip().split("\n", 1)[0]
    try:
        rec = json.loads(first)
    except json.JSONDecodeError:
        return False
    return isinstance(rec, dict) and rec.get("schema") == SCHEMA


def _describe(doc) -> str:
    if isinstance(doc, dict):
        keys = ", ".join(list(doc)[:6]) or "none"
        return f"top-level keys: {keys}"
    return f"found a JSON {type(doc).__name__}"


def _machine(info) -> dict:
    """The suite's machine facts; pytest-benchmark's own fields when a run predates them."""
    info = info if isinstance(info, dict) else {}
    if isinstance(info.get("mnistbench"), dict):
        return dict(info["mnistbench"])
    cpu = info.get("cpu") or {}
    return {"cpu_model": cpu.get("brand_raw") or info.get("processor") or info.get("machine", ""),
            "cpu_count": cpu.get("count"), "node": info.get("node", ""),
            "python_version": info.get("python_version", ""), "gpus": []}


def _check_records(records: list[dict], path: Path) -> None:
    for rec in records:
        where = f"{path}: record {rec.get('case_id') or rec.get('bench_name') or '?'}"
        missing = [k for k in ("kind", "case_id", "status") if k not in rec]
        if missing:
            raise ReportInputError(f"{where} lacks {', '.join(missing)}")
        if rec["kind"] not in KINDS:
            raise ReportInputError(f"{where} has kind {rec['kind']!r}, expected one of {', '.join(KINDS)}")
        missing = [k for k in REQUIRED[rec["kind"]] if k not in rec]
        if missing:
            raise ReportInputError(f"{where} lacks case field(s) {', '.join(missing)}")


def _drop_repeats(records: list[dict], seen: dict, path: Path) -> list[dict]:
    """The same run read twice (its .json and its .jsonl) is counted once: identical timings are one run."""
    kept, repeats = [], Counter()
    for rec in records:
        timing = rec.get("train_time_s", rec.get("fit_time_ms"))
        key = (rec["case_id"], timing) if _is_number(timing) else None
        if key is not None and key in seen:
            repeats[seen[key]] += 1
            continue
        if key is not None:
            seen[key] = str(path)
        kept.append(rec)
    for first, count in repeats.items():
        warnings.warn(f"{path}: {count} record(s) repeat runs already read from {first} "
                      "(same case, identical timings); each run is counted once", stacklevel=3)
    return kept


# ---------------------------------------------------------------- group


def ok(records: Iterable[dict], kind: str | None = None) -> list[dict]:
    """Runs that finished with status ok: the only ones any mean is taken over."""
    return [r for r in records if r.get("status") == "ok" and (kind is None or r["kind"] == kind)]


def not_ok(records: Iterable[dict]) -> list[dict]:
    return [r for r in records if r.get("status") != "ok"]


def hardware(rec: dict) -> str:
    """What the run ran on, in words: runs on different hardware are never averaged together."""
    machine = rec.get("machine") or {}
    if rec.get("device") == "cuda":
        return rec.get("device_name") or ", ".join(machine.get("gpus") or []) or "GPU (unnamed)"
    return machine.get("cpu_model") or rec.get("device_name") or "CPU (unnamed)"


def seed_key(rec: dict) -> tuple:
    return config_key(rec, ignore=SEED_IGNORE) + (hardware(rec),)


def group(records: Iterable[dict], key: Callable[[dict], tuple] = seed_key) -> list[list[dict]]:
    """Runs sharing a key, in first-seen order."""
    groups: dict[tuple, list[dict]] = {}
    for rec in records:
        groups.setdefault(key(rec), []).append(rec)
    return list(groups.values())


def stat(values: Iterable, fmt: str = ".2f") -> Stat | None:
    xs = [float(v) for v in values if _is_number(v)]
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


METRICS = {
    "test_acc_pct": ".2f", "val_acc_pct": ".2f", "train_time_s": ",.2f", "images_per_s": ",.0f",
    "fit_time_ms": ",.0f", "predict_time_ms": ",.0f", "gmacs_fvcore": ".4f", "params_m": ".2f",
    "images_per_s_median": ",.0f", "mfu_pct": ".1f", "epochs_to_target": ".1f", "time_to_target_s": ",.2f",
    "speedup_vs_classic": ".2f", "speedup_vs_sklearn": ".2f",
}


def summarize(runs: list[dict]) -> dict:
    """One row for a group of runs: the first run's fields, a Stat per metric, the runs themselves."""
    row = {**runs[0], "hardware": hardware(runs[0]), "runs": runs, "n": len(runs)}
    for metric, fmt in METRICS.items():
        row[metric] = stat((r.get(metric) for r in runs), fmt)
    row["time_s"] = seconds_stat(runs)
    return row


def seconds_stat(runs: list[dict]) -> Stat | None:
    """Training time in seconds: train_time_s for ResNets, the SVC fit for SVMs."""
    return stat((_seconds(r) for r in runs), ",.2f")


def _seconds(rec: dict):
    if rec["kind"] == "svm":
        ms = rec.get("fit_time_ms")
        return ms / 1000 if _is_number(ms) else None
    return rec.get("train_time_s")


def summaries(records: Iterable[dict], key: Callable[[dict], tuple] = seed_key) -> list[dict]:
    return [summarize(runs) for runs in group(records, key)]


def present(rows: list[dict], column: str) -> list:
    """The values a column takes, in the study's order where it has one, unknown ones after."""
    values = list(dict.fromkeys(r.get(column) for r in rows))
    return sorted(values, key=lambda v: _sort_value(column, v))


def varying(rows: list[dict], candidates: Iterable[str]) -> list[str]:
    return [c for c in candidates if len({_hashable(r.get(c)) for r in rows}) > 1]


def extras(kind: str, shown: Iterable[str], fixed: Iterable[str]) -> list[str]:
    """Every case field not already a column nor fixed by the table, preferred ones first, hardware last."""
    taken = set(shown) | set(fixed)
    names = [f for f in PREFERRED_EXTRAS if f in case_fields({}, kind)]
    names += [f for f in case_fields({}, kind) if f not in names]
    return [f for f in names if f not in taken] + ["hardware"]


def sort_rows(rows: list[dict], columns: Iterable[str]) -> list[dict]:
    columns = list(columns)
    return sorted(rows, key=lambda r: tuple(_sort_value(c, r.get(c)) for c in columns))


def _sort_value(column: str, value) -> tuple:
    if column in ORDER and value in ORDER[column]:
        value = ORDER[column].index(value)
    return (value is None, isinstance(value, str), "" if value is None else value)


def best(rows: list[dict], by: Iterable[str]) -> list[dict]:
    """Highest mean test accuracy per value of `by`; the faster one wins a tie."""
    by = list(by)
    winners: dict[tuple, dict] = {}
    for row in rows:
        k = tuple(row.get(c) for c in by)
        if k not in winners or _rank(row) > _rank(winners[k]):
            winners[k] = row
    return sort_rows(list(winners.values()), by)


def _rank(row: dict) -> tuple:
    acc, time = row.get("test_acc_pct"), row.get("time_s")
    return (acc.mean if acc else -math.inf, -(time.mean if time else math.inf))


# ---------------------------------------------------------------- tables


def model_table(rows: list[dict], name: str, title: str, lead: list[str], fixed: Iterable[str],
                time_factor: float = 1.0, time_unit: str = "s") -> Table:
    """One row per configuration, one accuracy and one time column per model (the write-ups' shape)."""
    columns = lead + varying(rows, extras("train", lead, ["model", "seed", *fixed]))
    models = present(rows, "model")
    cells: dict[tuple, dict] = {}
    for row in sort_rows(rows, columns):
        cells.setdefault(tuple(_hashable(row.get(c)) for c in columns), {})[row["model"]] = row
    fmt = ",.0f" if time_unit == "ms" else ",.2f"
    body = []
    for key, by_model in cells.items():
        accs = [_get(by_model.get(m), "test_acc_pct") for m in models]
        times = [scaled(_get(by_model.get(m), "train_time_s"), time_factor, fmt) for m in models]
        body.append([_display(c, v) for c, v in zip(columns, key, strict=True)] + accs + times)
    headers = ([_label(c) for c in columns] + [f"{_model_name(m)} acc (%)" for m in models]
               + [f"{_model_name(m)} time ({time_unit})" for m in models])
    if "hardware" not in columns:
        title += f", on {DEVICE_NAMES.get(rows[0]['device'], rows[0]['device'])} ({rows[0]['hardware']})"
    return Table(name, title, headers, body)


BEST_TRAIN = ["preset", "dataset", "model", "stem", "image_size", "batch_size", "optimizer", "lr", "epochs",
              "pin_memory", "amp", "path", "loader", "device", "hardware", "split", "train_limit"]


TARGET_METRICS = {"epochs_to_target": "epochs to target", "time_to_target_s": "time to target (s)"}


def best_train_table(rows: list[dict], by: list[str], name: str, title: str) -> Table:
    """The winners; time-to-target columns (and the target) when any run in `rows` reached one."""
    targets = [m for m in TARGET_METRICS if any(r.get(m) for r in rows)]
    columns = BEST_TRAIN + (["target_val_acc_pct"] if targets else [])
    headers = ([_label(c) for c in columns] + ["test acc (%)", "train time (s)", "val acc (%)"]
               + [TARGET_METRICS[m] for m in targets])
    body = [[_display(c, r.get(c)) for c in columns] + [r["test_acc_pct"], r["train_time_s"], r["val_acc_pct"]]
            + [r.get(m) for m in targets] for r in best(rows, by)]
    return Table(name, title, headers, body)


SVM_LEAD = ["dataset", "kernel", "C", "degree", "gamma", "n_train"]


def svm_table(rows: list[dict], name: str, title: str) -> Table:
    columns = SVM_LEAD + varying(rows, [c for c in extras("svm", SVM_LEAD, ["seed", "preset"])
                                        if c != "train_limit"])
    body = [[_svm_cell(r, c) for c in columns] + [r["test_acc_pct"], r["fit_time_ms"], r["predict_time_ms"]]
            for r in sort_rows(rows, ["dataset", "kernel", "degree", "C", "gamma", "n_train", "backend"])]
    headers = [_label(c) for c in columns] + ["test acc (%)", "fit time (ms)", "predict time (ms)"]
    return Table(name, title, headers, body)


def best_svm_table(rows: list[dict], name: str, title: str) -> Table:
    winners = best(rows, ["dataset", "kernel"])
    columns = SVM_LEAD + ["scale", "backend", "hardware"]
    body = [[_svm_cell(r, c) for c in columns] + [r["test_acc_pct"], r["fit_time_ms"]] for r in winners]
    return Table(name, title, [_label(c) for c in columns] + ["test acc (%)", "fit time (ms)"], body)


def _svm_cell(row: dict, column: str):
    if column == "degree" and row.get("kernel") == "rbf":
        return None  # rbf has no degree; the record keeps the default
    return _display(column, row.get(column))


def speedup_pairs(records: Iterable[dict]) -> tuple[list[tuple[dict, dict]], list[dict]]:
    """(CPU row, GPU row) for every configuration run on both, joined by config; and rows run on one only."""
    rows = summaries(ok(records, "train"), key=lambda r: config_key(r, SPEEDUP_IGNORE) + (r["device"], hardware(r)))
    by_config: dict[tuple, dict[str, list[dict]]] = {}
    for row in rows:
        by_config.setdefault(config_key(row, SPEEDUP_IGNORE), {}).setdefault(row["device"], []).append(row)
    pairs, alone = [], []
    for sides in by_config.values():
        if "cpu" in sides and "cuda" in sides:
            pairs += [(c, g) for c in sides["cpu"] for g in sides["cuda"]]
        else:
            alone += [r for side in sides.values() for r in side]
    return pairs, alone


SPEEDUP_LEAD = ["dataset", "model", "batch_size", "optimizer", "lr"]


def speedup_columns(pairs: list[tuple[dict, dict]]) -> list[str]:
    """The lead columns and whatever else varies among the joined configurations."""
    candidates = [c for c in extras("train", SPEEDUP_LEAD, [*SPEEDUP_IGNORE, "model"]) if c != "hardware"]
    return SPEEDUP_LEAD + varying([c for c, _ in pairs], candidates)


def _hardware_varies(pairs: list[tuple[dict, dict]]) -> bool:
    return len({(c["hardware"], g["hardware"]) for c, g in pairs}) > 1


def speedup_table(pairs: list[tuple[dict, dict]]) -> Table:
    columns = speedup_columns(pairs)
    show_hw = _hardware_varies(pairs)
    headers = ([_label(c) for c in columns] + (["CPU", "GPU"] if show_hw else [])
               + ["CPU time (s)", "GPU time (s)", "speedup (CPU/GPU)", "CPU acc (%)", "GPU acc (%)"])
    body = []
    for cpu, gpu in sorted(pairs, key=lambda p: tuple(_sort_value(c, p[0].get(c)) for c in columns)):
        body.append([_display(c, cpu.get(c)) for c in columns] + ([cpu["hardware"], gpu["hardware"]] if show_hw else [])
                    + [cpu["train_time_s"], gpu["train_time_s"], ratio(cpu["train_time_s"], gpu["train_time_s"]),
                       cpu["test_acc_pct"], gpu["test_acc_pct"]])
    return Table("q2-speedup", "GPU speedup over CPU, same configuration (ratio of mean training times)",
                 headers, body)


def twin_pairs(rows: list[dict], field: str, base: str, other: str,
               ignore: tuple[str, ...]) -> tuple[list[tuple[dict, dict]], list[dict]]:
    """(base row, other row) for every configuration summarised with both values of `field` on the same
    hardware, joined by config with `ignore` (which names `field`) left out; and the rows without a twin."""
    by_config: dict[tuple, dict[object, list[dict]]] = {}
    for row in rows:
        key = config_key(row, ignore) + (row["hardware"],)
        by_config.setdefault(key, {}).setdefault(row.get(field), []).append(row)
    pairs, alone = [], []
    for sides in by_config.values():
        if base in sides and other in sides:
            pairs += [(b, o) for b in sides[base] for o in sides[other]]
        else:
            alone += [r for side in sides.values() for r in side]
    return pairs, alone


def not_throughput(records: Iterable[dict]) -> list[dict]:
    """Every record but the throughput preset's, which only the throughput table reads."""
    return [r for r in records if r.get("preset") != THROUGHPUT]


THROUGHPUT_LEAD = ["model", "batch_size", "device", "hardware"]
FAST_PLAN = {"plan_loader": "fast loader", "amp_dtype": "fast amp", "channels_last": "channels_last",
             "fused_optimizer": "fused optimizer", "cuda_graph": "CUDA graph"}


def throughput_pairs(records: Iterable[dict]) -> list[tuple[dict | None, dict | None]]:
    """(classic row, fast row) of the throughput preset per configuration; None where a path did not run."""
    rows = summaries(r for r in ok(records, "train") if r.get("preset") == THROUGHPUT)
    pairs, alone = twin_pairs(rows, "path", "classic", "fast", PATH_IGNORE)
    return pairs + [(r, None) if r.get("path", "classic") == "classic" else (None, r) for r in alone]


def throughput_table(pairs: list[tuple[dict | None, dict | None]]) -> Table:
    """Median-round images/s per path, their ratio, MFU when known, and what the fast path turned on."""
    either = [c or f for c, f in pairs]
    # steps per round are fixed per device, so the train limit only restates the batch size
    candidates = [c for c in extras("train", THROUGHPUT_LEAD, [*PATH_IGNORE, "preset", "train_limit"])
                  if c != "hardware"]
    columns = THROUGHPUT_LEAD + varying(either, candidates)
    mfu = any(_get(row, "mfu_pct") for pair in pairs for row in pair)
    headers = ([_label(c) for c in columns]
               + ["classic images/s", "fast images/s", "speedup (fast/classic)", "recorded speedup"]
               + (["classic MFU (%)", "fast MFU (%)"] if mfu else []) + ["classic amp"] + list(FAST_PLAN.values()))
    body = []
    order = sorted(range(len(pairs)), key=lambda i: tuple(_sort_value(c, either[i].get(c)) for c in columns))
    for i in order:
        classic, fast = pairs[i]
        ips_c, ips_f = _get(classic, "images_per_s_median"), _get(fast, "images_per_s_median")
        body.append([_display(c, either[i].get(c)) for c in columns]
                    + [ips_c, ips_f, ratio(ips_f, ips_c), _get(fast, "speedup_vs_classic")]
                    + ([_get(classic, "mfu_pct"), _get(fast, "mfu_pct")] if mfu else [])
                    + [_run_value(classic, "amp_dtype")] + [_run_value(fast, f) for f in FAST_PLAN])
    return Table("throughput", "Throughput: classic and fast path, same configuration (median-round images/s, "
                 "mean over seeds)", headers, body)


def _run_value(row: dict | None, field: str):
    """A field every run of the row shares; disagreeing values side by side, so the disagreement shows."""
    if row is None:
        return None
    values = list(dict.fromkeys(r.get(field) for r in row["runs"]))
    return values[0] if len(values) == 1 else " / ".join(map(str, values))


def path_pairs(records: Iterable[dict]) -> tuple[list[tuple[dict, dict]], list[dict]]:
    """(classic row, fast row) per configuration run on both paths (throughput preset left out)."""
    rows = summaries(not_throughput(ok(records, "train")))
    return twin_pairs(rows, "path", "classic", "fast", PATH_IGNORE)


def spread_verdict(classic: Stat | None, fast: Stat | None) -> str | None:
    """Is the difference of means within twice the larger seed-to-seed standard deviation?"""
    if classic is None or fast is None:
        return None
    if classic.n < 2 or fast.n < 2:
        return "n too small"
    within = abs(fast.mean - classic.mean) <= 2 * max(classic.std, fast.std)
    return "within spread" if within else "outside spread"


PATH_LEAD = ["dataset", "model", "batch_size", "optimizer", "lr"]


def path_accuracy_table(pairs: list[tuple[dict, dict]]) -> Table:
    """Test accuracy per path, the difference of means and whether it is within the seed-to-seed spread."""
    columns = PATH_LEAD + varying([c for c, _ in pairs], extras("train", PATH_LEAD, [*PATH_IGNORE, "model"]))
    # a path's loader and amp are left out of the join; when they differ between pairs, both sides show
    variants = [c for c in ("loader", "amp") if len({(_hashable(a.get(c)), _hashable(b.get(c))) for a, b in pairs}) > 1]
    headers = ([_label(c) for c in columns] + [f"{side} {c}" for c in variants for side in ("classic", "fast")]
               + ["classic acc (%)", "fast acc (%)", "Δ acc (fast−classic, pts)", "seed spread"])
    body = []
    for classic, fast in sorted(pairs, key=lambda p: tuple(_sort_value(c, p[0].get(c)) for c in columns)):
        acc_c, acc_f = classic["test_acc_pct"], fast["test_acc_pct"]
        delta = Signed(acc_f.mean - acc_c.mean) if acc_c and acc_f else None
        body.append([_display(c, classic.get(c)) for c in columns]
                    + [row.get(c) for c in variants for row in (classic, fast)]
                    + [acc_c, acc_f, delta, spread_verdict(acc_c, acc_f)])
    title = "Fast path against classic path: test accuracy, same configuration"
    if "hardware" not in columns:
        title += f", on {DEVICE_NAMES.get(pairs[0][0]['device'], pairs[0][0]['device'])} ({pairs[0][0]['hardware']})"
    return Table("path-accuracy", title, headers, body)


def backend_pairs(records: Iterable[dict]) -> tuple[list[tuple[dict, dict]], list[dict]]:
    """(sklearn row, sklearnex row) per SVM configuration run with both backends."""
    return twin_pairs(summaries(ok(records, "svm")), "backend", "sklearn", "sklearnex", BACKEND_IGNORE)


BACKEND_LEAD = ["dataset", "kernel", "degree", "C"]


def backend_table(pairs: list[tuple[dict, dict]]) -> Table:
    """Fit + predict time per backend, their ratio and the accuracy difference, per dataset, kernel and C."""
    candidates = ["gamma", "n_train"] + [c for c in extras("svm", BACKEND_LEAD, [*BACKEND_IGNORE, "gamma"])
                                         if c not in ("train_limit", "device")]
    columns = BACKEND_LEAD + varying([b for b, _ in pairs], candidates)
    headers = ([_label(c) for c in columns]
               + ["sklearn fit+predict (ms)", "sklearnex fit+predict (ms)", "speedup (sklearn/sklearnex)",
                  "recorded speedup", "Δ acc (sklearnex−sklearn, pts)", "sklearnex version"])
    body = []
    for base, other in sorted(pairs, key=lambda p: tuple(_sort_value(c, p[0].get(c)) for c in columns)):
        ms_b, ms_x = _fit_predict_ms(base), _fit_predict_ms(other)
        acc_b, acc_x = base["test_acc_pct"], other["test_acc_pct"]
        body.append([_svm_cell(base, c) for c in columns]
                    + [ms_b, ms_x, ratio(ms_b, ms_x), other["speedup_vs_sklearn"],
                       Signed(acc_x.mean - acc_b.mean) if acc_b and acc_x else None,
                       _run_value(other, "backend_version")])
    return Table("svm-backends", "SVM backends: scikit-learn against scikit-learn-intelex, same configuration "
                 "(fit + predict time, mean over runs)", headers, body)


def _fit_predict_ms(row: dict) -> Stat | None:
    return stat((r["fit_time_ms"] + r["predict_time_ms"] for r in row["runs"]
                 if _is_number(r.get("fit_time_ms")) and _is_number(r.get("predict_time_ms"))), ",.0f")


def flops_table(records: Iterable[dict]) -> Table:
    """fvcore's count per model, stem and input size, from FLOP cases and from training runs alike."""
    found: dict[tuple, dict] = {}
    for rec in ok(records):
        if rec["kind"] == "svm" or not _is_number(rec.get("gmacs_fvcore")):
            continue
        key = (rec["model"], rec.get("stem") or "imagenet", rec.get("image_size"), rec.get("channels", 1))
        entry = found.setdefault(key, {"gmacs": set(), "params": set(), "from": Counter()})
        entry["gmacs"].add(round(rec["gmacs_fvcore"], 6))
        entry["params"].add(round(rec.get("params_m") or 0, 4))
        entry["from"][rec["kind"]] += 1
    body = []
    for key in sorted(found, key=lambda k: (MODELS.index(k[0]) if k[0] in MODELS else 99, *k[1:])):
        entry = found[key]
        sources = ", ".join(f"{n} {kind}" for kind, n in sorted(entry["from"].items()))
        body.append([_model_name(key[0]), *key[1:], _one_or_all(entry["gmacs"]),
                     _one_or_all(entry["params"]), _one_or_all({round(3 * g, 6) for g in entry["gmacs"]}), sources])
    headers = ["model", "stem", "image size (px)", "channels", "GMACs/image (fvcore, forward)", "params (M)",
               "training GMACs/image (~3x forward)", "records"]
    return Table("flops", "FLOPs and parameters per model and input size", headers, body)


def _one_or_all(values: set):
    """One value as itself; disagreeing values side by side, so the disagreement shows."""
    return next(iter(values)) if len(values) == 1 else " / ".join(f"{v:g}" for v in sorted(values))


def failed_table(records: Iterable[dict]) -> Table:
    rows = sort_rows(not_ok(records), ["kind", "case_id"])
    body = [[r["case_id"], r.get("device"), r["status"], r.get("message") or "", Path(r["source"]).name]
            for r in rows]
    return Table("not-ok", "Runs whose status is not ok (left out of every mean)",
                 ["case_id", "device", "status", "message", "file"], body)


# ---------------------------------------------------------------- provenance


def inputs_table(records: list[dict]) -> Table:
    by_source: dict[str, list[dict]] = {}
    for rec in records:
        by_source.setdefault(rec["source"], []).append(rec)
    body = []
    for source, recs in by_source.items():
        kinds = Counter(r["kind"] for r in recs)
        body.append([source, "results lines" if source.endswith(".jsonl") else "pytest-benchmark JSON",
                     _dates(recs), (recs[0].get("machine") or {}).get("node"), len(recs),
                     ", ".join(f"{n} {k}" for k, n in kinds.items())])
    return Table("inputs", "Input files", ["file", "format", "run date", "machine", "records", "kinds"], body)


def _dates(recs: list[dict]) -> str:
    """The session's date (pytest-benchmark JSON), else each record's recorded_at (results lines): first to last."""
    when = [r.get("run_datetime") or r.get("recorded_at") for r in recs]
    dates = sorted({str(w)[:19].replace("T", " ") for w in when if w})
    return " to ".join(dict.fromkeys([dates[0], dates[-1]])) + " UTC" if dates else "not recorded"


MACHINE_FIELDS = ["node", "cpu_model", "cpu_count", "torch_threads", "gpus", "torch_version", "cuda_version",
                  "cudnn_version", "torchvision_version", "sklearn_version", "python_version"]


def machines_table(records: list[dict], sides: dict[str, str] | None = None) -> Table:
    """Distinct machines; with `sides` (source -> side name) it says which side of a comparison each is on."""
    seen: dict[str, list] = {}
    for rec in records:
        machine = rec.get("machine") or {}
        row = [", ".join(v) if isinstance(v, list) else v for v in (machine.get(f) for f in MACHINE_FIELDS)]
        row[4] = row[4] or "none"
        lead = [sides[rec["source"]]] if sides else []
        seen.setdefault(json.dumps(lead + row, default=str), lead + row)
    headers = (["side"] if sides else []) + ["node", "CPU", "cores", "torch threads", "GPUs", "torch", "CUDA (build)",
                                             "cuDNN", "torchvision", "scikit-learn", "python"]
    return Table("machines", "Machines", headers, list(seen.values()))


def data_table(records: list[dict]) -> Table:
    """Split, data sizes and epochs per kind and preset, so every number can be put back in context."""
    fields = ["kind", "preset", "split", "split_seed", "n_train", "n_val", "n_test", "epochs"]
    seeds: dict[tuple, list] = {}
    for rec in sort_rows([r for r in records if r["kind"] != "flops"], fields):
        seeds.setdefault(tuple(_hashable(rec.get(f)) for f in fields), []).append(rec.get("seed"))
    body = [list(k) + [len(s), ", ".join(str(x) for x in sorted(set(s), key=str))] for k, s in seeds.items()]
    headers = ["kind", "preset", "split", "split seed", "n_train", "n_val", "n_test", "epochs", "records", "seeds"]
    return Table("data", "Data: split, sizes and epochs", headers, body)


def schema_notes(records: list[dict]) -> list[str]:
    """Case fields some records lack (written before the field existed): they join only among themselves."""
    notes = []
    for kind in KINDS:
        recs = [r for r in records if r["kind"] == kind]
        for field in case_fields({}, kind):
            absent = sum(field not in r for r in recs)
            if absent:
                notes.append(f"{absent} of {len(recs)} {kind} record(s) predate the case field `{field}`; "
                             "they join only with records that also lack it.")
        for field, (value, why) in BACKFILL.get(kind, {}).items():
            filled = sum(field in r.get("backfilled", ()) for r in recs)
            if filled:
                notes.append(f"{filled} of {len(recs)} {kind} record(s) predate the case field `{field}` and are "
                             f"read as {field} = {value!r}: when they ran, {why}.")
    return notes


# ---------------------------------------------------------------- plots


MARKERS = {"resnet18": "o", "resnet34": "s", "resnet50": "^"}
COLOURS = {"sgd": "tab:blue", "adam": "tab:orange"}


def _figure(ncols: int, width: float = 6.0, height: float = 4.5):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width * ncols, height), dpi=110, layout="constrained")
    return fig, fig.subplots(1, ncols, squeeze=False)[0]


def val_curve_plot(rows: list[dict]) -> Plot:
    caption = "Validation accuracy per epoch, best configuration of each model per dataset (mean ± std over seeds)"
    rows = [r for r in rows if any(r2.get("epoch_val_acc_pct") for r2 in r["runs"])]
    if not rows:
        return Plot("val-acc-per-epoch", caption, None, "no training run recorded per-epoch validation accuracy")
    from matplotlib.ticker import MaxNLocator

    datasets = present(rows, "dataset")
    fig, axes = _figure(len(datasets))
    for ax, dataset in zip(axes, datasets, strict=True):
        epochs = max(_val_curve(ax, row) for row in best([r for r in rows if r["dataset"] == dataset], ["model"]))
        ax.set(title=dataset, xlabel="epoch", ylabel="validation accuracy (%)", xlim=(0.5, epochs + 0.5))
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return Plot("val-acc-per-epoch", caption, fig)


def _val_curve(ax, row: dict) -> int:
    """One configuration's mean curve with its spread over seeds; returns how many epochs it spans."""
    curves = [r["epoch_val_acc_pct"] for r in row["runs"] if r.get("epoch_val_acc_pct")]
    per_epoch = [stat(c[i] for c in curves if i < len(c)) for i in range(max(map(len, curves)))]
    ax.errorbar(range(1, len(per_epoch) + 1), [s.mean for s in per_epoch], yerr=[s.std or 0 for s in per_epoch],
                marker=MARKERS.get(row["model"], "o"), capsize=3,
                label=f"{_model_name(row['model'])} {row['optimizer']} lr {row['lr']:g} bs {row['batch_size']}, "
                      f"{DEVICE_NAMES[row['device']]} (n={row['n']})")
    return len(per_epoch)


def acc_time_plot(rows: list[dict]) -> Plot:
    caption = "Test accuracy against training time, every Q1(a)/smoke configuration (mean ± std over seeds)"
    rows = [r for r in rows if r["test_acc_pct"] and r["train_time_s"]]
    if not rows:
        return Plot("acc-vs-time", caption, None, "no Q1(a) or smoke training runs")
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    datasets = present(rows, "dataset")
    fig, axes = _figure(len(datasets))
    for ax, dataset in zip(axes, datasets, strict=True):
        mine = [r for r in rows if r["dataset"] == dataset]
        for r in mine:
            acc, time = r["test_acc_pct"], r["train_time_s"]
            colour = COLOURS.get(r["optimizer"], "grey")
            ax.errorbar(time.mean, acc.mean, xerr=time.std or 0, yerr=acc.std or 0, marker=MARKERS.get(r["model"], "o"),
                        color=colour, markerfacecolor=colour if r["device"] == "cpu" else "white",
                        markersize=8, capsize=3, linestyle="none")
        times = [r["train_time_s"].mean for r in mine]
        if times and max(times) > 10 * min(times):
            _log_scale(ax.xaxis, ax.set_xscale)
        ax.set(title=dataset, xlabel="training time (s)", ylabel="test accuracy (%)")
        ax.grid(alpha=0.3)
    handles = [Line2D([], [], color="grey", marker=MARKERS.get(m, "o"), linestyle="none", label=_model_name(m))
               for m in present(rows, "model")]
    handles += [Patch(color=COLOURS.get(o, "grey"), label=o) for o in present(rows, "optimizer")]
    if len({r["device"] for r in rows}) > 1:
        handles += [Line2D([], [], color="grey", marker="o", linestyle="none", label="filled: CPU"),
                    Line2D([], [], color="grey", marker="o", markerfacecolor="white", linestyle="none",
                           label="hollow: GPU")]
    axes[-1].legend(handles=handles, fontsize=8, loc="best")
    return Plot("acc-vs-time", caption, fig)


def speedup_plot(pairs: list[tuple[dict, dict]]) -> Plot:
    caption = "Training time on CPU and GPU per configuration, speedup written beside each pair"
    pairs = [(c, g) for c, g in pairs if c["train_time_s"] and g["train_time_s"]]
    if not pairs:
        return Plot("cpu-vs-gpu", caption, None, "no configuration ran on both CPU and GPU")
    columns = speedup_columns(pairs)
    detail = [c for c in columns if c not in SPEEDUP_LEAD] + (["hardware"] if _hardware_varies(pairs) else [])
    datasets = present([c for c, _ in pairs], "dataset")
    most = max(sum(c["dataset"] == d for c, _ in pairs) for d in datasets)
    fig, axes = _figure(len(datasets), width=6.5, height=0.55 * most + 1.6)
    for ax, dataset in zip(axes, datasets, strict=True):
        mine = sorted([p for p in pairs if p[0]["dataset"] == dataset],
                      key=lambda p: tuple(_sort_value(c, p[0].get(c)) for c in columns))
        _speedup_bars(ax, mine, detail)
        ax.set_title(dataset)
    axes[0].legend(loc="lower right")
    return Plot("cpu-vs-gpu", caption, fig)


def _speedup_bars(ax, pairs: list[tuple[dict, dict]], detail: list[str]) -> None:
    ys = range(len(pairs))
    cpu = [c["train_time_s"].mean for c, _ in pairs]
    gpu = [g["train_time_s"].mean for _, g in pairs]
    ax.barh([y - 0.2 for y in ys], cpu, height=0.4, label="CPU", color="tab:gray")
    ax.barh([y + 0.2 for y in ys], gpu, height=0.4, label="GPU", color="tab:green")
    for y, c, g in zip(ys, cpu, gpu, strict=True):
        ax.text(max(c, g) * 1.15, y, f"{c / g:.1f}×", va="center", fontsize=10, fontweight="bold")
    _log_scale(ax.xaxis, ax.set_xscale)
    ax.set_xlim(right=max(cpu + gpu) * 6)
    ax.set_yticks(list(ys), [_pair_label(c, g, detail) for c, g in pairs], fontsize=9)
    ax.invert_yaxis()
    ax.set_xlabel("training time (s, log scale)")
    ax.grid(axis="x", alpha=0.3)


def _pair_label(cpu: dict, gpu: dict, detail: list[str]) -> str:
    text = f"{_model_name(cpu['model'])} {cpu['optimizer']} lr {cpu['lr']:g} bs {cpu['batch_size']}"
    extra = [f"{cpu['hardware']} vs {gpu['hardware']}" if c == "hardware" else f"{_label(c)} {cpu.get(c)}"
             for c in detail]
    return text + ("\n" + ", ".join(extra) if extra else "")


def _log_scale(axis, set_scale) -> None:
    """Log scale with ticks written 0.5, 1, 10 rather than 10^0: readable without a second look."""
    from matplotlib.ticker import FuncFormatter

    set_scale("log")
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))


def svm_plot(rows: list[dict]) -> Plot:
    caption = "SVM test accuracy against C, one line per kernel (mean ± std over seeds)"
    rows = [r for r in rows if r["test_acc_pct"]]
    if not rows:
        return Plot("svm-acc-vs-c", caption, None, "no SVM runs")
    datasets = present(rows, "dataset")
    detail = varying(rows, ["gamma", "n_train", "scale", "backend", "preset", "hardware"])
    fig, axes = _figure(len(datasets))
    for ax, dataset in zip(axes, datasets, strict=True):
        lines: dict[str, list[dict]] = {}
        for r in sort_rows([r for r in rows if r["dataset"] == dataset], ["kernel", "degree", "C"]):
            name = r["kernel"] + (f" degree {r['degree']}" if r["kernel"] == "poly" else "")
            name += "".join(f", {_label(c)} {r.get(c)}" for c in detail)
            lines.setdefault(name, []).append(r)
        for name, line in lines.items():
            ax.errorbar([r["C"] for r in line], [r["test_acc_pct"].mean for r in line],
                        yerr=[r["test_acc_pct"].std or 0 for r in line], marker="o", capsize=3, label=name)
        _log_scale(ax.xaxis, ax.set_xscale)
        ax.set(title=dataset, xlabel="C (SVC regularisation, log scale)", ylabel="test accuracy (%)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return Plot("svm-acc-vs-c", caption, fig)


# ---------------------------------------------------------------- the report


def report_blocks(records: list[dict]) -> list[str | Table | Plot]:
    """What the report says, in order: Markdown text, tables and plots; nothing touches the disk here."""
    blocks: list[str | Table | Plot] = ["# mnistbench report"]
    blocks += provenance_blocks(records)
    blocks += ["## Runs that did not finish ok"]
    failed = failed_table(records)
    blocks += [failed] if failed.rows else [f"All {len(records)} records have status ok."]
    blocks += q1a_blocks(records) + q1b_blocks(records) + q2_blocks(records) + path_blocks(records)
    blocks += flops_blocks(records)
    untabulated = sorted({r.get("preset") for r in records if r["kind"] == "train"}
                         - {*Q1A_PRESETS, "q2", THROUGHPUT}, key=str)
    if untabulated:
        blocks.append(f"Training records of preset(s) {', '.join(map(str, untabulated))} are counted above "
                      "but not tabulated by this report.")
    return blocks


def provenance_blocks(records: list[dict]) -> list:
    notes = ["Every cell is the mean over seeds ± the sample standard deviation, with n, the number of runs; "
             "a single run shows its value and (n=1). Runs on different hardware are never averaged together."]
    notes += schema_notes(records)
    return ["## Where these numbers come from", inputs_table(records), machines_table(records),
            data_table(records), "\n\n".join(f"- {n}" for n in notes)]


def q1a_blocks(records: list[dict]) -> list:
    blocks: list = ["## Q1(a): ResNets over the hyperparameter grid"]
    chosen = [r for r in ok(records, "train") if r.get("preset") in Q1A_PRESETS]
    if not chosen:
        return blocks + ["No Q1(a) or smoke training runs in the inputs."]
    rows = summaries(chosen)
    for preset in Q1A_PRESETS:
        mine = [r for r in rows if r.get("preset") == preset]
        for dataset in present(mine, "dataset"):
            blocks.append(model_table([r for r in mine if r["dataset"] == dataset],
                                      f"{preset}-{dataset.lower()}", f"Preset {preset}: {dataset}, test accuracy "
                                      "and training time", ["batch_size", "optimizer", "lr"], ["preset", "dataset"]))
        if mine:
            blocks.append(best_train_table(mine, ["dataset"], f"{preset}-best", f"Preset {preset}: best "
                                           "configuration per dataset"))
            blocks.append(best_train_table(mine, ["dataset", "model"], f"{preset}-best-per-model",
                                           f"Preset {preset}: best configuration per dataset and model"))
    blocks += [val_curve_plot(rows), acc_time_plot(rows)]
    return blocks


def q1b_blocks(records: list[dict]) -> list:
    blocks: list = ["## Q1(b): SVMs"]
    rows = summaries(ok(records, "svm"))
    if not rows:
        return blocks + ["No SVM runs in the inputs."]
    for preset in sorted({r.get("preset") for r in rows}, key=str):
        mine = [r for r in rows if r.get("preset") == preset]
        blocks.append(svm_table(mine, f"svm-{preset}", f"Preset {preset}: SVC per dataset, kernel and "
                                "hyperparameters (fit = training time)"))
        blocks.append(best_svm_table(mine, f"svm-{preset}-best", f"Preset {preset}: best per dataset and kernel"))
    pairs, _ = backend_pairs(records)
    if pairs:
        blocks.append(backend_table(pairs))
    elif varying(rows, ["backend"]):
        blocks.append("No SVM configuration ran with both sklearn and sklearnex, so there is no backend "
                      "comparison to show.")
    return blocks + [svm_plot(rows)]


def q2_blocks(records: list[dict]) -> list:
    blocks: list = ["## Q2: CPU vs GPU"]
    records = not_throughput(records)
    rows = summaries(ok(records, "train"))
    for preset in sorted({r.get("preset") for r in rows}, key=str):
        mine = [r for r in rows if r.get("preset") == preset]
        if preset == "q2" or len({r["device"] for r in mine}) > 1:
            blocks.append(model_table(mine, f"devices-{preset}", f"Preset {preset}: per device, test accuracy "
                                      "and training time", ["device", "batch_size", "optimizer", "lr"], ["preset"],
                                      time_factor=1000, time_unit="ms"))
    pairs, alone = speedup_pairs(records)
    if pairs:
        blocks.append(speedup_table(pairs))
    else:
        blocks.append("No configuration ran on both CPU and GPU, so there is no speedup to show.")
    if alone and pairs:
        blocks.append(f"{len(alone)} configuration(s) ran on one device only: "
                      + ", ".join(sorted(_case_label(r) + f" ({DEVICE_NAMES[r['device']]})" for r in alone)) + ".")
    return blocks + [speedup_plot(pairs)]


def path_blocks(records: list[dict]) -> list:
    """Throughput per path (the throughput preset) and test accuracy per path (every other preset)."""
    blocks: list = ["## Fast path and classic path"]
    pairs = throughput_pairs(records)
    if pairs:
        blocks += [throughput_table(pairs),
                   "Images/s is the median round's, averaged over seeds. The speedup is the ratio of those means, "
                   "joined by configuration with path, loader, amp and seed left out, on the same hardware; "
                   "recorded speedup is the mean of the per-seed `speedup_vs_classic` written during the run, "
                   "as a check. MFU is 6 × fvcore MACs × images/s over the GPU's bf16 dense peak."]
    else:
        blocks.append("No throughput runs in the inputs (`pytest benchmarks -m throughput`).")
    accuracy, _ = path_pairs(records)
    if accuracy:
        blocks += [path_accuracy_table(accuracy),
                   "Joined the same way (throughput runs left out). Seed spread: *within spread* when "
                   "|Δ| ≤ 2 × the larger of the two paths' seed-to-seed standard deviations, *outside spread* "
                   "otherwise, *n too small* when either path has a single run."]
    else:
        blocks.append("No configuration outside the throughput preset ran on both paths, so there is no "
                      "accuracy comparison to show.")
    return blocks


def flops_blocks(records: list[dict]) -> list:
    table = flops_table(not_throughput(records))
    return ["## FLOPs and parameters", table if table.rows else "No FLOP counts in the inputs."]


def write_report(records: list[dict], out: Path) -> Path:
    """report.md with a CSV per table and a PNG per plot beside it; returns the Markdown's path."""
    out.mkdir(parents=True, exist_ok=True)
    text = render_markdown(report_blocks(records), out)
    path = out / "report.md"
    path.write_text(text, encoding="utf-8")
    return path


def render_markdown(blocks: list, out: Path | None = None) -> str:
    """Markdown of the blocks; with `out`, each table's CSV and each plot's PNG are written there and linked."""
    parts = []
    for block in blocks:
        if isinstance(block, Table):
            parts.append(_table_markdown(block, out))
        elif isinstance(block, Plot):
            parts.append(_plot_markdown(block, out))
        else:
            parts.append(block)
    return "\n\n".join(parts) + "\n"


def _table_markdown(table: Table, out: Path | None) -> str:
    text = f"**{table.title}**\n\n" + markdown_table(table)
    if out is not None:
        write_csv(table, out / f"{table.name}.csv")
        text += f"\n\n[{table.name}.csv]({table.name}.csv)"
    return text


def _plot_markdown(plot: Plot, out: Path | None) -> str:
    if plot.figure is None:
        return f"_Plot skipped ({plot.caption}): {plot.missing}._"
    if out is None:
        return f"_Plot not written ({plot.caption}): no output folder._"
    plot.figure.savefig(out / f"{plot.name}.png")
    return f"![{plot.caption}]({plot.name}.png)\n\n_{plot.caption}._"


def markdown_table(table: Table) -> str:
    rows = [[format_cell(v) for v in row] for row in table.rows]
    return tabulate(rows, headers=table.headers, tablefmt="pipe", disable_numparse=True)


def format_cell(value) -> str:
    if value is None:
        return "—"
    if isinstance(value, Stat):
        if value.std is None:
            return f"{value.mean:{value.fmt}} (n={value.n})"
        return f"{value.mean:{value.fmt}} ± {value.std:{value.fmt}} (n={value.n})"
    if isinstance(value, Ratio):
        spread = "" if value.std is None else f" ± {value.std:.2f}"
        return f"{value.value:.2f}×{spread} (n={value.n_a}/{value.n_b})"
    if isinstance(value, Signed):
        return f"{value.value:+.2f}"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def write_csv(table: Table, path: Path) -> None:
    """Numbers stay numbers: a Stat column becomes mean, std and n columns; a Ratio one value, std, n A, n B."""
    kinds = [_column_kind(table.rows, i) for i in range(len(table.headers))]
    headers = []
    for header, kind in zip(table.headers, kinds, strict=True):
        headers += {"stat": [f"{header} mean", f"{header} std", f"{header} n"],
                    "ratio": [header, f"{header} std", f"{header} n A", f"{header} n B"]}.get(kind, [header])
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(headers)
        for row in table.rows:
            writer.writerow([x for value, kind in zip(row, kinds, strict=True) for x in _csv_values(value, kind)])


def _column_kind(rows: list[list], index: int) -> str:
    values = [row[index] for row in rows if row[index] is not None]
    if any(isinstance(v, Stat) for v in values):
        return "stat"
    if any(isinstance(v, Ratio) for v in values):
        return "ratio"
    return "plain"


def _csv_values(value, kind: str) -> list:
    if value is None:
        return [""] * {"stat": 3, "ratio": 4}.get(kind, 1)
    if isinstance(value, Stat):
        return ["" if v is None else v for v in value[:3]]
    if isinstance(value, Ratio):
        return ["" if v is None else v for v in value]
    if isinstance(value, Signed):
        return [value.value]
    return [f"{value:.10g}" if isinstance(value, float) else value]


# ---------------------------------------------------------------- compare


def compare_rows(a: list[dict], b: list[dict]) -> list[dict]:
    """Cases of A and B joined by configuration (device, seed, pin_memory, num_workers left out), seeds pooled."""
    def key(rec):
        return config_key(rec, COMPARE_IGNORE)

    sides = {}
    for side, records in (("A", a), ("B", b)):
        sides[side] = {key(row): row for row in summaries([r for r in ok(records) if r["kind"] != "flops"], key)}
    rows = []
    for k in dict.fromkeys([*sides["A"], *sides["B"]]):
        ra, rb = sides["A"].get(k), sides["B"].get(k)
        present = "both" if ra and rb else ("A only" if ra else "B only")
        rows.append({"case": _case_label(ra or rb), "kind": (ra or rb)["kind"], "present": present, "A": ra, "B": rb})
    return sorted(rows, key=lambda r: (r["kind"], r["case"]))


def compare_table(rows: list[dict], name: str = "compare", title: str = "") -> Table:
    headers = ["case", "kind", "present", "time A (s)", "time B (s)", "time A/B", "acc A (%)", "acc B (%)",
               "Δ acc (B−A, pts)"]
    body = []
    for row in rows:
        ra, rb = row["A"] or {}, row["B"] or {}
        acc_a, acc_b = ra.get("test_acc_pct"), rb.get("test_acc_pct")
        delta = acc_b.mean - acc_a.mean if acc_a and acc_b else None
        body.append([row["case"], row["kind"], row["present"], ra.get("time_s"), rb.get("time_s"),
                     ratio(ra.get("time_s"), rb.get("time_s")), acc_a, acc_b,
                     None if delta is None else Signed(delta)])
    return Table(name, title, headers, body)


def compare_blocks(a: list[dict], b: list[dict]) -> list:
    rows = compare_rows(a, b)
    sides = {r["source"]: "A" for r in a} | {r["source"]: "B" for r in b}
    files = "\n\n".join(f"- {side}: " + ", ".join(sorted({r['source'] for r in recs}))
                        for side, recs in (("A", a), ("B", b)))
    blocks: list = ["# mnistbench compare: A against B", files, machines_table(a + b, sides),
                    "Cases are joined by configuration with device, seed, pin_memory and num_workers left out, "
                    "seeds pooled first. Time is train_time_s for ResNets and the SVC fit for SVMs; "
                    "time A/B is the speedup of B (CPU as A and GPU as B gives the Q2 speedup)."]
    joined = [r for r in rows if r["present"] == "both"]
    blocks.append(_drop_present(compare_table(joined, "compare-both", "Cases in both")) if joined
                  else "No case is in both A and B.")
    for side in ("A", "B"):
        alone = [r for r in rows if r["present"] == f"{side} only"]
        if alone:
            blocks.append(_one_side_table(alone, side))
    return blocks


def _drop_present(table: Table) -> Table:
    keep = [i for i, h in enumerate(table.headers) if h != "present"]
    return table._replace(headers=[table.headers[i] for i in keep], rows=[[r[i] for i in keep] for r in table.rows])


def _one_side_table(rows: list[dict], side: str) -> Table:
    body = [[r["case"], r["kind"], r[side]["time_s"], r[side]["test_acc_pct"]] for r in rows]
    return Table(f"compare-{side}-only", f"Only in {side}", ["case", "kind", f"time {side} (s)", f"acc {side} (%)"],
                 body)


def write_compare(a: list[dict], b: list[dict], out: Path) -> tuple[Path, str]:
    """compare.md and compare.csv (every case, with where it was present); returns the path and the Markdown."""
    out.mkdir(parents=True, exist_ok=True)
    text = render_markdown(compare_blocks(a, b))
    path = out / "compare.md"
    path.write_text(text, encoding="utf-8")
    write_csv(compare_table(compare_rows(a, b)), out / "compare.csv")
    return path, text


def _case_label(row: dict) -> str:
    """The case id without the parts a join ignores (seed, device, pin_memory)."""
    parts = [p for p in str(row["case_id"]).split("-")
             if not (p.startswith("seed") and p[4:].isdigit()) and p not in ("cpu", "gpu", "pin", "nopin")]
    return "-".join(parts)


# ---------------------------------------------------------------- command line


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            return _compare_main(argv[1:]) if argv[:1] == ["compare"] else _report_main(argv)
        except ReportInputError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        except OSError as exc:  # the output folder, not the inputs: those are ReportInputError
            print(f"error: cannot write the report: {exc}", file=sys.stderr)
            return 1
        finally:
            for w in caught:
                print(f"warning: {w.message}", file=sys.stderr)


def _report_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="mnistbench-report",
        description="Tables (Markdown + CSV) and plots (PNG) from mnistbench runs. "
                    "To compare two runs case by case: mnistbench-report compare A B [--out DIR].")
    parser.add_argument("files", nargs="+", metavar="FILE",
                        help="pytest-benchmark JSON (--benchmark-json), results lines (.jsonl) or a folder of JSON "
                             "such as .benchmarks/")
    parser.add_argument("--out", type=Path, default=Path("reports/report"), metavar="DIR",
                        help="folder for report.md, its CSVs and PNGs (default: reports/report)")
    args = parser.parse_args(argv)
    print(write_report(load(args.files), args.out))
    return 0


def _compare_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="mnistbench-report compare",
        description="Join the cases of A and B by configuration (device, seed, pin_memory, num_workers left out) "
                    "and show time and accuracy side by side; A = CPU run, B = GPU run gives the GPU speedup.")
    parser.add_argument("a", metavar="A", help="JSON, .jsonl or .benchmarks folder")
    parser.add_argument("b", metavar="B", help="JSON, .jsonl or .benchmarks folder")
    parser.add_argument("--out", type=Path, metavar="DIR", help="also write compare.md and compare.csv here")
    args = parser.parse_args(argv)
    a, b = load([args.a]), load([args.b])
    if args.out:
        path, text = write_compare(a, b, args.out)
        print(text)
        print(f"wrote {path} and {path.with_suffix('.csv')}", file=sys.stderr)
    else:
        print(render_markdown(compare_blocks(a, b)))
    return 0


# ---------------------------------------------------------------- small helpers


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _hashable(value):
    return tuple(value) if isinstance(value, list) else value


def _get(row: dict | None, metric: str):
    return None if row is None else row.get(metric)


def _model_name(model: str) -> str:
    return MODEL_NAMES.get(model, model)


def _label(column: str) -> str:
    return LABELS.get(column, column)


def _display(column: str, value):
    if column in ("train_limit", "eval_limit") and value is None:
        return "all"
    return value


if __name__ == "__main__":
    sys.exit(main())
