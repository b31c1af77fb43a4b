"""A loss kit: the loss each branch of a YOLOX head computes, built from the declared settings.

``LossKit(**settings)`` holds three modules, ``obj``, ``cls`` and ``box``, each called the way
YOLOX's ``get_losses`` calls its own loss modules (element-wise, before the sum and the division by
the number of foreground anchors). With no setting given it is YOLOX's: BCE-with-logits for
objectness and classification, YOLOX's IoU loss for boxes, all weights 1. It has no parameters or
buffers, so a head that carries one has YOLOX's state dict.

Needs only torch: the patch series copies this module into a YOLOX tree.
"""

import torch.nn.functional as F
from torch import nn

from .bce import smooth_targets
from .iou import box_iou_loss
from .settings import BRANCHES, ELEMENTWISE_LOSSES, SETTINGS, check_settings, yolox_settings

__all__ = ["LossKit", "BranchLoss", "BoxLoss"]


class BranchLoss(nn.Module):
    """An objectness or classification loss: the chosen element-wise loss with its parameters,
    on targets smoothed by ``label_smoothing``, times ``weight``."""

    def __init__(self, branch, loss, params, weight=1.0, label_smoothing=0.0):
        super().__init__()
        self.branch, self.loss, self.params = branch, loss, params
        self.weight, self.label_smoothing = weight, label_smoothing
        self.function = ELEMENTWISE_LOSSES[loss][0]

    def forward(self, pred, target):
        target = smooth_targets(target, self.label_smoothing)
        if self.function is None:  # YOLOX's own BCEWithLogitsLoss(reduction="none"), as a function
            loss = F.binary_cross_entropy_with_logits(pred, target, reduction="none")
        else:
            loss = self.function(pred, target, **self.params)
        return loss if self.weight == 1 else loss * self.weight

    def extra_repr(self):
        parts = [repr(self.loss)] + [f"{k}={v}" for k, v in self.params.items()]
        if self.label_smoothing:
            parts.append(f"label_smoothing={self.label_smoothing}")
        return ", ".join(parts + [f"weight={self.weight}"])


class BoxLoss(nn.Module):
    """The box loss: an IoU-family loss on matched (cx, cy, w, h) pairs, times ``weight``.
    YOLOX multiplies the summed box loss by 5 after this (its ``reg_weight``)."""

    def __init__(self, kind="iou", weight=1.0):
        super().__init__()
        self.kind, self.weight = kind, weight

    def forward(self, pred, target):
        loss = box_iou_loss(pred, target, self.kind)
        return loss if self.weight == 1 else loss * self.weight

    def extra_repr(self):
        return f"{self.kind!r}, weight={self.weight}"


class LossKit(nn.Module):
    """The three branch losses for the given settings (see ``yolox_focal.losses.settings``); a setting
    not given takes YOLOX's value. Bad settings raise one-line ``ValueError``s."""

    def __init__(self, **settings):
        super().__init__()
        check_settings(settings)
        self.settings = dict(yolox_settings(), **settings)
        values = self.settings
        for branch in ("obj", "cls"):
            loss = values[f"{branch}_loss"]
            params = {s.arg: values[s.name] for s in SETTINGS if s.branch == branch and s.loss == loss}
            smoothing = values.get(f"{branch}_label_smoothing", 0.0)
            setattr(self, branch, BranchLoss(branch, loss, params, values[f"{branch}_loss_weight"], smoothing))
        self.box = BoxLoss(values["box_loss"], values["box_loss_weight"])
        self.input_size = None

    def start_batch(self, imgs):
        """Called by the head before each batch's losses with the batch's images ``(B, C, H, W)``
        (None where the YOLOX does not hand them over): losses that read the training input size
        (``needs = ("input_size",)``) take it from here, as multiscale training changes it."""
        self.input_size = None if imgs is None else tuple(imgs.shape[-2:])

    def changed(self):
        """{setting: value} for the settings that differ from YOLOX's."""
        yolox = yolox_settings()
        return {k: v for k, v in self.settings.items() if v != yolox[k]}
