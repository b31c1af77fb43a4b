"""Every loss-kit setting, derived from the declared losses (``declare.LOSSES``) by one rule.

For each branch (``obj``, ``cls``, ``box``):

- ``{branch}_loss``: which declared loss serves it (the losses whose ``branches`` name it);
- ``{branch}_{loss}_{param}``: each parameter of each of those losses (``cls_focal_gamma``,
  ``box_siou_theta``), with the range, default and doc its ``Param`` declares;
- the branch's options (``declare.OPTIONS``): ``cls_label_smoothing``; ``box_inner_ratio``,
  ``box_focaler_low``, ``box_focaler_high``; and ``{branch}_loss_weight``.

``focal_gamma`` and ``focal_alpha``, the names these settings had first, stay as aliases of
``obj_focal_gamma`` and ``obj_focal_alpha`` (``ALIASES``).

The exp mixin's attributes, the parsing of command-line values, the checks, what the head's loss
kit is given, the README's settings table (``settings_table()``) and the patch series' exp code all
come from ``SETTINGS``, which follows the registry: a loss registered later (a plugin, a test) has
its settings at once.

Two values per setting: ``default``, what this project's exps use (focal objectness, YOLOX's
classification and box losses), and ``yolox``, the value that reproduces YOLOX exactly (what a
patched YOLOX tree starts from).
"""

import difflib
from collections.abc import Mapping, Sequence

from .declare import BRANCH_OPTIONS, LOSSES, OPTIONS, Param, losses_for

__all__ = ["Setting", "SETTINGS", "SETTINGS_BY_NAME", "BRANCHES", "ALIASES", "default_settings", "yolox_settings",
           "check_settings", "resolve_settings", "parse_setting", "settings_table", "option_setting"]

BRANCHES = {"obj": "objectness", "cls": "classification", "box": "box"}
YOLOX_LOSSES = {"obj": "bce", "cls": "bce", "box": "iou"}  # YOLOX's own losses
PROJECT_LOSSES = dict(YOLOX_LOSSES, obj="focal")  # this project's exps: focal objectness
BRANCH_DOCS = {
    "obj": "objectness loss, over every anchor against the 0/1 foreground mask",
    "cls": "classification loss, over foreground anchors against one-hot x IoU targets",
    "box": "box loss on the matched (prediction, ground truth) pairs",
}
ALIASES = {"focal_gamma": "obj_focal_gamma", "focal_alpha": "obj_focal_alpha"}


def option_setting(branch, option):
    """The setting of a branch option: ``{branch}_loss_weight``, ``{branch}_{option}`` otherwise."""
    return f"{branch}_loss_weight" if option == "weight" else f"{branch}_{option}"


class Setting:
    """One setting: its name, branch, one-line doc and ``param`` (the declared :class:`Param` whose
    range or choices it takes); ``default`` and ``yolox`` as the module docstring says.

    ``loss``/``arg``: for a loss parameter, the loss it belongs to and the argument it feeds;
    ``option``: for a branch option, which one.
    """

    def __init__(self, name, branch, doc, param, default=None, yolox=None, loss=None, arg=None, option=None):
        self.name, self.branch, self.doc, self.param = name, branch, doc, param
        self.default = param.default if default is None else default
        self.yolox = param.default if yolox is None else yolox
        self.loss, self.arg, self.option = loss, arg, option
        self.aliases = tuple(a for a, n in ALIASES.items() if n == name)

    def __repr__(self):
        return f"Setting({self.name!r}, default={self.default!r})"

    @property
    def choices(self):
        return self.param.choices

    def allowed(self):
        """The allowed values, as the README says them."""
        if self.choices:
            is_loss = self.name == f"{self.branch}_loss"
            return ", ".join(f"{c} (YOLOX's)" if is_loss and c == self.yolox else str(c) for c in self.choices)
        return self.param.describe().replace("None (", "`none` (")

    def check(self, value, key=None):
        """One-line ``ValueError`` naming ``key`` (the name it was given by; this name by default)."""
        if self.choices is not None and value not in self.choices:  # the choices, then what was given
            raise ValueError(f"{key or self.name} must be {self.param.describe()}; got {value!r}")
        self.param.check(key or self.name, value)

    def parse(self, text, key=None):
        """A command-line string as this setting's value (non-strings are taken as they are)."""
        return self.param.parse(key or self.name, text)


def _declared():
    """The settings of the losses registered now, branch by branch."""
    settings = []
    for branch, what in BRANCHES.items():
        choices = losses_for(branch)
        settings.append(Setting(f"{branch}_loss", branch, BRANCH_DOCS[branch], Param(YOLOX_LOSSES[branch], choices=choices),
                                default=PROJECT_LOSSES[branch]))
        for loss in choices:
            for arg, param in LOSSES[loss].params.items():
                settings.append(Setting(f"{branch}_{loss}_{arg}", branch, f"{loss}: {param.doc}", param, loss=loss,
                                        arg=arg))
        for option in BRANCH_OPTIONS[branch]:
            doc = f"multiplies the {what} loss" if option == "weight" else OPTIONS[option].doc
            settings.append(Setting(option_setting(branch, option), branch, doc, OPTIONS[option], option=option))
    return tuple(settings)


_current = {"losses": None}


def _settings():
    """(settings, {name or alias: setting}) for the registry as it is now; rebuilt when it changed."""
    losses = tuple(LOSSES.values())
    if _current["losses"] != losses:
        settings = _declared()
        by_name = {s.name: s for s in settings}
        by_name.update({alias: by_name[name] for alias, name in ALIASES.items() if name in by_name})
        _current.update(losses=losses, settings=settings, by_name=by_name)
    return _current["settings"], _current["by_name"]


class _Settings(Sequence):
    """Every setting, in the order of the README's table (a live view of the registry)."""

    def __getitem__(self, index):
        return _settings()[0][index]

    def __iter__(self):
        return iter(_settings()[0])

    def __len__(self):
        return len(_settings()[0])

    def __repr__(self):
        return f"SETTINGS{_settings()[0]!r}"


class _SettingsByName(Mapping):
    """{name: setting} of every setting, aliases included (a live view of the registry)."""

    def __getitem__(self, key):
        return _settings()[1][key]

    def __iter__(self):
        return iter(_settings()[1])

    def __len__(self):
        return len(_settings()[1])


SETTINGS = _Settings()
SETTINGS_BY_NAME = _SettingsByName()


def default_settings():
    """This project's defaults: focal objectness; YOLOX's classification and box losses."""
    return {s.name: s.default for s in SETTINGS}


def yolox_settings():
    """The values that reproduce YOLOX's own losses."""
    return {s.name: s.yolox for s in SETTINGS}


def _canonical(values):
    """``values`` by each setting's own name (aliases resolved), each value checked; one-line
    ``ValueError`` for an unknown key, a bad value or a setting given twice."""
    by_name = _settings()[1]
    given = {}
    for key, value in values.items():
        if key not in by_name:
            close = difflib.get_close_matches(key, by_name, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ValueError(f"unknown loss setting {key!r}{hint}")
        setting = by_name[key]
        setting.check(value, key)
        if setting.name in given and given[setting.name][1] != value:
            other = given[setting.name][0]
            raise ValueError(f"{other} and {key} are one setting, given {given[setting.name][1]!r} and {value!r}; "
                             f"give one of them")
        given[setting.name] = (key, value)
    return {name: value for name, (_, value) in given.items()}


def resolve_settings(values, base=None):
    """Every setting: ``values`` (aliases allowed) over ``base`` (default: YOLOX's values), checked,
    each branch's options against its chosen loss too. One-line ``ValueError`` for the first fault."""
    resolved = dict(yolox_settings() if base is None else base, **_canonical(values))
    for branch in BRANCHES:
        options = {option: resolved[option_setting(branch, option)] for option in BRANCH_OPTIONS[branch]}
        LOSSES[resolved[f"{branch}_loss"]].check_options(options, lambda option: option_setting(branch, option))
    return resolved


def check_settings(values):
    """Raise ``ValueError`` (one line) for the first unknown key or bad value in ``values``."""
    resolve_settings(values)


def parse_setting(name, text):
    return SETTINGS_BY_NAME[name].parse(text, name)


def _literal(value):
    return "`none`" if value is None else f"`{value}`"


def settings_table():
    """The README's settings table, in Markdown."""
    rows = ["| key | branch | default | allowed | meaning |", "| --- | --- | --- | --- | --- |"]
    for s in SETTINGS:
        also = "".join(f" (also `{alias}`)" for alias in s.aliases)
        rows.append(f"| `{s.name}` | {s.branch} | {_literal(s.default)} | {s.allowed()} | {s.doc}{also} |")
    return "\n".join(rows) + "\n"
