"""Unified-IoU (Luo et al. 2024, "Unified-IoU: For High-Quality Object Detection", arXiv 2408.06636),
on YOLOX's ``(cx, cy, w, h)`` boxes:

    r        the ratio, from ``start`` (2) at the start of training to ``end`` (0.5) at its end
    B_r      a box with its width and height times r, about its centre (the prediction's and the target's)
    L        (1 - IoU_r ** gamma)* CIoU_loss(B_r, B_r_gt),   gamma 0.5

IoU_r is the IoU of the scaled pair; * marks it out of the graph. The paper's three parts: the
"Focal Box" (both boxes scaled by r about their centres, which changes the IoU and so the loss of
every pair by its quality), the annealing of r from above 1 to below 1 over training (in the
paper's words, shifting the attention from low-quality predictions early, for fast convergence, to
high-quality ones late, for precise boxes), and the focal weight ``1 - IoU ** gamma``, which the
authors' code applies to the CIoU loss of the scaled boxes.

Where the paper's description leaves a detail open, the kit follows the authors' code
(github.com/lxj-drifter/UIOU_files, ``metrics.py`` and ``loss.py``):

- the weight's IoU is that of the scaled boxes (their intersection and union are computed after the
  scaling), not of the boxes as predicted;
- the schedule: their default is linear in the epoch, ``r = 2 - 0.005 epoch``, written for 300
  epochs; ``cosine`` (``1.25 + 0.75 cos(pi epoch / 300)``) and ``fraction`` (``200 / (epoch +
  100)``) are their alternatives. Here the epoch is replaced by the training progress p, 0 at the
  first iteration and 1 at the end (``epoch / 300`` in their terms, counted per iteration), and
  their constants by ``start`` and ``end``: linear ``start + (end - start) p``, cosine
  ``end + (start - end)(1 + cos(pi p)) / 2``, fraction (harmonic) ``1 / (1 / start + (1 / end -
  1 / start) p)``; at 2 and 0.5 each is theirs exactly.

The loss needs the training progress (``needs = ("progress",)``): the package's trainers hand it
over before each iteration (``LossKit.set_progress``, called by the CPU trainer and by the trainer
an exp's ``get_trainer`` returns). Without it, a training step stops at once with one line saying
so; in eval mode, where none was given, the loss takes the end of training (p = 1), the ratio the
trained model ends with.

The Inner-IoU and Focaler-IoU modifiers act on the scaled pair, in the place of its IoU as in CIoU
(``L + IoU - IoU'``, under the same weight): Inner-IoU's ratio multiplies r, Focaler-IoU maps the
scaled pair's IoU. The Wise focusing and Focal-EIoU's weight, like every weight of the kit, read the
plain IoU of the boxes as predicted (box_weights.py).

Needs only torch.
"""

import math

import torch

from ._common import Param, check_params, reduce
from .box_geometry import PairGeometry, box_inputs, modified_iou
from .declare import PROGRESS, KitLoss, register
from .iou import _ciou  # CIoU of a pair's geometry, written once in iou.py

__all__ = ["uiou_loss", "uiou_ratio", "UIoULoss", "UIOU_PARAMS"]

UIOU_PARAMS = {
    "start": Param(2.0, 0, low_open=True, doc="the ratio both boxes are scaled by about their centres at the "
                   "start of training (authors: 2)"),
    "end": Param(0.5, 0, low_open=True, doc="the ratio at the end of training, and in eval mode (authors: 0.5)"),
    "schedule": Param("linear", choices=("linear", "cosine", "fraction"), doc="how the ratio goes from start "
                      "to end over the training progress p: linear, cosine (half a period) or fraction "
                      "(harmonic: 1 / r linear in p); the authors' default is linear"),
    "gamma": Param(0.5, 0, low_open=True, doc="exponent of the weight 1 - IoU ** gamma, the IoU of the scaled "
                   "boxes, out of the graph (authors: 0.5)"),
}


def uiou_ratio(progress, start=2.0, end=0.5, schedule="linear"):
    """The ratio r at the training progress ``progress`` (0 to 1) on the ``schedule`` from ``start`` to
    ``end`` (see the module docstring)."""
    PROGRESS.check("uiou progress", progress)
    if schedule == "linear":
        return start + (end - start) * progress
    if schedule == "cosine":
        return end + (start - end) * (1 + math.cos(math.pi * progress)) / 2
    if schedule == "fraction":
        return 1 / (1 / start + (1 / end - 1 / start) * progress)
    UIOU_PARAMS["schedule"].check("uiou schedule", schedule)


def _scaled(boxes, ratio):
    """``(N, 4)`` boxes with width and height times ``ratio``, the centres kept."""
    return boxes * boxes.new_tensor([1.0, 1.0, ratio, ratio])


def _weight(iou, gamma):
    """1 - IoU ** gamma, out of the graph (0 for identical boxes, 1 for boxes apart)."""
    with torch.no_grad():
        return 1 - iou.clamp(min=0).pow(gamma)


def _flat_uiou(pred, target, ratio, gamma, modifiers=None):
    """Per pair of checked ``(N, 4)`` boxes: the weighted CIoU loss of the scaled pair and, with
    ``modifiers`` (Inner/Focaler options), their IoU' in the place of the scaled pair's IoU."""
    pred, target = _scaled(pred, ratio), _scaled(target, ratio)
    g = PairGeometry(pred, target)
    loss = _ciou(g)
    if modifiers:
        loss = loss + (g.iou - modified_iou(pred, target, **modifiers)[1])
    return _weight(g.iou, gamma) * loss


def uiou_loss(pred, target, progress, start=2.0, end=0.5, schedule="linear", gamma=0.5, reduction="none"):
    """Unified-IoU loss of ``(..., 4)`` ``(cx, cy, w, h)`` boxes at the training ``progress`` (0 to 1),
    one per box: ``(1 - IoU_r ** gamma)* CIoU_loss`` of both boxes scaled by the ratio r about their
    centres (see the module docstring)."""
    check_params("uiou", UIOU_PARAMS, dict(start=start, end=end, schedule=schedule, gamma=gamma))
    ratio = uiou_ratio(progress, start, end, schedule)
    pred, target, shape = box_inputs("uiou loss", pred, target, reduction)
    return reduce(_flat_uiou(pred, target, ratio, gamma).reshape(shape), reduction)


@register
class UIoULoss(KitLoss):
    """Unified-IoU (Luo et al. 2024); see :func:`uiou_loss`. Reads the training progress, which the
    trainers hand over (``LossKit.set_progress``) or a caller passes as ``progress=``."""

    name, branches, params = "uiou", ("box",), UIOU_PARAMS
    function = staticmethod(uiou_loss)
    needs = ("progress",)

    def ratio(self, progress):
        """The ratio both boxes are scaled by at ``progress``."""
        return uiou_ratio(progress, self.values["start"], self.values["end"], self.values["schedule"])

    def with_modified_iou(self, pred, target, iou, modified_iou, progress=None):
        """``w (L + IoU_r - IoU_r')``: the modifiers on the scaled pair (Inner-IoU's ratio times r,
        Focaler-IoU's mapping of IoU_r), under the same weight; ``iou`` and ``modified_iou``, of the
        boxes as predicted, are left to the weights of box_weights.py."""
        flat_pred, flat_target, shape = box_inputs("uiou loss", pred, target, "none")
        loss = _flat_uiou(flat_pred, flat_target, self.ratio(progress), self.values["gamma"], self.modifiers)
        return loss.reshape(shape)
