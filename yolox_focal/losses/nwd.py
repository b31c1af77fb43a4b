"""Normalized Gaussian Wasserstein Distance (Wang et al. 2021, "A Normalized Gaussian Wasserstein
Distance for Tiny Object Detection"), as a box loss:

    W2^2 = ||(cx, cy, w / 2, h / 2) - (cx_gt, cy_gt, w_gt / 2, h_gt / 2)||^2
    L = 1 - exp(-sqrt(W2^2) / C)

Each box is modelled as a 2-D Gaussian; W2 is the Wasserstein distance between the two. Unlike an
IoU it changes smoothly with position even for boxes that do not overlap, and does not jump with a
pixel of offset on a tiny box. C, in pixels, is the paper's normalising constant: the dataset's
average absolute object size (12.8 on AI-TOD). It is not an IoU loss (it declares no
``with_modified_iou``), so the IoU modifiers do not apply to it: they are refused in one line.

Needs only torch.
"""

import torch

from ._common import reduce
from .box_geometry import box_inputs
from .declare import KitLoss, register
from .gaussian import NWD_CONSTANT as CONSTANT
from .gaussian import wasserstein_distance

__all__ = ["nwd_loss", "NWDLoss"]


def nwd_loss(pred, target, constant=12.8, reduction="none"):
    """``1 - NWD`` of ``(..., 4)`` ``(cx, cy, w, h)`` boxes, one per box (see the module docstring).

    W2 is :func:`yolox_focal.losses.gaussian.wasserstein_distance` (shared with the label
    assignment's similarity): identical boxes get loss ~0 and gradient 0 instead of NaN.
    """
    CONSTANT.check("nwd constant", constant)
    pred, target, shape = box_inputs("nwd loss", pred, target, reduction)
    distance = wasserstein_distance(pred - target)
    return reduce(torch.expm1(distance / -constant).neg().reshape(shape), reduction)  # 1 - exp(-d / C)


@register
class NWDLoss(KitLoss):
    """1 - NWD (Wang et al. 2021); see :func:`nwd_loss`."""

    name = "nwd"
    branches = ("box",)
    params = {"constant": CONSTANT}
    function = staticmethod(nwd_loss)
