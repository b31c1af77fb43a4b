"""The loss kit: element-wise losses for objectness and classification, IoU-family box losses.

Every loss is declared once as a registered ``KitLoss`` (``declare.py``): the module the kit builds
for a branch, with a plain function beside it for the stateless ones (torchvision's style). Every
element-wise loss function takes ``(pred, target, <its parameters>, reduction="none")`` with logits
``pred`` and targets in [0, 1] of the same shape, checks its arguments (a ``ValueError`` naming the
bad one and its range), computes float16/bfloat16 input in float32 and treats the target as a
constant; every box loss takes ``(..., 4)`` ``(cx, cy, w, h)`` boxes.

A loss module registers its losses when it is imported, and the order of registration is the order
in which the settings, the README's settings table and the "must be one of" errors list a branch's
losses. That order is written down here, once: the loss modules imported in the line below, YOLOX's
own losses first, then the others in the order they joined the kit. A new family of losses goes in
a module of its own, added at the end of that line.

Needs only torch: the patch series copies these modules into a YOLOX tree.
"""

from . import bce, focal, iou, alpha_iou, wise_iou, mpdiou, shape_iou, nwd, slide, poly, piou, mal, atfl, gcd, uiou  # noqa: F401 (in this order)
from .alpha_iou import AlphaIoULoss, alpha_iou_loss
from .bce import BCE_BLUR_PARAMS, SMOOTHING, BCEBlurLoss, BCELoss, bce_blur_loss, bce_loss, smooth_targets
from .declare import LOSSES, KitLoss, Param, losses_for, register
from .focal import (FOCAL_PARAMS, QUALITY_FOCAL_PARAMS, VARIFOCAL_PARAMS, FocalLoss, QualityFocalLoss,
                    VarifocalLoss, focal_loss, quality_focal_loss, varifocal_loss)
from .iou import (CIoULoss, DIoULoss, EIoULoss, GIoULoss, IoULoss, SIoULoss, box_iou_loss, ciou_loss, diou_loss,
                  eiou_loss, giou_loss, iou_loss, siou_loss)
from .mpdiou import MPDIoULoss, mpdiou_loss
from .nwd import NWDLoss, nwd_loss
from .poly import Poly1FocalLoss, Poly1Loss, poly1_focal_loss, poly1_loss
from .shape_iou import ShapeIoULoss, shape_iou_loss
from .slide import SlideEMALoss, SlideLoss, slide_loss
from .wise_iou import WIoULoss, WIoUv3Loss, wiou_loss, wiou_v3_loss
from .piou import PIoULoss, PIoUv2Loss, piou_loss, piou_v2_loss
from .mal import MALLoss, mal_loss
from .atfl import ATFLLoss, atfl_loss
from .gcd import GCDLoss, gcd_loss
from .uiou import UIoULoss, uiou_loss

__all__ = [
    "focal_loss", "FocalLoss", "quality_focal_loss", "QualityFocalLoss", "varifocal_loss", "VarifocalLoss",
    "bce_loss", "BCELoss", "bce_blur_loss", "BCEBlurLoss", "smooth_targets",
    "iou_loss", "IoULoss", "giou_loss", "GIoULoss", "diou_loss", "DIoULoss", "ciou_loss", "CIoULoss", "eiou_loss",
    "EIoULoss", "siou_loss", "SIoULoss", "box_iou_loss",
    "KitLoss", "Param", "register", "LOSSES", "losses_for",
    "FOCAL_PARAMS", "QUALITY_FOCAL_PARAMS", "VARIFOCAL_PARAMS", "BCE_BLUR_PARAMS", "SMOOTHING",
    "alpha_iou_loss", "AlphaIoULoss", "wiou_loss", "WIoULoss", "wiou_v3_loss", "WIoUv3Loss", "mpdiou_loss",
    "MPDIoULoss", "shape_iou_loss", "ShapeIoULoss", "nwd_loss", "NWDLoss", "slide_loss", "SlideLoss",
    "SlideEMALoss", "poly1_loss", "Poly1Loss", "poly1_focal_loss", "Poly1FocalLoss", "piou_loss", "PIoULoss",
    "piou_v2_loss", "PIoUv2Loss", "mal_loss", "MALLoss", "atfl_loss", "ATFLLoss", "gcd_loss", "GCDLoss", "uiou_loss", "UIoULoss",
]
