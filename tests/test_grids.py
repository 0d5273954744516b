from mnistbench.cases import grids
from mnistbench.cases.case import SVMCase, TrainCase


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
    # SVC is deterministic: on the whole split more seeds would only repeat the same fit
    assert {c.seed for c in grids.build("q1b", grids.GridOptions(seeds=3))} == {0}


def test_svm_seeds_on_a_subset_draw_other_images():
    cases = grids.build("q1b", grids.GridOptions(seeds=3, train_limit=10_000))
    assert len(cases) == 3 * 24 and {c.draw_seed for c in cases} == {0, 1, 2}
    # the same subset named as an axis draws the same way
    as_axis = grids.build("q1b", grids.GridOptions(seeds=3, axes=(("train_limit", (10_000,)),)))
    assert [c.id for c in as_axis] == [c.id for c in cases]


def test_q1b_rbf_has_no_degree_axis():
    cases = grids.build("q1b")
    rbf = [c for c in cases if c.kernel == "rbf"]
    assert len(cases) == 2 * (3 * 3 + 3) and len(rbf) == 2 * 3
    assert all(isinstance(c, SVMCase) for c in cases)


def test_slow_marker_follows_the_estimate():
    assert "slow" in TrainCase(preset="q2", dataset="FashionMNIST").marks
    smoke = grids.build("smoke", grids.GridOptions(devices=("cpu",)))
    slow = [c for c in smoke if "slow" in c.marks]  # the ResNet-50 case, a measurement over 15 s on 2 cores
    assert [(c.kind, c.model) for c in slow] == [("train", "resnet50")] and len(smoke) == 12
    assert TrainCase(preset="q1a", device="cuda", epochs=10).marks[:2] == ["q1a", "gpu"]


def test_gpu_smoke_set_exercises_every_gpu_code_path():
    gpu = on("cuda", grids.build("smoke"))
    assert {c.path for c in gpu} == {"fast", "classic"}
    assert {c.amp for c in gpu} >= {"auto", "fp16"}
    assert any(c.deterministic for c in gpu) and any(c.epochs == 2 and c.train_limit is None for c in gpu)
    (oom,) = [c for c in gpu if c.expect == "oom"]
    assert oom.batch_size * oom.image_size**2 > 1e8  # far past any GPU's memory for a ResNet-50


def test_an_axis_from_the_command_line_replaces_the_presets_own():
    opts = grids.GridOptions(axes=(("lr", (1e-2, 1e-3, 1e-4)), ("scale", (True,))))
    q2 = grids.build("q2", opts)
    assert len(q2) == 12 * 3 and {c.lr for c in q2} == {1e-2, 1e-3, 1e-4}
    assert all(c.scale for c in grids.build("q1b", opts))


def test_time_to_accuracy_targets_come_from_the_dataset_registry():
    q1a = grids.build("q1a")
    assert {(c.dataset, c.target_val_acc_pct) for c in q1a} == {("MNIST", 99.0), ("FashionMNIST", 90.0)}


def test_deterministic_switch_reaches_every_training_case():
    cases = grids.build("q2", grids.GridOptions(deterministic=True))
    assert all(c.deterministic and "-det-" in c.id for c in cases)


def test_stop_at_target_gives_every_training_case_but_throughputs_a_target_to_stop_at():
    opts = grids.GridOptions(stop_at_target=True)
    smoke = [c for c in grids.build("smoke", opts) if isinstance(c, TrainCase)]
    assert all(c.stop_at_target and c.target_val_acc_pct and "-stop-" in c.id for c in smoke)
    assert {c.target_val_acc_pct for c in smoke if c.dataset == "FashionMNIST"} == {90.0}
    assert not any(c.stop_at_target or c.target_val_acc_pct for c in grids.build("throughput", opts))
    assert not any(c.stop_at_target for c in grids.build("q2"))  # off unless asked
