"""Ctrl-C and SIGTERM as one thing, KeyboardInterrupt, held back while a record is written.

A batch system's time limit, `scancel`, `docker stop` and `kill` send SIGTERM, which by
default ends Python on the spot: no record of the case in progress, no pytest-benchmark
JSON, no summary. With `handler` installed for both signals, either one raises
KeyboardInterrupt, so pytest stops the session as after Ctrl-C; inside `held()` (a
record being made and written) the interrupt waits until the block ends, so it never
tears the line it would have interrupted.
"""

from __future__ import annotations

import contextlib
import signal
import threading

_held = 0
_pending: list[str] = []  # the signal that arrived while held, raised when the block ends


def handler(signum, frame) -> None:
    name = "SIGINT (Ctrl-C)" if signum == signal.SIGINT else signal.Signals(signum).name
    if _held:
        _pending[:] = [name]
        return
    raise KeyboardInterrupt(name)


@contextlib.contextmanager
def held():
    """Runs the block whole; an interrupt that arrives meanwhile is raised once it ends."""
    global _held
    _held += 1
    try:
        yield
    finally:
        _held -= 1
        if not _held and _pending:
            raise KeyboardInterrupt(_pending.pop())


def install() -> dict:
    """Ours for SIGINT and SIGTERM; returns what was there, for `restore`. Outside the main thread
    (an embedding that runs pytest in a thread) Python allows no handler: nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    return {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}


def restore(previous: dict) -> None:
    for sig, old in previous.items():
        signal.signal(sig, old)
