"""The results file: one JSON line per finished case, written the moment it finishes.

pytest-benchmark writes its JSON only when the session ends; a grid of long runs must
not depend on that. Each line is flushed and fsync'd, so a kill loses at most the case
in progress; a torn last line (the kill landed mid-write) is skipped with a warning.
A session's first line is a header holding its machine facts (once, not per record);
readers give every record the machine of the header above it. Files written before
headers existed carry the machine inside each record, and read the same.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import NamedTuple

from mnistbench.results.record import SCHEMA, backfill, config_key

SESSION_SCHEMA = "mnistbench.session/1"


class ResultsFileError(ValueError):
    """A results file that cannot be read as ours; the message names the file."""


class ResultsLog:
    """Appends records to one file; the session header goes in before the first record."""

    def __init__(self, path: str | os.PathLike, machine: dict | None = None):
        self.path = Path(path)
        self.machine = machine or {}
        self.records: list[dict] = []  # this session's, for the end-of-session summary
        self._header_written = False
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def append(self, rec: dict) -> None:
        lines = [rec]
        if not self._header_written:
            # header and first record in one write: a kill never leaves a header alone
            lines.insert(0, {"schema": SESSION_SCHEMA, "machine": self.machine})
        self._write(lines)
        self._header_written = True
        self.records.append(rec)

    def _write(self, recs: list[dict]) -> None:
        text = "".join(json.dumps(r, default=str, allow_nan=True) + "\n" for r in recs)
        with open(self.path, "a", encoding="utf-8") as fh:
            if fh.tell() and not _ends_with_newline(self.path):
                fh.write("\n")  # a torn line from a killed run stays alone on its line
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())


def _ends_with_newline(path: Path) -> bool:
    with open(path, "rb") as fh:
        fh.seek(-1, os.SEEK_END)
        return fh.read(1) == b"\n"


class Read(NamedTuple):
    """A results file's complete records, and the numbers of the lines that were not (torn by a kill)."""

    records: list[dict]
    skipped: list[int]


def read_lines(path: str | os.PathLike) -> Read:
    """Every complete record of a results file, each with the machine of the session header above it
    and the BACKFILL values of fields it predates; torn lines are skipped and counted, a foreign one
    is refused (ResultsFileError)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ResultsFileError(f"{path}: cannot be read ({exc})") from None
    records, bad, machine = [], [], {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            bad.append(number)
            continue
        if isinstance(rec, dict) and rec.get("schema") == SESSION_SCHEMA:
            machine = rec.get("machine") or {}
            continue
        if not isinstance(rec, dict) or rec.get("schema") != SCHEMA:
            raise ResultsFileError(
                f"{path}: line {number} is not an mnistbench result record "
                f"(expected schema {SCHEMA!r}); is this a results file written by --mb-results?"
            )
        rec.setdefault("machine", machine)
        records.append(backfill(rec))
    return Read(records, bad)


def skipped_note(path: str | os.PathLike, skipped: list[int]) -> str:
    return f"{path}: skipped unreadable line(s) {skipped} (a run killed mid-write)"


def read_results(path: str | os.PathLike) -> list[dict]:
    """Every complete record of a results file; torn lines are skipped with a warning."""
    read = read_lines(path)
    if read.skipped:
        warnings.warn(skipped_note(path, read.skipped), stacklevel=2)
    return read.records


def finished_keys(path: str | os.PathLike) -> set[tuple]:
    """Configurations already recorded with status ok: what --mb-resume skips."""
    path = Path(path)
    if not path.exists():
        return set()
    return {config_key(r) for r in read_results(path) if r.get("status") == "ok"}
