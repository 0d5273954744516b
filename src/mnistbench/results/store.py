"""The results file: one JSON line per finished case, written the moment it finishes.

pytest-benchmark writes its JSON only when the session ends; a grid of long runs must
not depend on that. Each line is flushed and fsync'd, so a kill loses at most the case
in progress; a torn line (the kill landed mid-write) or a foreign one is skipped and
counted. A write that fails (the disk is full) is cut back off the file, so what is
there stays readable and nothing half-written reads as a record. A line of a newer
schema is refused: this version cannot know what its fields mean.
A session's first line is a header holding its machine facts (once, not per record);
readers give every record the machine of the header above it. Files written before
headers existed carry the machine inside each record, and read the same.
"""

from __future__ import annotations

import contextlib
import json
import os
import warnings
from pathlib import Path
from typing import NamedTuple

from mnistbench.results import interrupts
from mnistbench.results.record import SCHEMA, backfill, config_key

SESSION_SCHEMA = "mnistbench.session/1"
FAMILY = "mnistbench."


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
        """All of it or none of it: a failed write (ENOSPC, EIO, a quota) is cut back off the file and
        raised as one ResultsFileError; a Ctrl-C or SIGTERM waits until the lines are down."""
        data = "".join(json.dumps(r, default=str, allow_nan=True) + "\n" for r in recs).encode()
        with interrupts.held():
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                start = os.fstat(fd).st_size
                if start and not _ends_with_newline(self.path):
                    data = b"\n" + data  # a torn line from a killed run stays alone on its line
                try:
                    _write_all(fd, data)
                    os.fsync(fd)
                except OSError as exc:
                    _cut_back(fd, start)
                    raise ResultsFileError(
                        f"{self.path}: cannot write the record of {recs[-1].get('case_id', '?')} "
                        f"({exc.strerror or exc}); stopped: the {len(self.records)} record(s) already in it are "
                        f"intact. Make room, then rerun with --mb-resume {self.path}") from None
            finally:
                os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    while data:
        data = data[os.write(fd, data):]


def _cut_back(fd: int, size: int) -> None:
    """Drop what a failed write left; if even that fails, the partial line has no newline and
    reads as torn (skipped), never as a record."""
    with contextlib.suppress(OSError):
        os.ftruncate(fd, size)


def _ends_with_newline(path: Path) -> bool:
    with open(path, "rb") as fh:
        fh.seek(-1, os.SEEK_END)
        return fh.read(1) == b"\n"


class Read(NamedTuple):
    """A results file's complete records, the numbers of the lines that were not (torn by a kill),
    and of the lines that are JSON but not ours (foreign)."""

    records: list[dict]
    skipped: list[int]
    foreign: list[int]

    def note(self, path: str | os.PathLike) -> str | None:
        """The one line a reader prints about the lines it skipped; None when it skipped none."""
        parts = [f"unreadable line(s) {self.skipped} (a run killed mid-write)"] if self.skipped else []
        parts += [f"line(s) {self.foreign} that are not mnistbench records"] if self.foreign else []
        return f"{path}: skipped {' and '.join(parts)}" if parts else None


def schema_problem(path: Path, number: int, found: str, expected: str) -> str:
    """Why a line of another version of our schema is refused, with both versions."""
    newer = _version(found) > _version(expected)
    return (f"{path}: line {number} has schema {found!r}, this mnistbench reads {expected!r}: "
            + ("written by a newer mnistbench; read it with that version or upgrade this one"
               if newer else "written by an older mnistbench; read it with that version"))


def _version(schema: str) -> int:
    tail = schema.rsplit("/", 1)[-1]
    return int(tail) if tail.isdigit() else -1


def _parse(line: str):
    try:
        return json.loads(line)
    except json.JSONDecodeError:
        return None


def read_lines(path: str | os.PathLike) -> Read:
    """Every complete record of a results file, each with the machine of the session header above it
    and the BACKFILL values of fields it predates. Torn lines and foreign ones are skipped and counted;
    a file with nothing of ours in it, or a line of another version of our schema, is refused
    (ResultsFileError)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ResultsFileError(f"{path}: cannot be read ({exc})") from None
    records, bad, foreign, machine, headers = [], [], [], {}, 0
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        rec = _parse(line)
        schema = rec.get("schema") if isinstance(rec, dict) else None
        if rec is None:
            bad.append(number)
        elif schema == SESSION_SCHEMA:
            machine, headers = rec.get("machine") or {}, headers + 1
        elif schema == SCHEMA:
            records.append(backfill({"machine": machine, **rec}))
        elif isinstance(schema, str) and schema.startswith(FAMILY):
            expected = SESSION_SCHEMA if schema.startswith(SESSION_SCHEMA.rsplit("/", 1)[0]) else SCHEMA
            raise ResultsFileError(schema_problem(path, number, schema, expected))
        else:
            foreign.append(number)
    if foreign and not (records or headers):
        raise ResultsFileError(
            f"{path}: line {foreign[0]} is not an mnistbench result record "
            f"(expected schema {SCHEMA!r}); is this a results file written by --mb-results?")
    return Read(records, bad, foreign)


def read_results(path: str | os.PathLike) -> list[dict]:
    """Every complete record of a results file; skipped lines are one warning (the report's commands
    print it; the plugin reads with read_lines and prints the note itself)."""
    read = read_lines(path)
    if read.note(path):
        warnings.warn(read.note(path), stacklevel=2)
    return read.records


def finished_keys(path: str | os.PathLike) -> set[tuple]:
    """Configurations already recorded with status ok: what --mb-resume skips."""
    path = Path(path)
    if not path.exists():
        return set()
    return {config_key(r) for r in read_results(path) if r.get("status") == "ok"}
