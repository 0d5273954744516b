"""history: each configuration's time and accuracy run after run, by run date and commit.

The input is a folder of saved runs: pytest-benchmark's storage (`.benchmarks/`, one JSON per
session, written by --benchmark-autosave or --benchmark-save NAME), or any files results.load
reads. A configuration on one kind of hardware (group.seed_key) gets one table; each of its
runs (one input file and session) is a row: date, commit, mean ± std over seeds, and both
against the first run. The commit is the suite's (machine_info["mnistbench"]["git_commit"]),
else pytest-benchmark's own commit_info; the date is the session's (the JSON's "datetime"),
else the first record's recorded_at (results lines).
"""

from __future__ import annotations

import json
from pathlib import Path

from mnistbench.report.group import Table, group, seed_key, summarize
from mnistbench.report.markdown import render_markdown
from mnistbench.report.provenance import inputs_table
from mnistbench.results.record import JOINS, label, ok
from mnistbench.results.stats import difference, ratio

HEADERS = ["run date (UTC)", "commit", "node", "file", "time (s)", "time / first run", "acc (%)",
           "Δ acc vs first run (pts)"]
HOW = ("One table per configuration and hardware, one row per run (an input file's session), oldest first. "
       "Time is train_time_s for ResNets and the SVC fit for SVMs, mean ± std over seeds (and repeats) with n; "
       "time / first run above 1 is slower. The commit is the suite's git revision recorded with the run "
       "(+dirty: uncommitted changes), else pytest-benchmark's commit_info.")


def history_blocks(records: list[dict]) -> list:
    """The inputs, then a trend table per configuration, in label order."""
    runs = [r for r in ok(records) if r["kind"] != "flops"]
    blocks: list = ["# mnistbench history", inputs_table(records), HOW]
    if not runs:
        return blocks + ["No finished run in the inputs."]
    configs = sorted(group(runs, seed_key), key=lambda rs: (rs[0]["kind"], label(rs[0], JOINS["seeds"]),
                                                             summarize(rs)["hardware"]))
    names: set[str] = set()
    commits = {source: _commit_info(source) for source in dict.fromkeys(r["source"] for r in runs)}
    for config in configs:
        name = _unique(f"history-{label(config[0], JOINS['seeds'])}", names)
        blocks.append(trend_table(config, name, commits))
    return blocks


def trend_table(runs: list[dict], name: str = "history", commits: dict[str, dict] | None = None) -> Table:
    """One configuration's runs, oldest first: time and accuracy, and both against the first run.
    `commits` holds pytest-benchmark's commit_info per input file, read when absent."""
    sessions = sorted((summarize(rs) for rs in group(runs, _session)), key=run_date)
    first = sessions[0]
    commits = commits if commits is not None else {r["source"]: _commit_info(r["source"]) for r in sessions}
    body = [[run_date(row) or None, run_commit(row, commits[row["source"]]) or None,
             (row.get("machine") or {}).get("node"),
             Path(row["source"]).name, row["time_s"], *_against(first, row)]
            for row in sessions]
    title = f"{label(first, JOINS['seeds'])} on {first['hardware']}"
    return Table(name, title, HEADERS, body)


def _against(first: dict, row: dict) -> list:
    """Time / first run's and the accuracy, minus the first run's; nothing on the first run itself."""
    if row is first:
        return [None, row["test_acc_pct"], None]
    return [ratio(row["time_s"], first["time_s"]), row["test_acc_pct"],
            difference(first["test_acc_pct"], row["test_acc_pct"])]


def write_history(records: list[dict], out: Path) -> tuple[Path, str]:
    """history.md with a CSV per configuration beside it; returns the path and the text."""
    out.mkdir(parents=True, exist_ok=True)
    text = render_markdown(history_blocks(records), out)
    path = out / "history.md"
    path.write_text(text, encoding="utf-8")
    return path, text


def run_date(row: dict) -> str:
    """'2026-11-23 16:32': the session's date, else its first record's; '' when neither was recorded."""
    when = row.get("run_datetime") or min((str(r.get("recorded_at")) for r in row["runs"] if r.get("recorded_at")),
                                          default="")
    return str(when)[:16].replace("T", " ")


def run_commit(row: dict, info: dict) -> str:
    """The suite's commit recorded with the run, else pytest-benchmark's commit_info `info`; '' when unknown."""
    commit = (row.get("machine") or {}).get("git_commit")
    if commit:
        return commit
    if not info.get("id") or info["id"] == "unknown":
        return ""
    return str(info["id"])[:7] + ("+dirty" if info.get("dirty") else "")


def _session(rec: dict) -> tuple:
    """One run: its file and its session's date."""
    return rec["source"], rec.get("run_datetime")


def _commit_info(source: str) -> dict:
    """pytest-benchmark's commit_info of a JSON file; {} for results lines or a file without one."""
    if not source.endswith(".json"):
        return {}
    try:
        doc = json.loads(Path(source).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}  # a results file saved as .json: its records hold no commit_info
    info = doc.get("commit_info") if isinstance(doc, dict) else None
    return info if isinstance(info, dict) else {}


def _unique(name: str, taken: set[str]) -> str:
    """`name`, or name-2, name-3... when the same label shows on other hardware."""
    unique, count = name, 1
    while unique in taken:
        count += 1
        unique = f"{name}-{count}"
    taken.add(unique)
    return unique
