"""fvcore counts per model and input size, and the GPU peaks that MFU is measured against.

fvcore counts one fused multiply-add as one "flop", so its figure is MACs: torchvision's
documented 1.81 GFLOPS for resnet18 at 3x224x224 is this number, and so are the
write-ups' 0.03 G (resnet18) and 0.08 G (resnet50) at 1x28x28. The field is named
`gmacs_fvcore` so nobody doubles or halves it by guessing.
"""

from __future__ import annotations

import functools
import logging
import re
import warnings
from dataclasses import dataclass

import torch

from mnistbench.train.models import build_model, count_params, example_input


@functools.cache
def count(
    model: str, stem: str = "imagenet", image_size: int = 28, channels: int = 1, num_classes: int = 10
) -> dict[str, float]:
    """GMACs per image (fvcore) and parameters, cached: the counts never change for a shape."""
    from fvcore.nn import FlopCountAnalysis

    net = build_model(model, stem, channels, num_classes).eval()
    logging.getLogger("fvcore").setLevel(logging.ERROR)
    with torch.no_grad(), warnings.catch_warnings():
        # fvcore traces with torch.jit, which torch now calls deprecated: its concern, not a user's
        warnings.filterwarnings("ignore", message=r"`torch\.jit\.(script|trace)` is deprecated", category=FutureWarning)
        analysis = FlopCountAnalysis(net, example_input(image_size, channels))
        analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
        macs = analysis.total()
    return {"gmacs_fvcore": macs / 1e9, "params_m": count_params(net) / 1e6}


@dataclass(frozen=True)
class Peak:
    name: str  # the table entry that matched
    tflops: float  # dense 16-bit tensor-core peak
    source: str


_H100 = "NVIDIA H100 Tensor Core GPU datasheet"
_H200 = "NVIDIA H200 Tensor Core GPU datasheet"
# Dense (no sparsity) 16-bit tensor-core peaks in TFLOP/s: bf16, or fp16 on V100/T4, which
# have no bf16 (the fast path runs fp16 there). Datasheets quote "with sparsity" figures
# for Ampere on; those are halved here. Keyed by the words CUDA names the device with,
# after the vendor word: a key matches whole leading words only, so 'L4' never matches an
# 'L40', and the longest matching key wins ('H100 NVL' over any shorter H100 entry). A GPU
# missing here gets no MFU rather than a neighbour's figure.
GPU_PEAKS: dict[str, tuple[float, str]] = {
    "H100 80GB HBM3": (989.0, f"{_H100}: H100 SXM, BF16 1,979 TFLOPS with sparsity / 2"),
    "H100 SXM5": (989.0, f"{_H100}: H100 SXM, BF16 1,979 TFLOPS with sparsity / 2"),
    "H100 PCIe": (756.0, f"{_H100}: H100 PCIe, BF16 1,513 TFLOPS with sparsity / 2"),
    "H100 NVL": (835.0, f"{_H100}: H100 NVL, BF16 1,671 TFLOPS with sparsity / 2"),
    "H200": (989.0, f"{_H200}: H200 SXM, BF16 1,979 TFLOPS with sparsity / 2"),
    "H200 NVL": (835.0, f"{_H200}: H200 NVL, BF16 1,671 TFLOPS with sparsity / 2"),
    "A100": (312.0, "NVIDIA A100 Tensor Core GPU datasheet: BF16 312 TFLOPS (SXM and PCIe)"),
    "A30": (165.0, "NVIDIA A30 Tensor Core GPU datasheet: BF16 165 TFLOPS"),
    "A10": (125.0, "NVIDIA A10 Tensor Core GPU datasheet: BF16 125 TFLOPS"),
    "L40S": (362.0, "NVIDIA L40S GPU datasheet: BF16 362.05 TFLOPS"),
    "L40": (181.0, "NVIDIA L40 GPU datasheet: BF16 181.05 TFLOPS"),
    "L4": (121.0, "NVIDIA L4 Tensor Core GPU datasheet: BF16 121 TFLOPS"),
    "V100-SXM2": (125.0, "NVIDIA V100 Tensor Core GPU datasheet: V100 SXM2, FP16 tensor 125 TFLOPS (no BF16)"),
    "V100-PCIE": (112.0, "NVIDIA V100 Tensor Core GPU datasheet: V100 PCIe, FP16 tensor 112 TFLOPS (no BF16)"),
    "V100S-PCIE": (130.0, "NVIDIA V100 Tensor Core GPU datasheet: V100S PCIe, FP16 tensor 130 TFLOPS (no BF16)"),
    "T4": (65.0, "NVIDIA T4 Tensor Core GPU datasheet: FP16/FP32 mixed precision 65 TFLOPS (no BF16)"),
}
_VENDOR_WORDS = {"nvidia", "tesla"}


def _words(name: str) -> list[str]:
    words = [w for w in re.split(r"[\s\-_]+", name.strip().lower()) if w]
    while words and words[0] in _VENDOR_WORDS:
        words.pop(0)
    return words


def gpu_peak(device_name: str) -> Peak | None:
    """The GPU_PEAKS entry for a CUDA device name such as 'NVIDIA H100 80GB HBM3', or None.

    A MIG slice ('NVIDIA H100 80GB HBM3 MIG 1g.10gb') has a share of the GPU's SMs that its name
    only hints at; the whole GPU's peak would understate its MFU up to 7x, so it gets none."""
    words, best = _words(device_name), None
    if "mig" in words:
        return None
    for key, (tflops, source) in GPU_PEAKS.items():
        key_words = _words(key)
        if words[: len(key_words)] == key_words and (best is None or len(key_words) > len(_words(best.name))):
            best = Peak(key, tflops, source)
    return best


def peak_for(device_type: str, device_name: str) -> Peak | None:
    """CUDA devices only: a CPU's marketing name never goes through the GPU table."""
    return gpu_peak(device_name) if device_type == "cuda" else None


def mfu_pct(gmacs: float, images_per_s: float, peak: Peak | None) -> float | None:
    """Model FLOP utilisation: training ~ 3 passes x 2 flops per MAC = 6 x fvcore MACs per image,
    over the device's dense 16-bit peak, whatever precision the case ran in. None without a peak."""
    if peak is None:
        return None
    return 100.0 * 6 * gmacs * 1e9 * images_per_s / (peak.tflops * 1e12)
