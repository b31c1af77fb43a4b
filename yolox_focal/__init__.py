"""A loss kit for YOLOX: focal objectness and a choice of loss for every branch, as a package.

The package has three layers:

- ``yolox_focal.losses``: the loss core (every loss, the settings, the loss kit). Needs only torch.
- ``yolox_focal.adapter``: the YOLOX glue (head, exp mixin, the exp's settings hook, flavours,
  pixeltable-yolox configs). Needs an installed YOLOX; using it without one raises one ImportError
  line saying how to install it.
- ``yolox_focal.runtime``: what the tools run (command line, CPU trainer and evaluators, data check,
  VOC data, reports, demo data).

Each layer imports only the ones above it in this list. ``yolox_focal.pixeltable_configs`` is the
adapter's module of that name under the path the command line gives (``-c
yolox_focal.pixeltable_configs:YoloxSFocal``).

Importing the package imports nothing of YOLOX (nor torch): each name below is imported on first use.
"""

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    **dict.fromkeys(["focal_loss", "FocalLoss", "quality_focal_loss", "QualityFocalLoss", "varifocal_loss",
                     "VarifocalLoss", "bce_loss", "BCELoss", "bce_blur_loss", "BCEBlurLoss", "box_iou_loss",
                     "iou_loss", "IoULoss", "giou_loss", "GIoULoss", "diou_loss", "DIoULoss", "ciou_loss", "CIoULoss",
                     "eiou_loss", "EIoULoss", "siou_loss", "SIoULoss", "KitLoss", "Param", "register", "LOSSES"],
                    ".losses"),
    "LossKit": ".losses.kit",
    **dict.fromkeys(["FocalYOLOXHead", "UnsupportedYOLOXError", "FOCAL_OVERRIDES"], ".adapter.head"),
    **dict.fromkeys(["FocalExpMixin", "FocalExp"], ".adapter.exp"),
    **dict.fromkeys(["all_settings", "yolox_settings", "resolve_settings"], ".losses.settings"),
}

__all__ = list(_EXPORTS)


def __getattr__(name):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name], __name__), name)
