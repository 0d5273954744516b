"""load: every record in pytest-benchmark JSON, results lines (.jsonl) or folders of JSON.

Each record comes back flat (record.py), carrying the machine it ran on (stored once per
session: machine_info["mnistbench"] in the JSON, the header of a results file; a merged
JSON keeps each shard's in extra_info["machine"]), its run date and its source file, with
the BACKFILL values of case fields it predates. A run folder of `mnistbench launch` reads
as its shards' results files, which hold every attempt's records (a JSON is written only
when its pytest session ends). Anything that is not the suite's output is one
ReportInputError naming the file and what is wrong.
"""

from __future__ import annotations

import json
import warnings
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from mnistbench.cases.case import CASE_TYPES
from mnistbench.results.record import SCHEMA, backfill, config_key
from mnistbench.results.runfolder import RunFolder, RunFolderError
from mnistbench.results.stats import is_number
from mnistbench.results.store import SESSION_SCHEMA, ResultsFileError, read_results

KINDS = tuple(CASE_TYPES)
SCHEMA_FAMILY = SCHEMA.rsplit("/", 1)[0] + "/"
# Without these a record cannot be placed in any table; newer case fields may be absent.
REQUIRED = {
    "train": ("dataset", "model", "batch_size", "optimizer", "lr", "device", "seed"),
    "svm": ("dataset", "kernel", "C", "device", "seed"),
    "flops": ("model", "image_size"),
}


class ReportInputError(ValueError):
    """An input that cannot be read as the suite's output; the message names the file and what is missing."""


def load(paths: Iterable[str | Path]) -> list[dict]:
    """Every record in the given files and folders, each carrying its machine, run date and source file."""
    records, seen = [], {}
    for path in _expand(paths):
        records += _drop_repeats(_load_file(path), seen, path)
    return [backfill(rec) for rec in records]


def _expand(paths: Iterable[str | Path]) -> list[Path]:
    files = []
    for path in map(Path, paths):
        if path.is_dir():
            files += _folder_files(path)
        elif path.exists():
            files.append(path)
        else:
            raise ReportInputError(f"{path}: no such file or folder")
    if not files:
        raise ReportInputError("no input files given")
    return files


def _folder_files(folder: Path) -> list[Path]:
    """Launched runs in the folder as their shards' results files; any other *.json as itself."""
    runs = sorted({m.parent for m in folder.rglob(RunFolder.MANIFEST)})
    found = [f for run in runs for f in _run_files(RunFolder(run))]
    found += sorted(f for f in folder.rglob("*.json") if not any(run in f.parents for run in runs))
    if not found:
        raise ReportInputError(f"{folder}: folder holds no *.json files (expected pytest-benchmark "
                               "JSON, e.g. .benchmarks/ from --benchmark-save, or a run folder of mnistbench launch)")
    return found


def _run_files(run: RunFolder) -> list[Path]:
    try:
        count = run.shard_count()
    except (RunFolderError, KeyError, TypeError, ValueError) as exc:
        raise ReportInputError(f"{run.manifest}: not a launch manifest ({exc})") from None
    found = [run.results(i) for i in range(count) if run.results(i).exists()]
    if not found:
        raise ReportInputError(f"{run.path}: a launched run with no shard results yet (shard-<i>.jsonl); "
                               f"see its logs in {run.logs}")
    return found


def _load_file(path: Path) -> list[dict]:
    if path.suffix == ".jsonl":
        return _load_results(path)
    return _load_benchmark_json(path)


def _read_text(path: Path) -> str:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ReportInputError(f"{path}: cannot be read ({exc})") from None
    if not text.strip():
        raise ReportInputError(f"{path}: empty file "
                               "(expected pytest-benchmark JSON or mnistbench results lines)")
    return text


def _load_results(path: Path) -> list[dict]:
    _read_text(path)
    try:
        records = read_results(path)
    except ResultsFileError as exc:
        raise ReportInputError(str(exc)) from None
    if not records:
        raise ReportInputError(f"{path}: no complete record (every line was torn or blank)")
    for rec in records:
        rec.setdefault("machine", {})  # read_results attaches the file's machine; a very old file has none
        rec.update(source=str(path), run_datetime=rec.get("run_datetime"))
    _check_records(records, path)
    return records


def _load_benchmark_json(path: Path) -> list[dict]:
    text = _read_text(path)
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        if _looks_like_results_lines(text):
            return _load_results(path)
        raise ReportInputError(f"{path}: not JSON ({exc.msg} at line {exc.lineno}, column {exc.colno}); "
                               "expected the file written by --benchmark-json") from None
    benchmarks = doc.get("benchmarks") if isinstance(doc, dict) else None
    if not isinstance(benchmarks, list):
        raise ReportInputError(f"{path}: not pytest-benchmark JSON: no 'benchmarks' list at the top level "
                               f"({_describe(doc)})")
    if not benchmarks:
        raise ReportInputError(f"{path}: pytest-benchmark JSON with no benchmarks "
                               "(the run collected nothing?)")
    records = _records_of(benchmarks, path)
    machine, when = _machine(doc.get("machine_info")), doc.get("datetime")
    for rec in records:
        # a merged file keeps each shard's machine in its records
        rec.update(machine=rec.get("machine") or machine, run_datetime=when, source=str(path))
    _check_records(records, path)
    return records


def _records_of(benchmarks: list, path: Path) -> list[dict]:
    """extra_info of our benchmarks; a foreign benchmark is skipped, another schema version is refused."""
    records, foreign, other = [], 0, []
    for bench in benchmarks:
        info = bench.get("extra_info") if isinstance(bench, dict) else None
        schema = info.get("schema") if isinstance(info, dict) else None
        if schema == SCHEMA:
            stats = bench.get("stats") or {}
            records.append({**info, "bench_name": bench.get("name"), "bench_total_s": stats.get("total"),
                            "bench_rounds": stats.get("rounds")})
        elif isinstance(schema, str) and schema.startswith(SCHEMA_FAMILY):
            other.append((bench.get("name"), schema))
        else:
            foreign += 1
    _refuse_other_schemas(other, path)
    if not records:
        raise ReportInputError(f"{path}: none of its {len(benchmarks)} benchmark(s) has an mnistbench record "
                               f"in extra_info (expected extra_info['schema'] == {SCHEMA!r}); "
                               "was it written by this suite?")
    if foreign:
        warnings.warn(f"{path}: skipped {foreign} of {len(benchmarks)} benchmark(s) without an mnistbench "
                      "record in extra_info", stacklevel=2)
    return records


def _refuse_other_schemas(other: list[tuple], path: Path) -> None:
    if other:
        name, schema = other[0]
        raise ReportInputError(f"{path}: {len(other)} benchmark(s) carry schema {schema!r} (first: {name}); "
                               f"this report reads {SCHEMA!r}; "
                               "report each schema version with its own mnistbench")


def _looks_like_results_lines(text: str) -> bool:
    """A results file saved as .json: its first line alone is one of our records or a session header."""
    first = text.lstrip().split("\n", 1)[0]
    try:
        rec = json.loads(first)
    except json.JSONDecodeError:
        return False
    return isinstance(rec, dict) and rec.get("schema") in (SCHEMA, SESSION_SCHEMA)


def _describe(doc) -> str:
    if isinstance(doc, dict):
        keys = ", ".join(list(doc)[:6]) or "none"
        return f"top-level keys: {keys}"
    return f"found a JSON {type(doc).__name__}"


def _machine(info) -> dict:
    """The suite's machine facts; pytest-benchmark's own fields when a run predates them."""
    info = info if isinstance(info, dict) else {}
    if isinstance(info.get("mnistbench"), dict):
        return dict(info["mnistbench"])
    cpu = info.get("cpu") or {}
    return {"cpu_model": cpu.get("brand_raw") or info.get("processor") or info.get("machine", ""),
            "cpu_count": cpu.get("count"), "node": info.get("node", ""),
            "python_version": info.get("python_version", ""), "gpus": []}


def _check_records(records: list[dict], path: Path) -> None:
    for rec in records:
        where = f"{path}: record {rec.get('case_id') or rec.get('bench_name') or '?'}"
        missing = [k for k in ("kind", "case_id", "status") if k not in rec]
        if missing:
            raise ReportInputError(f"{where} lacks {', '.join(missing)}")
        if rec["kind"] not in KINDS:
            raise ReportInputError(f"{where} has kind {rec['kind']!r}, expected one of {', '.join(KINDS)}")
        missing = [k for k in REQUIRED[rec["kind"]] if k not in rec]
        if missing:
            raise ReportInputError(f"{where} lacks case field(s) {', '.join(missing)}")


def _drop_repeats(records: list[dict], seen: dict, path: Path) -> list[dict]:
    """The same run read twice (its .json and its .jsonl) is counted once: same configuration and timing."""
    kept, repeats = [], Counter()
    for rec in records:
        timing = rec.get("train_time_s", rec.get("fit_time_ms"))
        key = (config_key(rec), timing) if is_number(timing) else None
        if key is not None and key in seen:
            repeats[seen[key]] += 1
            continue
        if key is not None:
            seen[key] = str(path)
        kept.append(rec)
    for first, count in repeats.items():
        warnings.warn(f"{path}: {count} record(s) repeat runs already read from {first} "
                      "(same case, identical timings); each run is counted once", stacklevel=3)
    return kept
