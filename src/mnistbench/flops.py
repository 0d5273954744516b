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
