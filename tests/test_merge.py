"""merge: the shards of a run as one pytest-benchmark JSON, every benchmark keeping its machine.

The shards are cut from tests/fixtures/smoke-cpu.json (a real CPU smoke run), each given a
machine of its own by hand (nodes "node-a" and "node-b"): only the merge is under test.
"""

import json
import shutil
import subprocess
import sys

import pytest
from fixtures.records import CPU, JSONL

from mnistbench.cli import main
from mnistbench.results.load import load
from mnistbench.results.runfolder import RunFolder
from mnistbench.scale.merge import MergeError, merge, merge_files, merge_run, write_json


def shard_doc(node: str, keep) -> dict:
    """The fixture's benchmarks for which keep(extra_info) holds, run on `node`."""
    doc = json.loads(CPU.read_text())
    doc["machine_info"]["mnistbench"] = {**doc["machine_info"]["mnistbench"], "node": node}
    doc["benchmarks"] = [b for b in doc["benchmarks"] if keep(b["extra_info"])]
    return doc


@pytest.fixture
def shards(tmp_path):
    """Shard 0 ran the training cases on node-a, shard 1 the rest on node-b."""
    a = write_json(shard_doc("node-a", lambda e: e["kind"] == "train"), tmp_path / "shard-0.json")
    b = write_json(shard_doc("node-b", lambda e: e["kind"] != "train"), tmp_path / "shard-1.json")
    return a, b


def test_every_shards_benchmarks_land_in_one_file_each_with_its_machine(shards):
    merged = merge_files(shards)
    every = json.loads(CPU.read_text())["benchmarks"]
    assert sorted(b["extra_info"]["case_id"] for b in merged["benchmarks"]) == sorted(
        b["extra_info"]["case_id"] for b in every)
    for bench in merged["benchmarks"]:
        expected = "node-a" if bench["extra_info"]["kind"] == "train" else "node-b"
        assert bench["extra_info"]["machine"]["node"] == expected, bench["name"]
        assert bench["stats"]["data"], "pytest-benchmark's timings travel unchanged"
    # the top level is pytest-benchmark's own, from the first shard
    assert set(merged) == {"machine_info", "commit_info", "datetime", "version", "benchmarks"}
    assert merged["machine_info"]["mnistbench"]["node"] == "node-a"


def test_the_report_reads_each_record_with_its_own_machine(shards, tmp_path):
    out = write_json(merge_files(shards), tmp_path / "merged.json")
    records = load([out])
    assert {(r["kind"] == "train", r["machine"]["node"]) for r in records} == {(True, "node-a"), (False, "node-b")}


def test_pytest_benchmark_compare_reads_the_merged_file(shards, tmp_path):
    out = write_json(merge_files(shards), tmp_path / "merged.json")
    # from a folder of the user's own: our pyproject's warning filters would import torch first
    run = subprocess.run([sys.executable, "-c", "from pytest_benchmark.cli import main; main()", "compare",
                          str(out), "--columns=min,max"], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "test_svm[smoke-mnist-poly-d2-C10-n2000-seed0]" in run.stdout


def test_the_same_case_and_seed_twice_is_refused_naming_the_case_and_both_files(shards, tmp_path):
    again = write_json(shard_doc("node-c", lambda e: e["case_id"].startswith("smoke-mnist-poly")),
                       tmp_path / "again.json")
    with pytest.raises(MergeError) as refused:
        merge_files([*shards, again])
    message = str(refused.value)
    assert "case smoke-mnist-poly-d2-C10-n2000-seed0 (seed 0)" in message
    assert f"in both {shards[1]} and {again}" in message and "--prefer first or --prefer last" in message


@pytest.mark.parametrize("prefer, node", [("first", "node-b"), ("last", "node-c")])
def test_prefer_says_which_file_wins(shards, tmp_path, prefer, node):
    again = write_json(shard_doc("node-c", lambda e: e["kind"] == "svm"), tmp_path / "again.json")
    merged = merge_files([*shards, again], prefer=prefer)
    assert len(merged["benchmarks"]) == len(json.loads(CPU.read_text())["benchmarks"])
    assert {b["extra_info"]["machine"]["node"] for b in merged["benchmarks"]
            if b["extra_info"]["kind"] == "svm"} == {node}


def test_a_file_merged_before_keeps_its_benchmarks_machines(shards, tmp_path):
    first = write_json(merge_files(shards), tmp_path / "merged.json")
    merged = merge([("merged", json.loads(first.read_text()))])
    assert {b["extra_info"]["machine"]["node"] for b in merged["benchmarks"]} == {"node-a", "node-b"}


def test_inputs_that_are_not_pytest_benchmark_json_are_named(tmp_path):
    text, lines = tmp_path / "notes.json", tmp_path / "results.json"
    text.write_text("not json")
    shutil.copy(JSONL, lines)
    with pytest.raises(MergeError, match=r"notes\.json: not JSON"):
        merge_files([text])
    with pytest.raises(MergeError, match=r"results\.json: not JSON .*--benchmark-json"):
        merge_files([lines])
    with pytest.raises(MergeError, match="no 'benchmarks' list"):
        merge_files([write_json({"machine_info": {}}, tmp_path / "other.json")])


def test_cli_merge_writes_the_file_and_refuses_duplicates_with_exit_2(shards, tmp_path, capsys):
    out = tmp_path / "out" / "merged.json"
    assert main(["merge", *map(str, shards), "-o", str(out)]) == 0
    assert len(json.loads(out.read_text())["benchmarks"]) == 13
    assert main(["merge", *map(str, shards), str(shards[0]), "-o", str(out)]) == 2
    assert "error: case smoke-mnist-r18-bs16-sgd-lr1e-3-ep1-pin-n2000-seed0-cpu (seed 0) is in both" in (
        capsys.readouterr().err)
    assert main(["merge", *map(str, shards), str(shards[0]), "-o", str(out), "--prefer", "last"]) == 0


@pytest.fixture
def run_folder(tmp_path):
    """A launched run of 2 shards: shard 0 ran twice (its first attempt in attempts/), shard 1 once."""
    run = RunFolder(tmp_path / "run")
    run.path.mkdir()
    run.manifest.write_text(json.dumps({"shards": 2, "pytest_args": ["benchmarks"]}))
    first = shard_doc("node-a", lambda e: e["kind"] == "train")
    rerun = shard_doc("node-a", lambda e: e["case_id"].startswith("smoke-mnist-r50"))
    rerun["benchmarks"][0]["extra_info"]["test_acc_pct"] = 12.5  # the record of the later attempt
    run.attempt(0, 1).parent.mkdir()
    write_json(first, run.attempt(0, 1))
    write_json(rerun, run.json(0))
    write_json(shard_doc("node-b", lambda e: e["kind"] != "train"), run.json(1))
    shutil.copy(JSONL, run.results(0))
    return run


def test_a_run_folder_merges_its_shards_the_later_attempt_winning(run_folder):
    merged = merge_run(run_folder)
    assert len(merged["benchmarks"]) == 13
    (r50,) = [b for b in merged["benchmarks"] if b["extra_info"]["case_id"].startswith("smoke-mnist-r50")]
    assert r50["extra_info"]["test_acc_pct"] == 12.5
    assert merge_files([run_folder.path])["benchmarks"] == merged["benchmarks"]


def test_the_report_reads_a_run_folder_through_its_results_files(run_folder):
    records = load([run_folder.path])  # warnings are errors here: no JSON is read a second time
    assert {r["source"] for r in records} == {str(run_folder.results(0))}
    assert len(records) == len(load([JSONL]))
