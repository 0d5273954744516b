"""The state of the machine, checked before a session and read around each GPU case: busy
processes on our cores, the frequency governor, --mb-strict-machine, and NVML's clocks,
temperature, power and clock events (through a stand-in NVML, since CI has no GPU)."""

import subprocess
import sys
import types

import pytest
import torch
from cuda_shim import Bench
from test_suite import run_suite

from mnistbench.cases.case import TrainCase
from mnistbench.report.provenance import gpu_state_notes
from mnistbench.results.store import ResultsLog, read_results
from mnistbench.suite import bench, machine


def test_a_busy_process_on_our_cores_is_found_and_warned_about():
    rival = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        busy = machine.busy_processes(sample_s=1.0)
    finally:
        rival.kill()
        rival.wait()
    found = [p for p in busy if p["pid"] == rival.pid]
    assert found and found[0]["core_share"] > machine.BUSY_CORE_SHARE
    warnings = machine.state_warnings({"busy_processes": found})
    assert warnings == [f"process {rival.pid} ({found[0]['command']}) is using {found[0]['core_share']:.0%} of a "
                        "core we run on: two torch processes on the same cores slow each other 10-50x."]
    assert found[0]["command"].startswith("python")


def test_governor_turbo_and_gpu_neighbours_each_get_a_warning():
    state = {"cpu_governor": "powersave", "cpu_turbo": True,
             "gpu_processes": [{"gpu": 0, "pid": 4242, "used_mib": 1024}]}
    assert machine.state_warnings(state) == [
        "CPU frequency governor is 'powersave', not 'performance': clocks vary with load, so times vary between runs.",
        "CPU turbo is on: clocks depend on temperature and on the other cores' load.",
        "process 4242 is computing on GPU 0 (1024 MiB).",
    ]
    assert machine.state_warnings({"cpu_governor": "performance", "cpu_turbo": False}) == []


def test_strict_machine_stops_before_the_first_case(pytester, data_dir, monkeypatch):
    monkeypatch.setattr(machine, "busy_processes", lambda sample_s=0.5: [
        {"pid": 4242, "command": "python", "core_share": 0.97}])
    run = run_suite(pytester, data_dir, "-m", "smoke and flops", "-k", "flops-r18", "--mb-strict-machine")
    assert run.ret == 4
    run.stdout.fnmatch_lines(["*process 4242 (python) is using 97% of a core we run on*",
                              "*--mb-strict-machine: stopped before the first case.*"])
    run.assert_outcomes()  # nothing ran


class FakeNvml(types.ModuleType):
    """The few NVML calls machine.py makes, answering as a power-capped, hot GPU would."""

    NVML_CLOCK_SM, NVML_CLOCK_MEM, NVML_TEMPERATURE_GPU = 0, 2, 0

    def __init__(self, events: int = 0x4 | 0x20):
        super().__init__("pynvml")
        self.events = events

    def nvmlInit(self):
        pass

    def nvmlShutdown(self):
        pass

    def nvmlDeviceGetHandleByPciBusId(self, bus_id):
        assert bus_id == b"00000000:1b:00.0"
        return "gpu0"

    def nvmlDeviceGetClockInfo(self, handle, which):
        return {self.NVML_CLOCK_SM: 1410, self.NVML_CLOCK_MEM: 2619}[which]

    def nvmlDeviceGetTemperature(self, handle, sensor):
        return 84

    def nvmlDeviceGetPowerUsage(self, handle):
        return 699_512  # milliwatts

    def nvmlDeviceGetCurrentClocksEventReasons(self, handle):
        return self.events


@pytest.fixture
def nvml(monkeypatch):
    fake = FakeNvml()
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda index: types.SimpleNamespace(pci_bus_id=0x1B))
    return fake


def test_gpu_state_reads_clocks_temperature_power_and_names_the_clock_events(nvml):
    assert machine.gpu_state(0) == {"sm_clock_mhz": 1410, "mem_clock_mhz": 2619, "temperature_c": 84,
                                    "power_w": 699.5, "clock_events": ["software power cap", "software thermal"]}
    assert machine.slowdowns(machine.gpu_state(0)) == ["software power cap", "software thermal"]
    nvml.events = 0x1 | 0x10  # idle, sync boost: nothing held the clocks down
    assert machine.slowdowns(machine.gpu_state(0)) == []
    assert machine.clock_events(0x800) == ["other (0x800)"]


def test_without_nvml_the_state_is_absent_not_guessed(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import pynvml raises ImportError
    assert machine.gpu_state(0) == {}


def test_a_gpu_case_records_the_gpu_state_before_and_after_even_when_it_fails(nvml, monkeypatch, tmp_path, mnist):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    log = ResultsLog(tmp_path / "r.jsonl")
    case = TrainCase(train_limit=320, eval_limit=200, device="cuda")
    with pytest.raises(pytest.fail.Exception):  # no real GPU: the trainer cannot move the model there
        bench.run_train(Bench(), case, mnist, log)
    (rec,) = read_results(log.path)
    assert rec["status"] == "error"
    assert rec["gpu_before"] == rec["gpu_after"] == machine.gpu_state(0)


def test_the_report_names_gpu_cases_whose_clocks_were_held_down():
    cool = {"sm_clock_mhz": 1980, "temperature_c": 45, "clock_events": ["idle"]}
    hot = {"sm_clock_mhz": 1410, "temperature_c": 84, "power_w": 699.5, "clock_events": ["software power cap"]}
    records = [{"case_id": "a", "gpu_before": cool, "gpu_after": cool},
               {"case_id": "b", "gpu_before": cool, "gpu_after": hot},
               {"case_id": "c"}]  # a CPU case: no GPU state
    assert gpu_state_notes(records) == [
        "1 of 2 GPU case(s) had clocks held down, so their times are low bounds of the GPU's speed: "
        "b (software power cap; SM 1980→1410 MHz, 45→84 °C, 699.5 W)"]
    assert gpu_state_notes(records[:1]) == [
        "1 GPU case(s) read NVML before and after: none had its clocks held down (hottest 45 °C at the end of a case)."]
    assert gpu_state_notes(records[2:]) == []
