"""The objectness loss a head uses: focal or BCE, times a weight. Needs only torch, so the patch
series (tools/make_patches.py) copies this module, with losses.py, into YOLOX's losses.py."""

import torch.nn.functional as F
from torch import nn

from .losses import check_focal_args, focal_loss

__all__ = ["ObjectnessLoss", "check_objectness_args", "OBJ_LOSSES"]

OBJ_LOSSES = ("focal", "bce")


def check_objectness_args(obj_loss, focal_gamma, focal_alpha, obj_loss_weight):
    """Raise ``ValueError`` naming the first bad objectness setting and what is allowed."""
    if obj_loss not in OBJ_LOSSES:
        raise ValueError(f"obj_loss must be one of {OBJ_LOSSES}, got {obj_loss!r}")
    check_focal_args(focal_gamma, focal_alpha)
    if isinstance(obj_loss_weight, bool) or not isinstance(obj_loss_weight, (int, float)) or not (
        0 < obj_loss_weight < float("inf")
    ):
        raise ValueError(f"obj_loss_weight must be a finite number > 0, got {obj_loss_weight!r}")


class ObjectnessLoss(nn.Module):
    """Element-wise objectness loss: ``obj_loss_weight`` times focal loss or plain BCE."""

    def __init__(self, obj_loss="focal", focal_gamma=1.5, focal_alpha=0.25, obj_loss_weight=1.0):
        super().__init__()
        check_objectness_args(obj_loss, focal_gamma, focal_alpha, obj_loss_weight)
        self.obj_loss = obj_loss
        self.focal_gamma = focal_gamma
        self.focal_alpha = focal_alpha
        self.obj_loss_weight = obj_loss_weight

    def forward(self, pred, target):
        if self.obj_loss == "focal":
            loss = focal_loss(pred, target, self.focal_gamma, self.focal_alpha)
        else:
            loss = F.binary_cross_entropy_with_logits(pred, target, reduction="none")
        return loss if self.obj_loss_weight == 1 else loss * self.obj_loss_weight

    def extra_repr(self):
        if self.obj_loss == "bce":
            return f"obj_loss='bce', obj_loss_weight={self.obj_loss_weight}"
        return (
            f"obj_loss='focal', focal_gamma={self.focal_gamma}, focal_alpha={self.focal_alpha}, "
            f"obj_loss_weight={self.obj_loss_weight}"
        )
