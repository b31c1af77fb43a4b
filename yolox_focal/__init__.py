"""A loss kit for YOLOX: focal objectness and a choice of loss for every branch, as a package."""

try:
    import yolox  # noqa: F401
except ImportError:
    raise ImportError(
        "yolox_focal needs YOLOX: run 'pip install --no-deps --no-build-isolation yolox==0.3.0' "
        "after torch, or 'bash tools/setup.sh' from this repository"
    ) from None

from .exp import FocalExp, FocalExpMixin
from .head import FocalYOLOXHead, UnsupportedYOLOXError
from .kit import LossKit
from .losses import (BCEBlurLoss, BoxIoULoss, FocalLoss, QualityFocalLoss, VarifocalLoss, bce_blur_loss,
                     box_iou_loss, focal_loss, quality_focal_loss, varifocal_loss)
from .settings import SETTINGS, default_settings, yolox_settings

__version__ = "0.1.0"

__all__ = [
    "focal_loss", "FocalLoss", "quality_focal_loss", "QualityFocalLoss", "varifocal_loss",
    "VarifocalLoss", "bce_blur_loss", "BCEBlurLoss", "box_iou_loss", "BoxIoULoss",
    "LossKit", "FocalYOLOXHead", "UnsupportedYOLOXError", "FocalExpMixin", "FocalExp",
    "SETTINGS", "default_settings", "yolox_settings",
]
