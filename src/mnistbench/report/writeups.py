"""Against the write-ups: every published cell (results/published.py) beside our runs of its configuration.

Which of our runs measure a cell: runs of its kind, finished ok, tested on the whole test
split (eval_limit all: a published accuracy is on the write-up's whole 20 % test split),
whose case fields equal every field the cell states. A field the cell leaves unknown
matches any value; `amp` 'on' matches a run that trained in fp16 or bf16; `pin_memory` is
matched for times only (it changes how batches reach a GPU, not what the model computes).
Several of our configurations can match a cell that states little: each is one reading of
the cell, and the row shows the one nearest the published value and how many matched.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable

from mnistbench.cases import grids
from mnistbench.cases.registry import split_sizes
from mnistbench.report.group import THROUGHPUT, Table, summaries
from mnistbench.results.published import ACCURACIES, AMP_ON, METRICS, SECONDS_PER, Cell, cells, explanation
from mnistbench.results.record import JOINS, case_fields, config_key, ok
from mnistbench.results.stats import Stat, is_number, ratio, stat

REPRODUCED, NOT_REPRODUCED, NOT_MEASURED = "reproduced", "not reproduced", "not measured yet"
OTHER_HARDWARE, CANNOT = "other hardware, no verdict", "cannot be expressed"
EXPLAINED, UNEXPLAINED = "explained", "unexplained"
SPREADS, TIME_SHARE, FLOPS_SHARE = 2, 0.10, 0.01
RULE = (f"An accuracy is *reproduced* when |Δ| ≤ max({SPREADS} × our seed std, {SPREADS} × the binomial std "
        "of our accuracy, 100·sqrt(p(1-p)/n) on our n test images), else *not reproduced*. A time or speedup "
        "gets a verdict only when the write-up names hardware with a model number that ours carries too "
        f"(else *{OTHER_HARDWARE}*); then it is reproduced when |Δ| ≤ max({SPREADS} × our seed std, "
        f"{TIME_SHARE:.0%} of ours). A FLOPs cell is *explained* when one of our fvcore counts (MACs, which "
        "torchvision documents as its 'GFLOPS', or 2 × MACs) at the stated input size, any stem and 1 or 3 "
        f"input channels is within max(half a unit of its last printed digit, {FLOPS_SHARE:.0%}), else "
        "*unexplained*.")
MATCH_RULE = ("Our runs of a cell: same kind, status ok, whole test split, every field the cell states equal "
              "(unknown fields match anything; amp 'on' matches fp16 or bf16; pin_memory only for times). "
              "Where several configurations match, the one nearest the published value is shown.")
FLOPS_SIZES = (28, 32, 64, 224)  # input sizes tried where a write-up does not state its own
HEADERS = ["cell", "write-up", "table", "row", "metric", "published", "ours", "n", "hardware", "Δ", "verdict",
           "matched", "how to measure / why"]
Counter = Callable[..., dict]


def default_count(model: str, stem: str, image_size: int, channels: int) -> dict:
    from mnistbench.train.flops import count  # torch only where a FLOPs cell is explained

    return count(model, stem, image_size, channels)


# ---------------------------------------------------------------- matching


def _amp_16(rec: dict) -> bool:
    return rec.get("amp_dtype", rec.get("amp")) in ("fp16", "bf16")


def matches(cell: Cell, rec: dict, *, time: bool = False) -> bool:
    """Whether a record (or summarised row) is a run of the cell's stated configuration."""
    if rec["kind"] != cell.kind or rec.get("eval_limit") is not None or rec.get("preset") == THROUGHPUT:
        return False
    values = dict(config_key(rec)[1:])
    for name, wanted in cell.stated().items():
        if name == "amp" and wanted == AMP_ON:
            if not _amp_16(rec):
                return False
        elif name == "pin_memory" and not time:
            continue
        elif name not in case_fields(rec["kind"]) or values[name] != wanted:
            return False
    return True


def candidate_rows(cell: Cell, rows: list[dict], **stated) -> list[dict]:
    time = cell.metric in ("train_time", "speedup", "time_saved")
    probe = cell if not stated else _restated(cell, stated)
    return [r for r in rows if matches(probe, r, time=time)]


def _restated(cell: Cell, changes: dict) -> Cell:
    from dataclasses import replace

    return replace(cell, **changes)


# ---------------------------------------------------------------- ours, per metric


def ours(cell: Cell, row: dict) -> Stat | None:
    """Our value of the cell's metric over the row's runs, in the cell's unit."""
    field = METRICS[cell.metric][0]
    if cell.metric in ACCURACIES:
        return stat(r.get(field) for r in row["runs"])
    s = row.get("time_s")
    factor = 1 / SECONDS_PER[cell.unit]
    return None if s is None else Stat(s.mean * factor, None if s.std is None else s.std * factor, s.n)


def binomial_pts(cell: Cell, row: dict, p_pct: float) -> float:
    n_field = {"test_acc": "n_test", "val_acc": "n_val", "train_acc": "train_acc_n"}[cell.metric]
    n = row["runs"][0].get(n_field)
    if not is_number(n) or n <= 0:
        train, val, test = split_sizes(row["dataset"], row.get("split", "pooled"))
        n = {"n_test": test, "n_val": val}.get(n_field, train)
    p = min(max(p_pct / 100, 0.0), 1.0)
    return 100 * math.sqrt(p * (1 - p) / n)


def model_numbers(hardware: str | None) -> list[set[str]]:
    """Per piece of hardware a cell names ('A / B', 'A + B'), its words that carry a digit: 'a30', '6326'."""
    if not hardware:
        return []
    pieces = hardware.replace(" + ", " / ").split(" / ")
    words = [{w.strip("(),").lower() for w in p.split() if any(ch.isdigit() for ch in w)} for p in pieces]
    return [w for w in words if w]


def same_hardware(cell: Cell, ours_hw: str) -> bool:
    ours_words = {w.strip("(),").lower() for w in ours_hw.replace("-", " ").split()}
    return any(words <= ours_words for words in model_numbers(cell.hardware))


def judge(cell: Cell, mine: Stat, row: dict, hardware_ok: bool) -> tuple[float, str]:
    """(tolerance, verdict) for our Stat against the cell's value."""
    spread = SPREADS * (mine.std or 0.0)
    if cell.metric in ACCURACIES:
        tolerance = max(spread, SPREADS * binomial_pts(cell, row, mine.mean))
    else:
        if not hardware_ok:
            return math.nan, OTHER_HARDWARE
        tolerance = max(spread, TIME_SHARE * abs(mine.mean))
    return tolerance, REPRODUCED if abs(mine.mean - cell.value) <= tolerance else NOT_REPRODUCED


# ---------------------------------------------------------------- one row per cell


def cell_row(cell: Cell, rows: list[dict], count: Counter = default_count) -> list:
    head = [cell.cell, cell.seed, cell.table, cell.row, cell.metric, f"{cell.published} {cell.unit}"]
    if cell.unexpressible:
        return head + [None, None, None, None, CANNOT, 0, cell.unexpressible]
    if cell.kind == "flops":
        return head + flops_tail(cell, count)
    if cell.metric in ("speedup", "time_saved"):
        return head + pair_tail(cell, rows)
    found = [(r, ours(cell, r)) for r in candidate_rows(cell, rows)]
    found = [(r, s) for r, s in found if s is not None]
    if not found:
        return head + [None, None, None, None, NOT_MEASURED, 0, command(cell)]
    row, mine = min(found, key=lambda item: abs(item[1].mean - cell.value))
    tolerance, verdict = judge(cell, mine, row, same_hardware(cell, row["hardware"]))
    return head + [mine, mine.n, row["hardware"], mine.mean - cell.value, verdict, len(found),
                   _why(cell, tolerance, verdict)]


def _why(cell: Cell, tolerance: float, verdict: str) -> str:
    """The tolerance a verdict was given with and, for a cell that does not reproduce, the runs' explanation."""
    why = "" if math.isnan(tolerance) else f"tolerance {tolerance:.2f} {cell.unit}"
    return f"{why}; {explanation(cell)}" if verdict == NOT_REPRODUCED else why


def pair_tail(cell: Cell, rows: list[dict]) -> list:
    """Speedup (CPU / GPU) and time saved (CPU - GPU) of a CPU row and a GPU row of the same configuration."""
    cpus = candidate_rows(cell, rows, device="cpu")
    gpus = {config_key(r, JOINS["devices"]): r for r in candidate_rows(cell, rows, device="cuda")}
    pairs = [(c, gpus[config_key(c, JOINS["devices"])]) for c in cpus if config_key(c, JOINS["devices"]) in gpus]
    if not pairs:
        return [None, None, None, None, NOT_MEASURED, 0, command(cell)]
    values = []
    for cpu, gpu in pairs:
        a, b = cpu["time_s"], gpu["time_s"]
        if cell.metric == "speedup":
            r = ratio(a, b)
            mine = None if r is None else Stat(r.value, r.std, min(r.n_a, r.n_b))
        else:
            mine = None if a is None or b is None else Stat((a.mean - b.mean) / 60, None, min(a.n, b.n))
        if mine is not None:
            values.append((cpu, gpu, mine))
    if not values:
        return [None, None, None, None, NOT_MEASURED, 0, command(cell)]
    cpu, gpu, mine = min(values, key=lambda v: abs(v[2].mean - cell.value))
    hardware_ok = same_hardware(cell, cpu["hardware"]) and same_hardware(cell, gpu["hardware"])
    tolerance, verdict = judge(cell, mine, cpu, hardware_ok)
    return [mine, mine.n, f"{cpu['hardware']} / {gpu['hardware']}", mine.mean - cell.value, verdict, len(values),
            _why(cell, tolerance, verdict)]


def flops_tail(cell: Cell, count: Counter) -> list:
    """Which of our counts, if any, the published figure is."""
    half_unit = 0.5 * 10 ** -len(cell.published.partition(".")[2])
    tolerance = max(half_unit, FLOPS_SHARE * cell.value)
    sizes = (cell.image_size,) if cell.image_size else FLOPS_SIZES
    hits = []
    for size in sizes:
        for stem in ("imagenet", "small"):
            for channels in (1, 3):
                macs = count(cell.model, stem, size, channels)["gmacs_fvcore"]
                for name, value in (("fvcore MACs", macs), ("2 × fvcore MACs", 2 * macs)):
                    if abs(value - cell.value) <= tolerance:
                        hits.append((abs(value - cell.value), f"{name}, {stem} stem, {channels}x{size}x{size}: "
                                                              f"{value:.4f} G"))
    if not hits:
        return [None, None, None, None, UNEXPLAINED, 0, f"no count within {tolerance:g} G at sizes "
                                                         f"{', '.join(map(str, sizes))}"]
    hits.sort()
    return [None, None, None, None, EXPLAINED, len(hits), "; ".join(text for _, text in hits)]


# ---------------------------------------------------------------- the command that measures a cell


def command(cell: Cell) -> str:
    """One pytest line that runs exactly one reading of the cell's configuration: its stated fields, the
    rest at the preset's values (the case's defaults where the preset varies them)."""
    preset = "q1b" if cell.kind == "svm" else ("q2" if cell.device or cell.metric in ("speedup", "time_saved")
                                               else "q1a")
    devices = ("cpu", "cuda") if cell.metric in ("speedup", "time_saved") else (cell.device or "cpu",)
    axes = {k: v for k, v in cell.stated().items() if k not in ("device", "split")}
    if axes.get("amp") == AMP_ON:  # the 16-bit type each device's autocast uses by default
        axes["amp"] = "fp16" if devices == ("cuda",) else "bf16"
    for attempt in (axes, {k: v for k, v in axes.items() if k != "pin_memory"}):
        made = [c for c in grids.build(preset, grids.GridOptions(axes=tuple((k, (v,)) for k, v in attempt.items()),
                                                                  devices=devices, split=cell.split or "pooled"))
                if all(getattr(c, k) == v for k, v in attempt.items()) and c.seed == 0]
        if made:
            break
    if not made:
        return "no grid of the suite makes this configuration"
    made = _nearest_defaults(made, devices)
    picked = " or ".join(c.id for c in made)
    marker = preset if len(devices) > 1 else f"{preset} and {made[0].device_marker}"
    options = " ".join(f"--mb-axis {k}={_text(v)}" for k, v in attempt.items())
    split = "" if (cell.split or "pooled") == "pooled" else f" --mb-split {cell.split}"
    return f'pytest benchmarks -m "{marker}" -k "{picked}"{split} {options}'.rstrip()


def _nearest_defaults(made: list, devices: tuple[str, ...]) -> list:
    """One case per device: where the cell leaves a field unknown and the grid varies it, the case whose
    fields are most often the case's own defaults (SVC's C=1, degree 3), then the grid's first."""
    def distance(case) -> int:
        return sum(getattr(case, f.name) != f.default for f in dataclasses.fields(case))

    return [min((c for c in made if c.device == d), key=distance) for d in devices if any(c.device == d for c in made)]


def _text(value) -> str:
    return str(value).lower() if isinstance(value, bool) else f"{value:g}" if isinstance(value, float) else str(value)


# ---------------------------------------------------------------- the section


def writeups_table(records: Iterable[dict], published: Iterable[Cell] | None = None,
                   count: Counter = default_count) -> Table:
    rows = summaries(r for r in ok(records) if r["kind"] in ("train", "svm"))
    body = [cell_row(cell, rows, count) for cell in (cells() if published is None else published)]
    return Table("writeups", "Every published cell beside ours (mean ± std over seeds, n) for the same "
                 "configuration", HEADERS, body)


def summary_lines(table: Table) -> list[str]:
    """Per write-up: how many of its cells reproduce, and how the rest stand."""
    lines = []
    for seed in dict.fromkeys(row[1] for row in table.rows):
        verdicts = [row[10] for row in table.rows if row[1] == seed]
        judged = [v for v in verdicts if v in (REPRODUCED, NOT_REPRODUCED)]
        rest = ", ".join(f"{verdicts.count(v)} {v}" for v in (NOT_REPRODUCED, NOT_MEASURED, OTHER_HARDWARE,
                                                              EXPLAINED, UNEXPLAINED, CANNOT) if v in verdicts)
        lines.append(f"- Write-up {seed}: {verdicts.count(REPRODUCED)} of {len(judged)} judged cells reproduced "
                     f"({len(verdicts)} cells: {rest or 'all reproduced'}).")
    return lines


def writeups_blocks(records: list[dict], published: Iterable[Cell] | None = None,
                    count: Counter = default_count) -> list:
    """Only where some run of ours measures a published cell: a report of other runs has nothing to hold
    against the write-ups."""
    published = cells() if published is None else tuple(published)
    runs = [r for r in ok(records) if r["kind"] in ("train", "svm")]
    if not any(matches(c, r) for c in published for r in runs if not c.unexpressible):
        return []
    table = writeups_table(records, published, count)
    return ["## Against the write-ups", MATCH_RULE + " " + RULE, "\n".join(summary_lines(table)), table]
