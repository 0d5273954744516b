"""Energy of the timed regions, where the hardware reports it: the study asks "at what cost".

A GPU case reads NVML's total-energy counter (Volta and later) of its own device; a CPU case
reads Linux powercap (RAPL) package counters, when this process may read them. Each meter
names its source, since the two measure different things: the GPU's board, or the whole
CPU package with whatever else runs on it. Where neither answers the energy is absent,
never estimated from a TDP.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import torch

from mnistbench.train import nvml

POWERCAP = Path("/sys/class/powercap")
PACKAGE_ZONE = re.compile(r"^intel-rapl:\d+$")  # a package; intel-rapl:0:0 and the like are parts of one


@dataclass(frozen=True)
class Zone:
    """One RAPL package counter: microjoules, wrapping at max_energy_range_uj."""

    path: Path
    name: str
    wraps_at: int

    def read_uj(self) -> int:
        return int((self.path / "energy_uj").read_text())


class EnergyMeter:
    """start() before a timed region, stop(mark) after it: the joules in between, or None."""

    def __init__(self, device: torch.device):
        self.device = device
        self.zones: list[Zone] = []
        self.source: str | None = None
        if device.type == "cuda":
            index = device.index if device.index is not None else torch.cuda.current_device()
            self.index = index
            if nvml.energy_mj(index) is not None:
                self.source = f"NVML total energy counter of GPU {index} ({torch.cuda.get_device_name(index)})"
        else:
            self.zones = rapl_zones()
            if self.zones:
                names = ", ".join(z.name for z in self.zones)
                self.source = f"RAPL {names} (the whole CPU package: every process on it counts)"

    def start(self):
        if self.source is None:
            return None
        if self.device.type == "cuda":
            return nvml.energy_mj(self.index)
        return [z.read_uj() for z in self.zones]

    def stop(self, mark) -> float | None:
        if mark is None:
            return None
        if self.device.type == "cuda":
            now = nvml.energy_mj(self.index)
            return None if now is None else (now - mark) / 1000
        return sum((z.read_uj() - before) % (z.wraps_at + 1) for z, before in zip(self.zones, mark, strict=True)) / 1e6


def rapl_zones(root: Path | None = None) -> list[Zone]:
    """The RAPL package zones this process may read; none on other CPUs, in containers, or without permission."""
    root, zones = root or POWERCAP, []
    for path in sorted(root.glob("intel-rapl:*")) if root.is_dir() else []:
        if not PACKAGE_ZONE.match(path.name):
            continue
        try:
            zone = Zone(path, (path / "name").read_text().strip(), int((path / "max_energy_range_uj").read_text()))
            zone.read_uj()
        except (OSError, ValueError):
            continue
        zones.append(zone)
    return zones
