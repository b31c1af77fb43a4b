"""Shared test fixtures: random YOLOX head inputs and a recorder of YOLOX's objectness targets."""

from pathlib import Path

import torch
from torch import nn

REPO = Path(__file__).resolve().parents[1]


def head_inputs(num_classes, batch=4, size=64, width=0.25, gts_per_image=(3, 0, 7, 1), seed=0):
    """Feature maps for a head of the given width, labels in YOLOX's padded format, and images."""
    g = torch.Generator().manual_seed(seed)
    channels = [int(c * width) for c in (256, 512, 1024)]
    feats = [torch.randn(batch, c, size // s, size // s, generator=g) for c, s in zip(channels, (8, 16, 32))]
    labels = torch.zeros(batch, 10, 5)
    for i in range(batch):
        n = gts_per_image[i % len(gts_per_image)]
        for j in range(n):
            wh = torch.rand(2, generator=g) * size * 0.4 + 4
            centre = torch.rand(2, generator=g) * (size - wh) + wh / 2
            cls = torch.randint(num_classes, (1,), generator=g).float()
            labels[i, j] = torch.cat([cls, centre, wh])
    imgs = torch.rand(batch, 3, size, size, generator=g)
    return feats, labels, imgs


class Recorder(nn.Module):
    """Wraps a head's bcewithlog_loss and keeps every (pred, target) it is called with."""

    def __init__(self, loss):
        super().__init__()
        self.loss = loss
        self.calls = []

    def forward(self, pred, target):
        self.calls.append((pred.detach().clone(), target.detach().clone()))
        return self.loss(pred, target)
