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
    (px, py, pw, ph), (tx, ty, tw, th) = pred.unbind(-1), target.unbind(-1)
    inter_w = (torch.min(px + pw / 2, tx + tw / 2) - torch.max(px - pw / 2, tx - tw / 2)).clamp(min=0)
    inter_h = (torch.min(py + ph / 2, ty + th / 2) - torch.max(py - ph / 2, ty - th / 2)).clamp(min=0)
    inter = inter_w * inter_h
    iou = inter / (pw * ph + tw * th - inter + EPS)
    enclosing_w = torch.max(px + pw / 2, tx + tw / 2) - torch.min(px - pw / 2, tx - tw / 2)
    enclosing_h = torch.max(py + ph / 2, ty + th / 2) - torch.min(py - ph / 2, ty - th / 2)
    dx, dy = tx - px, ty - py
    if kind == "siou":
        return 1 - iou + _siou_penalty(dx, dy, enclosing_w, enclosing_h, pw, ph, tw, th)
    distance = (dx**2 + dy**2) / (enclosing_w**2 + enclosing_h**2 + EPS)
    if kind == "diou":
        return 1 - iou + distance
    if kind == "eiou":
        return (1 - iou + distance + (pw - tw) ** 2 / (enclosing_w**2 + EPS)
                + (ph - th) ** 2 / (enclosing_h**2 + EPS))
    # ciou. Widths and heights are clamped before their ratio: a zero-size box gets a finite aspect
    # (and no gradient through the clamped side) instead of atan(0 / 0).
    aspect = torch.atan(tw.clamp(min=EPS) / th.clamp(min=EPS)) - torch.atan(pw.clamp(min=EPS) / ph.clamp(min=EPS))
    v = (4 / math.pi**2) * aspect**2
    with torch.no_grad():
        a = v / (1 - iou + v + EPS)
    return 1 - iou + distance + a * v


def _siou_penalty(dx, dy, enclosing_w, enclosing_h, pw, ph, tw, th):
    """Half the sum of SIoU's distance and shape costs; the angle cost shapes the distance cost."""
    sigma = torch.sqrt(dx**2 + dy**2 + EPS**2)  # the EPS keeps d sqrt / d(dx) finite at equal centres
    sin_x, sin_y = dx.abs() / sigma, dy.abs() / sigma
    # the sine of the smaller angle to an axis: at most sqrt(2)/2, where arcsin's slope is finite
    sin_alpha = torch.where(sin_x > math.sqrt(2) / 2, sin_y, sin_x)
    angle_cost = torch.cos(torch.arcsin(sin_alpha) * 2 - math.pi / 2)
    gamma = angle_cost - 2
    rho_x = (dx / (enclosing_w + EPS)) ** 2
    rho_y = (dy / (enclosing_h + EPS)) ** 2
    distance_cost = 2 - torch.exp(gamma * rho_x) - torch.exp(gamma * rho_y)
    omega_w = (pw - tw).abs() / torch.max(pw, tw).clamp(min=EPS)
    omega_h = (ph - th).abs() / torch.max(ph, th).clamp(min=EPS)
    shape_cost = (1 - torch.exp(-omega_w)) ** 4 + (1 - torch.exp(-omega_h)) ** 4
    return 0.5 * (distance_cost + shape_cost)


BOX_LOSS_KINDS = ("iou", "giou", "diou", "ciou", "eiou", "siou")


def box_iou_loss(pred, target, kind="iou", reduction="none"):
    """IoU-family loss between predicted and target boxes, both ``(..., 4)`` as ``(cx, cy, w, h)``.

    Returns one loss per box (shape ``pred.shape[:-1]``) or its mean/sum. ``kind`` is one of
    ``BOX_LOSS_KINDS``; see the module docstring for each formula.
    """
    if kind not in BOX_LOSS_KINDS:
        raise ValueError(f"box loss kind must be one of {BOX_LOSS_KINDS}, got {kind!r}")
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
        if kind not in BOX_LOSS_KINDS:
            raise ValueError(f"box loss kind must be one of {BOX_LOSS_KINDS}, got {kind!r}")
        self.kind = kind
        self.values = {"kind": kind}
