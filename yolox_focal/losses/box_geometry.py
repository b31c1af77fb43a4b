"""What the box losses share: the checks of their input and, for all but YOLOX's own iou and giou
(which repeat YOLOX's arithmetic), the geometry of matched pairs of ``(cx, cy, w, h)`` boxes,
computed once.

Needs only torch.
"""

import torch

from ._common import EPS, check_reduction, compute_dtype, reduce


def check_boxes(loss_name, pred, target, reduction):
    """One-line ``ValueError``s for a bad reduction, boxes of other shapes than ``(..., 4)`` or
    boxes that are not floating point; ``loss_name`` starts each message."""
    check_reduction(reduction)
    if pred.shape != target.shape or pred.shape[-1:] != (4,):
        raise ValueError(f"{loss_name} needs pred and target of the same shape (..., 4), got "
                         f"{tuple(pred.shape)} and {tuple(target.shape)}")
    if not pred.is_floating_point():
        raise ValueError(f"{loss_name} needs floating-point boxes, got dtype {pred.dtype}")


def box_inputs(loss_name, pred, target, reduction):
    """Check the boxes (:func:`check_boxes`); return both as ``(N, 4)`` in the compute dtype
    (float16/bfloat16 in float32: a box area in pixels overflows float16) and the shape of the
    loss, ``pred.shape[:-1]``."""
    check_boxes(loss_name, pred, target, reduction)
    dtype = compute_dtype(pred)
    return pred.reshape(-1, 4).to(dtype), target.reshape(-1, 4).to(dtype), pred.shape[:-1]


def geometry_loss(loss_name, formula, pred, target, reduction, *args):
    """A box loss written as ``formula(PairGeometry, *args) -> (N,)``: the boxes checked and
    converted (:func:`box_inputs`; ``loss_name`` starts each message), the formula on their
    geometry, the loss in ``pred.shape[:-1]``, reduced."""
    pred, target, shape = box_inputs(loss_name, pred, target, reduction)
    return reduce(formula(PairGeometry(pred, target), *args).reshape(shape), reduction)


class PairGeometry:
    """The geometry of N matched pairs, x and y side by side as contiguous ``(2, N)`` tensors (half
    the operations of one coordinate at a time, on contiguous memory):

    ``p_centre, p_size, t_centre, t_size``; corners ``p_lo, p_hi, t_lo, t_hi``; ``offset``
    (pred centre - target centre); ``overlap`` (the intersection's width and height, negative
    where the boxes are apart) and ``inter_wh`` (the same, clamped at 0); ``enclosing`` (width and
    height of the smallest box holding both); ``guarded_union`` (the union + EPS) and ``iou``
    (N,), guarded by EPS: two zero-size boxes have IoU 0, not 0 / 0.
    """

    def __init__(self, pred, target):
        pred, target = pred.t().contiguous(), target.t().contiguous()
        self.p_centre, self.p_size, self.t_centre, self.t_size = pred[:2], pred[2:], target[:2], target[2:]
        p_half, t_half = self.p_size / 2, self.t_size / 2
        self.p_lo, self.p_hi = self.p_centre - p_half, self.p_centre + p_half
        self.t_lo, self.t_hi = self.t_centre - t_half, self.t_centre + t_half
        self.overlap = torch.min(self.p_hi, self.t_hi) - torch.max(self.p_lo, self.t_lo)  # < 0: apart
        self.inter_wh = self.overlap.clamp(min=0)
        inter = self.inter_wh[0] * self.inter_wh[1]
        self.guarded_union = self.p_size[0] * self.p_size[1] + self.t_size[0] * self.t_size[1] - inter + EPS
        self.iou = inter / self.guarded_union
        self.offset = self.p_centre - self.t_centre

    @property
    def enclosing(self):
        return torch.max(self.p_hi, self.t_hi) - torch.min(self.p_lo, self.t_lo)


def modified_iou(pred, target, inner_ratio=1.0, focaler_low=0.0, focaler_high=1.0):
    """``(IoU, IoU')`` per pair of ``(..., 4)`` boxes (each of shape ``pred.shape[:-1]``): the IoU
    and the IoU that Inner-IoU (Zhang et al. 2023) and Focaler-IoU (Zhang & Zhang 2024) put in its
    place in a loss's formula (each IoU-based loss declares how: ``KitLoss.with_modified_iou``).
    Half-precision boxes are computed in float32, as the losses are (a box area in pixels overflows
    float16).

    IoU' is the IoU of the auxiliary boxes (same centres, width and height times ``inner_ratio``),
    then mapped linearly from [focaler_low, focaler_high] onto [0, 1] and clamped; with both the
    Focaler mapping applies to the Inner-IoU. Where it clamps (IoU below ``focaler_low``, inner
    boxes apart) IoU' has no gradient, so a loss of IoU' is flat there.
    """
    pred, target, shape = box_inputs("the box modifier", pred, target, "none")
    iou = PairGeometry(pred, target).iou
    modified = iou
    if inner_ratio != 1:
        scale = pred.new_tensor([1.0, 1.0, inner_ratio, inner_ratio])
        modified = PairGeometry(pred * scale, target * scale).iou
    if focaler_low != 0 or focaler_high != 1:
        modified = ((modified - focaler_low) / (focaler_high - focaler_low)).clamp(0, 1)
    return iou.reshape(shape), modified.reshape(shape)
