"""Alpha-IoU (He et al. 2021, "Alpha-IoU: A Family of Power Intersection over Union Losses for
Bounding Box Regression"): ``1 - IoU ** alpha``.

alpha > 1 up-weights the loss and gradient of high-IoU boxes (the paper recommends 3); YOLOX's own
IoU loss, ``1 - IoU ** 2``, is alpha 2 (YOLOX #947). The IoU is the guarded one of the newer box
losses (box_geometry.py: 1e-7 in the union, as torchvision), so alpha 2 equals YOLOX's IOUloss("iou")
to ~1e-7 / area rather than bit for bit (the box loss ``iou`` keeps YOLOX's arithmetic exactly);
computing the IoU as YOLOX does, on (N, 2) column slices, is slower than the plain formula.

Needs only torch.
"""

import torch

from ._common import Param
from .box_geometry import geometry_loss
from .declare import KitLoss, register

__all__ = ["alpha_iou_loss", "AlphaIoULoss"]

ALPHA = Param(3.0, 0, low_open=True, doc="power of the IoU: > 1 up-weights high-IoU boxes (YOLOX's iou is 2)")


def alpha_iou_loss(pred, target, alpha=3.0, reduction="none"):
    """Alpha-IoU loss ``1 - IoU ** alpha`` of ``(..., 4)`` ``(cx, cy, w, h)`` boxes, one per box.

    For alpha < 1 the derivative of IoU ** alpha is infinite at IoU 0: there the IoU is raised to
    the smallest normal number instead, so disjoint boxes get loss 1 and gradient 0, as for alpha >= 1.
    """
    ALPHA.check("alpha_iou alpha", alpha)
    return geometry_loss("alpha_iou loss", lambda g: _power_loss(g.iou, alpha), pred, target, reduction)


def _power_loss(iou, alpha):
    """``1 - iou ** alpha``, the IoU raised to at least the smallest normal number for alpha < 1."""
    if alpha < 1:
        iou = iou.clamp(min=torch.finfo(iou.dtype).tiny)
    return 1 - iou**alpha


@register
class AlphaIoULoss(KitLoss):
    """``1 - IoU ** alpha`` (He et al. 2021); see :func:`alpha_iou_loss`."""

    name = "alpha_iou"
    branches = ("box",)
    params = {"alpha": ALPHA}
    function = staticmethod(alpha_iou_loss)

    def with_modified_iou(self, pred, target, iou, modified_iou, **context):
        """``1 - IoU'**alpha``: the modified IoU in IoU's place. Not ``L + IoU - IoU'``, which rises
        with the IoU wherever IoU' clamps and ``alpha IoU**(alpha - 1) < 1`` (IoU below 0.58 for alpha
        3) and would push predictions away from their targets."""
        return _power_loss(modified_iou, self.values["alpha"])
