"""Matchability-Aware Loss (Huang et al. 2025, "DEIM: DETR with Improved Matching for Fast
Convergence", CVPR), on YOLOX's classification (and objectness) logits:

    positives (t > 0)   -[q^g log p + (1 - q^g) log(1 - p)] = BCE(x, q^g)
    negatives (t = 0)   -p^g log(1 - p)                     = p^g BCE(x, 0)

q is the quality of the match, its IoU: YOLOX's class target already carries it (one-hot times the
IoU of the matched prediction), so q = t. Raising it to g (1.5, DEIM's) lowers the target of poorly
matched positives more than of well-matched ones; the negatives are down-weighted by p^g, as
varifocal loss does with alpha 1. On objectness (hard 0/1 targets) the positives' target is 1 and
MAL is varifocal with alpha 1 and gamma g.

p^g is part of the loss here, as in the paper's formula and the kit's varifocal: gradient flows
through it. DEIM's code takes it out of the graph (a constant weight, as mmdetection's varifocal);
the two differ in the negatives' gradient by the term g p^g (1 - p) BCE.

Needs only torch.
"""

import torch

from ._common import Param, bce_with_logits, check_params, elementwise_loss, power
from .declare import KitLoss, register

__all__ = ["mal_loss", "MALLoss", "MAL_PARAMS"]

MAL_PARAMS = {"gamma": Param(1.5, 0, doc="exponent g of the positives' target q and of the negatives' "
                                         "weight p (DEIM: 1.5)")}


def _mal(x, t, gamma, need_grad):
    positive = t > 0
    target = torch.where(positive, power(t, gamma), torch.zeros_like(t))  # q^g; 0 on negatives
    bce = bce_with_logits(x, target)  # softplus(x) on negatives
    p = torch.sigmoid(x)
    p_gamma = power(p, gamma)
    loss = torch.where(positive, bce, p_gamma * bce)
    if not need_grad:
        return loss, None
    # positives: p - q^g. negatives: d/dx p^g softplus(x) = p^g (g (1 - p) softplus(x) + p)
    negative = torch.neg(x).sigmoid_().mul_(bce).mul_(gamma).add_(p).mul_(p_gamma)
    return loss, torch.where(positive, p.sub_(target), negative)


def mal_loss(pred, target, gamma=1.5, reduction="none"):
    """Matchability-aware loss of logits ``pred`` against targets in [0, 1] (see the module
    docstring): ``BCE(x, t^g)`` where ``t > 0``, ``p^g BCE(x, 0)`` where ``t = 0``. Inputs, dtypes
    and reduction as :func:`yolox_focal.losses.focal_loss`."""
    check_params("mal", MAL_PARAMS, dict(gamma=gamma))
    return elementwise_loss("mal loss", _mal, pred, target, (float(gamma),), reduction)


@register
class MALLoss(KitLoss):
    """Matchability-aware loss (Huang et al. 2025, DEIM); see :func:`mal_loss`."""

    name, branches, params = "mal", ("cls", "obj"), MAL_PARAMS
    function = staticmethod(mal_loss)
