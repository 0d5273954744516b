import dataclasses

import pytest

from mnistbench.cases import grids
from mnistbench.cases.case import FlopsCase, SVMCase, TrainCase
from mnistbench.cases.registry import ConfigError


@pytest.mark.parametrize(
    ("field", "value", "names"),
    [
        ("dataset", "CIFAR10", "MNIST, FashionMNIST"),
        ("model", "resnet101", "resnet18, resnet34, resnet50"),
        ("optimizer", "rmsprop", "sgd, adam"),
        ("split", "random", "pooled, official"),
        ("amp", "fp8", "auto, off, fp16, bf16"),
    ],
)
def test_unknown_names_list_the_valid_ones(field, value, names):
    with pytest.raises(ConfigError, match=f"Invalid {field} '{value}'. Valid values: {names}."):
        TrainCase(**{field: value})


@pytest.mark.parametrize(("field", "value"), [("lr", 0), ("lr", -1e-3), ("batch_size", 0),
                                              ("epochs", 0), ("train_limit", 0), ("lr", float("nan"))])
def test_non_positive_numbers_are_refused(field, value):
    with pytest.raises(ConfigError, match=f"Invalid {field}"):
        TrainCase(**{field: value})


def test_svm_kernel_and_gamma_are_checked():
    with pytest.raises(ConfigError, match="Valid values: poly, rbf"):
        SVMCase(kernel="linear")
    with pytest.raises(ConfigError, match="gamma"):
        SVMCase(gamma="auto")
    assert SVMCase(gamma=0.01).id.endswith("g0.01-seed0")


def test_id_names_what_differs():
    case = TrainCase(preset="q1a", dataset="FashionMNIST", model="resnet50", batch_size=32,
                     optimizer="adam", lr=1e-4, epochs=10, device="cuda")
    assert case.id == "q1a-fashion-r50-bs32-adam-lr1e-4-ep10-pin-seed0-gpu"
    assert case.replace(image_size=64, stem="small").id.startswith("q1a-fashion-r50-bs32-adam-lr1e-4-ep10-small-px64")


def test_loader_follows_the_path_unless_named():
    assert TrainCase(path="classic").resolved_loader == "dataloader"
    assert TrainCase(path="fast").resolved_loader == "tensor"
    assert TrainCase(path="fast", loader="dataloader").resolved_loader == "dataloader"
    assert TrainCase(path="classic").id.endswith("-pin-classic-seed0-cpu")


def test_unknown_preset_lists_the_valid_ones():
    with pytest.raises(ConfigError, match="Invalid preset 'q3'. Valid values: q1a, q1b, q2, smoke, throughput."):
        grids.build("q3")


def test_every_case_of_every_preset_has_a_distinct_id():
    opts = grids.GridOptions(seeds=2, pin_memory=(True, False), path="classic", svm_backends=("sklearn", "sklearnex"))
    cases = grids.build_all(opts)
    assert len({c.id for c in cases}) == len(cases)


def test_a_label_leaves_out_the_parts_a_join_ignores():
    case = TrainCase(preset="q2", dataset="FashionMNIST", device="cuda", seed=3)
    assert case.label(("seed", "device", "pin_memory")) == "q2-fashion-r18-bs16-sgd-lr1e-3-ep1"
    assert FlopsCase(stem="small").id == "flops-r18-small-1x28"


@dataclasses.dataclass(frozen=True)
class WeightDecayCase(TrainCase):
    weight_decay: float = 0.0  # a new numeric axis, as README "Extending" adds it


def test_a_new_field_shows_in_the_id_only_when_set():
    assert WeightDecayCase().id == TrainCase().id
    assert "-weight_decay-0.0005-" in WeightDecayCase(weight_decay=5e-4).id


def test_fields_parse_from_the_command_line_by_their_type():
    assert TrainCase.parse_field("lr", "1e-2") == 0.01
    assert TrainCase.parse_field("train_limit", "none") is None
    assert TrainCase.parse_field("deterministic", "on") is True
    with pytest.raises(ConfigError, match="Invalid batch_size 'big': expected int"):
        TrainCase.parse_field("batch_size", "big")
    with pytest.raises(ConfigError, match="Invalid train field 'momentum'. Valid values: preset, dataset"):
        TrainCase.parse_field("momentum", "0.9")


def test_gamma_parses_as_a_number_or_scale_and_c_takes_any_positive_value():
    assert SVMCase.parse_field("gamma", "0.01") == 0.01 and SVMCase.parse_field("gamma", "scale") == "scale"
    assert SVMCase(gamma=0.01, C=5.0).id == "q1b-mnist-rbf-C5-g0.01-seed0"
    assert SVMCase.parse_field("max_iter", "1000") == 1000
    with pytest.raises(ConfigError):
        SVMCase(max_iter=0)
