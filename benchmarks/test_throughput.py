"""Throughput: images/s of the fast path against the classic loop, same steps, same run.

For each model x batch size x device, the classic case (the write-ups' DataLoader loop)
runs first and the fast case records `speedup_vs_classic` (median-round images/s ratio)
and, on GPUs with a known peak, `mfu_pct`. Each round is a fixed number of optimizer
steps (20 on a CPU, 300 on a GPU), 3 rounds per case, warm-up and capture excluded.
"""

from mnistbench.bench import run_train

PRESET, KIND = "throughput", "train"


def test_throughput(case, splits, benchmark, results_log, baselines):
    run_train(benchmark, case, splits.get(case), results_log, baselines)
