"""Fixtures for the unit tests: small slices of the real datasets, decoded once per session."""

import pytest

from mnistbench.config import TrainCase


@pytest.fixture(scope="session")
def mnist(splits):
    return splits.get(TrainCase(dataset="MNIST"))


@pytest.fixture(scope="session")
def fashion(splits):
    return splits.get(TrainCase(dataset="FashionMNIST"))
