from mnistbench import grids
from mnistbench.config import SVMCase, TrainCase


def on(device, cases):
    return [c for c in cases if c.device == device]


def test_q1a_and_q2_gpu_grids_have_the_studys_size():
    opts = grids.GridOptions()
    q1a, q2 = grids.build("q1a", opts), grids.build("q2", opts)
    assert len(on("cuda", q1a)) == 32
    assert len(on("cuda", q2)) == 6
    assert {c.epochs for c in q1a} == {10} and {c.epochs for c in q2} == {1}
    assert len({c.id for c in q1a + q2}) == len(q1a + q2)


def test_widening_an_axis_multiplies_the_grid():
    both = grids.build("q1a", grids.GridOptions(path="classic", pin_memory=(True, False), epochs=(5, 10)))
    assert len(on("cuda", both)) == 32 * 2 * 2
    # pin_memory changes nothing on the CPU, so the CPU grid does not double
    assert len(on("cpu", both)) == 32 * 2
    # nor on the fast path, whose data already lives on the device
    fast = grids.build("q1a", grids.GridOptions(path="fast", pin_memory=(True, False)))
    assert len(on("cuda", fast)) == 32


def test_seeds_repeat_each_case():
    cases = grids.build("q2", grids.GridOptions(seeds=3))
    assert sorted({c.seed for c in cases}) == [0, 1, 2]
    assert len(cases) == 12 * 3
    # SVC is deterministic: more seeds would only repeat the same fit
    assert {c.seed for c in grids.build("q1b", grids.GridOptions(seeds=3))} == {0}


def test_q1b_rbf_has_no_degree_axis():
    cases = grids.build("q1b")
    rbf = [c for c in cases if c.kernel == "rbf"]
    assert len(cases) == 2 * (3 * 3 + 3) and len(rbf) == 2 * 3
    assert all(isinstance(c, SVMCase) for c in cases)


def test_slow_marker_follows_the_estimate():
    assert "slow" in grids.marker_names(TrainCase(preset="q2", dataset="FashionMNIST"))
    smoke = [c for c in grids.build("smoke") if not isinstance(c, SVMCase)]
    assert not any("slow" in grids.marker_names(c) for c in smoke)
    assert grids.marker_names(TrainCase(preset="q1a", device="cuda", epochs=10))[:2] == ["q1a", "gpu"]


def test_deterministic_switch_reaches_every_training_case():
    cases = grids.build("q2", grids.GridOptions(deterministic=True))
    assert all(c.deterministic and "-det-" in c.id for c in cases)
