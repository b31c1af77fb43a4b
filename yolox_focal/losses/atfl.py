"""Adaptive Threshold Focal Loss (Yang et al. 2024, "EFLNet: Enhancing Feature Learning Network for
Infrared Small Target Detection", IEEE TGRS), on YOLOX's objectness (and classification) logits:

    ATFL = BCE(x, t) * w,   w = (1 - p_t) ** gamma*             p_t > 0.5   (easy: focal)
                                (lambda - p_t) ** (-ln p_t)*    p_t <= 0.5  (hard: up-weighted)
    gamma = -ln(p_c),   p_c a running mean of p_t over the batches

with p = sigmoid(x) and p_t = t p + (1 - t)(1 - p). The threshold 0.5 decouples the easy samples
(mostly background), whose weight falls with the focusing gamma, from the hard ones (mostly
targets), whose weight rises above 1 (lambda 1.5, the authors'); gamma adapts to how well the model
separates them: the higher the mean p_t, the stronger the focusing.

Where this departs from the authors' code (EFLNet, utils/loss.py), and why:

- the running mean: their code averages over a list it re-creates every call, so the mean is each
  batch's own; the paper's is a running mean, 0.05 on the previous mean and 0.95 on the batch's
  (``momentum`` 0.95 here, the weight of the batch). It is kept as the kit keeps state: saved in
  the checkpoints, equal on every process (running_mean.py). The first batch sets it; before any
  training batch the batch's own mean is used;
- the exponents (* above) are weights, out of the graph, as focal loss treats its exponent gamma;
  in their code gradient flows through -ln(p_c) and -ln(p_t) as well;
- the hard side's weight is capped at 1024: -ln p_t at most ln 1024 / ln lambda (17.1 for lambda
  1.5: p_t below 4e-8, logits more than about 17 the wrong way). The weight grows as
  lambda ** (-ln p_t), about p_t ** -0.4, without bound (1.5 ** 90 at a logit of -90): the loss and
  its gradient would overflow float16 and then float32 on the confidently wrong predictions a fresh
  head makes. Their code guards the easy side's base with 1.000001 - p_t instead, which the
  closed-form gradient here does not need.

Needs only torch.
"""

import math

import torch

from ._common import Param, bce_with_logits, check_logits_and_targets, elementwise_loss
from .declare import register
from .running_mean import RunningMeanLoss

__all__ = ["atfl_loss", "ATFLLoss", "ATFL_PARAMS"]

ATFL_PARAMS = {
    "lam": Param(1.5, 1, low_open=True, doc="lambda, the base of the hard samples' weight "
                                            "(lambda - p_t) ** (-ln p_t) (authors: 1.5)"),
    "momentum": Param(0.95, 0, 1, low_open=True, doc="weight of each batch's mean p_t in the running mean "
                                                     "(authors: 0.95, on 0.05 of the previous mean)"),
}
MAX_WEIGHT = 1024.0  # the hard side's weight at most: -ln p_t capped at ln 1024 / ln lambda (module docstring)


def max_exponent(lam):
    """The cap of -ln p_t, so that lambda ** (-ln p_t) is at most MAX_WEIGHT."""
    return math.log(MAX_WEIGHT) / math.log(lam)


def _atfl(x, t, mean, lam, need_grad):
    bce = bce_with_logits(x, t)
    p = torch.sigmoid(x)
    p_neg = torch.neg(x).sigmoid_()  # 1 - p, without cancellation where p is close to 1
    # 1 - p_t and p_t, each a sum of two non-negative terms: neither loses its digits where it is small
    q = torch.mul(p_neg, t).addcmul_(p, 1 - t)
    p_t = torch.mul(p, t).addcmul_(p_neg, 1 - t)
    easy = q < 0.5
    gamma = -torch.log(mean.to(x.dtype))
    # the hard samples' exponent, -ln p_t, out of the graph and capped
    exponent = torch.where(easy, gamma, torch.log(p_t).neg_().clamp_(max=max_exponent(lam)))
    base = torch.where(easy, q, p_t.neg_().add_(lam))  # 1 - p_t, or lambda - p_t
    weight = torch.pow(base, exponent)
    loss = bce * weight
    if not need_grad:
        return loss, None
    # d/dx = w [(p - t) + e BCE (1 - 2t) p (1 - p) / base], e the exponent: p (1 - p) <=
    # min(p, 1 - p) <= q <= base on both sides, so the ratio is at most 1 (the clamp guards rounding)
    ratio = p_neg.mul_(p).div_(base.clamp(min=torch.finfo(base.dtype).tiny)).clamp_(max=1)
    term = bce.addcmul_(bce, t, value=-2).mul_(ratio).mul_(exponent)
    return loss, p.sub_(t).add_(term).mul_(weight)


def atfl_loss(pred, target, mean, lam=1.5, reduction="none"):
    """Adaptive threshold focal loss of logits ``pred`` against targets in [0, 1], for a given mean
    p_t ``mean`` (a number in (0, 1] or a 0-dim tensor): the stateless core of :class:`ATFLLoss`,
    which keeps that mean. Inputs, dtypes and reduction as :func:`yolox_focal.losses.focal_loss`."""
    ATFL_PARAMS["lam"].check("atfl lam", lam)
    # a number is kept in float64 (computed in the logits' dtype); the running mean is float32
    mean = torch.as_tensor(mean, dtype=None if torch.is_tensor(mean) else torch.float64, device=pred.device)
    mean = mean.clamp(min=torch.finfo(torch.float32).tiny)  # gamma = -ln(mean) finite
    return elementwise_loss("atfl loss", _atfl, pred, target, (mean, float(lam)), reduction)


def _p_t_sum(pred, target):
    """(sum of p_t, count) over the elements, out of the graph, in float32 at least."""
    with torch.no_grad():
        x = pred.detach().float() if pred.dtype in (torch.float16, torch.bfloat16) else pred.detach()
        p = torch.sigmoid(x)
        p_t = torch.sub(1 - p, p).mul_(target.to(x.dtype)).add_(p).neg_().add_(1)
        return p_t.sum(), p_t.new_full((), p_t.numel())


@register
class ATFLLoss(RunningMeanLoss):
    """Adaptive threshold focal loss (Yang et al. 2024, EFLNet) with the running mean of p_t kept
    as the kit keeps state; see :func:`atfl_loss` and the module docstring."""

    name, branches, params = "atfl", ("obj", "cls"), ATFL_PARAMS
    initial = 1.0
    warm_start = True

    def base_loss(self, pred, target, **context):
        check_logits_and_targets("atfl loss", pred, target)  # before the mean moves
        total, count = _p_t_sum(pred, target)
        batch_mean = total / count.clamp(min=1)
        mean = self.update_mean(total, count)
        mean = torch.where(self.updates.to(mean.device) > 0, mean, batch_mean.to(mean.dtype))
        return atfl_loss(pred, target, mean, self.values["lam"])
