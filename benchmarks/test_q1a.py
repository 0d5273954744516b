"""Q1(a): ResNet-18/50 over batch x optimizer x learning rate, on both datasets.

Each case trains from scratch and is timed epoch by epoch (training only); test accuracy
must clear its floor. Default 10 epochs; widen with --mb-epochs, --mb-pin-memory, --mb-image-size, --mb-axis.
"""

PRESET, KIND = "q1a", "train"


def test_q1a(case, run_case):
    run_case(case)
