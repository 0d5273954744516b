"""The one flat result record: what lands in extra_info, the results file and the report.

A record is the case (dataclasses.asdict, unprefixed) plus the result's fields (units
in their names) plus a few fields about the run itself. Everything downstream joins
records by `config_key`, never by test names or order, so a CPU run and a GPU run of
the same configuration meet in one row wherever they were produced.
"""

from __future__ import annotations

import dataclasses
import datetime
import platform
import sys

import mnistbench

SCHEMA = "mnistbench.result/1"
STATUSES = ("ok", "below_floor", "diverged", "oom", "error")


def cpu_model() -> str:
    """The CPU's marketing name; platform.processor() is empty on Linux."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def versions() -> dict[str, str]:
    import sklearn
    import torch
    import torchvision

    return {
        "python_version": platform.python_version(),
        "torch_version": torch.__version__,
        "torchvision_version": torchvision.__version__,
        "sklearn_version": sklearn.__version__,
        "cuda_version": torch.version.cuda or "",
        "mnistbench_version": mnistbench.__version__,
    }


def make_record(case, result=None, status: str = "ok", message: str = "", **extra) -> dict:
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
    rec.update(versions())
    recorded_at = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    rec.update(status=status, message=message, platform=sys.platform, recorded_at=recorded_at, **extra)
    return rec


def case_fields(rec: dict, kind: str | None = None) -> list[str]:
    """Names of the case's own fields in a record (from the dataclass, so never stale)."""
    from mnistbench.config import FlopsCase, SVMCase, TrainCase

    cls = {"train": TrainCase, "svm": SVMCase, "flops": FlopsCase}[kind or rec["kind"]]
    return [f.name for f in dataclasses.fields(cls)]


def config_key(rec: dict, ignore: tuple[str, ...] = ()) -> tuple:
    """Hashable identity of a record's configuration, minus the fields named in `ignore`."""
    names = [n for n in case_fields(rec) if n not in ignore]
    return (rec["kind"],) + tuple((n, _hashable(rec.get(n))) for n in names)


def _hashable(value):
    return tuple(value) if isinstance(value, list) else value
