"""BCE and its variants: YOLOX's own BCE-with-logits, YOLOv5's BCE-blur, label smoothing.

    bce       BCE(x, t) = -t log p - (1 - t) log(1 - p)           YOLOX's BCEWithLogitsLoss
    bce_blur  BCE(x, t) * (1 - exp((p - t - 1) / (alpha + 1e-4)))  YOLOv5's BCEBlurWithLogitsLoss
"""

import torch
import torch.nn.functional as F

from ._common import SMOOTHING, Param, bce_with_logits, check_params, elementwise_loss, smooth_targets
from .declare import KitLoss, register

__all__ = ["bce_loss", "BCELoss", "bce_blur_loss", "BCEBlurLoss", "smooth_targets", "BCE_BLUR_PARAMS",
           "SMOOTHING"]

BCE_BLUR_PARAMS = {"alpha": Param(0.05, 0, doc="width of the blur: how far past its target p must be")}


def bce_loss(pred, target, reduction="none"):
    """YOLOX's objectness and classification loss, ``BCEWithLogitsLoss``, as a function: exactly
    ``F.binary_cross_entropy_with_logits`` (no input checks, so that it stays YOLOX's bit for bit
    and as fast)."""
    return F.binary_cross_entropy_with_logits(pred, target, reduction=reduction)


@register
class BCELoss(KitLoss):
    """YOLOX's ``BCEWithLogitsLoss(reduction="none")``: ``BCELoss()``."""

    name, branches = "bce", ("obj", "cls")
    function = staticmethod(bce_loss)


def _bce_blur(x, t, alpha, need_grad):
    bce = bce_with_logits(x, t)
    p = torch.sigmoid(x)
    d = torch.sub(p, t)
    scale = 1 / (alpha + 1e-4)
    blur = torch.sub(d, 1).mul_(scale).exp_()  # exp((p - t - 1) / (alpha + 1e-4)), <= 1
    fade = torch.rsub(blur, 1)
    loss = bce * fade
    if not need_grad:
        return loss, None
    # d/dx = (p - t)(1 - blur) - scale bce blur p (1 - p)
    bce.mul_(blur).mul_(p)
    return loss, d.mul_(fade).addcmul_(bce, torch.neg(x).sigmoid_(), value=-scale)


def bce_blur_loss(pred, target, alpha=0.05, reduction="none"):
    """YOLOv5's ``BCEBlurWithLogitsLoss``, element-wise:
    ``BCE(x, t) * (1 - exp((sigmoid(x) - t - 1) / (alpha + 1e-4)))``.

    It leaves BCE unchanged except where the prediction overshoots a target of 0 towards 1
    (p - t close to 1: a likely missing label), where it fades the loss out. YOLOv5 averages it
    over elements; here the reduction is the caller's, like the other losses. Inputs, dtypes and
    reduction as :func:`yolox_focal.losses.focal_loss`.
    """
    check_params("bce_blur", BCE_BLUR_PARAMS, dict(alpha=alpha))
    return elementwise_loss("bce_blur loss", _bce_blur, pred, target, (float(alpha),), reduction)


@register
class BCEBlurLoss(KitLoss):
    """:func:`bce_blur_loss` as the kit's module: ``BCEBlurLoss(alpha=0.05)``."""

    name, branches, params = "bce_blur", ("obj",), BCE_BLUR_PARAMS
    function = staticmethod(bce_blur_loss)
