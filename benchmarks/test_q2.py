"""Q2: CPU against GPU on Fashion-MNIST, ResNet-18/34/50, batch 16, SGD and Adam at 1e-3.

The same configurations run on both devices; the report joins them by configuration to
give the GPU speedup. FLOPs per image ride along in every record (gmacs_fvcore).
"""

PRESET, KIND = "q2", "train"


def test_q2(case, run_case):
    run_case(case)
