"""YOLOX's head with a loss kit: a choice of loss per branch; everything else is YOLOX's own code.

``YOLOXHead.get_losses`` computes the box loss with ``self.iou_loss`` and the objectness and
classification losses with one module, ``self.bcewithlog_loss`` (objectness first). A
:class:`FocalYOLOXHead` puts a stand-in in each of those two places and, for the length of each
``get_losses`` call, a call plan that hands each call to the branch it is for, checking the order
and the shapes. Label assignment, the L1 loss, the sums and the division by the number of
foreground anchors stay YOLOX's, so the head follows whichever YOLOX is installed; a YOLOX whose
``get_losses`` computes a branch in another way makes the head raise, never train with the wrong
loss.

Label assignment is YOLOX's own ``get_assignments`` unless the kit's ``assigner`` setting chooses
another (``tal``, ``dsl``, or ``simota`` with another similarity): then the head's
``get_assignments`` takes YOLOX's arguments by name and returns the assignment of
``yolox_focal.losses.assign`` in the form YOLOX's returns; a ``get_assignments`` whose arguments it
does not recognise raises ``UnsupportedYOLOXError``.

In a YOLOX tree that carries this project's ``patches/``, ``YOLOXHead.get_losses`` already calls
``self.loss_kit``; there the head only sets that attribute.
"""

import functools
import inspect

from torch import nn

from ..losses.assign import YOLOX_ASSIGNMENT_ARGUMENTS
from ..losses.kit import LossKit
from .flavour import HeadBase as YOLOXHead  # Megvii's YOLOXHead or pixeltable-yolox's YoloxHead

__all__ = ["FocalYOLOXHead", "UnsupportedYOLOXError", "FOCAL_OVERRIDES"]

# What this package's focal head and exps change from YOLOX's losses (every other setting keeps
# YOLOX's value, the kit's one default): objectness by focal loss.
FOCAL_OVERRIDES = {"obj_loss": "focal"}


class UnsupportedYOLOXError(RuntimeError):
    """The installed YOLOX's ``get_losses`` does not compute its losses the way the head expects."""


# How YOLOXHead.get_losses calls its loss modules: attribute -> the branches of its calls, in order.
_EXPECTED_CALLS = {"iou_loss": ("box",), "bcewithlog_loss": ("obj", "cls")}


class _CallPlan:
    """For one ``get_losses`` call: which branch each loss-module call is, checked as it comes."""

    def __init__(self, kit, num_classes, anchor_rows):
        self.kit, self.num_classes, self.anchor_rows = kit, num_classes, anchor_rows
        self.done = {attr: 0 for attr in _EXPECTED_CALLS}

    def call(self, attr, pred, target):
        branches = _EXPECTED_CALLS[attr]
        count = self.done[attr]
        if count == len(branches):
            self.fail(f"it called {attr} more than {len(branches)} time(s)")
        branch = branches[count]
        columns = {"obj": 1, "cls": self.num_classes, "box": 4}[branch]
        rows_ok = branch != "obj" or self.anchor_rows is None or pred.shape[0] == self.anchor_rows
        if pred.dim() != 2 or pred.shape[1] != columns or not rows_ok or target.shape != pred.shape:
            self.fail(f"call {count + 1} of {attr} was expected to be the {branch} loss, but its input "
                      f"has shape {tuple(pred.shape)}")
        self.done[attr] += 1
        return getattr(self.kit, branch)(pred, target)

    def finish(self):
        for attr, branches in _EXPECTED_CALLS.items():
            if self.done[attr] != len(branches):
                self.fail(f"it called {attr} {self.done[attr]} time(s), not {len(branches)} "
                          f"({' then '.join(branches)})")

    @staticmethod
    def fail(what):
        raise UnsupportedYOLOXError(
            f"this YOLOX's YOLOXHead.get_losses does not compute its losses as yolox_focal expects "
            f"({what}); yolox_focal supports yolox 0.3.0 (PyPI), YOLOX's GitHub main and "
            f"pixeltable-yolox 0.4")


class _LossModuleStandIn(nn.Module):
    """Takes the place of one of YOLOXHead's loss modules. Inside ``get_losses`` it hands each call
    to the call plan; outside (nothing in YOLOX calls it there) it is YOLOX's module."""

    def __init__(self, attr, original):
        super().__init__()
        self.attr, self.original = attr, original
        self.plan = None

    def forward(self, pred, target):
        if self.plan is None:
            return self.original(pred, target)
        return self.plan.call(self.attr, pred, target)


class FocalYOLOXHead(YOLOXHead):
    """``YOLOXHead`` whose objectness, classification and box losses come from a :class:`LossKit`.

    Takes ``YOLOXHead``'s arguments plus any loss setting by keyword (``obj_loss="focal"``,
    ``obj_focal_gamma=1.5``, ``cls_loss="varifocal"``, ``box_loss="ciou"``, ...: see
    ``yolox_focal.losses.settings``); a setting not given takes ``FOCAL_OVERRIDES``'s value (focal
    objectness) or else YOLOX's. Parameters, buffers, inference and export are ``YOLOXHead``'s, so
    checkpoints move freely between the two; a loss that keeps state keeps it outside the state
    dict (``self.loss_kit.loss_state()``, which the trainers save beside it).
    """

    def __init__(self, num_classes, width=1.0, strides=(8, 16, 32), in_channels=(256, 512, 1024),
                 act="silu", depthwise=False, **loss_settings):
        kit = LossKit(**dict(FOCAL_OVERRIDES, **loss_settings))  # bad settings fail before building
        super().__init__(num_classes, width, list(strides), list(in_channels), act, depthwise)
        self.set_loss_kit(kit)

    @classmethod
    def convert(cls, head, kit=None, **loss_settings):
        """Give a built ``YOLOXHead`` a loss kit in place, keeping its weights and its own code.

        A plain ``YOLOXHead`` becomes a ``FocalYOLOXHead``; a subclass of it (a user's own head)
        becomes a subclass of both, so its overrides still run. The kit is ``kit`` (a
        :class:`LossKit`) or one built as ``FocalYOLOXHead`` builds it from ``loss_settings``.
        Returns the head.
        """
        if not isinstance(head, YOLOXHead):
            raise TypeError(f"FocalYOLOXHead.convert needs a yolox YOLOXHead, got {type(head).__name__}")
        if kit is not None and loss_settings:
            raise TypeError("FocalYOLOXHead.convert takes a kit or loss settings, not both")
        kit = LossKit(**dict(FOCAL_OVERRIDES, **loss_settings)) if kit is None else kit
        head.__class__ = _with_loss_kit(cls, type(head))
        head.set_loss_kit(kit)
        return head

    def set_loss_kit(self, kit):
        """Use ``kit`` (a :class:`LossKit`) for this head's losses from now on."""
        if not all(isinstance(getattr(kit, b, None), nn.Module) for b in ("obj", "cls", "box")):
            raise TypeError(f"set_loss_kit needs a LossKit, got {type(kit).__name__}")
        self.loss_kit = kit
        if _calls_loss_kit_itself(self):
            return
        for attr in _EXPECTED_CALLS:
            current = getattr(self, attr)
            original = current.original if isinstance(current, _LossModuleStandIn) else current
            setattr(self, attr, _LossModuleStandIn(attr, original))

    def get_losses(self, *args, **kwargs):
        arguments = _arguments(super().get_losses, args, kwargs)
        self.loss_kit.start_batch(arguments.get("imgs"))
        if _calls_loss_kit_itself(self):
            return super().get_losses(*args, **kwargs)
        outputs = arguments.get("outputs")
        rows = outputs.shape[0] * outputs.shape[1] if outputs is not None else None
        plan = _CallPlan(self.loss_kit, self.num_classes, rows)
        stand_ins = [getattr(self, attr) for attr in _EXPECTED_CALLS]
        for stand_in in stand_ins:
            stand_in.plan = plan
        try:
            losses = super().get_losses(*args, **kwargs)
        finally:
            for stand_in in stand_ins:
                stand_in.plan = None
        plan.finish()
        return losses

    def get_assignments(self, *args, **kwargs):
        """YOLOX's own label assignment (SimOTA), unless the kit's ``assigner`` setting chooses
        another (``self.loss_kit.assign`` is not None): then that one, on YOLOX's arguments taken by
        name, returning what YOLOX's returns, so the rest of ``get_losses`` stays YOLOX's."""
        if self.loss_kit.assign is None or _calls_loss_kit_itself(self):
            return super().get_assignments(*args, **kwargs)
        arguments = _arguments(super().get_assignments, args, kwargs)
        missing = [name for name in YOLOX_ASSIGNMENT_ARGUMENTS if name not in arguments and name != "mode"]
        if missing:
            raise UnsupportedYOLOXError(
                f"this YOLOX's YOLOXHead.get_assignments takes no {missing[0]} (called with {len(args)} "
                f"positional and {sorted(kwargs)} keyword arguments), so the assigner "
                f"{self.loss_kit.settings['assigner']!r} cannot replace it; yolox_focal supports yolox 0.3.0 "
                f"(PyPI), YOLOX's GitHub main and pixeltable-yolox 0.4")
        return self.loss_kit.get_assignments(**{name: arguments[name] for name in YOLOX_ASSIGNMENT_ARGUMENTS
                                                if name in arguments})


def _calls_loss_kit_itself(head):
    """True for a head of a YOLOX tree patched by patches/: its get_losses calls self.loss_kit."""
    return getattr(type(head), "computes_losses_with_loss_kit", False)


def _arguments(method, args, kwargs):
    """{parameter name: value} of a call of the bound ``method`` (empty if they do not bind)."""
    try:
        return _signature(method.__func__).bind(method.__self__, *args, **kwargs).arguments
    except TypeError:
        return {}


@functools.lru_cache(maxsize=None)
def _signature(function):
    return inspect.signature(function)  # once per YOLOX class: it costs more than binding


_CLASSES_WITH_LOSS_KIT = {}


def _with_loss_kit(cls, head_type):
    """The class a head of ``head_type`` takes on to carry a loss kit, keeping its own methods."""
    if issubclass(head_type, cls):
        return head_type
    if head_type is YOLOXHead:
        return cls
    if head_type not in _CLASSES_WITH_LOSS_KIT:
        name = f"{head_type.__name__}WithLossKit"
        _CLASSES_WITH_LOSS_KIT[head_type] = type(name, (cls, head_type), {"__module__": head_type.__module__})
    return _CLASSES_WITH_LOSS_KIT[head_type]
