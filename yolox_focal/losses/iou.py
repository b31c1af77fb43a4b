"""The IoU family of box losses on YOLOX's ``(cx, cy, w, h)`` boxes.

    iou    1 - IoU ** 2                                      YOLOX's IOUloss("iou"), its default
    giou   1 - clamp(GIoU, -1, 1)                            YOLOX's IOUloss("giou"); Rezatofighi 2019
    diou   1 - IoU + rho^2 / c^2                             Zheng et al. 2020
    ciou   1 - IoU + rho^2 / c^2 + a v                       Zheng et al. 2020
    eiou   1 - IoU + rho^2 / c^2 + dw^2 / cw^2 + dh^2 / ch^2  Zhang et al. 2021
    siou   1 - IoU + (distance cost + shape cost) / 2        Gevorgyan 2022, as YOLOv6 computes it
           (shape cost: sum of (1 - exp(-omega)) ** theta, theta a parameter, 4 as YOLOv6)

rho is the distance between the centres; c, cw, ch the diagonal, width and height of the smallest
box enclosing both; v = 4 / pi^2 (atan(w_t / h_t) - atan(w / h))^2 and a = v / (1 - IoU + v), a
constant for the gradient as in the paper. ``iou`` and ``giou`` repeat YOLOX's arithmetic
operation for operation, so they give YOLOX's values bit for bit. The others guard every division,
square root and arctangent so that loss and gradient stay finite for identical boxes, boxes with the
same centre, zero width or height, disjoint boxes and large coordinates.

Each is a function, ``ciou_loss(pred, target, reduction="none")``, and a registered module,
``CIoULoss()``; ``box_iou_loss(pred, target, kind)`` calls any stateless box loss of the kit by name.
All are IoU-based: the Inner-IoU and Focaler-IoU options apply to each, their IoU' in the place of
IoU (``1 - IoU'**2`` for ``iou``, ``L + IoU - IoU'`` for the others, ``1 - IoU + penalty`` each).

``eiou`` is the one box loss of the kit that can fall as a prediction's centre moves away from its
target's: its width and height terms are divided by the enclosing box, which grows with the
distance, faster than its distance term rises for some pairs. Measured on 20,000 pairs of
``tests/references.random_pairs`` each: 0.4 % of the disjoint pairs and 0.01 % of the overlapping
ones with the modifiers off; with Inner-IoU or Focaler-IoU on, up to 11 % of the overlapping pairs
(6 % at the median setting), where IoU' clamps and leaves those terms alone; none where the
prediction has the target's size (tests/test_box_loss_direction.py).
"""

import math

import torch

from ._common import EPS, Param, reduce
from .box_geometry import check_boxes, geometry_loss
from .declare import LOSSES, KitLoss, penalty_form, register

__all__ = ["box_iou_loss", "iou_loss", "IoULoss", "giou_loss", "GIoULoss", "diou_loss", "DIoULoss", "ciou_loss",
           "CIoULoss", "eiou_loss", "EIoULoss", "siou_loss", "SIoULoss", "SIOU_PARAMS"]


def _yolox_iou(pred, target, giou):
    """YOLOX's IOUloss (yolox/models/losses.py, Apache-2.0), same operations in the same order."""
    p_lo, p_hi = pred[:, :2] - pred[:, 2:] / 2, pred[:, :2] + pred[:, 2:] / 2
    t_lo, t_hi = target[:, :2] - target[:, 2:] / 2, target[:, :2] + target[:, 2:] / 2
    top_left, bottom_right = torch.max(p_lo, t_lo), torch.min(p_hi, t_hi)
    overlaps = (top_left < bottom_right).to(top_left.dtype).prod(dim=1)
    area_i = torch.prod(bottom_right - top_left, 1) * overlaps
    area_u = torch.prod(pred[:, 2:], 1) + torch.prod(target[:, 2:], 1) - area_i
    iou = area_i / (area_u + 1e-16)
    if not giou:
        return 1 - iou**2
    # the corners are computed again, as YOLOX does: reusing them gives the same loss but sums the
    # gradient in another order, which changes its last bits
    c_top_left = torch.min(pred[:, :2] - pred[:, 2:] / 2, target[:, :2] - target[:, 2:] / 2)
    c_bottom_right = torch.max(pred[:, :2] + pred[:, 2:] / 2, target[:, :2] + target[:, 2:] / 2)
    area_c = torch.prod(c_bottom_right - c_top_left, 1)
    return 1 - (iou - (area_c - area_u) / area_c.clamp(1e-16)).clamp(min=-1.0, max=1.0)


def _distance(g):
    """DIoU's rho^2 / c^2 and the enclosing box's squared width and height, ``(2, N)``."""
    enclosing_sq = g.enclosing.square()
    return g.offset.square().sum(0) / (enclosing_sq.sum(0) + EPS), enclosing_sq


def _diou(g):
    return 1 - g.iou + _distance(g)[0]


def _ciou(g):
    distance = _distance(g)[0]
    # Widths and heights are clamped before their ratio: a zero-size box gets a finite aspect
    # (and no gradient through the clamped side) instead of atan(0 / 0).
    p_size, t_size = g.p_size.clamp(min=EPS), g.t_size.clamp(min=EPS)
    aspect = torch.atan(t_size[0] / t_size[1]) - torch.atan(p_size[0] / p_size[1])
    v = (4 / math.pi**2) * aspect**2
    with torch.no_grad():
        a = v / (1 - g.iou + v + EPS)
    return 1 - g.iou + distance + a * v


def _eiou(g):
    distance, enclosing_sq = _distance(g)
    return 1 - g.iou + distance + ((g.p_size - g.t_size).square_() / (enclosing_sq + EPS)).sum(0)


def _siou(g, theta):
    """1 - IoU + half the sum of SIoU's distance and shape costs.

    The angle cost, cos(2 arcsin(sin_alpha) - pi / 2) = sin(2 alpha) with alpha the smaller angle
    of the centres' offset to an axis, is computed as 2 sin(alpha) cos(alpha) = 2 |dx| |dy| / sigma^2:
    the same value as YOLOv6's arcsin and cosine, without their cost, and finite with a finite
    gradient at equal centres (sigma^2 guarded by EPS^2). The offset's sign does not matter: only
    its square and absolute value are used.
    """
    offset_sq = g.offset.square()
    side = g.offset.abs()
    angle_cost = 2 * side[0] * side[1] / (offset_sq.sum(0) + EPS**2)
    rho = offset_sq / (g.enclosing + EPS).square_()
    distance_cost = 2 - torch.exp((angle_cost - 2) * rho).sum(0)
    omega = (g.p_size - g.t_size).abs_() / torch.max(g.p_size, g.t_size).clamp(min=EPS)
    shape_cost = (1 - torch.exp(-omega)).pow(theta).sum(0)
    return 1 - g.iou + 0.5 * (distance_cost + shape_cost)


def _yolox_loss(name, pred, target, reduction, giou):
    """iou and giou: the boxes checked, then YOLOX's arithmetic in YOLOX's dtype, bit for bit (under
    autocast, as in YOLOX's --fp16 training, its products of sizes are computed in float32)."""
    check_boxes(f"{name} loss", pred, target, reduction)
    loss = _yolox_iou(pred.reshape(-1, 4), target.reshape(-1, 4).to(pred.dtype), giou)
    return reduce(loss.reshape(pred.shape[:-1]), reduction)


def iou_loss(pred, target, reduction="none"):
    """YOLOX's ``IOUloss(loss_type="iou")``, bit for bit: ``1 - IoU ** 2`` per pair of ``(..., 4)``
    ``(cx, cy, w, h)`` boxes (shape ``pred.shape[:-1]``), or its mean or sum."""
    return _yolox_loss("iou", pred, target, reduction, False)


def giou_loss(pred, target, reduction="none"):
    """YOLOX's ``IOUloss(loss_type="giou")``, bit for bit: ``1 - clamp(GIoU, -1, 1)``."""
    return _yolox_loss("giou", pred, target, reduction, True)


# The guarded losses below compute half-precision boxes in float32 (an area in pixels overflows
# float16): geometry_loss converts them.

def diou_loss(pred, target, reduction="none"):
    """DIoU loss (Zheng et al. 2020): ``1 - IoU + rho^2 / c^2``."""
    return geometry_loss("diou loss", _diou, pred, target, reduction)


def ciou_loss(pred, target, reduction="none"):
    """CIoU loss (Zheng et al. 2020): DIoU + ``a v``, ``a`` a constant for the gradient."""
    return geometry_loss("ciou loss", _ciou, pred, target, reduction)


def eiou_loss(pred, target, reduction="none"):
    """EIoU loss (Zhang et al. 2021): DIoU + ``dw^2 / cw^2 + dh^2 / ch^2``. Can fall as the
    prediction's centre moves away from its target's (module docstring)."""
    return geometry_loss("eiou loss", _eiou, pred, target, reduction)


SIOU_PARAMS = {"theta": Param(4.0, 0, low_open=True, doc="exponent of the shape cost (YOLOv6: 4)")}


def siou_loss(pred, target, theta=4.0, reduction="none"):
    """SIoU loss (Gevorgyan 2022) as YOLOv6 computes it: ``1 - IoU + (distance + shape cost) / 2``."""
    SIOU_PARAMS["theta"].check("siou theta", theta)
    return geometry_loss("siou loss", _siou, pred, target, reduction, float(theta))


@register
class IoULoss(KitLoss):
    """:func:`iou_loss` (YOLOX's default box loss) as the kit's module: ``IoULoss()``."""

    name, branches, function = "iou", ("box",), staticmethod(iou_loss)

    def with_modified_iou(self, pred, target, iou, modified_iou, **context):
        """``1 - IoU'**2``: the modified IoU in IoU's place (Inner-IoU's ``1 - IoU_inner`` for the
        plain IoU loss, in YOLOX's square). Not ``L + IoU - IoU'``: that rule fits losses falling
        with slope -1 in IoU; on ``1 - IoU**2`` it rises with the IoU wherever IoU' clamps (IoU
        below 0.5), and would push predictions away from their targets."""
        return 1 - modified_iou**2


@register
class GIoULoss(KitLoss):
    """:func:`giou_loss` as the kit's module: ``GIoULoss()``."""

    name, branches, function = "giou", ("box",), staticmethod(giou_loss)
    with_modified_iou = penalty_form


@register
class DIoULoss(KitLoss):
    """:func:`diou_loss` as the kit's module: ``DIoULoss()``."""

    name, branches, function = "diou", ("box",), staticmethod(diou_loss)
    with_modified_iou = penalty_form


@register
class CIoULoss(KitLoss):
    """:func:`ciou_loss` as the kit's module: ``CIoULoss()``."""

    name, branches, function = "ciou", ("box",), staticmethod(ciou_loss)
    with_modified_iou = penalty_form


@register
class EIoULoss(KitLoss):
    """:func:`eiou_loss` as the kit's module: ``EIoULoss()``."""

    name, branches, function = "eiou", ("box",), staticmethod(eiou_loss)
    with_modified_iou = penalty_form


@register
class SIoULoss(KitLoss):
    """:func:`siou_loss` as the kit's module: ``SIoULoss(theta=4.0)``."""

    name, branches, params = "siou", ("box",), SIOU_PARAMS
    function = staticmethod(siou_loss)
    with_modified_iou = penalty_form


def box_iou_loss(pred, target, kind="iou", reduction="none"):
    """Any stateless box loss of the kit by name (``kind``: ``"iou"``, ``"ciou"``, ...), with its
    default parameters: ``box_iou_loss(pred, target, "ciou")`` is ``ciou_loss(pred, target)``. A loss
    that needs more than the boxes (mpdiou's input size, uiou's training progress) is refused in one
    line naming its function."""
    cls = LOSSES.get(kind) if isinstance(kind, str) else None
    if cls is not None and cls.is_box_loss() and cls.function is not None and cls.needs:
        needs = ", ".join(cls.needs)
        raise ValueError(f"box loss kind {kind!r} needs {needs}: call {cls.function.__name__}(pred, target, "
                         f"{needs}) instead")
    if cls is None or not cls.is_box_loss() or cls.function is None:
        kinds = tuple(n for n, c in LOSSES.items() if c.is_box_loss() and c.function is not None and not c.needs)
        raise ValueError(f"box loss kind must be one of {kinds}, got {kind!r}")
    return cls.function(pred, target, reduction=reduction)
