"""torchvision ResNets with one input channel and ten outputs, random init, as the study uses.

Which models exist is cases.registry.MODELS; a registered model without its own `build` is
torchvision's builder of the same name. Any ResNet-shaped net (conv1, maxpool) works.

The standard ('imagenet') stem is what every write-up ran: at 28x28 it leaves a 7x7 map
after the max-pool and 1x1 at layer4, which is why those models are so cheap (about
0.03 GMAC for resnet18). The 'small' stem (3x3 stride 1, no pool) keeps 28x28 through
layer1, as CIFAR-style ResNets do: about 14x the arithmetic, and a different answer.
"""

from __future__ import annotations

import torch
import torchvision
from torch import nn

from mnistbench.cases.case import STEMS
from mnistbench.cases.registry import MODELS, check_choice


def build_model(
    model: str, stem: str = "imagenet", channels: int = 1, num_classes: int = 10
) -> nn.Module:
    check_choice("model", model, MODELS)
    check_choice("stem", stem, STEMS)
    build = MODELS[model].build
    net = build(num_classes) if build else getattr(torchvision.models, model)(weights=None, num_classes=num_classes)
    if stem == "imagenet":
        net.conv1 = nn.Conv2d(channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
    else:
        net.conv1 = nn.Conv2d(channels, 64, kernel_size=3, stride=1, padding=1, bias=False)
        net.maxpool = nn.Identity()
    nn.init.kaiming_normal_(net.conv1.weight, mode="fan_out", nonlinearity="relu")
    return net


def count_params(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def example_input(image_size: int, channels: int = 1, batch: int = 1) -> torch.Tensor:
    return torch.randn(batch, channels, image_size, image_size)
