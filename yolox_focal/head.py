"""YOLOX's head with a choice of objectness loss; everything else is YOLOX's own code.

``YOLOXHead.get_losses`` computes both the objectness and the classification loss with one
module, ``self.bcewithlog_loss``. :class:`FocalYOLOXHead` replaces that module with a router that
sends the objectness call (the first call whose input has one row per anchor of the batch) to the
configured objectness loss and every other call to the original ``BCEWithLogitsLoss``. Nothing of
``get_losses`` or label assignment is copied, so the head follows whichever YOLOX version is
installed (the PyPI 0.3.0 release and GitHub main differ there).

In a YOLOX tree that carries this project's ``patches/``, ``YOLOXHead`` already computes
``loss_obj`` with a replaceable ``objectness_loss`` module; there the head sets that module instead
of routing, so the package and the patches can share one environment.
"""

from torch import nn
from yolox.models import YOLOXHead

from .objectness import ObjectnessLoss

__all__ = ["FocalYOLOXHead"]

# True in a YOLOX tree patched by patches/ (its YOLOXHead has the objectness hook).
_PATCHED_YOLOX = hasattr(YOLOXHead, "set_objectness_loss")


class _ObjectnessRouter(nn.Module):
    """Stands in for ``YOLOXHead.bcewithlog_loss`` (see the module docstring)."""

    def __init__(self, bce, objectness):
        super().__init__()
        self.bce = bce
        self.objectness = objectness
        self._objectness_rows = None  # set while a get_losses call waits for its objectness call

    def expect_objectness(self, rows):
        self._objectness_rows = rows

    def finish(self):
        """Stop waiting; return whether the objectness call came."""
        came = self._objectness_rows is None
        self._objectness_rows = None
        return came

    def forward(self, pred, target):
        if self._objectness_rows is not None and pred.shape == (self._objectness_rows, 1):
            self._objectness_rows = None
            return self.objectness(pred, target)
        return self.bce(pred, target)


class FocalYOLOXHead(YOLOXHead):
    """``YOLOXHead`` whose objectness loss is focal (default) or BCE, optionally re-weighted.

    Takes ``YOLOXHead``'s arguments plus ``obj_loss`` ("focal" or "bce"), ``focal_gamma``,
    ``focal_alpha`` (None: no alpha balancing) and ``obj_loss_weight``. Parameters, buffers,
    inference and export are ``YOLOXHead``'s, so checkpoints move freely between the two.
    """

    def __init__(
        self,
        num_classes,
        width=1.0,
        strides=(8, 16, 32),
        in_channels=(256, 512, 1024),
        act="silu",
        depthwise=False,
        obj_loss="focal",
        focal_gamma=1.5,
        focal_alpha=0.25,
        obj_loss_weight=1.0,
    ):
        objectness = ObjectnessLoss(obj_loss, focal_gamma, focal_alpha, obj_loss_weight)
        super().__init__(num_classes, width, list(strides), list(in_channels), act, depthwise)
        self._use_objectness_loss(objectness)

    @classmethod
    def convert(cls, head, **objectness_settings):
        """Turn a built ``YOLOXHead`` into a ``FocalYOLOXHead`` in place, keeping its weights.

        Lets an exp reuse any ``get_model`` that builds a stock head (nano's depthwise one, a
        user's custom one) instead of rebuilding the model.
        """
        if not isinstance(head, YOLOXHead):
            raise TypeError(f"expected a yolox YOLOXHead, got {type(head).__name__}")
        objectness = ObjectnessLoss(**objectness_settings)
        head.__class__ = cls
        head._use_objectness_loss(objectness)
        return head

    def _use_objectness_loss(self, objectness):
        if _PATCHED_YOLOX:
            self._modules["objectness_loss"] = objectness  # the patched head's own hook
            return
        bce = self.bcewithlog_loss
        if isinstance(bce, _ObjectnessRouter):
            bce = bce.bce
        self.bcewithlog_loss = _ObjectnessRouter(bce, objectness)

    @property
    def _router(self):
        return self.bcewithlog_loss

    @property
    def objectness_loss(self):
        """The :class:`ObjectnessLoss` in use."""
        return self._modules["objectness_loss"] if _PATCHED_YOLOX else self._router.objectness

    def get_losses(self, *args, **kwargs):
        if _PATCHED_YOLOX:
            return super().get_losses(*args, **kwargs)
        # YOLOX's signature: (imgs, x_shifts, y_shifts, expanded_strides, labels, outputs, ...).
        outputs = kwargs["outputs"] if "outputs" in kwargs else args[5]
        self._router.expect_objectness(outputs.shape[0] * outputs.shape[1])
        try:
            losses = super().get_losses(*args, **kwargs)
        finally:
            came = self._router.finish()
        if not came:
            raise RuntimeError(
                "this yolox version's YOLOXHead.get_losses no longer computes objectness through "
                "bcewithlog_loss; yolox_focal supports yolox 0.3.0 (PyPI) and GitHub main"
            )
        return losses
