"""What the run ran on: CPU, GPUs, library versions, the suite's git commit.

Collected once per pytest session and stored once: in pytest-benchmark's
`machine_info["mnistbench"]` and in the results file's header line. Records carry only
what differs per case (the device name they trained on), never a copy of these facts.
GPU facts come from torch and, when nvidia-ml-py is installed, from NVML; a fact that
cannot be read is left out, never guessed.
"""

from __future__ import annotations

import functools
import os
import platform
import subprocess
import time
from pathlib import Path

import mnistbench
from mnistbench.train import nvml


def versions() -> dict[str, str]:
    import sklearn
    import torch
    import torchvision

    return {
        "python_version": platform.python_version(),
        "torch_version": torch.__version__,
        "torchvision_version": torchvision.__version__,
        "sklearn_version": sklearn.__version__,
        "cuda_version": torch.version.cuda or "",
        "mnistbench_version": mnistbench.__version__,
    }


def git_commit() -> str:
    """The suite's own revision, '+dirty' when the tree has uncommitted changes; '' outside git."""

    def git(*args):
        return subprocess.run(["git", *args], cwd=Path(__file__).parent, capture_output=True,
                              text=True, timeout=10).stdout.strip()

    try:
        sha = git("rev-parse", "--short", "HEAD")
        return sha + ("+dirty" if sha and git("status", "--porcelain", "--untracked-files=no") else "")
    except (OSError, subprocess.SubprocessError):
        return ""


def gpu_facts() -> list[dict]:
    """One dict per visible CUDA device: torch's view, plus NVML's where it answers."""
    import torch

    if not torch.cuda.is_available():
        return []
    gpus = []
    for index in range(torch.cuda.device_count()):
        props = torch.cuda.get_device_properties(index)
        facts = {
            "index": index,
            "name": props.name,
            "compute_capability": f"{props.major}.{props.minor}",
            "memory_gib": round(props.total_memory / 2**30, 2),
            "multiprocessors": props.multi_processor_count,
        }
        facts.update(_nvml_facts(index))
        gpus.append(facts)
    return gpus


def _nvml_facts(index: int) -> dict:
    """Driver, MIG mode, clocks and power limit; empty when nvidia-ml-py is absent or NVML fails."""
    return nvml.read(index, _NVML_READS)


def gpu_state(index: int) -> dict:
    """Clocks, temperature, power draw and the reasons clocks are held down, now: read before
    and after each GPU case, so a slow case on a hot or power-capped GPU says why. Empty when
    nvidia-ml-py is absent or NVML fails. `index` is torch's; a MIG slice reads its own state."""
    return nvml.read(index, _NVML_STATE)


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


_NVML_READS = {
    "driver_version": lambda n, h: _text(n.nvmlSystemGetDriverVersion()),
    "mig_mode": lambda n, h: "on" if n.nvmlDeviceGetMigMode(h)[0] else "off",
    "power_limit_w": lambda n, h: n.nvmlDeviceGetPowerManagementLimit(h) / 1000,
    "sm_clock_max_mhz": lambda n, h: n.nvmlDeviceGetMaxClockInfo(h, n.NVML_CLOCK_SM),
    "mem_clock_max_mhz": lambda n, h: n.nvmlDeviceGetMaxClockInfo(h, n.NVML_CLOCK_MEM),
    "sm_clock_mhz": lambda n, h: n.nvmlDeviceGetClockInfo(h, n.NVML_CLOCK_SM),
    "temperature_c": lambda n, h: n.nvmlDeviceGetTemperature(h, n.NVML_TEMPERATURE_GPU),
}

# NVML's clock event ("throttle") reason bits, as nvml.h numbers them
CLOCK_EVENTS = {0x1: "idle", 0x2: "application clocks", 0x4: "software power cap", 0x8: "hardware slowdown",
                0x10: "sync boost", 0x20: "software thermal", 0x40: "hardware thermal",
                0x80: "hardware power brake", 0x100: "display clocks"}
HARMLESS_EVENTS = {"idle", "application clocks", "sync boost", "display clocks"}  # not a slowdown under load


def clock_events(mask: int) -> list[str]:
    unknown = mask & ~sum(CLOCK_EVENTS)
    return [name for bit, name in CLOCK_EVENTS.items() if mask & bit] + ([f"other (0x{unknown:x})"] if unknown else [])


def _clock_event_mask(n, h) -> int:
    read = getattr(n, "nvmlDeviceGetCurrentClocksEventReasons", None) or n.nvmlDeviceGetCurrentClocksThrottleReasons
    return read(h)


_NVML_STATE = {
    "sm_clock_mhz": lambda n, h: n.nvmlDeviceGetClockInfo(h, n.NVML_CLOCK_SM),
    "mem_clock_mhz": lambda n, h: n.nvmlDeviceGetClockInfo(h, n.NVML_CLOCK_MEM),
    "temperature_c": lambda n, h: n.nvmlDeviceGetTemperature(h, n.NVML_TEMPERATURE_GPU),
    "power_w": lambda n, h: round(n.nvmlDeviceGetPowerUsage(h) / 1000, 1),
    "clock_events": lambda n, h: clock_events(_clock_event_mask(n, h)),
}


def slowdowns(state: dict) -> list[str]:
    """The clock events in a state that slow a loaded GPU (power or thermal caps, hardware slowdown)."""
    return [e for e in state.get("clock_events", ()) if e not in HARMLESS_EVENTS]


@functools.cache
def session_facts() -> dict:
    """Everything above, once per process: the machine every record of the session ran on."""
    import torch

    from mnistbench.train.plan import backend_settings, cpu_model  # torch: not for the report's imports

    cuda = torch.cuda.is_available()
    gpus = gpu_facts()
    return {
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpu_affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "torch_threads": torch.get_num_threads(),
        "node": platform.node(),
        "platform": platform.platform(),
        **versions(),
        "cudnn_version": str(torch.backends.cudnn.version() or "") if cuda else "",
        "gpus": [g["name"] for g in gpus],
        "gpu_details": gpus,
        "backend_settings": backend_settings(),
        "cublas_workspace_config": os.environ.get("CUBLAS_WORKSPACE_CONFIG"),
        "git_commit": git_commit(),
    }


# ---------------------------------------------------------------- the machine's state at the start


BUSY_CORE_SHARE = 0.2  # another process using this share of a core we run on is worth a warning


def machine_state(sample_s: float = 0.5) -> dict:
    """What could distort timings now: the frequency governor and turbo, other busy processes
    on our cores (another torch process on 2 cores slowed both 10-50x), other GPU processes.

    Returns the facts and `warnings`, one sentence each; a fact that cannot be read is absent.
    """
    state = {**_cpu_frequency_facts(), "busy_processes": busy_processes(sample_s),
             "gpu_processes": _gpu_processes()}
    state["warnings"] = state_warnings(state)
    return state


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text(encoding="utf-8").strip()
    except OSError:
        return None


def _cpu_frequency_facts() -> dict:
    facts = {}
    governors = {g for cpu in _our_cpus() if (g := _read(f"/sys/devices/system/cpu/cpu{cpu}/cpufreq/scaling_governor"))}
    if governors:
        facts["cpu_governor"] = ",".join(sorted(governors))
    no_turbo = _read("/sys/devices/system/cpu/intel_pstate/no_turbo")
    boost = _read("/sys/devices/system/cpu/cpufreq/boost")
    if no_turbo is not None:
        facts["cpu_turbo"] = no_turbo == "0"
    elif boost is not None:
        facts["cpu_turbo"] = boost == "1"
    return facts


def _our_cpus() -> set[int]:
    return set(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else set(range(os.cpu_count() or 1))


def _cpu_ticks() -> dict[int, tuple[str, int]]:
    """pid -> (command, user + system clock ticks) for every process we may read."""
    ticks = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        stat = _read(f"{entry}/stat")
        if not stat or ")" not in stat:
            continue
        name, rest = stat[stat.index("(") + 1 : stat.rindex(")")], stat[stat.rindex(")") + 2 :].split()
        ticks[int(entry.name)] = (name, int(rest[11]) + int(rest[12]))
    return ticks


def busy_processes(sample_s: float = 0.5) -> list[dict]:
    """Other processes that used a noticeable share of a core during `sample_s`, on our cores."""
    if not Path("/proc/self/stat").exists():
        return []
    ours, mine = _our_cpus(), _ancestors()
    before = _cpu_ticks()
    time.sleep(sample_s)
    after, hz = _cpu_ticks(), os.sysconf("SC_CLK_TCK")
    busy = []
    for pid, (name, t1) in after.items():
        share = (t1 - before.get(pid, (name, t1))[1]) / hz / sample_s
        if pid in mine or share < BUSY_CORE_SHARE or not _shares_cores(pid, ours):
            continue
        busy.append({"pid": pid, "command": name, "core_share": round(share, 2)})
    return sorted(busy, key=lambda p: -p["core_share"])


def _ancestors() -> set[int]:
    """This process and the ones that started it (a pytest running us as a subprocess is not a rival)."""
    pids, pid = set(), os.getpid()
    while pid > 1 and pid not in pids:
        pids.add(pid)
        stat = _read(f"/proc/{pid}/stat") or ""
        pid = int(stat[stat.rindex(")") + 2 :].split()[1]) if ")" in stat else 0
    return pids


def _shares_cores(pid: int, ours: set[int]) -> bool:
    try:
        return bool(set(os.sched_getaffinity(pid)) & ours)
    except (OSError, AttributeError):
        return True


def _gpu_processes() -> list[dict]:
    """Compute processes on the GPUs this process can see (CUDA_VISIBLE_DEVICES), other than this one.

    Inside a container NVML reports host PIDs, which match nothing here: a PID this process
    cannot see in /proc belongs to another PID namespace. Before this process holds a CUDA
    context every process on our GPUs is another's; once it holds one, one unseen PID is
    taken to be this process, and only the others are reported.
    """
    import torch

    if not torch.cuda.is_available():
        return []
    ours = torch.cuda.is_initialized()
    found = []
    with nvml.session() as pynvml:
        if pynvml is None:
            return []
        for index in range(torch.cuda.device_count()):
            try:
                found += _neighbours(pynvml, index, ours)
            except Exception:  # noqa: BLE001 - torch or NVML cannot describe the device: nothing claimed
                continue
    return found


def _neighbours(pynvml, index: int, holds_context: bool) -> list[dict]:
    found = nvml.handle(pynvml, index)
    procs = (nvml.attempt(lambda n, h: n.nvmlDeviceGetComputeRunningProcesses(h), pynvml, found) or []
             if found is not None else [])
    others = [p for p in procs if p.pid != os.getpid()]
    if holds_context and len(others) == len(procs):  # our own entry is under a PID we cannot see
        unseen = [p for p in others if not Path(f"/proc/{p.pid}").exists()]
        if unseen:
            others.remove(unseen[0])
    return [{"gpu": index, "pid": p.pid, "used_mib": (p.usedGpuMemory or 0) // 2**20} for p in others]


def state_warnings(state: dict) -> list[str]:
    warnings = []
    if state.get("cpu_governor") not in (None, "performance"):
        warnings.append(f"CPU frequency governor is {state['cpu_governor']!r}, not 'performance': clocks vary "
                        "with load, so times vary between runs.")
    if state.get("cpu_turbo"):
        warnings.append("CPU turbo is on: clocks depend on temperature and on the other cores' load.")
    for proc in state.get("busy_processes", []):
        warnings.append(f"process {proc['pid']} ({proc['command']}) is using {proc['core_share']:.0%} of a core "
                        "we run on: two torch processes on the same cores slow each other 10-50x.")
    for proc in state.get("gpu_processes", []):
        warnings.append(f"process {proc['pid']} is computing on GPU {proc['gpu']} ({proc['used_mib']} MiB).")
    return warnings


# ---------------------------------------------------------------- the machine's state under each case


CASE_SAMPLE_S = 0.1  # a case's start and end are sampled this long: 10 clock ticks, enough for a busy core
FRESH_S = 5.0  # a sample this recent (the previous case's end, the session's check) is the next case's start


def case_state(sample_s: float = CASE_SAMPLE_S) -> dict:
    """What the machine check sees, in short: other busy processes on our cores, other GPU processes."""
    return {"busy_processes": busy_processes(sample_s), "gpu_processes": _gpu_processes()}


class CaseWatch:
    """The machine check at each case's start and end, for the record: a process that starts computing
    on our cores halfway through a grid shows in the cases it overlapped, not only in the session's
    check before the first. A case's start reuses the previous case's end when it is at most FRESH_S
    old, so back-to-back cases cost one short sample each."""

    def __init__(self):
        self._last: tuple[float, dict] | None = None

    def start(self) -> dict:
        if self._last and time.monotonic() - self._last[0] <= FRESH_S:
            return self._last[1]
        return self.end()

    def end(self) -> dict:
        state = case_state()
        self._last = (time.monotonic(), state)
        return state


def changes(start: dict, end: dict) -> list[str]:
    """How the machine differed between a case's start and end, in words; [] when it did not."""
    said = []
    for key, what in (("busy_processes", "on our cores"), ("gpu_processes", "on the GPU")):
        before = {p["pid"]: p for p in start.get(key) or []}
        after = {p["pid"]: p for p in end.get(key) or []}
        said += [f"process {pid} ({_who(p)}) started computing {what}" for pid, p in after.items() if pid not in before]
        said += [f"process {pid} ({_who(p)}) stopped computing {what}" for pid, p in before.items() if pid not in after]
    return said


def _who(proc: dict) -> str:
    if "core_share" in proc:
        return f"{proc.get('command', '?')}, {proc['core_share']:.0%} of a core"
    return f"{proc.get('used_mib', '?')} MiB on GPU {proc.get('gpu', '?')}"
