"""How a loss of the kit is declared: once, as one ``KitLoss`` subclass, registered by name.

A declaration says everything the rest of the project derives from it:

- ``name``: the registry key, the value of the ``{branch}_loss`` setting (``"focal"``, ``"wiou"``);
- ``branches``: the head's branches it may serve (``"obj"``, ``"cls"``, ``"box"``);
- ``params``: ``{argument: Param}``, each with its type and range (or choices), default and a
  one-line doc; the settings ``{branch}_{name}_{argument}`` come from these;
- ``function``: the stateless functional form (torchvision's style,
  ``function(pred, target, **params, reduction="none")``), or ``None`` for a loss that keeps
  state, which overrides ``forward`` instead;
- ``needs``: what the loss reads from the batch besides ``pred`` and ``target`` (``"input_size"``:
  the batch's training input ``(height, width)``, which multiscale training changes), handed to
  ``forward`` by keyword.

Element-wise losses (objectness, classification) take logits and targets in [0, 1] of one shape and
return the element-wise loss; box losses take ``(N, 4)`` ``(cx, cy, w, h)`` boxes and return ``(N,)``.

A loss that keeps state (a running mean) sets ``stateful = True`` and keeps that state as plain
tensor attributes, not buffers, so that a head carrying it keeps YOLOX's state dict (stock
checkpoints load with ``strict=True``, and ours into stock YOLOX). It updates the state only in
training mode and without gradient, from a statistic reduced across processes
(:func:`all_reduce_sum`), and hands it out and back through ``loss_state`` / ``load_loss_state``,
which the trainers save beside the model's state dict.

Needs only torch.
"""

import torch
from torch import nn

from ._common import Number

__all__ = ["Number", "Param", "KitLoss", "LOSSES", "register", "losses_for", "all_reduce_sum"]


class Param:
    """One parameter of a loss: a number in a declared range (``number``) or one of ``choices``,
    with its default and a one-line doc."""

    def __init__(self, default, number=None, choices=None, doc=""):
        if (number is None) == (choices is None):
            raise TypeError("a Param takes a number range or choices, not both or neither")
        self.default, self.number, self.choices = default, number, choices
        self.doc = doc or (number.doc if number is not None else "")

    def allows(self, value):
        return value in self.choices if self.choices is not None else self.number.allows(value)

    def describe(self):
        if self.choices is not None:
            return "one of " + ", ".join(map(str, self.choices))
        return self.number.describe()

    def check(self, label, value):
        """Raise a one-line ``ValueError`` naming ``label``, the allowed values and ``value``."""
        if not self.allows(value):
            raise ValueError(f"{label} must be {self.describe()}, got {value!r}")

    def parse(self, label, text):
        """A command-line string as this parameter's value (other values are taken as they are)."""
        if not isinstance(text, str):
            return text
        word = text.strip().lower()
        if self.choices is not None:
            return word
        if self.number.none is not None and word == "none":
            return None
        try:
            return float(text)
        except ValueError:
            raise ValueError(f"{label} takes a number, got {text!r}") from None


class KitLoss(nn.Module):
    """Base of every loss of the kit: checks and keeps its parameters; see the module docstring."""

    name = ""
    branches = ()
    params = {}
    function = None
    needs = ()
    stateful = False

    def __init__(self, **values):
        super().__init__()
        unknown = sorted(set(values) - set(self.params))
        if unknown:
            takes = ", ".join(self.params) or "no parameters"
            raise TypeError(f"{type(self).__name__} takes {takes}; got {unknown[0]!r}")
        self.values = {k: values.get(k, p.default) for k, p in self.params.items()}
        for key, value in self.values.items():
            self.params[key].check(f"{self.name} {key}", value)

    def forward(self, pred, target, **context):
        extra = {k: context[k] for k in self.needs}
        return type(self).function(pred, target, **self.values, **extra)

    def loss_state(self):
        """The state to save beside the model's state dict: ``{name: tensor}`` (empty: none)."""
        return {}

    def load_loss_state(self, state):
        """Take back what :meth:`loss_state` gave."""
        if state:
            raise ValueError(f"the {self.name} loss keeps no state, but was given {sorted(state)}")

    def extra_repr(self):
        return ", ".join(f"{k}={v}" for k, v in self.values.items())


LOSSES = {}  # name -> KitLoss subclass, in registration order


def register(cls):
    """Class decorator: add a declared loss to :data:`LOSSES` (its name must be new)."""
    if not cls.name or cls.name in LOSSES:
        raise ValueError(f"a kit loss needs a new name, got {cls.name!r}")
    if not cls.branches or not set(cls.branches) <= {"obj", "cls", "box"}:
        raise ValueError(f"{cls.name}: branches must be among obj, cls, box; got {cls.branches!r}")
    if cls.function is None and cls.forward is KitLoss.forward:
        raise ValueError(f"{cls.name}: declare a function or override forward")
    LOSSES[cls.name] = cls
    return cls


def losses_for(branch):
    """The names of the losses that may serve ``branch``, in registration order."""
    return tuple(name for name, cls in LOSSES.items() if branch in cls.branches)


def all_reduce_sum(tensor):
    """``tensor`` summed over the processes of a torch.distributed run (itself in one process), so
    that a statistic, and the state updated from it, is the same on every process."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        tensor = tensor.clone()
        torch.distributed.all_reduce(tensor)
    return tensor

