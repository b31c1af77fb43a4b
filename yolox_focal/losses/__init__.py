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
# The newer losses, each registered in declare.LOSSES on import; imported in the order the settings
# list them (registration order).
from .alpha_iou import AlphaIoULoss, alpha_iou_loss  # isort: skip
from .wise_iou import WIoULoss, WIoUv3Loss, wiou_loss, wiou_v3_loss  # isort: skip
from .mpdiou import MPDIoULoss, mpdiou_loss  # isort: skip
from .shape_iou import ShapeIoULoss, shape_iou_loss  # isort: skip
from .nwd import NWDLoss, nwd_loss  # isort: skip
from .slide import SlideEMALoss, SlideLoss, slide_loss  # isort: skip
from .poly import Poly1FocalLoss, Poly1Loss, poly1_focal_loss, poly1_loss  # isort: skip

__all__ = [
    "focal_loss", "FocalLoss", "quality_focal_loss", "QualityFocalLoss", "varifocal_loss", "VarifocalLoss",
    "bce_loss", "BCELoss", "bce_blur_loss", "BCEBlurLoss", "smooth_targets",
    "iou_loss", "IoULoss", "giou_loss", "GIoULoss", "diou_loss", "DIoULoss", "ciou_loss", "CIoULoss", "eiou_loss",
    "EIoULoss", "siou_loss", "SIoULoss", "box_iou_loss",
    "KitLoss", "Param", "register", "LOSSES", "losses_for",
    "FOCAL_PARAMS", "QUALITY_FOCAL_PARAMS", "VARIFOCAL_PARAMS", "BCE_BLUR_PARAMS", "SMOOTHING",
    "alpha_iou_loss", "AlphaIoULoss", "wiou_loss", "WIoULoss", "wiou_v3_loss", "WIoUv3Loss", "mpdiou_loss",
    "MPDIoULoss", "shape_iou_loss", "ShapeIoULoss", "nwd_loss", "NWDLoss", "slide_loss", "SlideLoss",
    "SlideEMALoss", "poly1_loss", "Poly1Loss", "poly1_focal_loss", "Poly1FocalLoss",
]
