"""BCE variants: YOLOv5's BCE-blur and label smoothing of classification targets."""

import torch

from ._common import LossModule, Number, bce_with_logits, check_params, elementwise_loss

__all__ = ["bce_blur_loss", "BCEBlurLoss", "smooth_targets", "BCE_BLUR_PARAMS", "SMOOTHING"]

BCE_BLUR_PARAMS = {"alpha": Number(0, doc="width of the blur: how far past its target p must be")}
SMOOTHING = Number(0, 1, doc="label smoothing epsilon", high_open=True)


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


class BCEBlurLoss(LossModule):
    """Module form of :func:`bce_blur_loss`: ``BCEBlurLoss(alpha=0.05)``."""

    function, params, name = staticmethod(bce_blur_loss), BCE_BLUR_PARAMS, "bce_blur"


def smooth_targets(target, epsilon):
    """Label smoothing in the spirit of YOLOv5's ``smooth_BCE``, for soft targets.

    YOLOv5 trains classes against ``1 - epsilon / 2`` instead of 1 and ``epsilon / 2`` instead of 0.
    YOLOX's class targets are soft (one-hot times the IoU of the matched prediction), so each target
    t is mapped linearly, ``t (1 - epsilon) + epsilon / 2``: 1 and 0 go where YOLOv5 puts them and a
    target of IoU 0.6 goes to 0.6 - 0.1 epsilon. ``epsilon = 0`` returns ``target`` itself.
    """
    SMOOTHING.check("label smoothing", epsilon)
    if epsilon == 0:
        return target
    return target * (1 - epsilon) + epsilon / 2
