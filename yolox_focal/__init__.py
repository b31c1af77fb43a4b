"""Focal-loss objectness for YOLOX: a loss, a head and experiment support."""

import importlib

from . import flavour

flavour.flavour()  # without YOLOX, say in one line how to install it

__version__ = "0.1.0"

# Imported on first use, so that the tools' modules (cli, cpu, flavour) load without the head's
# YOLOX classes.
_EXPORTS = {
    "focal_loss": ".losses",
    "FocalLoss": ".losses",
    "FocalYOLOXHead": ".head",
    "ObjectnessLoss": ".objectness",
    "FocalExpMixin": ".exp",
    "FocalExp": ".exp",
    "OBJECTNESS_KEYS": ".exp",
}

__all__ = list(_EXPORTS)


def __getattr__(name):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name], __name__), name)
