"""fvcore counts per model and input size.

fvcore counts one fused multiply-add as one "flop", so its figure is MACs: torchvision's
documented 1.81 GFLOPS for resnet18 at 3x224x224 is this number, and so are the
write-ups' 0.03 G (resnet18) and 0.08 G (resnet50) at 1x28x28. The field is named
`gmacs_fvcore` so nobody doubles or halves it by guessing.
"""

from __future__ import annotations

import functools
import logging

import torch

from mnistbench.models import build_model, count_params, example_input


@functools.cache
def count(
    model: str, stem: str = "imagenet", image_size: int = 28, channels: int = 1, num_classes: int = 10
) -> dict[str, float]:
    """GMACs per image (fvcore) and parameters, cached: the counts never change for a shape."""
    from fvcore.nn import FlopCountAnalysis

    net = build_model(model, stem, channels, num_classes).eval()
    logging.getLogger("fvcore").setLevel(logging.ERROR)
    with torch.no_grad():
        analysis = FlopCountAnalysis(net, example_input(image_size, channels))
        analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
        macs = analysis.total()
    return {"gmacs_fvcore": macs / 1e9, "params_m": count_params(net) / 1e6}


# Dense bf16 tensor-core peaks from the vendors' datasheets (TFLOP/s, no sparsity).
GPU_PEAK_TFLOPS = {"H200": 989.0, "H100 PCIe": 756.0, "H100": 989.0, "A100": 312.0, "A30": 165.0,
                   "L40S": 362.0, "L4": 121.0, "A10": 125.0, "V100": 125.0, "T4": 65.0}


def mfu_pct(gmacs: float, images_per_s: float, device_name: str) -> float | None:
    """Model FLOP utilisation: training ~ 3 passes x 2 flops per MAC = 6 x fvcore MACs per image.
    None on CPUs and on GPUs whose peak is not in the table."""
    for name, peak in GPU_PEAK_TFLOPS.items():  # 'H100 PCIe' is tried before 'H100'
        if name in device_name:
            return 100.0 * 6 * gmacs * 1e9 * images_per_s / (peak * 1e12)
    return None
