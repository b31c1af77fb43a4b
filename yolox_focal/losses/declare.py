"""How a loss of the kit is declared: once, as one ``KitLoss`` subclass, registered by name.

Every loss follows one template: a documented function (torchvision's style,
``function(pred, target, **params, reduction="none")``) and a short registered class that names it.
A declaration says everything the rest of the project derives from it:

- ``name``: the registry key, the value of the ``{branch}_loss`` setting (``"focal"``, ``"wiou"``),
  and the name every error of the loss starts with;
- ``branches``: the head's branches it may serve (``"obj"``, ``"cls"``, ``"box"``); the options it
  takes follow from them (:data:`BRANCH_OPTIONS`);
- ``params``: ``{argument: Param}``, each with its range (or choices), default and a one-line doc;
  the settings ``{branch}_{name}_{argument}`` come from these;
- ``function``: the stateless functional form, or ``None`` for a loss that keeps state, which
  overrides ``base_loss`` instead;
- ``needs``: what the loss reads besides ``pred`` and ``target`` (:data:`NEEDS`: ``"input_size"``,
  the batch's training input ``(height, width)``, which multiscale training changes; ``"progress"``,
  the training progress from 0 to 1, which the trainer hands over each iteration), handed to
  ``base_loss`` by keyword;
- ``with_modified_iou``: for a box loss of the boxes' IoU, how the IoU that the Inner-IoU and
  Focaler-IoU modifiers (``inner_ratio``, ``focaler_low``/``focaler_high``) compute, IoU', takes
  IoU's place in its formula (``penalty_form`` for a loss ``1 - IoU + penalty``); declaring it makes
  the loss ``iou_based``, and the modifiers are refused for every other loss.

Element-wise losses (objectness, classification) take logits and targets in [0, 1] of one shape;
box losses take ``(..., 4)`` ``(cx, cy, w, h)`` boxes. ``base_loss`` is the declared loss,
element-wise (per box); the module's ``forward`` is the whole loss, as in mmdetection's loss
modules: the options of its branches (:data:`OPTIONS`: label smoothing before it, the box modifiers
in its place, ``weight`` after it), then ``reduction``.

A loss that keeps state (a running mean) sets ``stateful = True`` and keeps that state as plain
tensor attributes, not buffers, so that a head carrying it keeps YOLOX's state dict (stock
checkpoints load with ``strict=True``, and ours into stock YOLOX). It updates the state only in
training mode and without gradient, from a statistic reduced across processes
(:func:`all_reduce_sum`), and hands it out and back through ``loss_state`` / ``load_loss_state``,
which the trainers save beside the model's state dict.

Needs only torch.
"""

import inspect

import torch
from torch import nn

from ._common import SMOOTHING, Param, check_reduction, reduce, smooth_targets
from .box_geometry import modified_iou
from .box_weights import BOX_WEIGHT_OPTIONS, BoxWeighting
from .running_state import all_reduce_sum

__all__ = ["Param", "KitLoss", "LOSSES", "OPTIONS", "BRANCH_OPTIONS", "NEEDS", "PROGRESS", "register", "losses_for",
           "penalty_form", "all_reduce_sum"]

# The training progress a loss with needs = ("progress",) reads, and LossKit.set_progress takes.
PROGRESS = Param(1.0, 0, 1, doc="training progress: 0 at the first iteration, 1 at the end")
# What a loss may read besides pred and target (its ``needs``): key -> (how to give it, the value in
# eval mode where none was given, or None: needed there too). The kit gives both before each batch
# (LossKit.start_batch, LossKit.set_progress); a caller may pass them by keyword.
NEEDS = {
    "input_size": ("pass input_size=... or call LossKit.start_batch(imgs) before the losses", None),
    # in eval mode, without a trainer: the end of training, the schedule's last value
    "progress": ("train with yolox-focal's trainer (tools/train.py, or an exp with FocalExpMixin, whose "
                 "get_trainer gives it), or call loss_kit.set_progress(fraction) before each step, fraction "
                 "from 0 at the first iteration to 1 at the end (or pass progress=...)", 1.0),
}


# What the losses of a branch take besides their own parameters, applied by the module's forward:
# option -> Param. The settings {branch}_loss_weight, cls_label_smoothing and box_inner_ratio,
# box_focaler_low, box_focaler_high come from these and BRANCH_OPTIONS.
OPTIONS = {
    "label_smoothing": SMOOTHING,
    "inner_ratio": Param(1.0, 0, low_open=True, doc=(
        "Inner-IoU (Zhang et al. 2023): the IoU of the boxes scaled about their centres by this ratio "
        "takes IoU's place in the loss; 1: off")),
    "focaler_low": Param(0.0, 0, 1, high_open=True, doc=(
        "Focaler-IoU (Zhang & Zhang 2024): clamp((IoU - low) / (high - low), 0, 1) takes IoU's place in "
        "the loss; low 0 and high 1: off")),
    "focaler_high": Param(1.0, 0, 1, low_open=True, doc="Focaler-IoU: the upper end of the IoU interval "
                                                         "mapped onto [0, 1]"),
    **BOX_WEIGHT_OPTIONS,
    "weight": Param(1.0, 0, low_open=True, doc="multiplies the loss"),
}
BOX_MODIFIERS = ("inner_ratio", "focaler_low", "focaler_high")
# the mix and the weights of box_weights.py; nwd_constant is the nwd loss's own setting, box_nwd_constant
BOX_WEIGHTING = tuple(BOX_WEIGHT_OPTIONS)
# options that only an IoU-based loss takes, and what each is called in the refusal
IOU_ONLY = {"inner_ratio": "modifies", "focaler_low": "modifies", "focaler_high": "modifies",
            "wise_focusing": "weights", "focal_gamma": "weights"}
# The one table of which options a branch takes; a loss takes those of the branches it serves.
# Objectness targets are YOLOX's hard 0/1 foreground mask: label smoothing is a classification option.
BRANCH_OPTIONS = {"obj": ("weight",), "cls": ("label_smoothing", "weight"), "box": BOX_MODIFIERS + BOX_WEIGHTING + ("weight",)}


class KitLoss(nn.Module):
    """Base of every loss of the kit: checks and keeps its parameters and options; see the module
    docstring. ``Loss(*params, reduction="none", weight=1.0, ...)``, parameters by position or name."""

    name = ""
    branches = ()
    params = {}
    function = None
    needs = ()
    stateful = False
    iou_based = False  # follows from with_modified_iou (__init_subclass__), not declared

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "iou_based" in cls.__dict__:
            raise TypeError(f"{cls.__name__}: iou_based follows from with_modified_iou; declare that instead")
        cls.iou_based = cls.with_modified_iou is not KitLoss.with_modified_iou

    def __init__(self, *args, reduction="none", **values):
        super().__init__()
        names = list(self.params)
        takes = self.options()
        unknown = sorted(set(values) - set(names) - set(takes))
        if len(args) > len(names) or unknown:
            accepted = ", ".join(names + list(takes) + ["reduction"])
            got = repr(unknown[0]) if unknown else f"{len(args)} positional values"
            raise TypeError(f"{type(self).__name__} takes {accepted}; got {got}")
        values.update(zip(names, args))
        self.values = {k: values.get(k, p.default) for k, p in self.params.items()}
        for key, value in self.values.items():
            self.params[key].check(f"{self.name} {key}", value)
        options = {k: values.get(k, OPTIONS[k].default) for k in takes}
        self.check_options(options)
        check_reduction(reduction)
        self.reduction = reduction
        self.weight = options.get("weight", 1.0)
        self.label_smoothing = options.get("label_smoothing", 0.0)
        # the box modifiers, kept only where one is on: off, the loss is the declared one bit for bit
        modifiers = {k: options[k] for k in BOX_MODIFIERS if k in options}
        on = any(v != OPTIONS[k].default for k, v in modifiers.items())
        self.modifiers = modifiers if on else {}
        # the mix and the weights, built only where one is on (box_weights.py)
        self.box_weighting = BoxWeighting(options) if BoxWeighting.is_on(options) else None
        self.box_options = {k: options[k] for k in BOX_WEIGHTING if k in options}
        self.batch_context = {}  # set by the kit before each batch (LossKit.start_batch)

    @classmethod
    def is_box_loss(cls):
        return "box" in cls.branches

    @classmethod
    def options(cls):
        """The options (of :data:`OPTIONS`) this loss takes: those of the branches it serves."""
        return tuple(o for o in OPTIONS if any(o in BRANCH_OPTIONS[b] for b in cls.branches))

    @classmethod
    def check_options(cls, options, label=None):
        """One-line ``ValueError`` for a bad option; ``label(option)`` names it (the setting's name)."""
        label = label or (lambda option: f"{cls.name} {option}")
        for key, value in options.items():
            OPTIONS[key].check(label(key), value)
        low, high = options.get("focaler_low", 0.0), options.get("focaler_high", 1.0)
        if low >= high:
            raise ValueError(f"{label('focaler_low')} must be below {label('focaler_high')}, got {low!r} "
                             f"and {high!r}")
        changed = [k for k in IOU_ONLY if k in options and options[k] != OPTIONS[k].default]
        if changed and not cls.iou_based:
            raise ValueError(f"{label(changed[0])} {IOU_ONLY[changed[0]]} an IoU-based box loss, and {cls.name} is "
                             f"not one; leave it at {OPTIONS[changed[0]].default}")
        if options.get("wise_focusing", "off") != "off" and cls.stateful:
            raise ValueError(f"{label('wise_focusing')} adds Wise-IoU's focusing, which {cls.name} has of its own; "
                             f"leave it at off (wiou_v3 is wiou with it at v3)")

    def base_loss(self, pred, target, **context):
        """The declared loss, element-wise (per box for a box loss), before the options: the
        declared ``function`` by default; a loss that keeps state overrides this."""
        return type(self).function(pred, target, **self.values, **context)

    def with_modified_iou(self, pred, target, iou, modified_iou, **context):
        """The per-box loss with ``modified_iou`` (IoU', of the Inner-IoU and Focaler-IoU modifiers,
        :func:`box_geometry.modified_iou`) in the place of the IoU in this loss's formula, as the
        papers put it: ``1 - IoU'`` for ``1 - IoU``, ``L + IoU - IoU'`` (:func:`penalty_form`) for
        a loss ``1 - IoU + penalty``. ``iou`` (the plain IoU) and IoU' have the shape of the loss.

        Declared by each IoU-based box loss; a loss without it takes no modifiers (refused in one
        line by :meth:`check_options`). Where IoU' clamps it has no gradient: the loss must then be
        flat in the IoU (never ``L(IoU) - IoU'`` with L falling faster than ``1 - IoU``), or it
        would push predictions away from their targets.
        """
        raise NotImplementedError(f"the {self.name} loss takes no modified IoU")

    def forward(self, pred, target, **context):
        """The whole loss: label smoothing on the targets, the declared loss (with the box
        modifiers' IoU' in the place of its IoU where they are on), times the weight, reduced.
        ``context``: what the loss ``needs`` (else taken from ``LossKit.start_batch``)."""
        if self.label_smoothing:
            target = smooth_targets(target, self.label_smoothing)
        needed = {}
        for key in self.needs:
            needed[key] = context[key] if context.get(key) is not None else self.batch_context.get(key)
            how, in_eval = NEEDS[key]
            if needed[key] is None and not self.training:
                needed[key] = in_eval
            if needed[key] is None:
                what = "the training progress, and none was given" if key == "progress" else \
                    f"the batch's {key}"
                raise ValueError(f"the {self.name} loss needs {what}: {how}")
        iou = None
        if self.modifiers:
            iou, modified = modified_iou(pred, target, **self.modifiers)
            loss = self.with_modified_iou(pred, target, iou, modified, **needed)
        else:
            loss = self.base_loss(pred, target, **needed)
        if self.box_weighting is not None:  # the mix, then the weights, on the whole (box_weights.py)
            loss = self.box_weighting.apply(loss, pred, target, iou, self.training)
        if self.weight != 1:
            loss = loss * self.weight
        return reduce(loss, self.reduction)

    def loss_state(self):
        """The state to save beside the model's state dict: ``{name: tensor}`` (empty: none); a
        loss of its own keeps none, but the Wise focusing option keeps its running mean."""
        return self.box_weighting.state() if self.box_weighting is not None else {}

    def load_loss_state(self, state):
        """Take back what :meth:`loss_state` gave."""
        if self.box_weighting is not None:
            self.box_weighting.load(f"the {self.name} loss", state)
        elif state:
            raise ValueError(f"the {self.name} loss keeps no state, but was given {sorted(state)}")

    def extra_repr(self):
        options = {"weight": self.weight, "label_smoothing": self.label_smoothing, **self.modifiers,
                   **self.box_options}
        changed = {k: v for k, v in options.items() if k in self.options() and v != OPTIONS[k].default}
        parts = [f"{k}={v}" for k, v in {**self.values, **changed}.items()]
        return ", ".join(parts + [f"reduction={self.reduction!r}"])


def penalty_form(loss, pred, target, iou, modified_iou, **context):
    """``L + IoU - IoU'``: how the modified IoU enters a loss of the form ``1 - IoU + penalty``
    (GIoU, DIoU, CIoU, ...), the rule of Inner-IoU and Focaler-IoU for such losses: its own IoU
    term replaced, its penalty kept. Declared as ``with_modified_iou = penalty_form``."""
    return loss.base_loss(pred, target, **context) + (iou - modified_iou)


LOSSES = {}  # name -> KitLoss subclass, in registration order


def register(cls):
    """Class decorator: add a declared loss to :data:`LOSSES` (its name must be new)."""
    if not cls.name or cls.name in LOSSES:
        raise ValueError(f"a kit loss needs a new name, got {cls.name!r}")
    if not cls.branches or not set(cls.branches) <= {"obj", "cls", "box"}:
        raise ValueError(f"{cls.name}: branches must be among obj, cls, box; got {cls.branches!r}")
    if cls.is_box_loss() and set(cls.branches) != {"box"}:
        raise ValueError(f"{cls.name}: a box loss serves only the box branch; got {cls.branches!r}")
    if cls.function is None and cls.base_loss is KitLoss.base_loss:
        raise ValueError(f"{cls.name}: declare a function or override base_loss")
    if cls.forward is not KitLoss.forward:
        raise ValueError(f"{cls.name}: forward is the whole loss (options, weight, reduction); override base_loss")
    if set(cls.needs) - set(NEEDS):
        raise ValueError(f"{cls.name}: needs must be among {', '.join(NEEDS)}; got {cls.needs!r}")
    if cls.stateful and cls.loss_state is KitLoss.loss_state:
        raise ValueError(f"{cls.name}: a stateful loss overrides loss_state and load_loss_state")
    if cls.function is not None:  # the functional form's defaults are the declared ones
        signature = inspect.signature(cls.function).parameters
        for key, param in cls.params.items():
            if key not in signature or signature[key].default != param.default:
                raise ValueError(f"{cls.name}: {cls.function.__name__}'s {key} must default to {param.default!r}")
    LOSSES[cls.name] = cls
    return cls


def losses_for(branch):
    """The names of the losses that may serve ``branch``, in registration order."""
    return tuple(name for name, cls in LOSSES.items() if branch in cls.branches)
