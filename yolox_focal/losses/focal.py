"""The focal family: losses that scale BCE-with-logits by how wrong or how confident a prediction is.

    focal_loss          BCE(x, t) * alpha_t * (1 - p_t) ** gamma          Lin et al. 2017
    quality_focal_loss  BCE(x, t) * |t - p| ** beta  [* alpha_t]         Li et al. 2020 (GFL)
    varifocal_loss      BCE(x, t) * (t if t > 0 else alpha * p ** gamma)  Zhang et al. 2021

with p = sigmoid(x), p_t = t p + (1 - t)(1 - p), alpha_t = t alpha + (1 - t)(1 - alpha). Targets
may be soft (any value in [0, 1]). Each loss computes its gradient in closed form in the forward
pass (see ``FusedLoss``); the focal gradient is written with (1 - p_t) ** gamma as a common factor,
so it stays finite for every gamma >= 0, including gamma in (0, 1), where the textbook derivative
is infinite at p_t = 1.
"""

import torch
import torch.nn.functional as F

from ._common import (Param, bce_with_logits, check_logits_and_targets, check_params, check_reduction, compute_dtype,
                      elementwise_loss, power)
from .declare import KitLoss, register

__all__ = ["focal_loss", "FocalLoss", "quality_focal_loss", "QualityFocalLoss", "varifocal_loss",
           "VarifocalLoss", "FOCAL_PARAMS", "QUALITY_FOCAL_PARAMS", "VARIFOCAL_PARAMS"]

GAMMA = Param(1.5, 0, doc="focusing parameter: larger down-weights easy examples more")
ALPHA = Param(0.25, 0, 1, none="no balancing", doc="weight of positives (negatives get 1 - alpha)")
FOCAL_PARAMS = {"gamma": GAMMA, "alpha": ALPHA}
QUALITY_FOCAL_PARAMS = {"beta": Param(2.0, 0, doc="exponent of the distance between target and p"),
                        "alpha": ALPHA.with_default(None)}
VARIFOCAL_PARAMS = {
    "alpha": Param(0.75, 0, low_open=True, doc="weight of negatives"),
    "gamma": Param(2.0, 0, doc="exponent of p on negatives"),
}


def _alpha_weight(t, alpha):
    """alpha_t = t alpha + (1 - t)(1 - alpha), for soft targets too."""
    return torch.mul(t, 2 * alpha - 1).add_(1 - alpha)


def _focal(x, t, gamma, alpha, need_grad):
    bce = bce_with_logits(x, t)
    p = torch.sigmoid(x)
    p_neg = torch.neg(x).sigmoid_()  # 1 - p, without cancellation where p is close to 1
    q = torch.sub(p_neg, p).mul_(t).add_(p)  # 1 - p_t = t (1 - p) + (1 - t) p
    weight = power(q, gamma)
    if alpha is not None:
        weight.mul_(_alpha_weight(t, alpha))
    loss = bce * weight
    if not need_grad:
        return loss, None
    # d/dx = alpha_t q**gamma [(p - t) + gamma bce (1 - 2t) p (1 - p) / q], and p (1 - p) <= q.
    q.clamp_(min=torch.finfo(q.dtype).tiny)
    ratio = p_neg.mul_(p).div_(q).clamp_(max=1)
    bce.addcmul_(bce, t, value=-2).mul_(ratio).mul_(gamma)
    return loss, p.sub_(t).add_(bce).mul_(weight)


def _quality_focal(x, t, beta, alpha, need_grad):
    bce = bce_with_logits(x, t)
    p = torch.sigmoid(x)
    d = torch.sub(p, t)
    a = d.abs()
    weight = power(a, beta)
    if alpha is not None:
        weight.mul_(_alpha_weight(t, alpha))
    loss = bce * weight
    if not need_grad:
        return loss, None
    # d/dx = w [(p - t) + beta bce p (1 - p) / (p - t)]. Where p = t the second term is 0 in the
    # limit for beta > 1 (w = |p - t| ** beta goes to 0 faster): 0 / 0 and x / 0 are set to 0.
    p.mul_(torch.neg(x).sigmoid_()).mul_(bce).div_(d).nan_to_num_(nan=0.0, posinf=0.0, neginf=0.0)
    return loss, d.add_(p, alpha=beta).mul_(weight)


def _varifocal(x, t, alpha, gamma, need_grad):
    bce = bce_with_logits(x, t)
    positive = t > 0
    p = torch.sigmoid(x)
    p_gamma = power(p, gamma)
    weight = torch.where(positive, t, p_gamma.mul_(alpha))  # the IoU-aware target, or alpha p**gamma
    loss = bce * weight
    if not need_grad:
        return loss, None
    # positives: t (p - t). negatives (t = 0, bce = softplus(x)): alpha p**gamma (p + gamma (1 - p) bce)
    negative = bce.mul_(torch.neg(x).sigmoid_()).mul_(gamma).add_(p).mul_(weight)
    return loss, torch.where(positive, p.sub_(t).mul_(t), negative)


def focal_loss(pred, target, gamma=1.5, alpha=0.25, reduction="none"):
    """Sigmoid focal loss (Lin et al. 2017) of logits ``pred`` against targets in [0, 1].

    Args:
        pred: logits, any floating dtype. float16/bfloat16 are computed in float32 and the loss is
            float32, as ``BCEWithLogitsLoss`` does under autocast.
        target: same shape as ``pred``; hard 0/1 labels or soft targets in [0, 1]. Treated as a
            constant: no gradient flows into it.
        gamma: focusing parameter >= 0; 0 gives (alpha-weighted) BCE.
        alpha: weight of positives in [0, 1] (negatives get 1 - alpha), or None for no weighting.
        reduction: "none" (element-wise), "mean" or "sum".

    ``gamma=0, alpha=None`` is exactly ``F.binary_cross_entropy_with_logits``.
    """
    check_params("focal", FOCAL_PARAMS, dict(gamma=gamma, alpha=alpha))
    return checked_focal_loss("focal loss", pred, target, gamma, alpha, reduction)


def checked_focal_loss(loss_name, pred, target, gamma, alpha, reduction):
    """:func:`focal_loss` with checked parameters; ``loss_name`` starts the messages about the inputs
    (the losses built on it name themselves)."""
    if gamma == 0 and alpha is None:  # plain BCE, under the same contract as the other losses
        check_reduction(reduction)
        check_logits_and_targets(loss_name, pred, target)
        x = pred.to(compute_dtype(pred))
        return F.binary_cross_entropy_with_logits(x, target.detach().to(x.dtype), reduction=reduction)
    return elementwise_loss(loss_name, _focal, pred, target, (float(gamma), alpha), reduction)


def quality_focal_loss(pred, target, beta=2.0, alpha=None, reduction="none"):
    """Quality focal loss (Li et al. 2020, Generalized Focal Loss): ``BCE(x, t) * |t - p| ** beta``,
    times ``alpha_t`` when ``alpha`` is given. Meant for soft (IoU) targets; YOLOv5's ``QFocalLoss``
    is ``beta=1.5, alpha=0.25``. Inputs, dtypes and reduction as :func:`focal_loss`."""
    check_params("qfocal", QUALITY_FOCAL_PARAMS, dict(beta=beta, alpha=alpha))
    return elementwise_loss("qfocal loss", _quality_focal, pred, target, (float(beta), alpha),
                            reduction)


def varifocal_loss(pred, target, alpha=0.75, gamma=2.0, reduction="none"):
    """Varifocal loss (Zhang et al. 2021, VarifocalNet): ``BCE(x, t) * t`` where the target is
    positive (its IoU-aware score weighs it) and ``BCE(x, 0) * alpha * p ** gamma`` where it is 0.
    The weight is part of the loss: gradient flows through ``p ** gamma`` as in the paper's
    formula. Inputs, dtypes and reduction as :func:`focal_loss`."""
    check_params("varifocal", VARIFOCAL_PARAMS, dict(alpha=alpha, gamma=gamma))
    return elementwise_loss("varifocal loss", _varifocal, pred, target, (float(alpha), float(gamma)),
                            reduction)


@register
class FocalLoss(KitLoss):
    """:func:`focal_loss` as the kit's module: ``FocalLoss(gamma=1.5, alpha=0.25, reduction="none")``."""

    name, branches, params = "focal", ("obj", "cls"), FOCAL_PARAMS
    function = staticmethod(focal_loss)


@register
class QualityFocalLoss(KitLoss):
    """:func:`quality_focal_loss` as the kit's module: ``QualityFocalLoss(beta=2.0, alpha=None)``."""

    name, branches, params = "qfocal", ("obj", "cls"), QUALITY_FOCAL_PARAMS
    function = staticmethod(quality_focal_loss)


@register
class VarifocalLoss(KitLoss):
    """:func:`varifocal_loss` as the kit's module: ``VarifocalLoss(alpha=0.75, gamma=2.0)``."""

    name, branches, params = "varifocal", ("obj", "cls"), VARIFOCAL_PARAMS
    function = staticmethod(varifocal_loss)
