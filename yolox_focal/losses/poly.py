"""PolyLoss, Poly-1 (Leng et al. 2022, "PolyLoss: A Polynomial Expansion Perspective of
Classification Loss Functions"): the loss plus epsilon times the first term of its expansion in
(1 - p_t).

    poly1        BCE(x, t) + epsilon (1 - p_t)
    poly1_focal  FL(x, t) + epsilon (1 - p_t) ** (gamma + 1)

with p = sigmoid(x) and p_t = t p + (1 - t)(1 - p) for soft targets too; FL is the kit's
:func:`focal_loss` with its gamma and alpha. As in the paper and its code, the polynomial term is
not alpha-weighted. epsilon > 0 raises the gradient of confident predictions, epsilon < 0 lowers
it; the best value depends on the task and data (the paper tunes it per task). epsilon >= -1
keeps poly1 >= 0 (BCE >= 1 - p_t); poly1_focal with alpha can dip below 0 near epsilon = -1.
epsilon 0 is BCE, or the focal loss, exactly.

Needs only torch.
"""

import torch

from ._common import (FusedLoss, Param, bce_with_logits, check_params, check_reduction, compute_dtype, elementwise_loss,
                      power, reduce)
from .declare import KitLoss, register
from .focal import ALPHA, GAMMA, checked_focal_loss

__all__ = ["poly1_loss", "poly1_focal_loss", "Poly1Loss", "Poly1FocalLoss"]

EPSILON = Param(1.0, -1, doc="coefficient of the first polynomial term, (1 - p_t) ** (gamma + 1)")
POLY1_FOCAL_PARAMS = {
    "epsilon": EPSILON,
    "gamma": GAMMA,
    "alpha": ALPHA,
}


def _one_minus_p_t(x, t):
    """(p, 1 - p, 1 - p_t): 1 - p from -x, without cancellation where p is close to 1."""
    p, p_neg = torch.sigmoid(x), torch.neg(x).sigmoid_()
    return p, p_neg, torch.sub(p_neg, p).mul_(t).add_(p)  # t (1 - p) + (1 - t) p


def _poly1(x, t, epsilon, need_grad):
    bce = bce_with_logits(x, t)
    p, p_neg, q = _one_minus_p_t(x, t)
    loss = bce.add_(q, alpha=epsilon)
    if not need_grad:
        return loss, None
    # d/dx: (p - t) + epsilon (1 - 2t) p (1 - p)
    slope = torch.mul(t, -2).add_(1).mul_(p_neg).mul_(p).mul_(epsilon)
    return loss, p.sub_(t).add_(slope)


def _poly_term(x, t, exponent, need_grad):
    """(1 - p_t) ** exponent, exponent >= 1, and its derivative exponent (1 - p_t) ** (exponent - 1)
    (1 - 2t) p (1 - p)."""
    p, p_neg, q = _one_minus_p_t(x, t)
    below = power(q, exponent - 1)
    loss = below * q
    if not need_grad:
        return loss, None
    return loss, below.mul_(exponent).mul_(torch.mul(t, -2).add_(1)).mul_(p).mul_(p_neg)


def poly1_loss(pred, target, epsilon=1.0, reduction="none"):
    """Poly-1 on BCE-with-logits: ``BCE(x, t) + epsilon (1 - p_t)``. Inputs, dtypes and reduction
    as :func:`yolox_focal.losses.focal_loss`."""
    EPSILON.check("poly1 epsilon", epsilon)
    return elementwise_loss("poly1 loss", _poly1, pred, target, (float(epsilon),), reduction)


def poly1_focal_loss(pred, target, epsilon=1.0, gamma=1.5, alpha=0.25, reduction="none"):
    """Poly-1 on the focal loss: ``focal_loss(x, t, gamma, alpha) + epsilon (1 - p_t) ** (gamma + 1)``.
    Inputs, dtypes and reduction as :func:`yolox_focal.losses.focal_loss`."""
    check_params("poly1_focal", POLY1_FOCAL_PARAMS, dict(epsilon=epsilon, gamma=gamma, alpha=alpha))
    check_reduction(reduction)
    loss = checked_focal_loss("poly1_focal loss", pred, target, gamma, alpha, "none")  # checks the inputs
    if epsilon != 0:
        x = pred.to(compute_dtype(pred))
        term = FusedLoss.apply(_poly_term, x, target.detach().to(x.dtype), float(gamma) + 1)
        loss = torch.add(loss, term, alpha=epsilon)
    return reduce(loss, reduction)


@register
class Poly1Loss(KitLoss):
    """Poly-1 on BCE (Leng et al. 2022); see :func:`poly1_loss`."""

    name = "poly1"
    branches = ("obj", "cls")
    params = {"epsilon": EPSILON}
    function = staticmethod(poly1_loss)


@register
class Poly1FocalLoss(KitLoss):
    """Poly-1 on the focal loss (Leng et al. 2022); see :func:`poly1_focal_loss`."""

    name = "poly1_focal"
    branches = ("obj", "cls")
    params = POLY1_FOCAL_PARAMS
    function = staticmethod(poly1_focal_loss)
