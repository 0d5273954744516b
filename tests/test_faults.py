"""Nothing lost, round two: the faults a long grid meets on a shared machine or a cluster, each injected.

A torn or foreign line in the results file, unusable path options, resuming a file that
is not there, two sessions on one results file, SIGTERM, a full disk, a newer schema,
and a machine that changes under a run (README, "Failures and resuming").
"""

import errno
import json
import os
import platform
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from cuda_shim import Bench

from mnistbench.cases.case import TrainCase
from mnistbench.cases.floors import Floor
from mnistbench.cases.grids import GridOptions, build
from mnistbench.cli import main
from mnistbench.report.provenance import machine_change_notes
from mnistbench.results.load import ReportInputError, load
from mnistbench.results.lock import ResultsLock
from mnistbench.results.record import SCHEMA, make_record
from mnistbench.results.runfolder import RunFolder
from mnistbench.results.store import SESSION_SCHEMA, ResultsFileError, ResultsLog, read_lines
from mnistbench.suite import bench, machine

ROOT = Path(__file__).resolve().parents[1]
SMOKE = str(ROOT / "benchmarks" / "test_smoke.py")
TINY = dict(train_limit=112, eval_limit=64, batch_size=32)


def run_suite(pytester, data_dir, *args):
    """The smoke module in this process, with the checkout's configuration (filterwarnings = error)."""
    return pytester.runpytest_inprocess(SMOKE, f"--rootdir={ROOT}", "-p", "no:cacheprovider",
                                        f"--mb-data-dir={data_dir}", "--mb-offline", *args)


def flops_case(model: str = "resnet18"):
    return next(c for c in build("smoke", GridOptions()) if c.kind == "flops" and c.model == model)


def write_results(path: Path, *lines: str) -> None:
    path.write_text("".join(line + "\n" for line in lines))


def header() -> str:
    return json.dumps({"schema": SESSION_SCHEMA, "machine": {"node": "earlier"}})


# ---------------------------------------------------------------- 1. a torn or foreign line


def test_torn_and_foreign_lines_are_one_printed_note_and_resume_goes_on_under_filterwarnings_error(
        pytester, data_dir, tmp_path):
    results = tmp_path / "results.jsonl"
    done = json.dumps(make_record(flops_case()))
    write_results(results, header(), done, '{"schema": "mnistbench.result/1", "ki', '{"case_id": "sm', done,
                  '{"someone": "else"}')
    run = run_suite(pytester, data_dir, "-k", "flops-r18", f"--mb-resume={results}", "-rs")
    assert run.ret == 0, run.stdout.str()[-2000:]
    run.assert_outcomes(skipped=1)
    out = run.stdout.str()
    assert "INTERNALERROR" not in out and "Traceback" not in out
    run.stdout.fnmatch_lines([f"mnistbench: {results}: skipped unreadable line(s) [3, 4] (a run killed mid-write) "
                              "and line(s) [6] that are not mnistbench records; the other records are read"])


# ---------------------------------------------------------------- 2. unusable paths, 3. resume of nothing


@pytest.mark.parametrize("option", ["--mb-results", "--mb-cache-dir", "--mb-data-dir", "--benchmark-json",
                                    "--mb-noise", "--mb-compare"])
def test_an_unusable_path_option_is_one_usage_error_before_anything_runs(pytester, data_dir, tmp_path, option):
    (tmp_path / "taken").write_text("a file where a folder should go")
    path = tmp_path / "taken" / "sub" / "out.jsonl"
    why = "is a file, not a folder"
    if option in ("--mb-noise", "--mb-compare", "--mb-data-dir"):  # read from: absent is the fault
        path, why = tmp_path / "not-there", "no such file or folder" if option != "--mb-data-dir" else "no such folder"
    args = ["-k", "flops-r18", f"{option}={path}"]
    run = pytester.runpytest_inprocess(SMOKE, f"--rootdir={ROOT}", "-p", "no:cacheprovider", "--mb-offline",
                                       *([f"--mb-data-dir={data_dir}"] if option != "--mb-data-dir" else []), *args)
    assert run.ret == pytest.ExitCode.USAGE_ERROR
    err = run.stderr.str()
    assert f"{option} {path}: " in err and why in err, err
    assert "Traceback" not in err + run.stdout.str() and not (tmp_path / "taken" / "sub").exists()


def test_an_unwritable_report_folder_is_found_before_the_inputs_are_read(tmp_path, capsys):
    (tmp_path / "taken").write_text("a file where the folder should go")
    assert main(["report", str(tmp_path / "no-such-run.json"), "--out", str(tmp_path / "taken" / "report")]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: cannot write the output: --out {tmp_path / 'taken' / 'report'}: ")
    assert err.count("\n") == 1


def test_resume_of_a_missing_file_is_a_usage_error_saying_how_to_start_one(pytester, data_dir, tmp_path):
    missing = tmp_path / "typo.jsonl"
    run = run_suite(pytester, data_dir, "-k", "flops-r18", f"--mb-resume={missing}")
    assert run.ret == pytest.ExitCode.USAGE_ERROR
    assert (f"--mb-resume {missing}: no such file, so there is nothing to resume; to start a new results file "
            f"give --mb-results {missing}") in run.stderr.str()
    assert not missing.exists()


# ---------------------------------------------------------------- 4. two sessions on one results file


def test_a_second_session_on_the_same_results_file_stops_before_its_first_case_naming_the_holder(
        pytester, data_dir, tmp_path):
    results = tmp_path / "results.jsonl"
    hold = ("import sys; from mnistbench.results.lock import ResultsLock; ResultsLock(sys.argv[1]).acquire(); "
            "print('held', flush=True); sys.stdin.read()")
    holder = subprocess.Popen([sys.executable, "-c", hold, str(results)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "held\n"
        run = run_suite(pytester, data_dir, "-k", "flops-r18", f"--mb-results={results}")
    finally:
        holder.communicate("")
    assert run.ret == pytest.ExitCode.USAGE_ERROR
    err = run.stderr.str()
    assert f"{results} is being appended to by another session (host {platform.node()}, pid {holder.pid}," in err
    assert "give this session another --mb-results FILE" in err
    assert not results.exists() and "flops" not in run.stdout.str().split("ERROR")[0].split("collected")[-1]
    ResultsLock(results).acquire()  # the holder ended: the lock went with it


def test_shards_of_one_launch_each_lock_their_own_file(tmp_path):
    """Shards of one launch write shard-<i>.jsonl, one file each: a lock per file never stops a sibling."""
    run = RunFolder(tmp_path / "run")
    locks = [ResultsLock(run.results(i)) for i in range(2)]
    run.path.mkdir()
    for lock in locks:
        lock.acquire()
    with pytest.raises(ResultsFileError, match="being appended to by another session"):
        ResultsLock(run.results(0)).acquire()
    for lock in locks:
        lock.release()
    assert not list(run.path.glob("*.lock"))


# ---------------------------------------------------------------- 5. SIGTERM


def test_sigterm_records_the_case_in_progress_as_interrupted_and_resume_reruns_only_it(data_dir, tmp_path, pytester,
                                                                                        monkeypatch):
    """A real SIGTERM to a real pytest: a FLOP count finishes, then a 2-epoch case is stopped in its second epoch."""
    results, saved = tmp_path / "results.jsonl", tmp_path / "run.json"
    cmd = [sys.executable, "-m", "pytest", f"{SMOKE}::TestFlops", f"{SMOKE}::TestTrain", f"--rootdir={ROOT}",
           "-p", "no:cacheprovider", f"--mb-data-dir={data_dir}", "--mb-offline", "-m", "cpu",
           "-k", "flops-r18 or smoke-mnist-r18-bs16-sgd", "--mb-axis", "train_limit=64", "--mb-axis", "eval_limit=32",
           "--mb-axis", "epochs=2"]
    proc = subprocess.Popen([*cmd, f"--mb-results={results}", f"--benchmark-json={saved}"], cwd=tmp_path,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"}, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    seen = []
    try:
        while not seen or ": epoch 1/2," not in seen[-1]:
            seen.append(proc.stdout.readline())
            assert seen[-1], "".join(seen)[-3000:]  # pytest ended before the second case's first epoch
        proc.send_signal(signal.SIGTERM)  # the train case is in its second epoch
        out = "".join(seen) + proc.communicate(timeout=60)[0]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == pytest.ExitCode.INTERRUPTED, out[-3000:]
    first, second = read_lines(results).records
    assert first["status"] == "ok" and second["status"] == "interrupted"
    assert second["epochs_done"] == 1 and len(second["epoch_val_acc_pct"]) == 1
    assert second["message"] == "stopped by SIGTERM after 1 of 2 epoch(s)"
    assert "machine_start" in second and "machine_end" in second
    assert f"mnistbench: 2 record(s) in {results}" in out and f"interrupted in {second['case_id']}" in out
    benchmarks = json.loads(saved.read_text())["benchmarks"]  # the JSON is written, the stopped case in it
    assert [b["extra_info"]["status"] for b in benchmarks] == ["ok", "interrupted"]

    monkeypatch.setattr(bench, "floor_for", lambda case, n: Floor(0.0, "no floor"))  # 64 images learn little
    resumed = pytester.runpytest_inprocess(*cmd[3:], f"--mb-resume={results}", "-q")
    assert resumed.ret == 0, resumed.stdout.str()[-2000:]
    resumed.assert_outcomes(passed=1, skipped=1)
    assert [(r["case_id"], r["status"]) for r in read_lines(results).records][2:] == [(second["case_id"], "ok")]


# ---------------------------------------------------------------- 6. a full disk


def test_a_full_disk_stops_the_session_at_once_naming_the_file_and_leaves_no_half_line(
        pytester, data_dir, tmp_path, monkeypatch):
    results = tmp_path / "results.jsonl"
    real, writes = os.write, []

    def full_disk(fd, data):
        if os.path.realpath(f"/proc/self/fd/{fd}") != str(results.resolve()):
            return real(fd, data)
        writes.append(len(data))
        if len(writes) == 1:
            return real(fd, data)
        real(fd, data[: len(data) // 2])  # part of the line reaches the disk, then it is full
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "write", full_disk)
    run = run_suite(pytester, data_dir, "-k", "flops", f"--mb-results={results}")
    monkeypatch.undo()
    out = run.stdout.str() + run.stderr.str()
    assert run.ret == pytest.ExitCode.INTERRUPTED and len(writes) == 2, out[-2000:]
    run.assert_outcomes(passed=1)  # the third case never started
    assert out.count(f"mnistbench: {results}: cannot write the record of ") == 1
    assert "No space left on device" in out and f"--mb-resume {results}" in out and "Traceback" not in out
    read = read_lines(results)
    assert len(read.records) == 1 and read.skipped == [] and results.read_bytes().endswith(b"}\n")


# ---------------------------------------------------------------- 7. a newer schema


@pytest.mark.parametrize("line", [{"schema": "mnistbench.result/2", "kind": "train"},
                                  {"schema": "mnistbench.session/2", "machine": {}}])
def test_a_results_file_of_a_newer_schema_is_refused_naming_both_versions(line, pytester, data_dir, tmp_path,
                                                                         capsys):
    path = tmp_path / "newer.jsonl"
    write_results(path, header(), json.dumps(make_record(flops_case())), json.dumps(line))
    expected = SCHEMA if line["schema"].startswith("mnistbench.result") else SESSION_SCHEMA
    said = f"line 3 has schema {line['schema']!r}, this mnistbench reads {expected!r}: written by a newer mnistbench"
    with pytest.raises(ReportInputError, match=said):
        load([path])
    assert main(["report", str(path), "--out", str(tmp_path / "out")]) == 2 and said in capsys.readouterr().err
    run = run_suite(pytester, data_dir, "-k", "flops-r18", f"--mb-resume={path}")
    assert run.ret == pytest.ExitCode.USAGE_ERROR and said in run.stderr.str()


# ---------------------------------------------------------------- 8. a machine that changes under a run


def test_a_process_that_starts_on_our_cores_mid_case_is_in_the_record_and_flagged_by_the_report(
        mnist, tmp_path, monkeypatch):
    busy = round(0.9 * os.sysconf("SC_CLK_TCK") * machine.CASE_SAMPLE_S)
    ticks = iter([0, 0, 0, busy])  # two samples of two reads: idle at the start, 90% of a core at the end
    monkeypatch.setattr(machine, "_cpu_ticks", lambda: {999_999: ("rival", next(ticks))})
    monkeypatch.setattr(bench, "floor_for", lambda case, n: Floor(0.0, "no floor"))
    log = ResultsLog(tmp_path / "r.jsonl")
    rec = bench.run_train(Bench(), TrainCase(**TINY), mnist, log, watch=machine.CaseWatch())
    assert rec["machine_start"] == {"busy_processes": [], "gpu_processes": []}
    assert rec["machine_end"]["busy_processes"] == [{"pid": 999_999, "command": "rival", "core_share": 0.9}]
    monkeypatch.undo()
    (note,) = machine_change_notes([*read_lines(log.path).records, {**rec, "case_id": "calm", "machine_end":
                                                                    rec["machine_start"]}])
    assert note.startswith("The machine changed under 1 case(s)")
    assert f"{rec['case_id']} (process 999999 (rival, 90% of a core) started computing on our cores)" in note
