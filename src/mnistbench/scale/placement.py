"""Where shards run: this machine's physical cores and visible GPUs, shared out without overlap.

Two torch processes on the same cores slow each other 10-50x, so local shards get whole
physical cores of their own (hyperthread siblings together) and one GPU each.
"""

from __future__ import annotations

import os
from pathlib import Path


class PlacementError(ValueError):
    """Shards that cannot be placed on this machine: the message says what to ask for instead."""


def physical_cores() -> list[tuple[int, ...]]:
    """The CPUs this process may use, grouped by physical core (hyperthread siblings together)."""
    cores: dict[str, list[int]] = {}
    for cpu in allowed_cpus():
        try:
            siblings = Path(f"/sys/devices/system/cpu/cpu{cpu}/topology/thread_siblings_list").read_text().strip()
        except OSError:
            siblings = str(cpu)
        cores.setdefault(siblings, []).append(cpu)
    return [tuple(cpus) for cpus in cores.values()]


def allowed_cpus() -> list[int]:
    return sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else list(range(os.cpu_count() or 1))


def cpu_sets(shards: int, cores_per_shard: int | None = None) -> list[tuple[int, ...]]:
    """Disjoint CPU sets, whole physical cores each: the first `cores_per_shard` cores (default:
    an equal share of them all) to shard 0, the next to shard 1, ..."""
    cores = physical_cores()
    per = cores_per_shard or len(cores) // shards
    if per < 1 or per * shards > len(cores):
        raise PlacementError(f"{shards} shard(s) of {max(per, 1)} physical core(s) need {shards * max(per, 1)} cores; "
                          f"this process may use {len(cores)}: ask for fewer --shards or --cores-per-shard")
    return [tuple(cpu for core in cores[i * per:(i + 1) * per] for cpu in core) for i in range(shards)]


def visible_gpus() -> list[str]:
    """CUDA device ids as CUDA_VISIBLE_DEVICES names them (indices or UUIDs); it set to '' hides them all."""
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        return [d.strip() for d in listed.split(",") if d.strip()]
    import torch

    return [str(i) for i in range(torch.cuda.device_count())]
