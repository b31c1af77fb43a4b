"""The IoU family of box losses on YOLOX's ``(cx, cy, w, h)`` boxes.

    iou    1 - IoU ** 2                                      YOLOX's IOUloss("iou"), its default
    giou   1 - clamp(GIoU, -1, 1)                            YOLOX's IOUloss("giou"); Rezatofighi 2019
    diou   1 - IoU + rho^2 / c^2                             Zheng et al. 2020
    ciou   1 - IoU + rho^2 / c^2 + a v                       Zheng et al. 2020
    eiou   1 - IoU + rho^2 / c^2 + dw^2 / cw^2 + dh^2 / ch^2  Zhang et al. 2021
    siou   1 - IoU + (distance cost + shape cost) / 2        Gevorgyan 2022, as YOLOv6 computes it

rho is the distance between the centres; c, cw, ch the diagonal, width and height of the smallest
box enclosing both; v = 4 / pi^2 (atan(w_t / h_t) - atan(w / h))^2 and a = v / (1 - IoU + v), a
constant for the gradient as in the paper. ``iou`` and ``giou`` repeat YOLOX's arithmetic
operation for operation, so they give YOLOX's values bit for bit. The others guard every division,
square root and arctangent so that loss and gradient stay finite for identical boxes, boxes with the
same centre, zero width or height, disjoint boxes and large coordinates.
"""

import math

import torch

from ._common import LossModule, check_reduction, reduce

__all__ = ["box_iou_loss", "BoxIoULoss", "BOX_LOSS_KINDS"]

EPS = 1e-7


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


def _guarded(pred, target, kind):
    # x and y side by side, as contiguous (2, N) tensors: half the operations of one coordinate at
    # a time, on contiguous memory
    pred, target = pred.t().contiguous(), target.t().contiguous()
    p_centre, p_size, t_centre, t_size = pred[:2], pred[2:], target[:2], target[2:]
    p_half, t_half = p_size / 2, t_size / 2
    p_lo, p_hi, t_lo, t_hi = p_centre - p_half, p_centre + p_half, t_centre - t_half, t_centre + t_half
    inter_wh = (torch.min(p_hi, t_hi) - torch.max(p_lo, t_lo)).clamp_(min=0)
    inter = inter_wh[0] * inter_wh[1]
    iou = inter / (p_size[0] * p_size[1] + t_size[0] * t_size[1] - inter + EPS)
    enclosing = torch.max(p_hi, t_hi) - torch.min(p_lo, t_lo)  # its width and height
    offset = t_centre - p_centre
    offset_sq = offset.square()
    if kind == "siou":
        return _siou_loss(iou, offset, offset_sq, enclosing, p_size, t_size)
    enclosing_sq = enclosing.square()
    distance = offset_sq.sum(0) / (enclosing_sq.sum(0) + EPS)
    if kind == "diou":
        return 1 - iou + distance
    if kind == "eiou":
        return 1 - iou + distance + ((p_size - t_size).square_() / (enclosing_sq + EPS)).sum(0)
    # ciou. Widths and heights are clamped before their ratio: a zero-size box gets a finite aspect
    # (and no gradient through the clamped side) instead of atan(0 / 0).
    p_size, t_size = p_size.clamp(min=EPS), t_size.clamp(min=EPS)
    aspect = torch.atan(t_size[0] / t_size[1]) - torch.atan(p_size[0] / p_size[1])
    v = (4 / math.pi**2) * aspect**2
    with torch.no_grad():
        a = v / (1 - iou + v + EPS)
    return 1 - iou + distance + a * v


def _siou_loss(iou, offset, offset_sq, enclosing, p_size, t_size):
    """1 - IoU + half the sum of SIoU's distance and shape costs (theta 4, as YOLOv6).

    The angle cost, cos(2 arcsin(sin_alpha) - pi / 2) = sin(2 alpha) with alpha the smaller angle
    of the centres' offset to an axis, is computed as 2 sin(alpha) cos(alpha) = 2 |dx| |dy| / sigma^2:
    the same value as YOLOv6's arcsin and cosine, without their cost, and finite with a finite
    gradient at equal centres (sigma^2 guarded by EPS^2).
    """
    side = offset.abs()
    angle_cost = 2 * side[0] * side[1] / (offset_sq.sum(0) + EPS**2)
    rho = offset_sq / (enclosing + EPS).square_()
    distance_cost = 2 - torch.exp((angle_cost - 2) * rho).sum(0)
    omega = (p_size - t_size).abs_() / torch.max(p_size, t_size).clamp(min=EPS)
    shape_cost = (1 - torch.exp(-omega)).pow(4).sum(0)
    return 1 - iou + 0.5 * (distance_cost + shape_cost)


BOX_LOSS_KINDS = ("iou", "giou", "diou", "ciou", "eiou", "siou")


def check_kind(kind):
    if kind not in BOX_LOSS_KINDS:
        raise ValueError(f"box loss kind must be one of {BOX_LOSS_KINDS}, got {kind!r}")


def box_iou_loss(pred, target, kind="iou", reduction="none"):
    """IoU-family loss between predicted and target boxes, both ``(..., 4)`` as ``(cx, cy, w, h)``.

    Returns one loss per box (shape ``pred.shape[:-1]``) or its mean/sum. ``kind`` is one of
    ``BOX_LOSS_KINDS``; see the module docstring for each formula.
    """
    check_kind(kind)
    check_reduction(reduction)
    if pred.shape != target.shape or pred.shape[-1:] != (4,):
        raise ValueError(f"box_iou_loss needs pred and target of the same shape (..., 4), got "
                         f"{tuple(pred.shape)} and {tuple(target.shape)}")
    if not pred.is_floating_point():
        raise ValueError(f"box_iou_loss needs floating-point boxes, got dtype {pred.dtype}")
    shape = pred.shape[:-1]
    pred, target = pred.reshape(-1, 4), target.reshape(-1, 4).to(pred.dtype)
    if kind in ("iou", "giou"):
        loss = _yolox_iou(pred, target, giou=kind == "giou")
    else:
        loss = _guarded(pred, target, kind)
    return reduce(loss.reshape(shape), reduction)


class BoxIoULoss(LossModule):
    """Module form of :func:`box_iou_loss`: ``BoxIoULoss(kind="ciou", reduction="none")``."""

    function, params, name = staticmethod(box_iou_loss), {}, "box"

    def __init__(self, kind="iou", reduction="none"):
        super().__init__(reduction=reduction)
        check_kind(kind)
        self.kind = kind
        self.values = {"kind": kind}
