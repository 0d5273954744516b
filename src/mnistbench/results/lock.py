"""One session appends to a results file at a time: an advisory lock beside it, naming its holder.

Two sessions appending to one file (a second terminal, a resubmitted job whose first
attempt still runs) would interleave their records under each other's session headers.
The lock is `flock` on `FILE.lock`, which holds the holder's host, pid and start time for
the message the second session stops with. The kernel (or the NFS server) drops it when
the holder dies, however it dies, so a killed run never leaves a stale lock. Shards of
one launch write different files (shard-<i>.jsonl), so a lock per file never stops them.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import json
import os
import platform
from pathlib import Path

from mnistbench.results.store import ResultsFileError


class ResultsFileLocked(ResultsFileError):
    """Another live session holds the results file's lock; the message names it."""


class ResultsLock:
    def __init__(self, results: str | os.PathLike):
        self.results = Path(results)
        self.path = self.results.with_name(self.results.name + ".lock")
        self._fd: int | None = None

    def acquire(self) -> None:
        """Taken, or ResultsFileLocked naming the holder. The lock file is removed on release, so
        after taking it, check it is still the file at the path (a holder may have removed it
        between our open and our flock); if not, take the new one."""
        while self._fd is None:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise ResultsFileLocked(self._held_message()) from None
            if _same_file(fd, self.path):
                self._fd = fd
            else:
                os.close(fd)
        holder = {"host": platform.node(), "pid": os.getpid(),
                  "since": datetime.datetime.now().isoformat(timespec="seconds")}
        os.ftruncate(self._fd, 0)
        os.write(self._fd, json.dumps(holder).encode())

    def release(self) -> None:
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            self.path.unlink()
        os.close(self._fd)
        self._fd = None

    def _held_message(self) -> str:
        try:
            holder = json.loads(self.path.read_text(encoding="utf-8") or "{}")
        except (OSError, ValueError):
            holder = {}
        who = (f"host {holder.get('host', '?')}, pid {holder.get('pid', '?')}, since {holder.get('since', '?')}"
               if holder else "holder not yet recorded")
        return (f"{self.results} is being appended to by another session ({who}; lock {self.path}). "
                "Wait for it to end, or give this session another --mb-results FILE.")


def _same_file(fd: int, path: Path) -> bool:
    try:
        return os.fstat(fd).st_ino == os.stat(path).st_ino
    except FileNotFoundError:
        return False
