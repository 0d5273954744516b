"""Where the numbers come from: input files, machines, data sizes, schema notes, runs that failed."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from mnistbench.report.group import Table, sort_rows
from mnistbench.results.load import KINDS
from mnistbench.results.record import BACKFILL, not_ok
from mnistbench.results.stats import hashable
from mnistbench.suite.machine import changes, slowdowns

# (machine fact, header); suite/machine.py records them once per session
MACHINE_COLUMNS = [("node", "node"), ("cpu_model", "CPU"), ("cpu_count", "cores"),
                   ("torch_threads", "torch threads"), ("gpus", "GPUs"), ("torch_version", "torch"),
                   ("cuda_version", "CUDA (build)"), ("cudnn_version", "cuDNN"),
                   ("torchvision_version", "torchvision"), ("sklearn_version", "scikit-learn"),
                   ("python_version", "python")]
DATA_FIELDS = ["kind", "preset", "split", "split_seed", "n_train", "n_val", "n_test", "epochs"]


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
    """The session's date (pytest-benchmark JSON), else each record's recorded_at (results lines), first to
    last."""
    when = [r.get("run_datetime") or r.get("recorded_at") for r in recs]
    dates = sorted({str(w)[:19].replace("T", " ") for w in when if w})
    return " to ".join(dict.fromkeys([dates[0], dates[-1]])) + " UTC" if dates else "not recorded"


def machines_table(records: list[dict], sides: dict[str, str] | None = None) -> Table:
    """Distinct machines; with `sides` (source -> side name) it says which side of a comparison each is on."""
    seen: dict[str, list] = {}
    for rec in records:
        row = ([sides[rec["source"]]] if sides else []) + _machine_row(rec.get("machine") or {})
        seen.setdefault(json.dumps(row, default=str), row)
    headers = (["side"] if sides else []) + [header for _, header in MACHINE_COLUMNS]
    return Table("machines", "Machines", headers, list(seen.values()))


def _machine_row(machine: dict) -> list:
    facts = {**machine, "gpus": machine.get("gpus") or "none"}
    return [", ".join(v) if isinstance(v, list) else v for v in (facts.get(f) for f, _ in MACHINE_COLUMNS)]


def data_table(records: list[dict]) -> Table:
    """Split, data sizes and epochs per kind and preset, so every number can be put back in context."""
    seeds: dict[tuple, list] = {}
    for rec in sort_rows([r for r in records if r["kind"] != "flops"], DATA_FIELDS):
        seeds.setdefault(tuple(hashable(rec.get(f)) for f in DATA_FIELDS), []).append(rec.get("seed"))
    body = [list(k) + [len(s), ", ".join(str(x) for x in sorted(set(s), key=str))] for k, s in seeds.items()]
    headers = ["kind", "preset", "split", "split seed", "n_train", "n_val", "n_test", "epochs", "records",
               "seeds"]
    return Table("data", "Data: split, sizes and epochs", headers, body)  # the split is this table's point: a column


def schema_notes(records: list[dict]) -> list[str]:
    """How records that predate a case field were read, where its default is not what they did (BACKFILL).

    A field whose default is the old behaviour needs no note: the record is read with its default.
    """
    notes = []
    for kind in KINDS:
        notes += _backfill_notes([r for r in records if r["kind"] == kind], kind)
    return notes


def _backfill_notes(recs: list[dict], kind: str) -> list[str]:
    notes = []
    for field, (value, why) in BACKFILL.get(kind, {}).items():
        filled = sum(field in r.get("backfilled", ()) for r in recs)
        if filled:
            notes.append(f"{filled} of {len(recs)} {kind} record(s) predate the case field `{field}` and are "
                         f"read as {field} = {value!r}: when they ran, {why}.")
    return notes


def gpu_state_notes(records: list[dict]) -> list[str]:
    """GPU cases whose clocks were held down (power or thermal cap, hardware slowdown) when they ended:
    their times measure the cooling or the power limit as much as the model."""
    watched = [r for r in records if r.get("gpu_after")]
    if not watched:
        return []
    slowed = [r for r in watched if slowdowns(r["gpu_after"]) or slowdowns(r.get("gpu_before") or {})]
    if not slowed:
        temperatures = [r["gpu_after"]["temperature_c"] for r in watched if "temperature_c" in r["gpu_after"]]
        hot = f" (hottest {max(temperatures)} °C at the end of a case)" if temperatures else ""
        return [f"{len(watched)} GPU case(s) read NVML before and after: none had its clocks held down{hot}."]
    return [f"{len(slowed)} of {len(watched)} GPU case(s) had clocks held down, so their times are low "
            f"bounds of the GPU's speed: " + "; ".join(_slowed(r) for r in slowed[:10])
            + ("; ..." if len(slowed) > 10 else "")]


def _slowed(rec: dict) -> str:
    before, after = rec.get("gpu_before") or {}, rec["gpu_after"]
    events = dict.fromkeys(slowdowns(before) + slowdowns(after))
    return (f"{rec['case_id']} ({', '.join(events)}; SM {before.get('sm_clock_mhz', '?')}→"
            f"{after.get('sm_clock_mhz', '?')} MHz, {before.get('temperature_c', '?')}→"
            f"{after.get('temperature_c', '?')} °C, {after.get('power_w', '?')} W)")


def machine_change_notes(records: list[dict]) -> list[str]:
    """Cases under which the machine changed (the machine check at their start and end differ: another
    process began or stopped computing on our cores or GPU): their times may not compare with the rest."""
    changed = [(r, said) for r in records if r.get("machine_start") is not None and r.get("machine_end") is not None
               and (said := changes(r["machine_start"], r["machine_end"]))]
    if not changed:
        return []
    listed = "; ".join(f"{r['case_id']} ({', '.join(said)})" for r, said in changed[:10])
    return [f"The machine changed under {len(changed)} case(s) (its check at their start and end differ), so "
            f"their times may not compare with the others': {listed}" + ("; ..." if len(changed) > 10 else "") + "."]


def failed_table(records: Iterable[dict]) -> Table:
    rows = sort_rows(not_ok(records), ["kind", "case_id"])
    body = [[r["case_id"], r.get("device"), r["status"], r.get("message") or "", Path(r["source"]).name]
            for r in rows]
    return Table("not-ok", "Runs whose status is not ok (left out of every mean)",
                 ["case_id", "device", "status", "message", "file"], body, ("device", "status", "file"))
