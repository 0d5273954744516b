"""Whether a path given on the command line can be used, asked before any work starts.

A grid that finds out at its first case (or, for pytest-benchmark's JSON, at its very
end) that a path cannot be written has wasted the time until then. Each check returns
why the path cannot be used, in words, or None; nothing is created.
"""

from __future__ import annotations

import os
from pathlib import Path


def _nearest_existing(path: Path) -> Path:
    for parent in [path, *path.parents]:
        if parent.exists() or parent.is_symlink():
            return parent
    return Path(path.anchor or ".")


def _creatable(path: Path) -> str | None:
    """Why `path` (absent) cannot be created with its missing folders, or None."""
    base = _nearest_existing(path.parent)
    if not base.is_dir():
        return f"{base} is a file, not a folder"
    if not os.access(base, os.W_OK | os.X_OK):
        return f"{base} is not writable"
    return None


def file_to_write(path: str | os.PathLike) -> str | None:
    path = Path(path).expanduser()
    if path.is_dir():
        return "it is a folder, not a file"
    if path.exists():
        return None if os.access(path, os.W_OK) else "it is not writable"
    return _creatable(path)


def folder_to_write(path: str | os.PathLike) -> str | None:
    path = Path(path).expanduser()
    if path.exists():
        if not path.is_dir():
            return "it is a file, not a folder"
        return None if os.access(path, os.W_OK | os.X_OK) else "it is not writable"
    return _creatable(path)


def folder_to_read(path: str | os.PathLike, *, may_create: bool) -> str | None:
    """A folder read from (the datasets); `may_create`: it may be absent, to be downloaded into."""
    path = Path(path).expanduser()
    if path.exists():
        return None if path.is_dir() else "it is a file, not a folder"
    return _creatable(path) if may_create else "no such folder"


def input_to_read(path: str | os.PathLike, *, folder_too: bool = True) -> str | None:
    path = Path(path).expanduser()
    if not path.exists():
        return "no such file" + (" or folder" if folder_too else "")
    if path.is_dir() and not folder_too:
        return "it is a folder, not a file"
    return None if os.access(path, os.R_OK) else "it is not readable"
