"""fvcore counts against published figures: fvcore counts a multiply-add as one flop."""

import pytest

from mnistbench.train import flops


@pytest.mark.parametrize(("model", "gmacs"), [("resnet18", 1.81), ("resnet50", 4.09)])
def test_matches_torchvision_docs_at_224(model, gmacs):
    # torchvision documents GFLOPS at 3x224x224 with 1000 classes, counted as fvcore does
    got = flops.count(model, image_size=224, channels=3, num_classes=1000)
    assert got["gmacs_fvcore"] == pytest.approx(gmacs, rel=0.01)


@pytest.mark.parametrize(("model", "gmacs", "params_m"),
                         [("resnet18", 0.033, 11.18), ("resnet34", 0.070, 21.28), ("resnet50", 0.078, 23.52)])
def test_matches_the_write_ups_at_28(model, gmacs, params_m):
    got = flops.count(model)
    assert got["gmacs_fvcore"] == pytest.approx(gmacs, rel=0.02)
    assert got["params_m"] == pytest.approx(params_m, rel=0.01)


def test_input_size_and_stem_change_the_count():
    base = flops.count("resnet18")["gmacs_fvcore"]
    assert flops.count("resnet18", image_size=64)["gmacs_fvcore"] > 4 * base
    assert flops.count("resnet18", stem="small")["gmacs_fvcore"] > 10 * base


@pytest.mark.parametrize(("name", "entry", "tflops"), [
    ("NVIDIA H100 80GB HBM3", "H100 80GB HBM3", 989.0),  # SXM5
    ("NVIDIA H100 PCIe", "H100 PCIe", 756.0),
    ("NVIDIA H100 NVL", "H100 NVL", 835.0),
    ("NVIDIA H200", "H200", 989.0),
    ("NVIDIA H200 NVL", "H200 NVL", 835.0),
    ("NVIDIA A100-SXM4-80GB", "A100", 312.0),
    ("NVIDIA A100 80GB PCIe", "A100", 312.0),
    ("NVIDIA L40S", "L40S", 362.0),
    ("NVIDIA L40", "L40", 181.0),
    ("NVIDIA L4", "L4", 121.0),
    ("Tesla V100-SXM2-16GB", "V100-SXM2", 125.0),
    ("Tesla T4", "T4", 65.0),
])
def test_gpu_peak_matches_whole_words_and_the_longest_name(name, entry, tflops):
    peak = flops.gpu_peak(name)
    assert (peak.name, peak.tflops) == (entry, tflops) and "datasheet" in peak.source


@pytest.mark.parametrize("name", ["NVIDIA A10G", "NVIDIA H100", "NVIDIA GeForce RTX 4090", "NVIDIA L4O", ""])
def test_unknown_gpu_gets_no_peak_rather_than_a_neighbour(name):
    assert flops.gpu_peak(name) is None


def test_peaks_are_for_cuda_devices_only():
    assert flops.peak_for("cpu", "NVIDIA H100 PCIe") is None
    assert flops.peak_for("cuda", "NVIDIA H100 PCIe").tflops == 756.0
    assert flops.mfu_pct(0.033, 1000.0, None) is None
    # 6 x 0.033 GMACs x 10^6 images/s = 198 TFLOP/s of 989
    assert flops.mfu_pct(0.033, 1e6, flops.gpu_peak("NVIDIA H200")) == pytest.approx(20.02, abs=0.01)
