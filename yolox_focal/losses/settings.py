"""Every loss-kit setting, derived from the declared losses (``declare.LOSSES``) by one rule, and
the gate that checks them.

For each branch (``obj``, ``cls``, ``box``):

- ``{branch}_loss``: which declared loss serves it (the losses whose ``branches`` name it);
- ``{branch}_{loss}_{param}``: each parameter of each of those losses (``cls_focal_gamma``,
  ``box_siou_theta``), with the range, default and doc its ``Param`` declares;
- the branch's options (``declare.OPTIONS``): ``cls_label_smoothing``; ``box_inner_ratio``,
  ``box_focaler_low``, ``box_focaler_high``, the mix and weights of box_weights.py
  (``box_wise_focusing``, ``box_focal_gamma``, ``box_gaussian_mix``, ...); and
  ``{branch}_loss_weight``. An option that is a loss's own quantity reads that loss's setting
  (the mix's NWD constant is ``box_nwd_constant``), declared once.

After the branches, the label assignment (``assign.py``): ``assigner`` (``simota``, YOLOX's own,
``tal``, ``dsl``), ``assigner_similarity`` and ``assigner_nwd_constant`` (simota's and dsl's), and
``assigner_{assigner}_{param}`` for tal's and dsl's parameters (``assigner_tal_alpha``).

``focal_gamma`` and ``focal_alpha``, the names these settings had first, stay as aliases of
``obj_focal_gamma`` and ``obj_focal_alpha`` (``ALIASES``).

The order (of ``all_settings()``, the README's table and the "must be one of" errors): branch by
branch as above; within a branch, ``{branch}_loss``, the parameters of its losses in the order the
losses were registered, then the branch's options; then the assignment's. The registration order
is the order in which ``losses/__init__.py`` imports the loss modules, written down there.

One set of defaults: YOLOX's (``Setting.yolox``, ``yolox_settings()``). With every setting at it,
the kit computes YOLOX's own losses. This package's focal head and exps override ``obj_loss``
(``yolox_focal.adapter.head.FOCAL_OVERRIDES``); that is not a default of the kit.

One gate: :func:`resolve_settings` checks every setting, however it comes (an exp attribute, the
command line, ``LossKit(**settings)``), the cross-field rules included, and returns a
:class:`CheckedSettings`, which ``LossKit`` takes without checking it again. A value given as text
(the command line) is parsed once, where it enters, with :func:`parse_setting`.

The settings follow the registry: a loss registered later (a plugin, a test) has its settings at
once. They are built on each call of ``all_settings()`` (about 0.1 ms): call it when a kit is built
or an exp is set up, not per batch.
"""

import difflib

from .assign import ASSIGNER, ASSIGNER_PARAMS, SIMILARITY_ASSIGNERS, SIMILARITY_PARAMS, check_assigner
from .declare import BRANCH_OPTIONS, LOSSES, OPTIONS, Param, losses_for

__all__ = ["Setting", "all_settings", "settings_by_name", "BRANCHES", "ALIASES", "yolox_settings", "CheckedSettings",
           "resolve_settings", "parse_setting", "settings_table", "option_setting", "ASSIGNMENT", "assigner_settings"]

BRANCHES = {"obj": "objectness", "cls": "classification", "box": "box"}
YOLOX_LOSSES = {"obj": "bce", "cls": "bce", "box": "iou"}  # YOLOX's own losses
BRANCH_DOCS = {
    "obj": "objectness loss, over every anchor against the 0/1 foreground mask",
    "cls": "classification loss, over foreground anchors against one-hot x IoU targets",
    "box": "box loss on the matched (prediction, ground truth) pairs",
}
ALIASES = {"focal_gamma": "obj_focal_gamma", "focal_alpha": "obj_focal_alpha"}
ASSIGNMENT = "assign"  # the settings' group of the label assignment (assign.py), after the branches


def option_setting(branch, option):
    """The setting of a branch option: ``{branch}_loss_weight``, ``{branch}_{option}`` otherwise."""
    return f"{branch}_loss_weight" if option == "weight" else f"{branch}_{option}"


class Setting:
    """One setting: its name, branch, one-line doc and ``param`` (the declared :class:`Param` whose
    range or choices and default it takes; the default is YOLOX's, ``yolox``).

    ``loss``/``arg``: for a loss parameter, the loss it belongs to and the argument it feeds;
    ``option``: for a branch option, which one.
    """

    def __init__(self, name, branch, doc, param, loss=None, arg=None, option=None):
        self.name, self.branch, self.doc, self.param = name, branch, doc, param
        self.loss, self.arg, self.option = loss, arg, option
        self.aliases = tuple(a for a, n in ALIASES.items() if n == name)

    def __repr__(self):
        return f"Setting({self.name!r}, yolox={self.yolox!r})"

    @property
    def yolox(self):
        """The value that reproduces YOLOX's losses: the one default."""
        return self.param.default

    @property
    def choices(self):
        return self.param.choices

    def allowed(self):
        """The allowed values, as the README says them."""
        if self.choices:
            chooses = self.loss is self.arg is self.option is None  # {branch}_loss, assigner: YOLOX's is one
            return ", ".join(f"{c} (YOLOX's)" if chooses and c == self.yolox else str(c) for c in self.choices)
        return self.param.describe().replace("None (", "`none` (")

    def parse(self, text, key=None):
        """A command-line string as this setting's value (non-strings are taken as they are)."""
        return self.param.parse(key or self.name, text)


def all_settings():
    """Every setting of the losses registered now, in the order the module docstring gives."""
    settings = []
    for branch, what in BRANCHES.items():
        choices = losses_for(branch)
        settings.append(Setting(f"{branch}_loss", branch, BRANCH_DOCS[branch], Param(YOLOX_LOSSES[branch], choices=choices)))
        for loss in choices:
            for arg, param in LOSSES[loss].params.items():
                settings.append(Setting(f"{branch}_{loss}_{arg}", branch, f"{loss}: {param.doc}", param, loss=loss,
                                        arg=arg))
        declared = {s.name: s for s in settings}
        for option in BRANCH_OPTIONS[branch]:
            name = option_setting(branch, option)
            if name in declared:  # an option that reads a loss's own setting (box_nwd_constant)
                if declared[name].param is not OPTIONS[option]:
                    raise TypeError(f"the option {option} and {declared[name].loss}'s {declared[name].arg} "
                                    f"are one setting, {name}, and must declare it with one Param")
                continue
            doc = f"multiplies the {what} loss" if option == "weight" else OPTIONS[option].doc
            settings.append(Setting(name, branch, doc, OPTIONS[option], option=option))
    return tuple(settings) + assigner_settings()


def assigner_settings():
    """The label assignment's settings (``losses/assign.py``): ``assigner``; ``assigner_{argument}`` for
    the similarity shared by simota and dsl; ``assigner_{assigner}_{argument}`` for each assigner's
    own parameters (``assigner_tal_alpha``), as a loss's are ``{branch}_{loss}_{argument}``."""
    shared = ", ".join(SIMILARITY_ASSIGNERS)
    settings = [Setting("assigner", ASSIGNMENT, ASSIGNER.doc, ASSIGNER)]
    settings += [Setting(f"assigner_{arg}", ASSIGNMENT, f"{shared}: {param.doc}", param, arg=arg)
                 for arg, param in SIMILARITY_PARAMS.items()]
    settings += [Setting(f"assigner_{name}_{arg}", ASSIGNMENT, f"{name}: {param.doc}", param, loss=name, arg=arg)
                 for name, params in ASSIGNER_PARAMS.items() for arg, param in params.items()]
    return tuple(settings)


def settings_by_name():
    """{name: setting} of every setting, its aliases included."""
    by_name = {s.name: s for s in all_settings()}
    by_name.update({alias: by_name[name] for alias, name in ALIASES.items() if name in by_name})
    return by_name


def yolox_settings():
    """The values that reproduce YOLOX's own losses: every setting's default."""
    return {s.name: s.yolox for s in all_settings()}


class CheckedSettings(dict):
    """Every setting by its own name, as :func:`resolve_settings` returned it: ``LossKit`` takes it as it
    is, without checking it again. Not to be changed: give changed settings to the gate again."""


def resolve_settings(values):
    """The gate: every setting, ``values`` (by name or alias) over YOLOX's, checked, as
    :class:`CheckedSettings`. A one-line ``ValueError`` for the first fault, naming the key as given:
    an unknown key (with "did you mean"), a value outside its choices or range, a setting given
    twice under two names, an option that does not fit the branch's chosen loss, a top-k that is not
    whole, a similarity for an assigner that takes none."""
    by_name = settings_by_name()
    given = {}
    for key, value in values.items():
        if key not in by_name:
            close = difflib.get_close_matches(key, by_name, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ValueError(f"unknown loss setting {key!r}{hint}")
        setting = by_name[key]
        if setting.choices is None:
            setting.param.check(key, value)
        elif value not in setting.choices:
            raise ValueError(f"{key} must be {setting.param.describe()}; got {value!r}")
        if setting.name in given and given[setting.name][1] != value:
            other = given[setting.name][0]
            raise ValueError(f"{other} and {key} are one setting, given {given[setting.name][1]!r} and {value!r}; "
                             f"give one of them")
        given[setting.name] = (key, value)
    resolved = {s.name: given[s.name][1] if s.name in given else s.yolox for s in by_name.values()}
    for branch in BRANCHES:  # the cross-field rules: each branch's options against its chosen loss
        options = {option: resolved[option_setting(branch, option)] for option in BRANCH_OPTIONS[branch]}
        LOSSES[resolved[f"{branch}_loss"]].check_options(options, lambda option: option_setting(branch, option))
    check_assigner(resolved["assigner"], resolved["assigner_similarity"], "assigner_similarity")
    return CheckedSettings(resolved)


def parse_setting(name, text):
    """The command line's text for the setting ``name`` (or alias) as its value: the one parse."""
    return settings_by_name()[name].parse(text, name)


def _literal(value):
    return "`none`" if value is None else f"`{value}`"


def settings_table(overrides=None):
    """The README's settings table, in Markdown: YOLOX's value of each setting and, where
    ``overrides`` ({setting: value}, the focal exps') changes it, that value too."""
    overrides = overrides or {}
    rows = ["| key | branch | YOLOX's | allowed | meaning |", "| --- | --- | --- | --- | --- |"]
    for s in all_settings():
        also = "".join(f" (also `{alias}`)" for alias in s.aliases)
        value = _literal(s.yolox) + (f"; focal exps: {_literal(overrides[s.name])}" if s.name in overrides else "")
        rows.append(f"| `{s.name}` | {s.branch} | {value} | {s.allowed()} | {s.doc}{also} |")
    return "\n".join(rows) + "\n"
