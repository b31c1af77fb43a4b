"""Focal-loss objectness for YOLOX: a loss, a head and experiment support."""

try:
    import yolox  # noqa: F401
except ImportError:
    raise ImportError(
        "yolox_focal needs YOLOX: run 'pip install --no-deps --no-build-isolation yolox==0.3.0' "
        "after torch, or 'bash tools/setup.sh' from this repository"
    ) from None

from .exp import OBJECTNESS_KEYS, FocalExp, FocalExpMixin
from .head import FocalYOLOXHead
from .losses import FocalLoss, focal_loss
from .objectness import ObjectnessLoss

__version__ = "0.1.0"

__all__ = [
    "focal_loss",
    "FocalLoss",
    "FocalYOLOXHead",
    "ObjectnessLoss",
    "FocalExpMixin",
    "FocalExp",
    "OBJECTNESS_KEYS",
]
