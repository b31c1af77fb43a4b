"""Powerful-IoU (Liu et al. 2024, "Powerful-IoU: More straightforward and faster bounding box
regression loss with a nonmonotonic focusing mechanism", Neural Networks 170), v1 and v2, on
YOLOX's ``(cx, cy, w, h)`` boxes:

    P        = (|dx1| + |dx2|) / (4 w_gt) + (|dy1| + |dy2|) / (4 h_gt)
    piou     L = 1 - IoU + (1 - exp(-P^2)) = 2 - IoU - exp(-P^2)
    piou_v2  L_v2 = u(lambda q)* L,   q = exp(-P),   u(x) = 3 x exp(-x^2)

dx1, dx2 (dy1, dy2) are the distances between the matching left and right (top and bottom) edges of
the prediction and its target, and P is normalised by the target's width and height: the penalty
depends on the target's size only, so it does not shrink as the prediction grows (the circulating
copies divide by whichever box their function receives second, the prediction in some call sites).

v2's weight u is non-monotonic in q, largest for predictions of medium quality (q = 1 / (lambda
sqrt 2), lambda 1.3 the paper's). * marks it out of the graph: attached, dL_v2/dP turns negative
for far predictions (about -0.9 at P = 2, where u falls faster than L rises), and gradient descent
would push them further away. Detached, u weighs each pair's gradient as the paper describes its
focusing mechanism, and no pair is rewarded for moving away (tests/test_box_loss_direction.py).

Both are of the form ``1 - IoU + penalty``: Inner-IoU and Focaler-IoU enter as ``L + IoU - IoU'``,
and v2's weight multiplies the whole modified loss, ``u (L + IoU - IoU')``.

Needs only torch.
"""

import torch

from ._common import EPS, Param
from .box_geometry import PairGeometry, box_inputs, geometry_loss
from .declare import KitLoss, penalty_form, register

__all__ = ["piou_loss", "piou_v2_loss", "PIoULoss", "PIoUv2Loss", "PIOU_V2_PARAMS"]

PIOU_V2_PARAMS = {"lam": Param(1.3, 0, low_open=True, doc="lambda, where the focusing weight peaks: "
                                                         "q = exp(-P) = 1 / (lambda sqrt 2) (paper: 1.3)")}


def _edge_penalty(g):
    """P: the matching edges' distances over the target's width and height. A zero side is raised to
    EPS: P is then huge and exp(-P^2) 0 with a zero gradient, not inf * 0."""
    edges = (g.p_lo - g.t_lo).abs() + (g.p_hi - g.t_hi).abs()
    return (edges / (4 * g.t_size.clamp(min=EPS))).sum(0)


def _piou(g, penalty=None):
    """2 - IoU - exp(-P^2); ``penalty``: P where it is computed already."""
    penalty = _edge_penalty(g) if penalty is None else penalty
    return 2 - g.iou - torch.exp(-penalty.square())


def _focusing(penalty, lam):
    """u(lambda q) = 3 lambda q exp(-(lambda q)^2), q = exp(-P), out of the graph."""
    with torch.no_grad():
        x = lam * torch.exp(-penalty)
        return 3 * x * torch.exp(-x.square())


def _piou_v2(g, lam):
    """u (2 - IoU - exp(-P^2)), P computed once for the weight and the loss."""
    penalty = _edge_penalty(g)
    return _focusing(penalty, lam) * _piou(g, penalty)


def piou_loss(pred, target, reduction="none"):
    """Powerful-IoU loss ``2 - IoU - exp(-P^2)`` of ``(..., 4)`` ``(cx, cy, w, h)`` boxes, one per
    box (see the module docstring)."""
    return geometry_loss("piou loss", _piou, pred, target, reduction)


def piou_v2_loss(pred, target, lam=1.3, reduction="none"):
    """PIoU v2: ``u(lambda exp(-P)) (2 - IoU - exp(-P^2))``, the weight u out of the graph."""
    PIOU_V2_PARAMS["lam"].check("piou_v2 lam", lam)
    return geometry_loss("piou_v2 loss", lambda g: _piou_v2(g, lam), pred, target, reduction)


@register
class PIoULoss(KitLoss):
    """Powerful-IoU (Liu et al. 2024); see :func:`piou_loss`."""

    name, branches, function = "piou", ("box",), staticmethod(piou_loss)
    with_modified_iou = penalty_form


@register
class PIoUv2Loss(KitLoss):
    """Powerful-IoU v2 (Liu et al. 2024); see :func:`piou_v2_loss`."""

    name, branches, params = "piou_v2", ("box",), PIOU_V2_PARAMS
    function = staticmethod(piou_v2_loss)

    def with_modified_iou(self, pred, target, iou, modified_iou, **context):
        """``u (L + IoU - IoU')``: the focusing weight over the whole modified loss, so that it
        weighs the modifiers' term as it weighs the loss."""
        flat_pred, flat_target, shape = box_inputs("piou_v2 loss", pred, target, "none")
        g = PairGeometry(flat_pred, flat_target)
        penalty = _edge_penalty(g)
        weight = _focusing(penalty, self.values["lam"]).reshape(shape)
        return weight * (_piou(g, penalty).reshape(shape) + iou - modified_iou)
