"""The one flat result record, and every rule for joining records: defined here, once.

A record is the case (dataclasses.asdict, unprefixed) plus the result's fields (units
in their names) plus status and time. The machine it ran on is stored once per session
(suite/machine.py), not in each record. Everything downstream joins records by `config_key`,
never by test names, ids or order; the joins (cells over seeds, CPU against GPU, two
runs compared, fast/classic and sklearn/sklearnex twins) are the named tables below,
used both by the benchmarks when they record a ratio and by the report.
"""

from __future__ import annotations

import dataclasses
import datetime
from dataclasses import dataclass

from mnistbench.cases.case import CASE_TYPES, Case
from mnistbench.results.measures import unit_time_s
from mnistbench.results.stats import hashable

SCHEMA = "mnistbench.result/1"
STATUSES = ("ok", "below_floor", "diverged", "oom", "error", "interrupted")  # interrupted: Ctrl-C or SIGTERM

# Case fields added after runs were recorded whose default is NOT what those runs did:
# field -> (the value every older record had, why). A new field whose default is the old
# behaviour needs no entry: an absent field reads as its default everywhere.
BACKFILL = {"train": {"path": ("classic", "the classic loop was the only one"),
                      "deterministic": (False, "deterministic algorithms could not be turned on")}}

# Fields a join leaves out, by what is being joined.
JOINS = {
    "seeds": ("seed",),  # one cell of a table: the runs of one configuration
    "devices": ("device", "seed", "pin_memory"),  # Q2: the same configuration on CPU and GPU
    "compare": ("device", "seed", "pin_memory", "num_workers"),  # two runs of the suite, case by case
}


@dataclass(frozen=True)
class Twin:
    """Two implementations of the same configuration that differ in one field."""

    field: str  # the compared case field
    base: str  # the baseline's value
    other: str  # the compared value
    follows: tuple[str, ...]  # fields the compared one decides (the path picks its loader and amp)
    ratio: str  # recorded on the other: baseline cost / its cost
    acc_delta: str  # recorded on the other: its test accuracy - the baseline's, points

    @property
    def leave_out(self) -> tuple[str, ...]:
        return (self.field, *self.follows)


TWINS = (
    Twin("path", "classic", "fast", ("loader", "amp"), "speedup_vs_classic", "acc_delta_vs_classic_pts"),
    # the fit alone, as measures.unit_time_s defines an SVM's time; records before 2026-12-01 carry
    # `speedup_vs_sklearn`, a ratio of fit + predict, which nothing reads any more
    Twin("backend", "sklearn", "sklearnex", (), "fit_speedup_vs_sklearn", "acc_delta_vs_sklearn_pts"),
)


def make_record(case: Case, result=None, status: str = "ok", message: str = "", **extra) -> dict:
    """Flat dict of case + result + status; `result` may be partial (a diverged run)."""
    if status not in STATUSES:
        raise ValueError(f"status {status!r} not in {STATUSES}")
    rec = {"schema": SCHEMA, "kind": case.kind, "case_id": case.id}
    rec.update(dataclasses.asdict(case))
    if result is not None:
        fields = result.as_fields() if hasattr(result, "as_fields") else dict(result)
        clash = set(fields) & set(rec)
        if clash:
            raise ValueError(f"result fields {sorted(clash)} would overwrite case fields")
        rec.update(fields)
    recorded_at = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    rec.update(status=status, message=message, recorded_at=recorded_at, **extra)
    return rec


def case_fields(kind: str) -> list[str]:
    """Names of a kind's case fields (from the dataclass, so never stale)."""
    return CASE_TYPES[kind].field_names()


def backfill(rec: dict) -> dict:
    """Give a record the BACKFILL values of fields it predates; `backfilled` names them."""
    for field, (value, _) in BACKFILL.get(rec["kind"], {}).items():
        if field not in rec:
            rec[field] = value
            rec["backfilled"] = [*rec.get("backfilled", []), field]
    return rec


def defaults(kind: str) -> dict:
    """A kind's case fields and their dataclass defaults."""
    return {f.name: f.default for f in dataclasses.fields(CASE_TYPES[kind])}


def config_key(rec: dict, leave_out: tuple[str, ...] = ()) -> tuple:
    """Hashable identity of a record's configuration, minus the fields in `leave_out`.

    A field the record predates counts as its BACKFILL value, else its default, so a
    record written before an axis existed still matches the same configuration today.
    """
    kind = rec["kind"]
    old = {f: v for f, (v, _) in BACKFILL.get(kind, {}).items()}
    default = defaults(kind)
    names = [n for n in case_fields(kind) if n not in leave_out]
    return (kind,) + tuple((n, hashable(rec.get(n, old.get(n, default[n])))) for n in names)


def twin_of(rec: dict) -> Twin | None:
    """The twin rule this record takes part in, as baseline or as the compared side."""
    for twin in TWINS:
        if twin.field in rec and rec[twin.field] in (twin.base, twin.other):
            return twin
    return None


def twin_key(rec: dict, twin: Twin, *, pool_seeds: bool = False) -> tuple:
    """What a record and its twin share: the configuration without the twin's field (and seed when pooled)."""
    return config_key(rec, twin.leave_out + (("seed",) if pool_seeds else ()))


def twin_fields(base: dict, other: dict, twin: Twin) -> dict:
    """The ratio (measures.unit_time_s: per epoch, per fit) and accuracy difference the compared record carries."""
    return {twin.ratio: unit_time_s(base) / unit_time_s(other),
            twin.acc_delta: other["test_acc_pct"] - base["test_acc_pct"]}


def case_of(rec: dict) -> Case:
    """The case a record was made from: its fields, absent ones at their backfill or default."""
    cls = CASE_TYPES[rec["kind"]]
    values = dict(zip(case_fields(rec["kind"]), (v for _, v in config_key(rec)[1:]), strict=True))
    return cls(**values)


def label(rec: dict, leave_out: tuple[str, ...] = ()) -> str:
    """A row label built from the record's fields (never by parsing its case_id)."""
    try:
        return case_of(rec).label(leave_out)
    except (ValueError, TypeError):  # a record naming a model or dataset this install does not register
        return str(rec.get("case_id"))


def ok(records, kind: str | None = None) -> list[dict]:
    """Runs that finished with status ok: the only ones any mean is taken over."""
    return [r for r in records if r.get("status") == "ok" and (kind is None or r["kind"] == kind)]


def not_ok(records) -> list[dict]:
    return [r for r in records if r.get("status") != "ok"]


def hardware(rec: dict) -> str:
    """What the run ran on, in words: runs on different hardware are never averaged or judged together."""
    machine = rec.get("machine") or {}
    if rec.get("device") == "cuda":
        return rec.get("device_name") or ", ".join(machine.get("gpus") or []) or "GPU (unnamed)"
    return machine.get("cpu_model") or rec.get("device_name") or "CPU (unnamed)"
