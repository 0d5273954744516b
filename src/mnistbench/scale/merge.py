"""merge: the shards of one run (or any pytest-benchmark JSON files) as one pytest-benchmark JSON.

Every benchmark keeps the machine it ran on: its file's `machine_info["mnistbench"]` goes
into its `extra_info["machine"]` (the report reads it there before the top-level one);
the merged file's top-level `machine_info`, `commit_info` and `datetime` are the first
file's, so `pytest-benchmark compare` reads it as any other run. Records are matched by
configuration (record.config_key, seed included): the same case and seed in two files
is refused unless `prefer` says which one wins, since keeping either silently would
hide a shard that ran twice or two runs mixed up.

A launched run's folder (results.runfolder.RunFolder) merges as its shards' JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterable
from pathlib import Path

from mnistbench.cases.case import CASE_TYPES
from mnistbench.results.record import SCHEMA, config_key
from mnistbench.results.runfolder import RunFolder, RunFolderError

PREFER = ("first", "last")


class MergeError(ValueError):
    """Inputs that cannot be merged; the message names the files and what to do."""


def read_benchmark_json(path: str | os.PathLike) -> dict:
    path = Path(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise MergeError(f"{path}: cannot be read ({exc})") from None
    except json.JSONDecodeError as exc:
        raise MergeError(f"{path}: not JSON ({exc.msg} at line {exc.lineno}); expected the file written by "
                         "--benchmark-json") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("benchmarks"), list):
        raise MergeError(f"{path}: not pytest-benchmark JSON (no 'benchmarks' list at the top level)")
    return doc


def _key(bench: dict) -> tuple:
    """A benchmark's identity: the record's configuration, or pytest's name for a foreign benchmark."""
    info = bench.get("extra_info") or {}
    if info.get("schema") == SCHEMA and info.get("kind") in CASE_TYPES:
        return ("case", config_key(info))
    return ("test", bench.get("fullname") or bench.get("name"))


def _describe(bench: dict) -> str:
    info = bench.get("extra_info") or {}
    if "case_id" not in info:
        return f"benchmark {bench.get('fullname') or bench.get('name')}"
    return f"case {info['case_id']}" + (f" (seed {info['seed']})" if "seed" in info else "")


def _with_machine(bench: dict, doc: dict) -> dict:
    facts = (doc.get("machine_info") or {}).get("mnistbench")
    info = dict(bench.get("extra_info") or {})
    if facts is not None and "machine" not in info:  # a benchmark merged before keeps its own
        info["machine"] = facts
    return {**bench, "extra_info": info}


def merge(docs: Iterable[tuple[str, dict]], prefer: str | None = None) -> dict:
    """One pytest-benchmark document from (name, document) pairs, in the order given.

    `prefer`: None refuses a case and seed found twice; "first" or "last" keeps that one.
    """
    if prefer is not None and prefer not in PREFER:
        raise ValueError(f"prefer {prefer!r} not in {PREFER}")
    docs = list(docs)
    if not docs:
        raise MergeError("nothing to merge: no input files")
    kept: dict[tuple, tuple[str, dict]] = {}
    for name, doc in docs:
        for bench in doc["benchmarks"]:
            key = _key(bench)
            if key in kept and prefer is None:
                raise MergeError(f"{_describe(bench)} is in both {kept[key][0]} and {name}; each case and seed "
                                 "may be merged once: pass --prefer first or --prefer last to keep one of them")
            if key not in kept or prefer == "last":
                kept[key] = (name, _with_machine(bench, doc))
    top = {k: v for k, v in docs[0][1].items() if k != "benchmarks"}
    return {**top, "benchmarks": [bench for _, bench in kept.values()]}


def merge_files(paths: Iterable[str | os.PathLike], prefer: str | None = None) -> dict:
    """Files and launched run folders; a run folder counts as its shards, merged as merge_run does."""
    docs = []
    for path in map(Path, paths):
        if path.is_dir():
            if not RunFolder.holds_run(path):
                raise MergeError(f"{path}: a folder, but not a launched run (no {RunFolder.MANIFEST}); "
                                 "give its JSON files instead")
            docs.append((str(path), merge_run(RunFolder(path))))
        else:
            docs.append((str(path), read_benchmark_json(path)))
    return merge(docs, prefer)


def merge_run(run: RunFolder) -> dict:
    """Every shard's benchmarks; within a shard a later attempt's record of a case wins (a rerun
    after a failure or a requeue), across shards the same case twice is an error."""
    shards = []
    for index in range(run.shard_count()):
        files = [p for p in (*run.attempts(index), run.json(index)) if p.exists()]
        if files:
            attempts = [(str(p), read_benchmark_json(p)) for p in files]
            shards.append((str(run.json(index)), merge(attempts, prefer="last")))
    if not shards:
        raise MergeError(f"{run.path}: no shard wrote its pytest-benchmark JSON (shard-<i>.json); "
                         "see the logs in " + str(run.logs))
    return merge(shards)


def write_json(doc: dict, path: str | os.PathLike) -> Path:
    """Written whole or not at all: a reader never sees half a merged file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(doc, indent=4, allow_nan=True), encoding="utf-8")
    partial.replace(path)
    return path


def main(argv: list[str] | None = None) -> int:
    """`mnistbench merge FILES -o OUT`."""
    parser = argparse.ArgumentParser(
        prog="mnistbench merge",
        description="One pytest-benchmark JSON from the shards of a run: every benchmark keeps its own "
                    "machine facts in extra_info['machine']; the top-level machine_info is the first file's. "
                    "The same case and seed in two files is refused unless --prefer says which one wins.")
    parser.add_argument("files", nargs="+", metavar="FILE",
                        help="pytest-benchmark JSON files (--benchmark-json), or run folders of mnistbench launch")
    parser.add_argument("-o", "--output", type=Path, required=True, metavar="OUT", help="the merged JSON to write")
    parser.add_argument("--prefer", choices=PREFER,
                        help="keep the first or the last file's record of a case and seed found twice "
                             "(default: refuse to merge)")
    args = parser.parse_args(argv)
    try:
        doc = merge_files(args.files, args.prefer)
        write_json(doc, args.output)
    except (MergeError, RunFolderError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {args.output}: {len(doc['benchmarks'])} benchmark(s) from {len(args.files)} input(s)")
    return 0
