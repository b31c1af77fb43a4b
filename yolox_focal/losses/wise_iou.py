"""Wise-IoU (Tong et al. 2023, "Wise-IoU: Bounding Box Regression Loss with Dynamic Focusing
Mechanism"), v1 and v3, on YOLOX's ``(cx, cy, w, h)`` boxes:

    wiou      L_v1 = R (1 - IoU),   R = exp(((x - x_gt)^2 + (y - y_gt)^2) / (W_g^2 + H_g^2)*)
    wiou_v3   L_v3 = r L_v1,        r = beta / (delta alpha^(beta - delta)),
              beta = (1 - IoU)* / mean(1 - IoU)

W_g, H_g are the width and height of the smallest box enclosing both; * marks what the paper takes
out of the computational graph (the enclosing size, and beta, so r is a constant weight). The
mean is a running mean over batches (momentum m); the paper sets m = 1 - 0.05 ** (1 / (t n)) for
n batches an epoch and t the epoch where AP stops rising fast, so that the initial mean, 1, weighs
5 % after t epochs.

The defaults are the paper's (alpha 1.9, delta 3) and its authors' early momentum,
1 - 0.5 ** (1 / 7000). The authors' code has used momentum 0.01, alpha 1.7 and delta 2.7 since
their commit 9396f48 (2023-12-24): ``box_wiou_v3_alpha 1.7 box_wiou_v3_delta 2.7
box_wiou_v3_momentum 0.01`` gives those.

With Inner-IoU or Focaler-IoU, IoU' takes IoU's place in L_v1, ``R (1 - IoU')``; v3's outlier
degree beta and its running mean stay those of the plain IoU (``WIoUv3Loss.with_modified_iou``
says why).

They are two losses rather than one with a version parameter: v1 keeps no state and has no
parameters, v3 keeps the running mean and has three; one declaration each says exactly that
(no v3 settings that mean nothing for v1, and the kit saves state only where there is some).

Needs only torch.
"""

import torch

from ._common import EPS, reduce
from .box_geometry import PairGeometry, box_inputs
from .box_weights import WISE_PARAMS, wise_v3_weight
from .declare import KitLoss, register
from .running_mean import RunningMeanLoss

__all__ = ["wiou_loss", "wiou_v3_loss", "WIoULoss", "WIoUv3Loss"]

WIOU_V3_PARAMS = WISE_PARAMS  # the focusing's parameters, declared once (box_weights.py)


def _wiou_v1(pred, target):
    """(L_v1, 1 - IoU) of (N, 4) pairs; the gradient flows into ``pred`` only (``target`` is a
    constant, as YOLOX's regression targets are)."""
    return _WiseIoUv1.apply(pred, target)


class _WiseIoUv1(torch.autograd.Function):
    """Wise-IoU v1 with its gradient written in closed form: one pass without a graph, and one
    ``(N, 4)`` gradient kept for the backward pass instead of every intermediate (about twice as
    fast as autograd's chain of small ops on the CPU). The gradient is autograd's for the same
    formula wherever the formula is differentiable. Where it is not, it takes a valid subgradient:
    where two edges coincide (min and max of equal values) each side gets half, as autograd's
    ``min``/``max`` give; a zero-width overlap passes the gradient that opens it, where autograd's
    ``clamp(min=0)`` gives 0 at 0 (both lie in the subdifferential of ``max(x, 0)`` at 0)."""

    @staticmethod
    def forward(ctx, pred, target):
        g = PairGeometry(pred, target)
        inverse_enclosing_sq = g.enclosing.square_().sum(0).add_(EPS).reciprocal_()
        distance = g.offset.square().sum(0).mul_(inverse_enclosing_sq).exp_()  # R
        iou_loss = 1 - g.iou
        loss = distance * iou_loss
        ctx.mark_non_differentiable(iou_loss)
        if not ctx.needs_input_grad[0]:
            ctx.save_for_backward(None)
            return loss, iou_loss
        # L = R (1 - I / U): dL/dI = -R (1 + IoU) / U and dL/d(pred area) = R IoU / U (U: the
        # guarded union, which the pred area enters and the intersection leaves)
        per_union = distance / g.guarded_union
        d_inter = per_union * (1 + g.iou)
        d_area = per_union.mul_(g.iou)
        # through the intersection's width and height: dI/dw_i = h_i, where the overlap is not < 0
        d_overlap = g.inter_wh.flip(0).mul_(g.overlap >= 0).mul_(d_inter)
        d_hi = torch.sub(g.t_hi, g.p_hi).sign_().add_(1).mul_(0.5).mul_(d_overlap)  # min(p_hi, t_hi)
        d_lo = torch.sub(g.p_lo, g.t_lo).sign_().add_(1).mul_(0.5).mul_(d_overlap)  # max(p_lo, t_lo)
        # R's exponent rho^2 / C, with C taken out of the graph: dR/d(centre) = R 2 offset / C
        d_centre = g.offset.mul_(iou_loss.mul(distance).mul_(inverse_enclosing_sq).mul_(2))
        d_centre.sub_(d_hi).add_(d_lo)  # p_hi = centre + size / 2, p_lo = centre - size / 2
        d_size = d_hi.add_(d_lo).mul_(-0.5).addcmul_(g.p_size.flip(0), d_area)
        ctx.save_for_backward(torch.cat([d_centre, d_size]).t())
        return loss, iou_loss

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_loss, _):
        (grad,) = ctx.saved_tensors
        return grad_loss.unsqueeze(-1) * grad, None


def wiou_loss(pred, target, reduction="none"):
    """Wise-IoU v1 ``exp(rho^2 / (W_g^2 + H_g^2)*) (1 - IoU)`` of ``(..., 4)`` ``(cx, cy, w, h)``
    boxes, one per box (see the module docstring)."""
    pred, target, shape = box_inputs("wiou loss", pred, target, reduction)
    return reduce(_wiou_v1(pred, target)[0].reshape(shape), reduction)


def _distance_attention(pred, target):
    """R = exp(rho^2 / (W_g^2 + H_g^2)*) of ``(N, 4)`` pairs, the enclosing size out of the graph,
    by autograd: for the forms with a modified IoU (:class:`_WiseIoUv1` has it in closed form)."""
    g = PairGeometry(pred, target)
    return torch.exp(g.offset.square().sum(0) / (g.enclosing.square().sum(0) + EPS).detach())


def wiou_v3_loss(pred, target, mean, alpha=1.9, delta=3.0, reduction="none"):
    """Wise-IoU v3 of ``(..., 4)`` boxes against a given ``mean`` of ``1 - IoU`` (a number or a
    0-dim tensor): the stateless core of :class:`WIoUv3Loss`, which keeps that mean."""
    for key, value in (("alpha", alpha), ("delta", delta)):
        WIOU_V3_PARAMS[key].check(f"wiou_v3 {key}", value)
    pred, target, shape = box_inputs("wiou_v3 loss", pred, target, reduction)
    loss, iou_loss = _wiou_v1(pred, target)
    weight = wise_v3_weight(iou_loss, torch.as_tensor(mean, device=pred.device), alpha, delta)
    return reduce((weight * loss).reshape(shape), reduction)


@register
class WIoULoss(KitLoss):
    """Wise-IoU v1 (Tong et al. 2023); see :func:`wiou_loss`."""

    name = "wiou"
    branches = ("box",)
    params = {}
    function = staticmethod(wiou_loss)

    def with_modified_iou(self, pred, target, iou, modified_iou, **context):
        """``R (1 - IoU')``: the modified IoU in IoU's place. (``L + IoU - IoU'`` would be
        ``(R - 1)(1 - IoU) + 1 - IoU'``, still rising as the centre moves away since R >= 1, but
        not the loss of IoU' the modifiers stand for; under v3's weight r < 1 / R it falls.)"""
        flat_pred, flat_target, shape = box_inputs("wiou loss", pred, target, "none")
        return _distance_attention(flat_pred, flat_target).reshape(shape) * (1 - modified_iou)


@register
class WIoUv3Loss(RunningMeanLoss):
    """Wise-IoU v3 (Tong et al. 2023): v1 times the non-monotonic focusing weight r of each box's
    outlier degree beta, its IoU loss over the running mean of the IoU loss. The mean starts at 1,
    as in the authors' code, and each training batch moves it before it is used (see
    running_mean.py for how it is kept, saved and shared between processes)."""

    name = "wiou_v3"
    branches = ("box",)
    params = WIOU_V3_PARAMS
    initial = 1.0

    def base_loss(self, pred, target, **context):
        flat_pred, flat_target, shape = box_inputs("wiou_v3 loss", pred, target, "none")
        loss, iou_loss = _wiou_v1(flat_pred, flat_target)
        return self._focused(loss, iou_loss).reshape(shape)

    def with_modified_iou(self, pred, target, iou, modified_iou, **context):
        """``r R (1 - IoU')``: the modified IoU in IoU's place in L_v1; the outlier degree beta, and
        the running mean it is measured against, stay those of the plain IoU loss ``1 - IoU``. beta
        says how good an anchor box is, which the paper defines by its IoU; read from IoU' it would
        be the same for every pair below ``focaler_low`` and lose the ranking of the poor ones it
        exists for, and the running mean would become another statistic with each modifier setting
        (a checkpoint's mean would not carry over between them)."""
        flat_pred, flat_target, shape = box_inputs("wiou_v3 loss", pred, target, "none")
        loss = _distance_attention(flat_pred, flat_target) * (1 - modified_iou.reshape(-1))
        return self._focused(loss, 1 - iou.reshape(-1).detach()).reshape(shape)

    def _focused(self, loss, iou_loss):
        """r ``loss``, r from ``iou_loss`` (1 - IoU) against the running mean, moved by this batch."""
        mean = self.update_mean(iou_loss.sum(), iou_loss.new_full((), iou_loss.numel()))
        return wise_v3_weight(iou_loss, mean, self.values["alpha"], self.values["delta"]) * loss
