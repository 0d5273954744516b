"""mnistbench: the ResNet/SVM study on MNIST and Fashion-MNIST as a pytest-benchmark suite."""

__version__ = "0.1.0"
