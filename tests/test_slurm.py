"""launch --executor slurm against a real Slurm: a tiny grid as a 2-task job array, merged.

Skipped where Slurm is not installed or no cluster takes jobs. `.ci/run` installs Debian's
slurm-wlm and munge (.ci/slurm-install) and starts a single-node cluster on the CI machine
(.ci/slurm-local) before the tests; by hand:

    sudo .ci/slurm-install && eval "$(sudo .ci/slurm-local)" && pytest tests/test_slurm.py
"""

import importlib.util
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from mnistbench.results.runfolder import RunFolder
from mnistbench.scale import launch

ROOT = Path(__file__).resolve().parents[1]
PICK = "flops-r18 or flops-r34 or mnist-poly"  # three cases of a few seconds each
EXPECTED = {"flops-r18-1x28", "flops-r34-1x28", "smoke-mnist-poly-d2-C10-n2000-seed0"}


def slurm_missing() -> str | None:
    """Why this machine cannot take the job array, or None when a Slurm node is idle."""
    if importlib.util.find_spec("submitit") is None:
        return "submitit is not installed: pip install -e '.[scale]'"
    if shutil.which("sinfo") is None or shutil.which("sbatch") is None:
        return "Slurm is not installed (no sinfo/sbatch on PATH): .ci/slurm-install installs it"
    try:
        answer = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"sinfo did not answer ({exc})"
    states = [s.rstrip("*~#!%$@^-") for s in answer.stdout.split()]
    if answer.returncode != 0 or not {"idle", "mixed"} & set(states):
        why = (answer.stderr.strip().splitlines() or [f"node states: {' '.join(states) or 'none'}"])[-1]
        return f'no Slurm cluster takes jobs here ({why}); start one with eval "$(.ci/slurm-local)"'
    return None


MISSING = slurm_missing()
# slow: left out of `pytest -m "not slow"`; .ci/run runs this file on its own, after starting Slurm
pytestmark = [pytest.mark.slow, pytest.mark.skipif(MISSING is not None, reason=MISSING or "")]


def test_a_two_shard_job_array_runs_the_grid_once_and_merges(tmp_path, data_dir, capsys):
    run = RunFolder(tmp_path / "run")
    grid = [str(ROOT / "benchmarks"), f"--rootdir={ROOT}", "-p", "no:cacheprovider", f"--mb-data-dir={data_dir}",
            "--mb-offline", "-m", "smoke and cpu", "-k", PICK]
    status = launch.main(["--executor", "slurm", "--shards", "2", "--cpus-per-task", "1", "--time", "15",
                          "--out", str(run.path), "--poll", "1", "--", *grid])
    out = capsys.readouterr().out
    assert status == 0, out
    assert "merged 3 benchmark(s) from 2 shard(s)" in out

    # one array, two tasks: their logs carry the array's id
    (script,) = run.logs.glob("*_submission.sh")
    array = script.name.split("_")[0]
    assert "#SBATCH --array=0-1%2" in script.read_text()
    assert f"[slurm job {array}_0]" in out and f"[slurm job {array}_1]" in out

    merged = [b["extra_info"] for b in json.loads(run.merged.read_text())["benchmarks"]]
    assert sorted(r["case_id"] for r in merged) == sorted(EXPECTED)  # every case once
    assert {r["shards"] for r in merged} == {2} and {r["shard"] for r in merged} <= {0, 1}
    nodes = subprocess.run(["sinfo", "-h", "-N", "-o", "%n"], capture_output=True, text=True).stdout.split()
    for rec in merged:
        assert rec["status"] == "ok" and rec["machine"]["node"] in nodes
        assert rec["machine"]["torch_threads"] == rec["machine"]["cpu_affinity"]  # threads = the CPUs Slurm gave
