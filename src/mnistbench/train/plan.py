"""What each path does on each device, and the device-level switches a case sets.

`plan_for` is the one place that decides, per case and device, the input pipeline,
autocast dtype, memory format, fused optimizer and CUDA graph; the plan is recorded
with every result. The switches (deterministic algorithms, TF32) are set per case so one
case's choice never leaks into the next.
"""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass

import torch

from mnistbench.cases.case import TrainCase

AMP_DTYPES = {"off": None, "fp16": torch.float16, "bf16": torch.bfloat16}

# What the fast path does on a CPU, kept only where it won in measurement on a 2-core
# AVX-512 machine (reports/cpu-fast-path/results.md): the device-resident loader and the
# fused optimizer (Adam's step over 11M parameters is a third of a batch-16 step).
# channels_last, bf16 autocast and torch.compile lost or broke even there.
CPU_FAST = {"channels_last": False, "amp": "off", "fused_optimizer": True}


@dataclass(frozen=True)
class Plan:
    """What a case's path means on its device: recorded in every result."""

    path: str
    loader: str  # dataloader | tensor
    amp_dtype: str  # off | fp16 | bf16
    channels_last: bool
    fused_optimizer: bool
    cuda_graph: bool  # the full-batch step is one captured graph; a partial last batch runs eagerly
    eval_batch: int


def bf16_native() -> bool:
    """bf16 tensor cores (compute capability 8.0 on); False on V100/T4, where torch emulates bf16 slowly."""
    try:
        return torch.cuda.is_bf16_supported(including_emulation=False)
    except TypeError:  # torch before the argument existed counted emulation as support
        return torch.cuda.get_device_capability()[0] >= 8


def plan_for(case: TrainCase, device: torch.device) -> Plan:
    cuda = device.type == "cuda"
    if case.path == "classic":
        amp = case.amp if case.amp != "auto" else ("fp16" if cuda else "off")
        return Plan("classic", case.resolved_loader, amp, False, False, False, 1024)
    loader = case.resolved_loader
    if cuda:
        amp = case.amp if case.amp != "auto" else ("bf16" if bf16_native() else "fp16")
        # fp16 is captured too: GradScaler gives a fused optimizer its scale and inf flag as
        # device tensors (grad_scale, found_inf), so no step reads anything on the host
        return Plan("fast", loader, amp, True, True, loader == "tensor", 4096)
    amp = case.amp if case.amp != "auto" else CPU_FAST["amp"]
    return Plan("fast", loader, amp, CPU_FAST["channels_last"], CPU_FAST["fused_optimizer"], False, 1024)


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return cpu_model()


def resolve_device(case: TrainCase) -> torch.device:
    if case.device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(
            "This case needs a CUDA GPU and none is visible to torch "
            f"(torch {torch.__version__}, built with CUDA {torch.version.cuda}). "
            "Run the cpu cases instead (-m cpu)."
        )
    return torch.device(case.device)


def make_optimizer(case: TrainCase, params, fused: bool = False) -> torch.optim.Optimizer:
    """Fused: one kernel over all parameters; on CUDA also capturable (step count on the device)."""
    extra = {"fused": True} if fused else {}
    if case.optimizer == "sgd":
        return torch.optim.SGD(params, lr=case.lr, momentum=0.9, **extra)
    if fused and case.device == "cuda":
        extra["capturable"] = True
    return torch.optim.Adam(params, lr=case.lr, **extra)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


CUBLAS_WORKSPACE = ":4096:8"  # the fixed cuBLAS workspace deterministic algorithms need (CUDA's documented value)


def set_deterministic(on: bool) -> None:
    """Set for every case, on or off, so one case's choice never leaks into the next.

    On a GPU, runs differ without it because cuDNN picks algorithms per shape and some
    backward kernels (index_put, scatter) add with atomics in a varying order; with it,
    cuBLAS needs a fixed workspace (CUBLAS_WORKSPACE_CONFIG), which it reads when it makes
    its first handle. The plugin sets it once, before CUDA starts, when the selection holds a
    deterministic GPU case; outside pytest it is set here if CUDA has not started yet.
    """
    if on and "CUBLAS_WORKSPACE_CONFIG" not in os.environ and not torch.cuda.is_initialized():
        os.environ["CUBLAS_WORKSPACE_CONFIG"] = CUBLAS_WORKSPACE
    torch.use_deterministic_algorithms(on)
    torch.backends.cudnn.deterministic = on


def cudnn_autotune(case: TrainCase, plan: Plan, device: torch.device) -> bool:
    """cuDNN's autotuner (cudnn.benchmark): on for the fast path on a GPU, whose shapes are fixed and
    each met in warm-up, which pays for the search outside the timed epochs; off on the classic path
    (the write-ups' setting) and for deterministic cases (the search may pick differently each run)."""
    return device.type == "cuda" and plan.path == "fast" and not case.deterministic


def set_math_modes(case: TrainCase, plan: Plan, device: torch.device) -> None:
    """Every switch that changes a GPU's arithmetic or speed, set per case (and recorded with it).

    TF32: matmuls never (torch's default); cuDNN convolutions only under autocast, where
    the fp32 leftovers may use it. A case with amp off is IEEE fp32 end to end, as on a
    CPU, instead of silently running its convolutions in TF32 (torch's cuDNN default).
    """
    set_deterministic(case.deterministic)
    torch.backends.cudnn.benchmark = cudnn_autotune(case, plan, device)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = not (device.type == "cuda" and plan.amp_dtype == "off")


def cpu_model() -> str:
    """The CPU's marketing name; platform.processor() is empty on Linux."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def backend_settings() -> dict:
    """Math-mode switches that change speed and results on a GPU (TF32 above all): set per case by
    set_math_modes, recorded with every GPU case and once per session."""
    return {
        "tf32_matmul": torch.backends.cuda.matmul.allow_tf32,
        "tf32_cudnn": torch.backends.cudnn.allow_tf32,
        "float32_matmul_precision": torch.get_float32_matmul_precision(),
        "cudnn_benchmark": torch.backends.cudnn.benchmark,
        "cudnn_deterministic": torch.backends.cudnn.deterministic,
    }
