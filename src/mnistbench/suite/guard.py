"""What a session checks and takes before its first case, so a fault costs a message, not a grid.

Every path option is checked when pytest starts (a usage error naming the option, the
path and why), and pytest-benchmark's --benchmark-json too, which it would otherwise
only find unwritable after the last case. Once cases are selected, the session reads
the results file it appends to (a torn or foreign line is skipped with one printed note;
a newer schema is refused), takes the file's lock (results.lock), and makes SIGTERM
stop it as Ctrl-C does (results.interrupts). What it tells the user goes through the
terminal reporter, never as a warning: the checkout's `filterwarnings = error` would
turn a warning into a crash.
"""

from __future__ import annotations

import datetime
import os
from pathlib import Path

import pytest

from mnistbench.results import interrupts, paths
from mnistbench.results.lock import ResultsLock
from mnistbench.results.store import ResultsFileError, ResultsLog, read_lines
from mnistbench.suite import options

NOTES = pytest.StashKey[list]()  # lines for the terminal before the first case
MISSING_RESUME = ("--mb-resume {path}: no such file, so there is nothing to resume; to start a new results file "
                  "give --mb-results {path}")


def _offline(config) -> bool:
    """data.offline_by_default's rule, without importing torch into every pytest session's start."""
    env = os.environ.get("MNISTBENCH_OFFLINE", "")
    return bool(options.get(config, "offline")) or env not in ("", "0", "false", "no")


def _problems(config) -> list[str]:
    """'OPTION PATH: why' for every path option given that cannot be used."""
    may_create = not _offline(config)  # the datasets' folder is made by a download, never offline
    checks = [
        ("--mb-results", options.get(config, "results"), paths.file_to_write),
        ("--mb-resume", options.get(config, "resume"),
         lambda p: paths.input_to_read(p, folder_too=False) or paths.file_to_write(p)),
        ("--mb-cache-dir", options.get(config, "cache-dir"), paths.folder_to_write),
        ("--mb-data-dir", options.get(config, "data-dir"), lambda p: paths.folder_to_read(p, may_create=may_create)),
        ("--mb-noise", options.get(config, "noise"), paths.input_to_read),
        ("--mb-compare", options.get(config, "compare"), paths.input_to_read),
        ("--benchmark-json", config.getoption("benchmark_json", None), paths.file_to_write),
        ("--mb-report", options.get(config, "report"), paths.folder_to_write),
    ]
    return [f"{name} {path}: {why}" for name, path, check in checks if path and (why := check(path))]


def check_paths(config) -> None:
    """A usage error naming each path option that cannot be used, before anything is collected. A
    --mb-resume FILE that does not exist says how to start one: a typo must not rerun a whole grid."""
    resume = options.get(config, "resume")
    if resume and not Path(resume).exists():
        raise pytest.UsageError(MISSING_RESUME.format(path=resume))
    found = _problems(config)
    if found:
        raise pytest.UsageError("\n".join(found) + "\nGive a path that can be used, or leave the option out.")


def results_path(config) -> Path:
    path = options.get(config, "resume") or options.get(config, "results")
    if path:
        return Path(path)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path(config.rootpath) / "reports" / f"results-{stamp}.jsonl"


def earlier_records(config) -> list[dict]:
    """The records already in the file this session appends to (--mb-resume or --mb-results); skipped
    lines become one note for the terminal; a foreign file or a newer schema is a usage error."""
    path = options.get(config, "resume") or options.get(config, "results")
    if not path or not Path(path).exists() or not Path(path).stat().st_size:
        return []
    try:
        read = read_lines(path)
    except ResultsFileError as exc:
        raise pytest.UsageError(str(exc)) from None
    if read.note(path):
        note(config, f"mnistbench: {read.note(path)}; the other records are read")
    return read.records


def note(config, line: str) -> None:
    config.stash.setdefault(NOTES, []).append(line)


def open_results(config, machine: dict) -> ResultsLog:
    """The session's results file, its folder made and its lock taken, or a usage error naming why not.
    The lock is let go, and the signal handlers put back, when the session's config is torn down."""
    path = results_path(config)
    lock = ResultsLock(path)
    try:
        log = ResultsLog(path, machine=machine)
        lock.acquire()
    except ResultsFileError as exc:
        raise pytest.UsageError(str(exc)) from None
    except OSError as exc:
        raise pytest.UsageError(f"results file {path}: cannot be created ({exc.strerror or exc}); "
                                "give a writable --mb-results FILE") from None
    config.add_cleanup(lock.release)
    previous = interrupts.install()
    config.add_cleanup(lambda: interrupts.restore(previous))
    return log
