"""Sharding: every case in exactly one shard, balanced by cost, the same on every machine."""

import random

import pytest
from test_suite import run_suite

from mnistbench.cases import grids
from mnistbench.cases.registry import ConfigError
from mnistbench.suite import options


def grid_costs() -> dict[str, float]:
    cases = grids.build_all(grids.GridOptions(seeds=2))
    return {c.id: c.estimated_cpu_s() for c in cases}


@pytest.mark.parametrize("shards", [1, 2, 3, 4, 7, 8, 16, 50])
def test_every_case_lands_in_exactly_one_shard_and_loads_are_balanced(shards):
    costs = grid_costs()
    assigned = grids.assign_shards(costs, shards)
    assert set(assigned) == set(costs) and set(assigned.values()) <= set(range(shards))
    loads = [sum(c for k, c in costs.items() if assigned[k] == i) for i in range(shards)]
    # longest-first greedy: no shard exceeds another by more than the largest single case
    assert max(loads) - min(loads) <= max(costs.values())


def test_assignment_does_not_depend_on_collection_order():
    costs = grid_costs()
    shuffled = list(costs.items())
    random.Random(1).shuffle(shuffled)
    assert grids.assign_shards(dict(shuffled), 4) == grids.assign_shards(costs, 4)


def test_shard_comes_from_the_option_or_the_schedulers_environment():
    assert options.shard("1/4") == (1, 4)
    for bad in ("4/4", "1", "a/b", "-1/2"):
        with pytest.raises(Exception, match="Invalid shard"):
            options.shard(bad)
    slurm = {"SLURM_ARRAY_TASK_ID": "7", "SLURM_ARRAY_TASK_MIN": "5", "SLURM_ARRAY_TASK_COUNT": "3"}
    assert options.shard_from_env(slurm) == (2, 3)
    assert options.shard_from_env({"JOB_COMPLETION_INDEX": "0", "MNISTBENCH_SHARDS": "2"}) == (0, 2)
    assert options.shard_from_env({}) is None
    assert not issubclass(ConfigError, AssertionError)


def test_two_shards_split_a_selection_and_report_the_rest_deselected(pytester, data_dir):
    seen = []
    for index in (0, 1):
        run = run_suite(pytester, data_dir, "-m", "smoke and cpu", "--collect-only", "-q", f"--mb-shard={index}/2")
        run.stdout.fnmatch_lines([f"mnistbench: shard {index}/2", "*/* tests collected (* deselected)*"])
        seen += [line for line in run.stdout.lines if "::" in line]
    assert len(seen) == len(set(seen)) == 12


def test_xdist_is_refused_with_a_pointer_to_shards(pytester, data_dir):
    pytest.importorskip("xdist")
    run = run_suite(pytester, data_dir, "-m", "smoke and flops", "-n", "2")
    assert run.ret != 0
    assert "cannot run under pytest-xdist" in run.stdout.str() + run.stderr.str()
