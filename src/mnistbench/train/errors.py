"""What a failed CUDA call means for the run: out of memory, a dead CUDA context, or neither.

Allocation failures are out of memory whoever reports them: torch's allocator raises
OutOfMemoryError, cuDNN and cuBLAS say so in their own words. Some errors CUDA keeps
("sticky"): after an illegal memory access, a launch failure or an ECC error every later
CUDA call of the process fails, so nothing more may run in it (not even a fallback).
"""

from __future__ import annotations

import torch

# What cuDNN and cuBLAS say when an allocation failed inside them: out of memory in their own words
ALLOCATION_FAILURES = ("CUBLAS_STATUS_ALLOC_FAILED", "CUDNN_STATUS_ALLOC_FAILED", "CUDA error: out of memory")
# Errors after which the CUDA context is dead: every later CUDA call of the process fails (sticky errors)
DEAD_CONTEXT = ("illegal memory access", "unspecified launch failure", "uncorrectable ECC error",
                "misaligned address", "illegal instruction", "hardware stack error", "device-side assert",
                "GPU has fallen off the bus", "an illegal address", "launch timed out")


def classify(exc: Exception) -> tuple[str, bool]:
    """(status, context lost) of an exception a case raised: oom for every allocation failure, whoever
    reports it; error otherwise, with the CUDA context lost when the error is one CUDA keeps."""
    text = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, torch.cuda.OutOfMemoryError) or any(word in text for word in ALLOCATION_FAILURES):
        return "oom", False
    return "error", any(word.lower() in text.lower() for word in DEAD_CONTEXT)


def context_lost(exc: BaseException) -> bool:
    """Whether an error is one CUDA keeps: the process's CUDA context is dead."""
    return isinstance(exc, Exception) and classify(exc)[1]
