"""The loss kit: element-wise losses for objectness and classification, IoU-family box losses.

Every element-wise loss takes ``(pred, target, <its parameters>, reduction="none")`` with logits
``pred`` and targets in [0, 1] of the same shape, checks its arguments (a ``ValueError`` naming the
bad one and its range), computes float16/bfloat16 input in float32 and treats the target as a
constant. Each has a thin module form that takes the same arguments.

Needs only torch: the patch series copies these modules into a YOLOX tree.
"""

from .bce import BCE_BLUR_PARAMS, SMOOTHING, BCEBlurLoss, bce_blur_loss, smooth_targets
from .focal import (FOCAL_PARAMS, QUALITY_FOCAL_PARAMS, VARIFOCAL_PARAMS, FocalLoss, QualityFocalLoss,
                    VarifocalLoss, focal_loss, quality_focal_loss, varifocal_loss)
from .iou import BOX_LOSS_KINDS, BoxIoULoss, box_iou_loss

__all__ = [
    "focal_loss", "FocalLoss", "quality_focal_loss", "QualityFocalLoss", "varifocal_loss",
    "VarifocalLoss", "bce_blur_loss", "BCEBlurLoss", "box_iou_loss", "BoxIoULoss", "smooth_targets",
    "BOX_LOSS_KINDS", "FOCAL_PARAMS", "QUALITY_FOCAL_PARAMS", "VARIFOCAL_PARAMS", "BCE_BLUR_PARAMS",
    "SMOOTHING",
]
