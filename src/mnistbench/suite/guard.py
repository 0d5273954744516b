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


def _problems(config) -> list[str]:
    """(option, path, why) for every path option given that cannot be used."""
    get = lambda name: options.get(config, name)  # noqa: E731
    checks = [
        ("--mb-results", get("results"), paths.file_to_write),
        ("--mb-cache-dir", get("cache-dir"), paths.folder_to_write),
        ("--mb-noise", get("noise"), paths.input_to_read),
        ("--mb-compare", get("compare"), paths.input_to_read),
        ("--benchmark-json", config.getoption("benchmark_json", None), paths.file_to_write),
    ]
    if get("data-dir"):
        may_create = not (get("offline") or os.environ.get("MNISTBENCH_OFFLINE", "") not in ("", "0", "false", "no"))
        checks.append(("--mb-data-dir", get("data-dir"),
                       lambda p: paths.folder_to_read(p, may_create=may_create)))
    found = [f"{name} {path}: {why}" for name, path, check in checks if path and (why := check(path))]
    resume = get("resume")
    if resume and not Path(resume).exists():
        found.append(MISSING_RESUME.format(path=resume))
    elif resume and (why := paths.input_to_read(resume, folder_too=False) or paths.file_to_write(resume)):
        found.append(f"--mb-resume {resume}: {why}")
    return found


def check_paths(config) -> None:
    """A usage error naming each path option that cannot be used, before anything is collected."""
    found = _problems(config)
    if found:
        raise pytest.UsageError("\n".join(found) + ("\n(fix the path, or leave the option out for its default)"
                                                    if not found[0].startswith("--mb-resume") else ""))


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
