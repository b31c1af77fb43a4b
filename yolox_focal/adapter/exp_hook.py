"""The exp's side of the loss kit, written once: ``FocalExpMixin``, the pixeltable-yolox configs and
the base ``Exp`` of a YOLOX tree patched by ``patches/`` call it to give an exp the loss settings,
read them from the command line and give the head that ``get_model`` builds its loss kit.

Needs only torch and the loss core: an exp is anything with YOLOX's ``Exp`` shape, a head takes a kit
through ``set_loss_kit``. ``tools/make_patches.py`` carries this file into the YOLOX tree as
``yolox/models/loss_kit/exp_hook.py``, its imports pointed at the core there.
"""

import functools
import inspect

from ..losses.kit import LossKit
from ..losses.settings import all_settings, parse_setting, resolve_settings, settings_by_name

__all__ = ["add_loss_settings", "loss_settings", "merge_loss_settings", "loss_kit", "give_head_loss_kit",
           "wrap_get_model"]


def add_loss_settings(exp, overrides=None):
    """Give ``exp`` one attribute per loss setting, at YOLOX's value or the one ``overrides``
    ({setting: value}) gives; a setting's older names (its ``aliases``) read and write that attribute."""
    overrides = overrides or {}
    for setting in all_settings():
        setattr(exp, setting.name, overrides.get(setting.name, setting.yolox))
        for alias in setting.aliases:
            if not isinstance(getattr(type(exp), alias, None), property):
                setattr(type(exp), alias, _alias_of(setting.name))


def _alias_of(name):
    return property(lambda exp: getattr(exp, name), lambda exp, value: setattr(exp, name, value),
                    doc=f"the same setting as {name}")


def loss_settings(exp):
    """{setting: value} of every loss setting, as ``exp`` has them now."""
    return {setting.name: getattr(exp, setting.name) for setting in all_settings()}


def merge_loss_settings(exp, cfg_list):
    """Set the loss settings among the command line's ``key value`` pairs, each text parsed as its
    setting declares (``focal_alpha None``, which YOLOX's ``merge`` would keep as a string), after
    the gate has passed all of the exp's settings (a bad one, named as given, is a one-line
    ``ValueError``; the exp is left unchanged). Returns the other pairs, for the exp's own ``merge``."""
    if len(cfg_list) % 2:
        return cfg_list  # the exp's own merge says that pairs are expected
    by_name = settings_by_name()
    given, rest = {}, []
    for key, text in zip(cfg_list[0::2], cfg_list[1::2]):
        if key in by_name:
            given[key] = parse_setting(key, text)
        else:
            rest += [key, text]
    names = {by_name[key].name for key in given}
    checked = resolve_settings(dict({k: v for k, v in loss_settings(exp).items() if k not in names}, **given))
    for name, value in checked.items():
        setattr(exp, name, value)
    exp._checked_loss_settings = checked  # what loss_kit takes without checking again
    return rest


def loss_kit(exp):
    """The ``LossKit`` of ``exp``'s loss settings. The gate checks them (a bad one is a one-line
    ``ValueError``), unless ``merge_loss_settings`` has checked these very values."""
    values = loss_settings(exp)
    checked = getattr(exp, "_checked_loss_settings", None)
    return LossKit(checked) if checked == values else LossKit(**values)


def give_head_loss_kit(exp, model):
    """Give ``model.head`` the loss kit of ``exp``'s settings (:func:`loss_kit`); returns ``model``.

    A head without ``set_loss_kit`` (not a ``YOLOXHead``) keeps its own losses, which is an error
    only if a setting asks for another loss than YOLOX's."""
    kit = loss_kit(exp)
    head = getattr(model, "head", None)
    if hasattr(head, "set_loss_kit"):
        head.set_loss_kit(kit)
        return model
    changed = sorted(kit.changed())
    if changed:
        raise ValueError(f"loss settings {changed} need a model whose head is a YOLOXHead, got "
                         f"{type(head).__name__}; set them back to YOLOX's values or build a YOLOXHead")
    return model


def wrap_get_model(exp_class):
    """Make a ``get_model`` that ``exp_class`` defines itself also give the head its loss kit.

    Called from the base ``Exp``'s ``__init_subclass__``: an exp whose own ``get_model`` builds the
    model without calling the base one (``yolox_nano``'s builds a depthwise head) still hands the
    loss settings to the head it returns."""
    get_model = vars(exp_class).get("get_model")
    if not inspect.isfunction(get_model):
        return

    @functools.wraps(get_model)
    def get_model_with_loss_kit(self, *args, **kwargs):
        return give_head_loss_kit(self, get_model(self, *args, **kwargs))

    exp_class.get_model = get_model_with_loss_kit
