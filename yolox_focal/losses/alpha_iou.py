"""Alpha-IoU (He et al. 2021, "Alpha-IoU: A Family of Power Intersection over Union Losses for
Bounding Box Regression"): ``1 - IoU ** alpha``.

alpha > 1 up-weights the loss and gradient of high-IoU boxes (the paper recommends 3); YOLOX's own
IoU loss, ``1 - IoU ** 2``, is alpha 2 (YOLOX #947). The IoU is computed with YOLOX's arithmetic,
operation for operation, so that alpha 2 gives YOLOX's IOUloss("iou") bit for bit.

Needs only torch.
"""

import torch

from ._common import Number, reduce
from .box_geometry import box_inputs
from .declare import KitLoss, Param, register

__all__ = ["alpha_iou_loss", "AlphaIoULoss", "yolox_iou"]

ALPHA = Param(3.0, Number(0, low_open=True), doc="power of the IoU: > 1 up-weights high-IoU boxes (YOLOX's iou is 2)")


def yolox_iou(pred, target):
    """IoU of (N, 4) (cx, cy, w, h) pairs as YOLOX's IOUloss computes it (yolox/models/losses.py,
    Apache-2.0): the same operations in the same order, its 1e-16 guard included."""
    top_left = torch.max(pred[:, :2] - pred[:, 2:] / 2, target[:, :2] - target[:, 2:] / 2)
    bottom_right = torch.min(pred[:, :2] + pred[:, 2:] / 2, target[:, :2] + target[:, 2:] / 2)
    overlaps = (top_left < bottom_right).to(top_left.dtype).prod(dim=1)
    area_i = torch.prod(bottom_right - top_left, 1) * overlaps
    area_u = torch.prod(pred[:, 2:], 1) + torch.prod(target[:, 2:], 1) - area_i
    return area_i / (area_u + 1e-16)


def alpha_iou_loss(pred, target, alpha=3.0, reduction="none"):
    """Alpha-IoU loss ``1 - IoU ** alpha`` of ``(..., 4)`` ``(cx, cy, w, h)`` boxes, one per box.

    For alpha < 1 the derivative of IoU ** alpha is infinite at IoU 0: there the IoU is raised to
    the smallest normal number instead, so disjoint boxes get loss 1 and gradient 0, as for alpha >= 1.
    """
    ALPHA.check("alpha_iou alpha", alpha)
    pred, target, shape = box_inputs("alpha_iou loss", pred, target, reduction)
    iou = yolox_iou(pred, target)
    if alpha < 1:
        iou = iou.clamp(min=torch.finfo(iou.dtype).tiny)
    return reduce((1 - iou**alpha).reshape(shape), reduction)


@register
class AlphaIoULoss(KitLoss):
    """``1 - IoU ** alpha`` (He et al. 2021); see :func:`alpha_iou_loss`."""

    name = "alpha_iou"
    branches = ("box",)
    params = {"alpha": ALPHA}
    function = staticmethod(alpha_iou_loss)
    iou_based = True
