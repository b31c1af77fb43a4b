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

They are two losses rather than one with a version parameter: v1 keeps no state and has no
parameters, v3 keeps the running mean and has three; one declaration each says exactly that
(no v3 settings that mean nothing for v1, and the kit saves state only where there is some).

Needs only torch.
"""

import torch

from ._common import Number, reduce
from .box_geometry import EPS, PairGeometry, box_inputs
from .declare import KitLoss, Param, register
from .running_mean import RunningMeanLoss

__all__ = ["wiou_loss", "wiou_v3_loss", "WIoULoss", "WIoUv3Loss"]

WIOU_V3_PARAMS = {
    "alpha": Param(1.9, Number(0, low_open=True), doc="base of the focusing: with delta, where the "
                   "gradient gain peaks (paper: 1.9)"),
    "delta": Param(3.0, Number(0, low_open=True), doc="outlier degree beta whose weight r is 1 (paper: 3)"),
    # the authors' code: 1 - 0.5 ** (1 / 7000), a half-life of 7000 batches (1 - 0.05 ** (1 / (t n))
    # with t n ~ 30000: the initial mean weighs 5 % after about 30000 batches)
    "momentum": Param(1 - 0.5 ** (1 / 7000), Number(0, 1, low_open=True),
                      doc="momentum of the running mean of 1 - IoU; 1 - 0.05 ** (1 / batches) forgets "
                          "the initial 1 to 5 % in that many batches (1: each batch's own mean)"),
}


def _wiou_v1(pred, target):
    """(L_v1, 1 - IoU) of (N, 4) pairs."""
    g = PairGeometry(pred, target)
    enclosing_sq = g.enclosing.detach().square().sum(0)
    distance = torch.exp(g.offset.square().sum(0) / (enclosing_sq + EPS))
    iou_loss = 1 - g.iou
    return distance * iou_loss, iou_loss


def wiou_loss(pred, target, reduction="none"):
    """Wise-IoU v1 ``exp(rho^2 / (W_g^2 + H_g^2)*) (1 - IoU)`` of ``(..., 4)`` ``(cx, cy, w, h)``
    boxes, one per box (see the module docstring)."""
    pred, target, shape = box_inputs("wiou loss", pred, target, reduction)
    return reduce(_wiou_v1(pred, target)[0].reshape(shape), reduction)


def _focusing(iou_loss, mean, alpha, delta):
    """r = beta / (delta alpha^(beta - delta)), beta = (1 - IoU) / mean, without gradient."""
    beta = iou_loss.detach() / mean.clamp(min=EPS).to(iou_loss.dtype)
    return beta / (delta * torch.pow(alpha, beta - delta))


def wiou_v3_loss(pred, target, mean, alpha=1.9, delta=3.0, reduction="none"):
    """Wise-IoU v3 of ``(..., 4)`` boxes against a given ``mean`` of ``1 - IoU`` (a number or a
    0-dim tensor): the stateless core of :class:`WIoUv3Loss`, which keeps that mean."""
    for key, value in (("alpha", alpha), ("delta", delta)):
        WIOU_V3_PARAMS[key].check(f"wiou_v3 {key}", value)
    pred, target, shape = box_inputs("wiou_v3 loss", pred, target, reduction)
    loss, iou_loss = _wiou_v1(pred, target)
    weight = _focusing(iou_loss, torch.as_tensor(mean, device=pred.device), alpha, delta)
    return reduce((weight * loss).reshape(shape), reduction)


@register
class WIoULoss(KitLoss):
    """Wise-IoU v1 (Tong et al. 2023); see :func:`wiou_loss`."""

    name = "wiou"
    branches = ("box",)
    params = {}
    function = staticmethod(wiou_loss)
    iou_based = True


@register
class WIoUv3Loss(RunningMeanLoss):
    """Wise-IoU v3 (Tong et al. 2023): v1 times the non-monotonic focusing weight r of each box's
    outlier degree beta, its IoU loss over the running mean of the IoU loss. The mean starts at 1,
    as in the authors' code, and each training batch moves it before it is used (see
    running_mean.py for how it is kept, saved and shared between processes)."""

    name = "wiou_v3"
    branches = ("box",)
    params = WIOU_V3_PARAMS
    iou_based = True
    initial = 1.0

    def forward(self, pred, target, **context):
        flat_pred, flat_target, shape = box_inputs("wiou_v3 loss", pred, target, "none")
        loss, iou_loss = _wiou_v1(flat_pred, flat_target)
        mean = self.update_mean(iou_loss.sum(), iou_loss.new_full((), iou_loss.numel()))
        weight = _focusing(iou_loss, mean, self.values["alpha"], self.values["delta"])
        return (weight * loss).reshape(shape)
