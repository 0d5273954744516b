"""The study's cases: what a case is, which models and datasets exist, the grids, the floors.

The first layer: it imports nothing else of the package, and everything else reads it.
`from mnistbench.cases import register_model, ModelSpec` is how a plugin adds a model.
"""

from mnistbench.cases.case import CASE_TYPES, Case, FlopsCase, SVMCase, TrainCase
from mnistbench.cases.registry import (
    DATASETS,
    MODELS,
    ConfigError,
    DatasetSpec,
    IdxFile,
    ModelSpec,
    register_dataset,
    register_model,
)

__all__ = ["CASE_TYPES", "DATASETS", "MODELS", "Case", "ConfigError", "DatasetSpec", "FlopsCase", "IdxFile",
           "ModelSpec", "SVMCase", "TrainCase", "register_dataset", "register_model"]
