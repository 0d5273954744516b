"""Fixtures for the unit tests: small slices of the real datasets, decoded once per session."""

import pytest

from mnistbench.config import TrainCase


def pytest_configure(config):
    """pytester for the tests that run the suite through pytest itself; benchmark runs never load it."""
    config.pluginmanager.import_plugin("pytester")


@pytest.fixture(scope="session")
def mnist(splits):
    return splits.get(TrainCase(dataset="MNIST"))


@pytest.fixture(scope="session")
def fashion(splits):
    return splits.get(TrainCase(dataset="FashionMNIST"))
