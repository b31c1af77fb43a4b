"""Sigmoid focal loss (Lin et al., 2017) in the form YOLOv5 wraps around BCE-with-logits.

    loss = BCE(x, t) * alpha_t * (1 - p_t) ** gamma
    p = sigmoid(x),  p_t = t * p + (1 - t) * (1 - p),  alpha_t = t * alpha + (1 - t) * (1 - alpha)

Targets may be soft (any value in [0, 1]). The loss and its gradient are computed together in one
pass by a custom autograd function: the gradient is written with (1 - p_t) ** gamma as a common
factor, so no (1 - p_t) ** (gamma - 1) term appears and it stays finite for every gamma >= 0,
including gamma in (0, 1) where the textbook derivative is infinite at p_t = 1.
"""

from numbers import Real

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["focal_loss", "FocalLoss", "check_focal_args"]

REDUCTIONS = ("none", "mean", "sum")


def check_focal_args(gamma, alpha, reduction="none"):
    """Raise ``ValueError`` naming the first bad argument and its allowed range."""
    if isinstance(gamma, bool) or not isinstance(gamma, Real) or not 0 <= gamma < float("inf"):
        raise ValueError(f"focal gamma must be a finite number >= 0, got {gamma!r}")
    if alpha is not None and (
        isinstance(alpha, bool) or not isinstance(alpha, Real) or not 0 <= alpha <= 1
    ):
        raise ValueError(f"focal alpha must be in [0, 1] or None (no balancing), got {alpha!r}")
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")


def _check_inputs(pred, target):
    if pred.shape != target.shape:
        raise ValueError(
            f"focal loss needs pred and target of the same shape, got {tuple(pred.shape)} "
            f"and {tuple(target.shape)}"
        )
    if not pred.is_floating_point():
        raise ValueError(f"focal loss needs floating-point logits, got dtype {pred.dtype}")
    if target.numel():
        low, high = torch.aminmax(target.detach())
        if not (low >= 0 and high <= 1):  # also catches NaN
            raise ValueError(
                f"focal loss targets must lie in [0, 1], got values from {low.item():g} "
                f"to {high.item():g}"
            )


def _power(base, exponent):
    """``base ** exponent`` for base in [0, 1] as a new tensor.

    Whole and half exponents (gamma 1, 1.5, 2, ...) use multiplies and a square root, several
    times faster than the general ``pow``.
    """
    doubled = 2 * exponent
    if doubled != int(doubled) or doubled > 8:
        return torch.log(base).mul_(exponent).exp_()  # log(0) = -inf gives 0 ** exponent = 0
    result = base.sqrt() if doubled % 2 else torch.ones_like(base)
    for _ in range(int(exponent)):
        result.mul_(base)
    return result


def _loss_and_grad(x, t, gamma, alpha, need_grad):
    """Focal loss of logits ``x`` against targets ``t`` and, if asked, d loss / d x.

    Written with fused element-wise ops and in-place updates: on the CPU, allocating a fresh
    tensor costs more than the arithmetic done on it.
    """
    bce = F.softplus(x).addcmul_(x, t, value=-1)  # log(1 + e^x) - x t, stable for any x
    p = torch.sigmoid(x)
    p_neg = torch.neg(x).sigmoid_()  # 1 - p, without cancellation where p is close to 1
    q = torch.sub(p_neg, p).mul_(t).add_(p)  # 1 - p_t = t (1 - p) + (1 - t) p
    weight = _power(q, gamma)
    if alpha is not None:
        weight.mul_(torch.mul(t, 2 * alpha - 1).add_(1 - alpha))  # alpha_t q**gamma
    loss = bce * weight
    if not need_grad:
        return loss, None
    # d/dx = alpha_t q**gamma [(p - t) + gamma bce (1 - 2t) p (1 - p) / q], and p (1 - p) <= q.
    q.clamp_(min=torch.finfo(q.dtype).tiny)
    ratio = p_neg.mul_(p).div_(q).clamp_(max=1)
    bce.addcmul_(bce, t, value=-2).mul_(ratio).mul_(gamma)
    grad = p.sub_(t).add_(bce).mul_(weight)
    return loss, grad


class _FocalLossFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, t, gamma, alpha):
        loss, grad = _loss_and_grad(x, t, gamma, alpha, ctx.needs_input_grad[0])
        ctx.save_for_backward(grad)
        return loss

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_loss):
        (grad,) = ctx.saved_tensors
        return grad_loss * grad, None, None, None


def focal_loss(pred, target, gamma=1.5, alpha=0.25, reduction="none"):
    """Sigmoid focal loss of logits ``pred`` against targets ``target`` in [0, 1].

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
    check_focal_args(gamma, alpha, reduction)
    _check_inputs(pred, target)
    if gamma == 0 and alpha is None:
        return F.binary_cross_entropy_with_logits(pred, target.to(pred.dtype), reduction=reduction)
    x = pred.float() if pred.dtype in (torch.float16, torch.bfloat16) else pred
    loss = _FocalLossFunction.apply(x, target.detach().to(x.dtype), float(gamma), alpha)
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


class FocalLoss(nn.Module):
    """Module form of :func:`focal_loss`; arguments are checked when it is built."""

    def __init__(self, gamma=1.5, alpha=0.25, reduction="none"):
        super().__init__()
        check_focal_args(gamma, alpha, reduction)
        self.gamma, self.alpha, self.reduction = gamma, alpha, reduction

    def forward(self, pred, target):
        return focal_loss(pred, target, self.gamma, self.alpha, self.reduction)

    def extra_repr(self):
        return f"gamma={self.gamma}, alpha={self.alpha}, reduction={self.reduction!r}"
