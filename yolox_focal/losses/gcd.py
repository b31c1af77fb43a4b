"""Gaussian Combined Distance (Guan et al., IEEE GRSL 2025, "Gaussian Combined Distance: A Generic
Metric for Object Detection", arXiv 2510.27649), as a box loss:

    D^2 = 1/2 [ (dcx^2 + dw^2 / 4) (1 / w^2 + 1 / w_gt^2) + (dcy^2 + dh^2 / 4) (1 / h^2 + 1 / h_gt^2) ]
    L = 1 - exp(-sqrt(D^2))

Like NWD it models each box as a 2-D Gaussian and changes smoothly with position where boxes do not
overlap; unlike NWD it needs no dataset constant: each axis's Wasserstein terms are normalised by
both boxes' sizes on that axis, so the loss is the same for a pair scaled as a whole, and symmetric
in the two boxes. The distance is :func:`yolox_focal.losses.gaussian.gcd_distance`, written once
for this loss and the label assignment's ``gcd`` similarity; its docstring names the authors' code
and the defect of a circulating copy (one of the two one-sided terms dropped, so neither symmetric
nor the paper's). Not an IoU loss: the IoU modifiers are refused in one line, as for ``nwd``.

Needs only torch.
"""

import torch

from ._common import reduce
from .box_geometry import box_inputs
from .declare import KitLoss, register
from .gaussian import gcd_distance

__all__ = ["gcd_loss", "GCDLoss"]


def gcd_loss(pred, target, reduction="none"):
    """``1 - exp(-sqrt(D^2))`` of ``(..., 4)`` ``(cx, cy, w, h)`` boxes, one per box (see the module
    docstring). The gradient reaches the prediction's centre and, through both the difference and its
    own size in the normaliser, its width and height; identical boxes get loss ~0 and gradient 0."""
    pred, target, shape = box_inputs("gcd loss", pred, target, reduction)
    distance = gcd_distance(pred - target, pred[..., 2:], target[..., 2:])
    return reduce(torch.expm1(-distance).neg().reshape(shape), reduction)  # 1 - exp(-D)


@register
class GCDLoss(KitLoss):
    """1 - GCD similarity (Guan et al. 2025); see :func:`gcd_loss`."""

    name = "gcd"
    branches = ("box",)
    params = {}
    function = staticmethod(gcd_loss)
