"""Every loss-kit setting, declared once: its name (the exp attribute and command-line key), branch,
allowed values, default and a one-line doc.

The exp mixin's attributes, the parsing of command-line values, the checks, what the head's loss
kit is given, the README's settings table (``settings_table()``) and the patch
series' exp code all come from ``SETTINGS``. A loss parameter's range and default are declared once
more upstream, by the loss function itself (its ``*_PARAMS`` and its signature); a setting that
feeds that parameter takes both from there.

Two values per setting: ``default``, what this project's exps use (focal objectness, YOLOX's
classification and box losses), and ``yolox``, the value that reproduces YOLOX exactly (what a
patched YOLOX tree starts from).
"""

import difflib

from .bce import BCE_BLUR_PARAMS, SMOOTHING, bce_blur_loss
from .focal import FOCAL_PARAMS, QUALITY_FOCAL_PARAMS, VARIFOCAL_PARAMS, focal_loss, quality_focal_loss, varifocal_loss
from .iou import BOX_LOSS_KINDS
from ._common import Number, defaults_of

__all__ = ["Setting", "SETTINGS", "SETTINGS_BY_NAME", "BRANCHES", "BRANCH_LOSSES", "ELEMENTWISE_LOSSES",
           "default_settings", "yolox_settings", "check_settings", "parse_setting", "settings_table"]

BRANCHES = {"obj": "objectness", "cls": "classification", "box": "box"}

# Element-wise loss name -> (function, its declared parameters); "bce" is YOLOX's own loss.
ELEMENTWISE_LOSSES = {
    "bce": (None, {}),
    "focal": (focal_loss, FOCAL_PARAMS),
    "qfocal": (quality_focal_loss, QUALITY_FOCAL_PARAMS),
    "varifocal": (varifocal_loss, VARIFOCAL_PARAMS),
    "bce_blur": (bce_blur_loss, BCE_BLUR_PARAMS),
}
BRANCH_LOSSES = {
    "obj": ("bce", "focal", "qfocal", "varifocal", "bce_blur"),
    "cls": ("bce", "focal", "qfocal", "varifocal"),
    "box": BOX_LOSS_KINDS,
}
WEIGHT = Number(0, doc="multiplies the branch's loss", low_open=True)


class Setting:
    """One declared setting: a loss choice (``choices``) or a number (``number``).

    ``loss``/``arg``: for a loss parameter, the loss it belongs to and the argument it feeds.
    """

    def __init__(self, name, branch, doc, default, yolox=None, choices=None, number=None, loss=None,
                 arg=None):
        self.name, self.branch, self.doc, self.default = name, branch, doc, default
        self.yolox = default if yolox is None else yolox
        self.choices, self.number, self.loss, self.arg = choices, number, loss, arg

    def __repr__(self):
        return f"Setting({self.name!r}, default={self.default!r})"

    def allowed(self):
        """The allowed values, as the README says them."""
        if self.choices:
            return ", ".join(f"{c} (YOLOX's)" if c == self.yolox else c for c in self.choices)
        return self.number.describe().replace("None (", "`none` (")

    def check(self, value):
        if self.choices:
            if value not in self.choices:
                raise ValueError(f"{self.name} must be one of {', '.join(self.choices)}; got {value!r}")
        elif not self.number.allows(value):
            raise ValueError(f"{self.name} must be {self.number.describe()}, got {value!r}")

    def parse(self, text):
        """A command-line string as this setting's value (non-strings are taken as they are)."""
        if not isinstance(text, str):
            return text
        if self.choices:
            return text.strip().lower()
        if self.number.none is not None and text.strip().lower() == "none":
            return None
        try:
            return float(text)
        except ValueError:
            raise ValueError(f"{self.name} takes a number, got {text!r}") from None


def _choice(branch, default, doc):
    yolox = BRANCH_LOSSES[branch][0]  # bce for obj/cls, iou for box: YOLOX's own losses
    return Setting(f"{branch}_loss", branch, doc, default, yolox, choices=BRANCH_LOSSES[branch])


def _param(name, branch, loss, arg):
    function, params = ELEMENTWISE_LOSSES[loss]
    number = params[arg]
    return Setting(name, branch, f"{loss}: {number.doc}", defaults_of(function)[arg], number=number,
                   loss=loss, arg=arg)


def _weight(branch):
    return Setting(f"{branch}_loss_weight", branch, f"multiplies the {BRANCHES[branch]} loss", 1.0,
                   number=WEIGHT)


SETTINGS = (
    _choice("obj", "focal", "objectness loss, over every anchor against the 0/1 foreground mask"),
    _param("focal_gamma", "obj", "focal", "gamma"),
    _param("focal_alpha", "obj", "focal", "alpha"),
    _param("obj_qfocal_beta", "obj", "qfocal", "beta"),
    _param("obj_qfocal_alpha", "obj", "qfocal", "alpha"),
    _param("obj_varifocal_alpha", "obj", "varifocal", "alpha"),
    _param("obj_varifocal_gamma", "obj", "varifocal", "gamma"),
    _param("obj_bce_blur_alpha", "obj", "bce_blur", "alpha"),
    _weight("obj"),
    _choice("cls", "bce", "classification loss, over foreground anchors against one-hot x IoU targets"),
    _param("cls_focal_gamma", "cls", "focal", "gamma"),
    _param("cls_focal_alpha", "cls", "focal", "alpha"),
    _param("cls_qfocal_beta", "cls", "qfocal", "beta"),
    _param("cls_qfocal_alpha", "cls", "qfocal", "alpha"),
    _param("cls_varifocal_alpha", "cls", "varifocal", "alpha"),
    _param("cls_varifocal_gamma", "cls", "varifocal", "gamma"),
    Setting("cls_label_smoothing", "cls", "label smoothing: class targets t become t (1 - eps) + eps / 2",
            0.0, number=SMOOTHING),
    _weight("cls"),
    _choice("box", "iou", "box loss on the matched (prediction, ground truth) pairs"),
    _weight("box"),
)
SETTINGS_BY_NAME = {s.name: s for s in SETTINGS}


def default_settings():
    """This project's defaults: focal objectness; YOLOX's classification and box losses."""
    return {s.name: s.default for s in SETTINGS}


def yolox_settings():
    """The values that reproduce YOLOX's own losses."""
    return {s.name: s.yolox for s in SETTINGS}


def check_settings(values):
    """Raise ``ValueError`` (one line) for the first unknown key or bad value in ``values``."""
    for key in values:
        if key not in SETTINGS_BY_NAME:
            close = difflib.get_close_matches(key, SETTINGS_BY_NAME, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ValueError(f"unknown loss setting {key!r}{hint}")
    for key, value in values.items():
        SETTINGS_BY_NAME[key].check(value)


def parse_setting(name, text):
    return SETTINGS_BY_NAME[name].parse(text)


def _literal(value):
    return "`none`" if value is None else f"`{value}`"


def settings_table():
    """The README's settings table, in Markdown."""
    rows = ["| key | branch | default | allowed | meaning |", "| --- | --- | --- | --- | --- |"]
    for s in SETTINGS:
        rows.append(f"| `{s.name}` | {s.branch} | {_literal(s.default)} | {s.allowed()} | {s.doc} |")
    return "\n".join(rows) + "\n"

