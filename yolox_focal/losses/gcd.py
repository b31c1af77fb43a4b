"""Gaussian Combined Distance (Guan et al., IEEE GRSL 2025, "Gaussian Combined Distance: A Generic
Metric for Object Detection", arXiv 2510.27649), as a box loss:

    D^2 = 1/2 [ (dcx^2 + dw^2 / 4) (1 / w^2 + 1 / w_gt^2) + (dcy^2 + dh^2 / 4) (1 / h^2 + 1 / h_gt^2) ]
    L = 1 - exp(-sqrt(D^2))

Like NWD it models each box as a 2-D Gaussian and changes smoothly with position where boxes do not
overlap; unlike NWD it needs no dataset constant: each axis's Wasserstein terms are normalised by
both boxes' sizes on that axis, so the loss is the same for a pair scaled as a whole, and symmetric
in the two boxes. The distance's terms are :func:`yolox_focal.losses.gaussian.gcd_axis_terms`, written once
for this loss and the label assignment's ``gcd`` similarity; its docstring names the authors' code
and the defect of a circulating copy (one of the two one-sided terms dropped, so neither symmetric
nor the paper's). Not an IoU loss: the IoU modifiers are refused in one line, as for ``nwd``.

Needs only torch.
"""

import torch

from ._common import reduce
from .box_geometry import box_inputs
from .declare import KitLoss, register
from .gaussian import gcd_axis_terms

__all__ = ["gcd_loss", "GCDLoss"]


class _GCDLoss(torch.autograd.Function):
    """``1 - exp(-D)`` of checked ``(N, 4)`` boxes, D = sqrt(D^2) from :func:`gcd_axis_terms`, with its
    gradient in closed form: one backward of a few operations instead of autograd's graph of about
    twenty small ones (the plain formula's speed needs it; the values are the same operations).

    With ``a`` the prediction's size and ``b`` the target's on an axis, ``dc`` and ``ds`` the
    differences of centre and size, ``A = dc^2 + ds^2 / 4`` and ``I = 1 / (a^2 + EPS) + 1 / (b^2 +
    EPS)``: ``dL/dD = exp(-D)``, ``dD/dD^2 = 1 / (2 D)`` (0 where D^2 is clamped), and ``dD^2`` is
    ``dc I`` per centre, ``ds I / 4 - A a / (a^2 + EPS)^2`` per predicted size and ``-ds I / 4 - A b
    / (b^2 + EPS)^2`` per target size (the target's centre: minus the prediction's)."""

    @staticmethod
    def forward(ctx, pred, target):
        # x and y as contiguous rows, (4, N): each step one operation on both axes, no reduction
        pred_t, target_t = pred.t().contiguous(), target.t().contiguous()
        diff = pred_t - target_t
        per_axis, inverse_p, inverse_t = gcd_axis_terms(diff[:2], diff[2:], pred_t[2:], target_t[2:])
        terms = per_axis * (inverse_p + inverse_t)
        squared = (terms[0] + terms[1]) / 2
        tiny = torch.finfo(squared.dtype).tiny
        distance = squared.clamp(min=tiny).sqrt()
        similarity = torch.exp(-distance)
        ctx.save_for_backward(diff, per_axis, inverse_p, inverse_t, pred_t[2:], target_t[2:],
                              similarity / (2 * distance) * (squared > tiny))
        return 1 - similarity

    @staticmethod
    def backward(ctx, grad):
        diff, per_axis, inverse_p, inverse_t, size_p, size_t, scale = ctx.saved_tensors
        inverse = inverse_p + inverse_t
        by_d2 = grad * scale  # dL/dD^2 per pair
        centre = diff[:2] * inverse * by_d2  # D^2 = sum over axes of A I / 2
        size_term = diff[2:] * inverse / 4
        grad_pred = grad_target = None
        if ctx.needs_input_grad[0]:
            grad_pred = torch.cat([centre, (size_term - per_axis * size_p * inverse_p.square()) * by_d2]).t()
        if ctx.needs_input_grad[1]:
            grad_target = torch.cat([-centre, (-size_term - per_axis * size_t * inverse_t.square()) * by_d2]).t()
        return grad_pred, grad_target


def gcd_loss(pred, target, reduction="none"):
    """``1 - exp(-sqrt(D^2))`` of ``(..., 4)`` ``(cx, cy, w, h)`` boxes, one per box (see the module
    docstring). The gradient reaches the prediction's centre and, through both the difference and its
    own size in the normaliser, its width and height; identical boxes get loss ~0 and gradient 0."""
    pred, target, shape = box_inputs("gcd loss", pred, target, reduction)
    return reduce(_GCDLoss.apply(pred, target).reshape(shape), reduction)


@register
class GCDLoss(KitLoss):
    """1 - GCD similarity (Guan et al. 2025); see :func:`gcd_loss`."""

    name = "gcd"
    branches = ("box",)
    params = {}
    function = staticmethod(gcd_loss)
