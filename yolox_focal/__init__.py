"""A loss kit for YOLOX: focal objectness and a choice of loss for every branch, as a package."""

import importlib

from . import flavour

flavour.flavour()  # without YOLOX, say in one line how to install it

__version__ = "0.1.0"

# Imported on first use, so that the tools' modules (cli, cpu, flavour) load without the head's
# YOLOX classes.
_EXPORTS = {
    **dict.fromkeys(["focal_loss", "FocalLoss", "quality_focal_loss", "QualityFocalLoss", "varifocal_loss",
                     "VarifocalLoss", "bce_blur_loss", "BCEBlurLoss", "box_iou_loss", "BoxIoULoss"], ".losses"),
    "LossKit": ".kit",
    "FocalYOLOXHead": ".head",
    "UnsupportedYOLOXError": ".head",
    "FocalExpMixin": ".exp",
    "FocalExp": ".exp",
    **dict.fromkeys(["SETTINGS", "default_settings", "yolox_settings"], ".settings"),
}

__all__ = list(_EXPORTS)


def __getattr__(name):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name], __name__), name)
