from mnistbench.cases import grids
from mnistbench.cases.case import SVMCase, TrainCase
from mnistbench.cases.floors import TABLE, floor_for


def test_every_floor_fails_a_model_that_learned_nothing():
    # chance is 10% on ten balanced classes
    assert min(row.floor.pct for row in TABLE) >= 20


def test_every_smoke_case_has_a_measured_floor():
    for case in grids.build("smoke"):
        if case.kind == "flops" or getattr(case, "expect", "ok") == "oom":
            continue
        floor = floor_for(case, case.n_train)
        assert not floor.source.startswith("unmeasured"), case.id
        assert "smoke" in floor.source or case.train_limit is None, case.id


def test_most_specific_row_wins_and_unmeasured_falls_to_chance():
    full = TrainCase(dataset="FashionMNIST", optimizer="adam", epochs=1)
    assert floor_for(full, 49000).pct == 80.0
    assert floor_for(full.replace(model="resnet34"), 49000).source.startswith("write-ups' 1-epoch")
    assert floor_for(full.replace(image_size=64), 49000).source.startswith("unmeasured")
    assert floor_for(SVMCase(kernel="rbf", C=10.0, dataset="MNIST"), 49000).pct == 96.0
