"""What the base ``Exp`` of a YOLOX tree patched by ``patches/`` calls: the loss settings as exp
attributes, the loss kit of the head that ``get_model`` builds, and the loss settings given on the
command line.

The patch series copies this module, with the rest of ``yolox_focal/losses/``, into the YOLOX tree
as ``yolox/models/loss_kit/exp_hook.py``; the patched ``yolox/exp/yolox_base.py`` calls each
function below in a line or two. Like the rest of the loss core it imports nothing of YOLOX: an
exp here is anything with YOLOX's ``Exp`` shape (attributes, ``get_model``), and a head takes a
loss kit through its ``set_loss_kit`` (the patched ``YOLOXHead``'s).

Needs only torch.
"""

import functools
import inspect

from .kit import LossKit
from .settings import SETTINGS, parse_setting, yolox_settings

__all__ = ["add_loss_settings", "loss_settings", "merge_loss_settings", "give_head_loss_kit", "wrap_get_model"]


def add_loss_settings(exp):
    """Give ``exp`` one attribute per loss setting, at the value that reproduces YOLOX's losses;
    a setting's older names (its ``aliases``) read and write that attribute."""
    for setting in SETTINGS:
        setattr(exp, setting.name, setting.yolox)
        for alias in setting.aliases:
            if not isinstance(getattr(type(exp), alias, None), property):
                setattr(type(exp), alias, _alias_of(setting.name))


def _alias_of(name):
    return property(lambda exp: getattr(exp, name), lambda exp, value: setattr(exp, name, value),
                    doc=f"the same setting as {name}")


def loss_settings(exp):
    """{setting: value} of every loss setting, as ``exp`` has them now."""
    return {setting.name: getattr(exp, setting.name) for setting in SETTINGS}


def merge_loss_settings(exp, cfg_list):
    """Set the loss settings among YOLOX's command-line ``key value`` pairs, each parsed as its
    setting declares (``focal_alpha None``, ``obj_qfocal_alpha 0.25`` where the default is None,
    which YOLOX's ``merge`` would keep as a string), and check them: a bad value is a one-line
    ``ValueError`` now, not when the model is built. Returns the other pairs, for YOLOX's ``merge``."""
    if len(cfg_list) % 2:
        return cfg_list  # YOLOX's merge says that pairs are expected
    names = {name for setting in SETTINGS for name in (setting.name, *setting.aliases)}
    rest = []
    for key, value in zip(cfg_list[0::2], cfg_list[1::2]):
        if key in names:
            setattr(exp, key, parse_setting(key, value))
        else:
            rest += [key, value]
    LossKit(**loss_settings(exp))
    return rest


def give_head_loss_kit(exp, model):
    """Give ``model.head`` a loss kit built from ``exp``'s loss settings; returns ``model``.

    A head without ``set_loss_kit`` (not a ``YOLOXHead``) keeps its own losses, which is an error
    only if a setting asks for another loss than YOLOX's."""
    settings = loss_settings(exp)
    kit = LossKit(**settings)  # a bad setting raises a one-line ValueError
    head = getattr(model, "head", None)
    if hasattr(head, "set_loss_kit"):
        head.set_loss_kit(kit)
        return model
    yolox = yolox_settings()
    changed = sorted(name for name, value in settings.items() if value != yolox[name])
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
