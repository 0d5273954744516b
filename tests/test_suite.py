"""The suite through pytest itself: a tiny grid in, pytest-benchmark JSON and results lines out."""

import json
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def run_suite(pytester, data_dir, *args):
    return pytester.runpytest_subprocess(
        str(ROOT / "benchmarks"), f"--rootdir={ROOT}", "-p", "no:cacheprovider",
        f"--data-dir={data_dir}", "--offline", *args,
    )


def test_tiny_grid_lands_in_benchmark_json(pytester, data_dir, tmp_path):
    out, results = tmp_path / "run.json", tmp_path / "results.jsonl"
    picked = "(mnist-r18-bs16-sgd and seed0) or flops-r18 or smoke-mnist-rbf"
    run = run_suite(pytester, data_dir, "-m", "smoke", "-k", picked,
                    f"--benchmark-json={out}", f"--results={results}")
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
    assert len(info["epoch_val_acc_pct"]) == 1 and info["n_train"] == 2000
    # one round per epoch, nothing but training in it
    assert train["stats"]["rounds"] == 1
    assert abs(train["stats"]["total"] - info["train_time_s"]) < 0.05 * info["train_time_s"]

    assert by_kind["svm"]["extra_info"]["fit_time_ms"] > 0
    assert by_kind["flops"]["extra_info"]["gmacs_fvcore"] > 0.03

    lines = [json.loads(line) for line in results.read_text().splitlines()]
    assert sorted(r["case_id"] for r in lines) == sorted(b["param"] for b in saved["benchmarks"])
    assert all(r["machine"]["cpu_model"] for r in lines)


def test_gpu_grid_is_collected_and_skips_without_cuda(pytester, data_dir):
    run = run_suite(pytester, data_dir, "-m", "gpu and (q1a or q2)", "--collect-only", "-q")
    run.stdout.fnmatch_lines(["*38/* tests collected*"])
    if torch.cuda.is_available():
        return
    run = run_suite(pytester, data_dir, "-m", "gpu and q2", "-k", "r18-bs16-sgd", "-rs")
    run.assert_outcomes(skipped=1)
    run.stdout.fnmatch_lines(["*gpu case: no CUDA device visible to torch*run it on a GPU machine*"])
    wide = run_suite(pytester, data_dir, "-m", "gpu and q1a", "--path", "classic", "--pin-memory", "both",
                     "--collect-only", "-q")
    wide.stdout.fnmatch_lines(["*64/* tests collected*"])


def test_bad_options_are_usage_errors_naming_valid_values(pytester, data_dir):
    for args, expected in [
        (["--preset", "q9"], "*'q9' is not one of: q1a, q1b, q2, smoke*"),
        (["--split", "random"], "*'random' is not one of: pooled, official*"),
        (["--epochs", "0"], "*every value must be 1 or more*"),
        (["--train-limit", "60000"], "*--train-limit 60000 is larger than the pooled train split (49000*"),
    ]:
        run = run_suite(pytester, data_dir, "--collect-only", *args)
        assert run.ret == 4, args
        run.stderr.fnmatch_lines([expected])
