"""The results file: one JSON line per finished case, written the moment it finishes.

pytest-benchmark writes its JSON only when the session ends; a grid of long runs must
not depend on that. Each line is flushed and fsync'd, so a kill loses at most the case
in progress; a torn last line (the kill landed mid-write) is skipped with a warning.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

from mnistbench.record import SCHEMA, config_key


class ResultsFileError(ValueError):
    """A results file that cannot be read as ours; the message names the file."""


class ResultsLog:
    def __init__(self, path: str | os.PathLike, machine: dict | None = None):
        self.path = Path(path)
        self.machine = machine or {}
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def append(self, rec: dict) -> None:
        line = json.dumps({**rec, "machine": self.machine}, default=str, allow_nan=True)
        with open(self.path, "a", encoding="utf-8") as fh:
            if fh.tell() and not _ends_with_newline(self.path):
                fh.write("\n")  # a torn line from a killed run stays alone on its line
            fh.write(line + "\n")
            fh.flush()
            os.fsync(fh.fileno())


def _ends_with_newline(path: Path) -> bool:
    with open(path, "rb") as fh:
        fh.seek(-1, os.SEEK_END)
        return fh.read(1) == b"\n"


def read_results(path: str | os.PathLike) -> list[dict]:
    """Every complete record of a results file; torn or foreign lines are skipped with a warning."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ResultsFileError(f"{path}: cannot be read ({exc})") from None
    records, bad = [], []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            bad.append(number)
            continue
        if not isinstance(rec, dict) or rec.get("schema") != SCHEMA:
            raise ResultsFileError(
                f"{path}: line {number} is not an mnistbench result record "
                f"(expected schema {SCHEMA!r}); is this a results file written by --results?"
            )
        records.append(rec)
    if bad:
        warnings.warn(f"{path}: skipped unreadable line(s) {bad} (a run killed mid-write)", stacklevel=2)
    return records


def finished_keys(path: str | os.PathLike) -> set[tuple]:
    """Configurations already recorded with status ok: what --resume skips."""
    path = Path(path)
    if not path.exists():
        return set()
    return {config_key(r) for r in read_results(path) if r.get("status") == "ok"}
