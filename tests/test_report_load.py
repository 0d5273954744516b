"""mnistbench.report.load: the suite's JSON, results lines and folders in; anything else one clear error."""

import copy
import json

import pytest
from fixtures.records import CPU, CPU_NAME, JSONL, R18_SGD, one, raw_benchmarks

from mnistbench.cli import main
from mnistbench.report.provenance import inputs_table, schema_notes
from mnistbench.results.load import ReportInputError, load
from mnistbench.results.record import BACKFILL
from mnistbench.results.store import SESSION_SCHEMA


def test_load_attaches_machine_run_date_and_source():
    records = load([CPU])
    assert len(records) == len(raw_benchmarks(CPU)) == 13
    assert sorted({r["kind"] for r in records}) == ["flops", "svm", "train"]
    rec = one(records, **R18_SGD, seed=0)
    assert rec["machine"]["cpu_model"] == CPU_NAME and rec["machine"]["gpus"] == []
    assert rec["run_datetime"].startswith("2026-11-23")
    assert rec["source"] == str(CPU)
    assert rec["bench_total_s"] == pytest.approx(rec["train_time_s"], rel=0.05)


def test_load_reads_results_lines_and_benchmark_folders(tmp_path):
    lines = load([JSONL])
    assert len(lines) == 5 and all(r["machine"]["cpu_model"] == CPU_NAME for r in lines)
    saved = tmp_path / ".benchmarks" / "Linux-CPython-3.11-64bit"
    saved.mkdir(parents=True)
    (saved / "0001_smoke.json").write_text(CPU.read_text())
    assert len(load([tmp_path / ".benchmarks"])) == 13


def test_results_lines_with_a_session_header_give_every_record_its_machine(tmp_path):
    lines = [json.loads(line) for line in JSONL.read_text().splitlines()]
    machine = lines[0].pop("machine")
    for rec in lines[1:]:
        del rec["machine"]
    path = tmp_path / "new.jsonl"
    header = {"schema": SESSION_SCHEMA, "machine": machine}
    path.write_text("".join(json.dumps(rec) + "\n" for rec in [header, *lines]))
    assert [r["machine"] for r in load([path])] == [machine] * len(lines)


def test_the_same_run_read_twice_is_counted_once():
    with pytest.warns(UserWarning, match=r"smoke-cpu\.jsonl: 4 record\(s\) repeat runs already read from"):
        records = load([CPU, JSONL])
    # the four timed lines are the JSON's runs; the flops line has no timing to tell runs apart
    assert len(records) == 13 + 1


def test_torn_results_line_is_skipped_with_a_warning(tmp_path):
    torn = tmp_path / "killed.jsonl"
    text = JSONL.read_text()
    torn.write_text(text + text.splitlines()[0][:200])
    with pytest.warns(UserWarning, match="skipped unreadable line"):
        records = load([torn])
    assert len(records) == 5


def test_foreign_benchmarks_in_our_file_are_skipped_with_a_warning(tmp_path):
    doc = json.loads(CPU.read_text())
    foreign = copy.deepcopy(doc["benchmarks"][0])
    foreign["extra_info"] = {}
    doc["benchmarks"] += [foreign, {**foreign, "extra_info": {"schema": "someone.else/1"}}]
    path = tmp_path / "mixed.json"
    path.write_text(json.dumps(doc))
    expected = r"mixed\.json: skipped 2 of 15 benchmark\(s\) without an mnistbench record"
    with pytest.warns(UserWarning, match=expected):
        assert len(load([path])) == 13


def _benchmark_doc(first=None, second=None) -> str:
    """The CPU fixture's first two benchmarks, each extra_info changed by the function given for it."""
    doc = json.loads(CPU.read_text())
    doc["benchmarks"] = doc["benchmarks"][:2]
    for bench, change in zip(doc["benchmarks"], (first, second), strict=True):
        if change is not None:
            bench["extra_info"] = change(bench["extra_info"])
    return json.dumps(doc)


def _without(key):
    return lambda info: {k: v for k, v in info.items() if k != key}


MALFORMED = {
    "not-json.json": ("{'benchmarks': [", "not JSON"),
    "foreign.json": (json.dumps({"results": [1, 2]}), "no 'benchmarks' list.*top-level keys: results"),
    "a-list.json": ("[1, 2]", "no 'benchmarks' list.*JSON list"),
    "empty.json": ("", "empty file"),
    "blank.jsonl": ("\n\n", "empty file"),
    "no-benchmarks.json": (json.dumps({"machine_info": {}, "benchmarks": []}), "with no benchmarks"),
    "no-extra-info.json": (_benchmark_doc(lambda e: {}, lambda e: {}),
                           r"none of its 2 benchmark\(s\) has an mnistbench record in extra_info"),
    "other-version.json": (_benchmark_doc(second=lambda e: {**e, "schema": "mnistbench.result/2"}),
                           r"schema 'mnistbench.result/2'.*reads 'mnistbench.result/1'"),
    "lacks-kind.json": (_benchmark_doc(first=_without("kind")), "lacks kind"),
    "lacks-model.json": (_benchmark_doc(first=_without("model")), r"lacks case field\(s\) model"),
    "foreign.jsonl": ('{"a": 1}\n', "not an mnistbench result record"),
}


@pytest.mark.parametrize("name", MALFORMED)
def test_malformed_input_is_one_error_naming_the_file(name, tmp_path, capsys):
    text, expected = MALFORMED[name]
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(ReportInputError, match=expected) as caught:
        load([path])
    assert name in str(caught.value)

    assert main(["report", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {path}") and "Traceback" not in err


def test_missing_path_and_empty_folder_are_errors(tmp_path):
    with pytest.raises(ReportInputError, match="no such file or folder"):
        load([tmp_path / "nowhere.json"])
    with pytest.raises(ReportInputError, match=r"folder holds no \*\.json files"):
        load([tmp_path])


def test_records_without_path_are_read_as_classic_and_say_so_once():
    records = load([CPU])
    train = [r for r in records if r["kind"] == "train"]
    assert {(r["path"], r["deterministic"]) for r in train} == {("classic", False)}
    assert all("path" not in b["extra_info"] for b in raw_benchmarks(CPU))
    assert all("backfilled" not in r for r in records if r["kind"] != "train")
    about_path = [note for note in schema_notes(records) if "`path`" in note]
    why = BACKFILL["train"]["path"][1]
    assert about_path == [f"6 of 6 train record(s) predate the case field `path` and are read as "
                          f"path = 'classic': when they ran, {why}."]


def test_results_lines_are_dated_by_recorded_at():
    lines = load([JSONL])
    (undated,) = inputs_table(lines).as_dicts()
    assert undated["run date"] == "not recorded"
    for minute, rec in enumerate(lines):
        rec["recorded_at"] = f"2026-11-23T17:0{minute}:00+00:00"
    (dated,) = inputs_table(lines).as_dicts()
    assert dated["run date"] == "2026-11-23 17:00:00 to 2026-11-23 17:04:00 UTC"
