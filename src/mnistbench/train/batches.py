"""Input conversion and batching for training: the two ways a training step gets its batch.

classic: what the write-ups do, a torch DataLoader over per-sample PIL transforms.
tensor: the whole training split on the device as uint8, batched by shuffled index
slices and normalised per batch on the device, with no per-sample Python (airbench's way).
Both give the same batches per epoch, ceil(n / batch), the last one partial.
"""

from __future__ import annotations

import torch

from mnistbench.data import Split


def to_input(x_u8: torch.Tensor, split: Split, image_size: int) -> torch.Tensor:
    """uint8 [B, 28, 28] -> normalised float [B, 1, S, S] on x's device: the per-batch path."""
    x = x_u8.unsqueeze(1).to(torch.float32).div_(255.0)
    x = x.sub_(split.mean).div_(split.std)
    if image_size != x.shape[-1]:
        x = torch.nn.functional.interpolate(
            x, size=(image_size, image_size), mode="bilinear", antialias=True, align_corners=False
        )
    return x


class ClassicDataset(torch.utils.data.Dataset):
    """What torchvision.datasets.MNIST does per sample: a PIL image, then transforms."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, transform):
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int):
        from PIL import Image

        img = Image.fromarray(self.images[index].numpy(), mode="L")
        return self.transform(img), int(self.labels[index])


def classic_loader(split: Split, case) -> torch.utils.data.DataLoader:
    """The write-ups' input pipeline: DataLoader, ToTensor, Normalize (Resize if asked)."""
    from torchvision import transforms

    steps = [transforms.ToTensor(), transforms.Normalize((split.mean,), (split.std,))]
    if case.image_size != 28:
        steps.insert(0, transforms.Resize(case.image_size, antialias=True))
    dataset = ClassicDataset(split.x_train, split.y_train, transforms.Compose(steps))
    return torch.utils.data.DataLoader(
        dataset,
        batch_size=case.batch_size,
        shuffle=True,
        generator=torch.Generator().manual_seed(case.seed),
        num_workers=case.num_workers,
        pin_memory=case.pin_memory and case.device == "cuda",
        persistent_workers=case.num_workers > 0,
    )


class TensorBatches:
    """The whole training split on the device as uint8, batched by shuffled index slices.

    Same batches per epoch as the DataLoader (ceil(n / batch), the last one partial), with
    no per-sample Python: one randperm per epoch, one gather + normalise per batch.
    """

    def __init__(self, split: Split, case, device: torch.device):
        self.split, self.case = split, case
        self.x = split.x_train.to(device)
        self.y = split.y_train.to(device)
        self.generator = torch.Generator().manual_seed(case.seed)

    def __len__(self) -> int:
        return -(-len(self.y) // self.case.batch_size)

    def orders(self, batch_size: int):
        """This epoch's shuffled index slices, on the device."""
        order = torch.randperm(len(self.y), generator=self.generator).to(self.x.device)
        for start in range(0, len(order), batch_size):
            yield order[start : start + batch_size]

    def order_buffer(self) -> torch.Tensor:
        """A full batch of valid indices, for capturing a step before any epoch ran."""
        return torch.arange(self.case.batch_size, device=self.x.device) % len(self.y)

    def gather(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return to_input(self.x[index], self.split, self.case.image_size), self.y[index]

    def __iter__(self):
        for index in self.orders(self.case.batch_size):
            yield self.gather(index)


