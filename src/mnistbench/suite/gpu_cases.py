"""The GPU check's selection, shipped inside the package so `mnistbench gpu-check` runs from an
installed copy as well as from a checkout: the smoke preset's training cases (every GPU code
path: graph, eager partial batch, classic fp16 + GradScaler, bf16, fp16, deterministic, the
case built to run out of memory) and the throughput preset. The same presets as
benchmarks/test_smoke.py and benchmarks/test_throughput.py; the GPU check selects `-m gpu`.
"""


class TestGpuSmoke:
    PRESET, KIND = "smoke", "train"

    def test_gpu_smoke(self, case, run_case):
        run_case(case)


class TestGpuThroughput:
    PRESET, KIND = "throughput", "train"

    def test_gpu_throughput(self, case, run_case):
        run_case(case)
