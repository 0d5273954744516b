"""The suite through pytest itself: a tiny grid in, pytest-benchmark JSON and results lines out."""

import json
from pathlib import Path

import pytest
import torch

from mnistbench.cases.registry import DATASETS, MODELS

ROOT = Path(__file__).resolve().parents[1]


def run_suite(pytester, data_dir, *args, fresh: bool = False):
    """The suite in this process (torch is imported once; a fresh interpreter costs seconds),
    or with fresh=True in a new one, for a run that changes what the process holds."""
    run = pytester.runpytest_subprocess if fresh else pytester.runpytest_inprocess
    return run(
        str(ROOT / "benchmarks"), f"--rootdir={ROOT}", "-p", "no:cacheprovider",
        f"--mb-data-dir={data_dir}", "--mb-offline", *args,
    )


def test_tiny_grid_lands_in_benchmark_json(pytester, data_dir, tmp_path):
    out, results = tmp_path / "run.json", tmp_path / "results.jsonl"
    picked = "(mnist-r18-bs16-sgd and seed0) or flops-r18 or smoke-mnist-rbf"
    run = run_suite(pytester, data_dir, "-m", "smoke and cpu", "-k", picked, "--mb-axis", "train_limit=400",
                    "--mb-axis", "eval_limit=200",
                    f"--benchmark-json={out}", f"--mb-results={results}")
    run.assert_outcomes(passed=3)

    saved = json.loads(out.read_text())
    facts = saved["machine_info"]["mnistbench"]
    assert facts["torch_version"] and facts["cpu_model"] and "gpus" in facts
    by_kind = {b["extra_info"]["kind"]: b for b in saved["benchmarks"]}
    assert set(by_kind) == {"train", "svm", "flops"}

    train = by_kind["train"]
    info = train["extra_info"]
    assert info["case_id"] == train["param"]
    for name in ("dataset", "model", "optimizer", "lr", "batch_size", "epochs", "seed", "split",
                 "device", "loader", "amp", "train_limit", "pin_memory"):
        assert name in info, name
    assert info["status"] == "ok" and info["test_acc_pct"] >= info["floor_pct"] > 10
    assert len(info["epoch_val_acc_pct"]) == 1 and info["n_train"] == 400
    # one round per epoch, nothing but training in it
    assert train["stats"]["rounds"] == 1
    assert abs(train["stats"]["total"] - info["train_time_s"]) < 0.05 * info["train_time_s"]

    assert by_kind["svm"]["extra_info"]["fit_time_ms"] > 0
    assert by_kind["flops"]["extra_info"]["gmacs_fvcore"] > 0.03

    header, *lines = [json.loads(line) for line in results.read_text().splitlines()]
    assert header["schema"] == "mnistbench.session/1" and header["machine"]["cpu_model"]
    assert sorted(r["case_id"] for r in lines) == sorted(b["param"] for b in saved["benchmarks"])
    # environment facts are stored once per session, never copied into each record
    assert not any("torch_version" in r or "machine" in r for r in lines)
    assert "torch_version" not in info and facts["git_commit"] is not None

    # live progress: one line per epoch past output capture, and the estimate before the run
    run.stdout.fnmatch_lines(["mnistbench: 3 cpu case(s), * on this CPU (calibrated by *"])
    # each record holds its estimate beside the measured wall time, which holds its training time
    assert info["reference_s"] > 0 and info["predicted_s"] > 0 and info["estimate_source"]
    assert info["case_wall_s"] >= info["train_time_s"] + info["eval_time_s"]
    run.stdout.fnmatch_lines(["*smoke-mnist-r18-bs16-sgd-lr1e-3-ep1-pin-n400-seed0-cpu: epoch 1/1*val*"])


def test_gpu_grid_is_collected_and_skips_without_cuda(pytester, data_dir):
    run = run_suite(pytester, data_dir, "-m", "gpu and (q1a or q2)", "--collect-only", "-q")
    run.stdout.fnmatch_lines(["*38/* tests collected*"])
    if torch.cuda.is_available():
        return
    run = run_suite(pytester, data_dir, "-m", "gpu and q2", "-k", "r18-bs16-sgd", "-rs")
    run.assert_outcomes(skipped=1)
    run.stdout.fnmatch_lines(["*gpu case: no CUDA device visible to torch*run it on a GPU machine*"])
    wide = run_suite(pytester, data_dir, "-m", "gpu and q1a", "--mb-path", "classic", "--mb-pin-memory", "both",
                     "--collect-only", "-q")
    wide.stdout.fnmatch_lines(["*64/* tests collected*"])


def test_bad_options_are_usage_errors_naming_valid_values(pytester, data_dir):
    for args, expected in [
        (["--mb-preset", "q9"], "*Invalid preset 'q9'. Valid values: q1a, q1b, q2, smoke, throughput.*"),
        (["--mb-split", "random"], "*Invalid split 'random'. Valid values: pooled, official.*"),
        (["--mb-epochs", "0"], "*Invalid epochs 0: must be a whole number greater than 0.*"),
        (["--mb-axis", "momentum=0.9"], "*Invalid train field 'momentum'. Valid values: preset, dataset*"),
        (["--mb-train-limit", "60000"], "*--mb-train-limit 60000 is larger than the pooled train split (49000*"),
    ]:
        run = run_suite(pytester, data_dir, "--collect-only", *args)
        assert run.ret == 4, args
        run.stderr.fnmatch_lines([expected])


EXTENSION = """
import torchvision
from torchvision.models.resnet import BasicBlock, ResNet

from mnistbench.cases.registry import DATASETS, ModelSpec, DatasetSpec, register_dataset, register_model

register_model(ModelSpec("resnet10", "r10", "ResNet-10", 300.0,
                         build=lambda num_classes: ResNet(BasicBlock, [1, 1, 1, 1], num_classes=num_classes)))
register_dataset(DatasetSpec("TinyDigits", "tiny", DATASETS["MNIST"].files, 95.0))
"""


@pytest.fixture
def registries():
    """The model and dataset registries as they were before the test: an in-process run's plugin adds to them."""
    saved = [(registry, dict(registry)) for registry in (MODELS, DATASETS)]
    yield
    for registry, before in saved:
        registry.clear()
        registry.update(before)


def test_a_model_and_a_dataset_registered_at_runtime_are_collected(pytester, data_dir, registries):
    """One registry entry each, from a plugin the user writes: no file of the suite changes."""
    pytester.makepyfile(extension=EXTENSION)
    pytester.syspathinsert()  # -p imports it from here
    run = run_suite(pytester, data_dir, "-p", "extension", "-m", "q1a and cpu", "--collect-only", "-q",
                    "--mb-axis", "model=resnet10,resnet18")
    run.stdout.fnmatch_lines(["*q1a-tiny-r10-bs16-sgd-lr1e-3-ep10-pin-seed0-cpu*", "*48/* tests collected*"])


def test_resume_matches_a_line_written_before_a_new_axis_existed(tmp_path):
    from mnistbench.cases.case import TrainCase
    from mnistbench.results.record import make_record
    from mnistbench.results.store import finished_keys

    case = TrainCase(preset="smoke", train_limit=2000)
    old = make_record(case)
    for field in ("deterministic", "expect", "split_seed", "stop_at_target"):  # fields later than the run
        del old[field]
    path = tmp_path / "old.jsonl"
    path.write_text(json.dumps(old) + "\n")
    assert make_record(case) and config_key_of(case) in finished_keys(path)


def config_key_of(case):
    from mnistbench.results.record import config_key, make_record

    return config_key(make_record(case))


def test_stop_at_target_ends_the_timed_rounds_and_keeps_the_benchmark(pytester, data_dir, tmp_path):
    """pytest-benchmark has no early exit from pedantic: the teardown raises, the rounds timed stay."""
    out = tmp_path / "run.json"
    run = run_suite(pytester, data_dir, "-m", "smoke and cpu", "-k", "mnist-r18-bs16-sgd and seed0",
                    "--mb-stop-at-target", "--mb-axis", "epochs=3", "--mb-axis", "target_val_acc_pct=1",
                    "--mb-axis", "train_limit=400", "--mb-axis", "eval_limit=200", f"--benchmark-json={out}")
    run.assert_outcomes(passed=1)
    (bench,) = json.loads(out.read_text())["benchmarks"]
    info = bench["extra_info"]
    assert info["case_id"].endswith("-stop-seed0-cpu") and info["stop_at_target"] is True
    assert (bench["stats"]["rounds"], info["epochs_done"], info["epochs_to_target"]) == (1, 1, 1)
    run.stdout.fnmatch_lines(["*: epoch 1/3, *, target 1.0% reached"])


def test_mb_report_writes_the_sessions_report_when_it_ends(pytester, data_dir, tmp_path):
    """The main job as one command: the benchmarks, then the report of their results file."""
    out = tmp_path / "report"
    run = run_suite(pytester, data_dir, "-m", "smoke and flops", "-k", "flops-r18", "--mb-results=r.jsonl",
                    f"--mb-report={out}")
    assert run.ret == 0, run.stdout.str()[-2000:]
    run.stdout.fnmatch_lines([f"mnistbench: report in {out / 'report.md'}"])
    assert "## FLOPs and parameters" in (out / "report.md").read_text() and (out / "flops.csv").exists()
