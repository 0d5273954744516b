"""compare A B: two runs of the suite, case by case (record.JOINS["compare"], seeds pooled first).

Time is train_time_s for ResNets and the SVC fit for SVMs; "B's speedup" is A's time over B's
(above 1: B was faster), so a CPU run as A and a GPU run as B gives the Q2 speedup. Cases on one
side only are listed. With a noise file, each time has its measured noise beside it; with thresholds, the gate's
verdicts (gate.py: A is the baseline, B the new run) follow, one table per verdict.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

from mnistbench.report.group import Table, summaries
from mnistbench.report.markdown import render_markdown, write_csv
from mnistbench.report.provenance import machines_table
from mnistbench.results import gate
from mnistbench.results.record import JOINS, config_key, label, ok
from mnistbench.results.stats import difference, ratio

SPEEDUP_HEADER = "B's speedup (time A / time B)"  # above 1: B was faster; below 1: B was slower
HEADERS = ["case", "kind", "present", "time A (s)", "time B (s)", SPEEDUP_HEADER, "acc A (%)", "acc B (%)",
           "Δ acc (B−A, pts)"]
NOISE_HEADER = "time noise (CV %)"  # beside the times when a noise file is given
CHECK_HEADERS = ["case", "kind", "metric", "A (base)", "B (new)", "change", "CI", "p", "threshold",
                 "noise (CV %)", "why"]
HARDWARE_HEADERS = ["case", "kind", "hardware A", "hardware B", "time A (s)", "time B (s)", SPEEDUP_HEADER]
# a check's verdict -> the title of its table, in the order they are shown
CHECK_TITLES = {gate.REGRESSION: "Regressions: past the threshold and significant",
                gate.IMPROVEMENT: "Improvements: past the threshold the good way and significant",
                gate.NOISY: "Too noisy to judge: fewer than 2 samples, or the CI wider than the threshold",
                gate.UNCHANGED: "Within the threshold, or not significant"}
METRIC_UNITS = {"time": {"train": "time (s per epoch)", "svm": "time (s per fit)"}, "acc": "test acc (%)"}


class Gated(NamedTuple):
    """The gate's settings and what it found: what compare_blocks renders below the comparison."""

    thresholds: tuple[gate.Threshold, ...]
    alpha: float
    across_machines: bool
    verdicts: list[gate.Verdict]


def run_gate(a: list[dict], b: list[dict], thresholds: Iterable[gate.Threshold | str],
             alpha: float = gate.DEFAULT_ALPHA, noise: list[dict] | None = None,
             across_machines: bool = False) -> Gated:
    thresholds = tuple(t if isinstance(t, gate.Threshold) else gate.Threshold.parse(t) for t in thresholds)
    return Gated(thresholds, alpha, across_machines,
                 gate.verdicts(a, b, thresholds, alpha, noise, across_machines))


def _key(rec: dict) -> tuple:
    return config_key(rec, JOINS["compare"])


def compare_rows(a: list[dict], b: list[dict]) -> list[dict]:
    """Cases of A and B joined by configuration (record.JOINS["compare"]), seeds pooled; FLOPs left out."""
    sides = {side: _by_key(records) for side, records in (("A", a), ("B", b))}
    rows = []
    for key in dict.fromkeys([*sides["A"], *sides["B"]]):
        ra, rb = sides["A"].get(key), sides["B"].get(key)
        where = "both" if ra and rb else ("A only" if ra else "B only")
        either = ra or rb
        rows.append({"case": label(either, JOINS["compare"]), "kind": either["kind"], "present": where,
                     "key": key, "A": ra, "B": rb})
    return sorted(rows, key=lambda r: (r["kind"], r["case"]))


def _by_key(records: list[dict]) -> dict[tuple, dict]:
    return {_key(row): row for row in summaries([r for r in ok(records) if r["kind"] != "flops"], _key)}


def compare_table(rows: list[dict], name: str = "compare", title: str = "", *,
                  show_present: bool = True, noise: dict[tuple, float] | None = None) -> Table:
    """With `noise` (gate.noise_levels), each case's measured noise goes beside its times."""
    body = []
    for row in rows:
        ra, rb = row["A"] or {}, row["B"] or {}
        acc_a, acc_b = ra.get("test_acc_pct"), rb.get("test_acc_pct")
        times = [ra.get("time_s"), rb.get("time_s")] + ([_noise_pct(row, noise)] if noise is not None else [])
        body.append([row["case"], row["kind"], row["present"], *times, ratio(ra.get("time_s"), rb.get("time_s")),
                     acc_a, acc_b, difference(acc_a, acc_b)])
    headers = HEADERS if noise is None else [*HEADERS[:5], NOISE_HEADER, *HEADERS[5:]]
    table = Table(name, title, headers, body, ("kind",))
    return table if show_present else _without(table, "present")


def _noise_pct(row: dict, noise: dict[tuple, float]) -> float | None:
    """The noise measured for the case on the hardware of B (else A), in percent."""
    for side in ("B", "A"):
        if row[side] and (row["key"], row[side]["hardware"]) in noise:
            return round(100 * noise[row["key"], row[side]["hardware"]], 2)
    return None


def _without(table: Table, header: str) -> Table:
    keep = [i for i, h in enumerate(table.headers) if h != header]
    return table._replace(headers=[table.headers[i] for i in keep],
                          rows=[[r[i] for i in keep] for r in table.rows])


def _one_side_table(rows: list[dict], side: str) -> Table:
    body = [[r["case"], r["kind"], r[side]["time_s"], r[side]["test_acc_pct"]] for r in rows]
    headers = ["case", "kind", f"time {side} (s)", f"acc {side} (%)"]
    return Table(f"compare-{side}-only", f"Only in {side}", headers, body, ("kind",))


def compare_blocks(a: list[dict], b: list[dict], *, noise: list[dict] | None = None,
                   gated: Gated | None = None) -> list:
    """The comparison; with `noise` (a noise file's records) its noise beside each time; with `gated`, the
    gate's verdicts after it."""
    rows = compare_rows(a, b)
    levels = gate.noise_levels(noise) if noise is not None else None
    sides = {r["source"]: "A" for r in a} | {r["source"]: "B" for r in b}
    files = "\n\n".join(f"- {side}: " + ", ".join(sorted({r['source'] for r in recs}))
                        for side, recs in (("A", a), ("B", b)))
    how = (f"Cases are joined by configuration with {_listed(JOINS['compare'])} left out, seeds pooled "
           "first. Time is train_time_s for ResNets and the SVC fit for SVMs; B's speedup is "
           "time A over time B: above 1, B was faster; below 1, B was slower (CPU as A and GPU as B gives the "
           "Q2 speedup).")
    blocks: list = ["# mnistbench compare: A against B", files, machines_table(a + b, sides), how]
    joined = [r for r in rows if r["present"] == "both"]
    blocks.append(compare_table(joined, "compare-both", "Cases in both", show_present=False, noise=levels)
                  if joined else "No case is in both A and B.")
    if levels is not None:
        blocks.append(_noise_note(noise, levels))
    for side in ("A", "B"):
        alone = [r for r in rows if r["present"] == f"{side} only"]
        if alone:
            blocks.append(_one_side_table(alone, side))
    return blocks + (gate_blocks(gated) if gated else [])


def write_compare(a: list[dict], b: list[dict], out: Path, *, noise: list[dict] | None = None,
                  gated: Gated | None = None) -> tuple[Path, str]:
    """compare.md, compare.csv with every case and where it was present, and with `gated` gate.csv with every
    check; returns the path and text."""
    out.mkdir(parents=True, exist_ok=True)
    text = render_markdown(compare_blocks(a, b, noise=noise, gated=gated))
    path = out / "compare.md"
    path.write_text(text, encoding="utf-8")
    levels = gate.noise_levels(noise) if noise is not None else None
    write_csv(compare_table(compare_rows(a, b), noise=levels), out / "compare.csv")
    if gated:
        write_csv(gate_csv_table(gated), out / "gate.csv")
    return path, text


def _noise_note(noise: list[dict], levels: dict[tuple, float]) -> str:
    files = ", ".join(sorted({r["source"] for r in noise if "source" in r})) or "the noise records"
    on = ", ".join(sorted({hw for _, hw in levels})) or "no configuration with two timed samples or more"
    return (f"Time noise: the coefficient of variation (std / mean) of every timed sample (epochs of every seed "
            f"and repeat; SVC fits) of the same configuration in {files}, measured on {on}; "
            f"— where the noise file has no such case on that hardware.")


# ---------------------------------------------------------------- the gate


def gate_blocks(gated: Gated) -> list:
    """The verdict, how it was reached, and a table per verdict that has cases."""
    verdicts = gated.verdicts
    blocks: list = [f"## Gate: {gate.summary(verdicts)}", _gate_note(gated)]
    checks = [(v, c) for v in verdicts for c in v.checks]
    for verdict, title in CHECK_TITLES.items():
        mine = [(v, c) for v, c in checks if c.verdict == verdict]
        if mine:
            blocks.append(_check_table(mine, f"gate-{verdict.replace(' ', '-')}", title, gated.alpha))
    other = [v for v in verdicts if v.verdict == gate.OTHER_HARDWARE]
    if other:
        blocks.append(_hardware_table(other))
    for side, verdict in (("A", gate.BASE_ONLY), ("B", gate.NEW_ONLY)):
        alone = [v.case for v in verdicts if v.verdict == verdict]
        if alone:
            blocks.append(f"{verdict.capitalize()} ({side}), not judged: {', '.join(alone)}.")
    return blocks


def _gate_note(gated: Gated) -> str:
    thresholds = ", ".join(f"`{t}`" for t in gated.thresholds)
    machines = ("runs on different hardware are judged too (--across-machines)" if gated.across_machines else
                "runs on different hardware are compared for speed only, never judged")
    return (f"A is the baseline, B the new run. Thresholds {thresholds}, α = {gated.alpha:g}. A check fails the "
            "gate when its change is past the threshold the bad way **and** Welch's t-test (unequal variances, "
            f"two-sided) gives p < α. Time is compared over every epoch of every seed (pytest-benchmark's "
            "rounds; SVMs: the fit of each run), relative to A's mean; accuracy over the runs' test accuracy, "
            f"in points. Too noisy to judge: fewer than 2 samples on a side, or the {1 - gated.alpha:.0%} "
            "confidence interval of the change reaching further than the threshold. With a noise file a time "
            f"threshold is max(threshold, {gate.NOISE_FACTOR} × the case's measured CV). Cases are joined as "
            f"above; {machines}.")


def _check_table(items: list[tuple[gate.Verdict, gate.Check]], name: str, title: str, alpha: float) -> Table:
    body = []
    for verdict, check in sorted(items, key=lambda item: (item[0].kind, item[0].case, item[1].metric)):
        ci = None if check.ci is None else " to ".join(gate.show_change(check.metric, x) for x in check.ci)
        body.append([verdict.case, verdict.kind, _metric(check.metric, verdict.kind), check.base, check.new,
                     gate.show_change(check.metric, check.change), ci,
                     None if check.p is None else f"{check.p:.2g}", gate.show_threshold(check.metric, check.threshold),
                     None if check.noise_cv is None else round(100 * check.noise_cv, 2), check.why])
    headers = [f"{1 - alpha:.0%} CI" if h == "CI" else h for h in CHECK_HEADERS]
    return Table(name, title, headers, body, ("kind", "metric", "threshold", "noise (CV %)"))


def _metric(metric: str, kind: str) -> str:
    unit = METRIC_UNITS[metric]
    return unit.get(kind, "time (s)") if isinstance(unit, dict) else unit


def _hardware_table(verdicts: list[gate.Verdict]) -> Table:
    body = [[v.case, v.kind, *v.hardware, *v.times, v.speed] for v in verdicts]
    return Table("gate-different-hardware", "Different hardware: a speed comparison, not a verdict "
                 "(time per epoch or fit; B's speedup is A's time over B's)", HARDWARE_HEADERS, body, ("kind",))


def gate_csv_table(gated: Gated) -> Table:
    """Every check, and every case not judged, with numbers as numbers: gate.csv."""
    headers = ["case", "kind", "verdict", "metric", "A (base)", "B (new)", "change", "ci low", "ci high", "p",
               "threshold", "noise cv", "hardware A", "hardware B", "time A (s)", "time B (s)", SPEEDUP_HEADER,
               "why"]
    body = []
    for v in gated.verdicts:
        for c in v.checks or (None,):
            check = ([c.verdict, c.metric, c.base, c.new, c.change, *(c.ci or (None, None)), c.p, c.threshold,
                      c.noise_cv] if c else [v.verdict, *[None] * 9])
            body.append([v.case, v.kind, *check, *v.hardware, *v.times, v.speed, c.why if c else v.why])
    return Table("gate", "Gate checks", headers, body)


def _listed(fields: tuple[str, ...]) -> str:
    """'device, seed, pin_memory and num_workers'."""
    return ", ".join(fields[:-1]) + f" and {fields[-1]}" if len(fields) > 1 else "".join(fields)
