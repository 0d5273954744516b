"""The folder a launched run writes: its manifest, each shard's JSON, results file and case
list, earlier attempts, logs and the merge. Written by scale/ (launch, shard, merge), read
back by results.load as its shards' results files and by launch for its progress lines.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from mnistbench.results.record import config_key
from mnistbench.results.store import read_lines


class RunFolderError(ValueError):
    """A run folder whose manifest cannot be read; the message names the file."""


@dataclass(frozen=True)
class Progress:
    """Where a shard stands, from its own files."""

    selected: int | None  # cases it selected; None before its pytest has collected
    recorded: int  # distinct cases in its results file
    failed: int  # of those, the ones whose latest record is not ok

    def text(self) -> str:
        return f"{self.recorded}/{'?' if self.selected is None else self.selected} cases, {self.failed} failed"


@dataclass(frozen=True)
class RunFolder:
    """A launched run: the manifest, per shard its JSON, results file and case list, logs, the merge.

    RUN/launch.json            shards, executor, pytest arguments, each shard's CPUs and GPU
    RUN/shard-<i>.json         pytest-benchmark JSON of shard i's latest attempt
    RUN/shard-<i>.jsonl        its results file: every attempt's records (--mb-resume)
    RUN/shard-<i>.cases        the node ids its latest attempt selected, one a line
    RUN/attempts/shard-<i>.<k>.json   the JSON of its earlier attempts (requeued or relaunched)
    RUN/logs/                  submitit's pickles and each job's stdout and stderr
    RUN/merged.json            every shard's benchmarks, one file
    """

    path: Path

    MANIFEST = "launch.json"

    @classmethod
    def holds_run(cls, path: Path) -> bool:
        return (Path(path) / cls.MANIFEST).is_file()

    @property
    def manifest(self) -> Path:
        return self.path / self.MANIFEST

    @property
    def logs(self) -> Path:
        return self.path / "logs"

    @property
    def merged(self) -> Path:
        return self.path / "merged.json"

    def json(self, index: int) -> Path:
        return self.path / f"shard-{index}.json"

    def results(self, index: int) -> Path:
        return self.path / f"shard-{index}.jsonl"

    def cases(self, index: int) -> Path:
        return self.path / f"shard-{index}.cases"

    def attempt(self, index: int, number: int) -> Path:
        return self.path / "attempts" / f"shard-{index}.{number}.json"

    def attempts(self, index: int) -> list[Path]:
        """The JSON of shard `index`'s earlier attempts, oldest first."""
        found, number = [], 1
        while (path := self.attempt(index, number)).exists():
            found.append(path)
            number += 1
        return found

    def keep_attempt(self, index: int) -> None:
        """Before shard `index` starts again: its last attempt's JSON moves to attempts/."""
        if self.json(index).exists():
            target = self.attempt(index, len(self.attempts(index)) + 1)
            target.parent.mkdir(parents=True, exist_ok=True)
            self.json(index).replace(target)

    def records(self, index: int) -> list[dict]:
        """Shard `index`'s results file as it stands, read while the shard writes (a half-written
        line is skipped without a warning: the shard is still writing it)."""
        path = self.results(index)
        return read_lines(path).records if path.exists() else []

    def progress(self, index: int) -> Progress:
        cases = self.cases(index)
        selected = len(cases.read_text(encoding="utf-8").splitlines()) if cases.exists() else None
        latest = {config_key(rec): rec.get("status") for rec in self.records(index)}
        return Progress(selected, len(latest), sum(status != "ok" for status in latest.values()))

    def read_manifest(self) -> dict:
        try:
            return json.loads(self.manifest.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise RunFolderError(f"{self.manifest}: cannot be read as a launch manifest ({exc})") from None

    def shard_count(self) -> int:
        return int(self.read_manifest()["shards"])
