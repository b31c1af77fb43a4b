"""Shape-IoU (Zhang & Zhang 2023, "Shape-IoU: More Accurate Metric considering Bounding Box Shape
and Scale"): the distance and shape penalties weighted by the target's own shape.

    ww = 2 w_gt^s / (w_gt^s + h_gt^s),   hh = 2 h_gt^s / (w_gt^s + h_gt^s)      (s: scale)
    distance_shape = hh (x - x_gt)^2 / c^2 + ww (y - y_gt)^2 / c^2
    omega_w = hh |w - w_gt| / max(w, w_gt),   omega_h = ww |h - h_gt| / max(h, h_gt)
    Omega_shape = (1 - exp(-omega_w))^4 + (1 - exp(-omega_h))^4
    L = 1 - IoU + distance_shape + 0.5 Omega_shape

c is the diagonal of the smallest box enclosing both. The weights cross over: a wide target (ww
large, hh small) is penalised more for a vertical offset and a wrong height, where its IoU is
the more sensitive. Scale 0 (the authors' code's default) gives ww = hh = 1: DIoU plus SIoU's
shape cost with theta 4.

Needs only torch.
"""

import torch

from ._common import EPS, Param
from .box_geometry import geometry_loss
from .declare import KitLoss, penalty_form, register

__all__ = ["shape_iou_loss", "ShapeIoULoss"]

SCALE = Param(0.0, 0, doc="scale factor s of the shape weights, from the sizes of the "
              "dataset's targets (0: ww = hh = 1)")


def shape_iou_loss(pred, target, scale=0.0, reduction="none"):
    """Shape-IoU loss of ``(..., 4)`` ``(cx, cy, w, h)`` boxes, one per box (module docstring)."""
    SCALE.check("shape_iou scale", scale)
    return geometry_loss("shape_iou loss", _shape_iou, pred, target, reduction, scale)


def _shape_iou(g, scale):
    # a zero target side is clamped, so 0 ** s / (0 ** s + 0 ** s) cannot be 0 / 0
    weights = torch.pow(g.t_size.clamp(min=EPS), scale)
    weights = 2 * weights / weights.sum(0)  # (ww, hh)
    crossed = weights.flip(0)  # (hh, ww): x terms take hh, y terms ww
    diagonal_sq = g.enclosing.square().sum(0) + EPS
    distance = (crossed * g.offset.square()).sum(0) / diagonal_sq
    omega = crossed * (g.p_size - g.t_size).abs() / torch.max(g.p_size, g.t_size).clamp(min=EPS)
    shape_cost = torch.expm1(-omega).square().square().sum(0)  # (1 - e^-omega) ** 4, as two squares
    return 1 - g.iou + distance + 0.5 * shape_cost


@register
class ShapeIoULoss(KitLoss):
    """Shape-IoU (Zhang & Zhang 2023); see :func:`shape_iou_loss`."""

    name = "shape_iou"
    branches = ("box",)
    params = {"scale": SCALE}
    function = staticmethod(shape_iou_loss)
    with_modified_iou = penalty_form
