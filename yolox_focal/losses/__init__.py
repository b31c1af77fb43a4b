"""The loss kit: element-wise losses for objectness and classification, IoU-family box losses.

Every loss is declared once as a registered ``KitLoss`` (``declare.py``): the module the kit builds
for a branch, with a plain function beside it for the stateless ones (torchvision's style). Every
element-wise loss function takes ``(pred, target, <its parameters>, reduction="none")`` with logits
``pred`` and targets in [0, 1] of the same shape, checks its arguments (a ``ValueError`` naming the
bad one and its range), computes float16/bfloat16 input in float32 and treats the target as a
constant; every box loss takes ``(..., 4)`` ``(cx, cy, w, h)`` boxes.

A loss module registers when its module is imported: the imports below are the kit's losses (a new
family of losses goes in a module of its own here, imported below).

Needs only torch: the patch series copies these modules into a YOLOX tree.
"""

from .bce import BCE_BLUR_PARAMS, SMOOTHING, BCEBlurLoss, BCELoss, bce_blur_loss, bce_loss, smooth_targets
from .declare import LOSSES, KitLoss, Param, losses_for, register
from .focal import (FOCAL_PARAMS, QUALITY_FOCAL_PARAMS, VARIFOCAL_PARAMS, FocalLoss, QualityFocalLoss,
                    VarifocalLoss, focal_loss, quality_focal_loss, varifocal_loss)
from .iou import (CIoULoss, DIoULoss, EIoULoss, GIoULoss, IoULoss, SIoULoss, box_iou_loss, ciou_loss, diou_loss,
                  eiou_loss, giou_loss, iou_loss, siou_loss)

__all__ = [
    "focal_loss", "FocalLoss", "quality_focal_loss", "QualityFocalLoss", "varifocal_loss", "VarifocalLoss",
    "bce_loss", "BCELoss", "bce_blur_loss", "BCEBlurLoss", "smooth_targets",
    "iou_loss", "IoULoss", "giou_loss", "GIoULoss", "diou_loss", "DIoULoss", "ciou_loss", "CIoULoss", "eiou_loss",
    "EIoULoss", "siou_loss", "SIoULoss", "box_iou_loss",
    "KitLoss", "Param", "register", "LOSSES", "losses_for",
    "FOCAL_PARAMS", "QUALITY_FOCAL_PARAMS", "VARIFOCAL_PARAMS", "BCE_BLUR_PARAMS", "SMOOTHING",
]
