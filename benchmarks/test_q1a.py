"""Q1(a): ResNet-18/50 over batch x optimizer x learning rate, on both datasets.

Each case trains from scratch and is timed epoch by epoch (training only); test accuracy
must clear its floor. Default 10 epochs; widen with --epochs, --pin-memory, --image-size.
"""

from mnistbench.bench import run_train

PRESET, KIND = "q1a", "train"


def test_q1a(case, splits, benchmark, results_log, baselines):
    run_train(benchmark, case, splits.get(case), results_log, baselines)
