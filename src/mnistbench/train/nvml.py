"""NVML (the NVIDIA driver's management library) for the GPU a torch device index names.

torch numbers the devices it sees after CUDA_VISIBLE_DEVICES, a shard's or Slurm's
restriction; NVML numbers every GPU of the node. So a device is found by its UUID, which
torch and NVML share ("GPU-..." for a whole GPU, "MIG-..." for a MIG slice, whose own state
is then read), else by its full PCI bus id (domain, bus and device: cloud VMs use non-zero
domains), and never by index: a wrong GPU's clocks or energy are worse than none. Every
read is optional: without nvidia-ml-py, or where the driver does not answer, the fact is
absent, never guessed.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator


@contextlib.contextmanager
def session() -> Iterator[object | None]:
    """pynvml, initialised, or None where it is missing or NVML refuses."""
    try:
        import pynvml
    except ImportError:
        yield None
        return
    try:
        pynvml.nvmlInit()
    except Exception:  # noqa: BLE001 - NVML missing or refused: the facts stay absent
        yield None
        return
    try:
        yield pynvml
    finally:
        pynvml.nvmlShutdown()


def identities(index: int) -> list[tuple[str, str]]:
    """How NVML may know torch's device `index`: ("uuid", "GPU-..."/"MIG-...") and ("pci", "0000:1b:00.0")."""
    import torch

    props = torch.cuda.get_device_properties(index)
    found = []
    uuid = str(getattr(props, "uuid", "") or "")
    if uuid:
        found += [("uuid", uuid)] if uuid.startswith(("GPU-", "MIG-")) else [("uuid", f"GPU-{uuid}"),
                                                                             ("uuid", f"MIG-{uuid}")]
    bus = getattr(props, "pci_bus_id", None)
    if bus is not None:
        domain, device = getattr(props, "pci_domain_id", 0) or 0, getattr(props, "pci_device_id", 0) or 0
        found.append(("pci", f"{domain:08x}:{bus:02x}:{device:02x}.0"))
    return found


def handle(pynvml, index: int):
    """NVML's handle of torch's device `index`, or None where no identity matches."""
    for kind, name in identities(index):
        try:
            if kind == "uuid":
                return pynvml.nvmlDeviceGetHandleByUUID(name.encode())
            return pynvml.nvmlDeviceGetHandleByPciBusId(name.encode())
        except Exception:  # noqa: BLE001 - try the next identity
            continue
    return None


def read(index: int, reads: dict[str, Callable]) -> dict:
    """{name: read(pynvml, handle)} for torch's device `index`, leaving out what cannot be read."""
    with session() as pynvml:
        if pynvml is None:
            return {}
        try:
            found = handle(pynvml, index)
        except Exception:  # noqa: BLE001 - torch cannot describe the device: nothing claimed
            return {}
        if found is None:
            return {}
        return {name: value for name, one in reads.items() if (value := attempt(one, pynvml, found)) is not None}


def attempt(one: Callable, pynvml, found):
    try:
        return one(pynvml, found)
    except Exception:  # noqa: BLE001 - not supported on this device: absent, not guessed
        return None


def energy_mj(index: int) -> float | None:
    """The GPU's total energy counter since the driver loaded, in millijoules (Volta and later)."""
    return read(index, {"mj": lambda n, h: float(n.nvmlDeviceGetTotalEnergyConsumption(h))}).get("mj")
