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
    """``1 - exp(-D)`` of checked ``(N, 4)`` boxes, D = sqrt(D^2) from :func:`gcd_axis_terms`, with
    its gradient in closed form, computed in the forward pass on each coordinate's column (the
    backward only scales it): a few dozen operations in one pass instead of autograd's graph of about
    forty small nodes (the plain formula's speed needs it; the values are the same formula's).

    Per axis, with ``a`` the prediction's size and ``b`` the target's, ``dc`` and ``ds`` the
    differences of centre and size, ``A = dc^2 + ds^2 / 4``, ``i_a = 1 / (a^2 + EPS)``, ``i_b``
    likewise and ``I = i_a + i_b`` (D^2 is half the sum over the axes of ``A I``): ``dL/dD =
    exp(-D)``, ``dD/dD^2 = 1 / (2 D)`` (0 where D^2 is clamped), and ``dD^2`` is ``dc I`` per
    centre, ``ds I / 4 - A a i_a^2`` per predicted size; for the target, ``-dc I`` and ``-ds I / 4 -
    A b i_b^2``."""

    @staticmethod
    def forward(ctx, pred, target):
        (px, py, pw, ph), (tx, ty, tw, th) = pred.unbind(1), target.unbind(1)
        dx, dy, dw, dh = px - tx, py - ty, pw - tw, ph - th
        ax, ipw, itw = gcd_axis_terms(dx, dw, pw, tw)
        ay, iph, ith = gcd_axis_terms(dy, dh, ph, th)
        ix, iy = ipw + itw, iph + ith
        squared = (ax * ix).addcmul_(ay, iy).mul_(0.5)
        tiny = torch.finfo(squared.dtype).tiny
        distance = squared.clamp(min=tiny).sqrt_()
        similarity = torch.exp(-distance)
        scale = (similarity / (2 * distance)).mul_(squared > tiny)[:, None]  # dL/dD^2
        grads = [None, None]
        for k, (size_x, size_y, inverse_x, inverse_y, sign) in enumerate(((pw, ph, ipw, iph, 1.0),
                                                                         (tw, th, itw, ith, -1.0))):
            if ctx.needs_input_grad[k]:
                grads[k] = torch.stack([dx * ix, dy * iy,
                                        (dw * ix).mul_(0.25).sub_(ax * size_x * inverse_x.square(), alpha=sign),
                                        (dh * iy).mul_(0.25).sub_(ay * size_y * inverse_y.square(), alpha=sign)],
                                       1).mul_(scale * sign)
        ctx.kept = [g is not None for g in grads]
        ctx.save_for_backward(*(g for g in grads if g is not None))
        return 1 - similarity

    @staticmethod
    def backward(ctx, grad):
        saved = iter(ctx.saved_tensors)
        return tuple(grad[:, None] * next(saved) if kept else None for kept in ctx.kept)


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
