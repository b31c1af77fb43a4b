"""Experiment support: any YOLOX exp gains the focal objectness head by mixing this in first.

    from yolox.exp.default.yolox_s import Exp as YOLOXSExp
    from yolox_focal import FocalExpMixin

    class Exp(FocalExpMixin, YOLOXSExp):
        ...

The exp's own ``get_model`` builds the model (so nano keeps its depthwise head); the mixin then
converts the head in place. The four settings below can be given on the command line the YOLOX
way (``... -f exps/yolox_s_focal.py focal_gamma 2.0``).
"""

import ast
import difflib

from yolox.exp import Exp as YOLOXExp

from .head import FocalYOLOXHead
from .objectness import check_objectness_args

__all__ = ["FocalExpMixin", "FocalExp", "OBJECTNESS_KEYS"]

OBJECTNESS_KEYS = ("obj_loss", "focal_gamma", "focal_alpha", "obj_loss_weight")


def _parse_setting(key, text):
    """Turn a command-line string into the value of one objectness setting."""
    if not isinstance(text, str):
        return text
    if key == "obj_loss":
        return text
    if key == "focal_alpha" and text.lower() == "none":
        return None
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"{key} takes a number, got {text!r}") from None


def _parse_value(current, text):
    """A command-line string as the type of the exp's current value.

    YOLOX's merge calls ``type(current)(text)``, which keeps "1" as a string where the default is
    None and splits "(320, 320)" into characters for a tuple; literals fix both.
    """
    if not isinstance(text, str) or isinstance(current, str):
        return text
    if isinstance(current, (int, float)) and not isinstance(current, bool):
        try:
            return type(current)(text)
        except ValueError:
            pass
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


class FocalExpMixin:
    """Adds ``obj_loss``, ``focal_gamma``, ``focal_alpha`` and ``obj_loss_weight`` to a YOLOX exp."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.obj_loss = "focal"  # "focal" or "bce"
        self.focal_gamma = 1.5  # focusing parameter, >= 0
        self.focal_alpha = 0.25  # weight of positives in [0, 1]; None turns balancing off
        self.obj_loss_weight = 1.0  # multiplies the objectness loss

    def objectness_settings(self):
        return {key: getattr(self, key) for key in OBJECTNESS_KEYS}

    def get_model(self, *args, **kwargs):
        check_objectness_args(**self.objectness_settings())  # fail before building anything
        model = super().get_model(*args, **kwargs)
        FocalYOLOXHead.convert(model.head, **self.objectness_settings())
        return model

    def merge(self, cfg_list):
        """YOLOX's ``key value`` command-line options, but a key the exp lacks is an error."""
        if len(cfg_list) % 2:
            raise ValueError(f"exp options come in 'key value' pairs, got {list(cfg_list)}")
        for key, value in zip(cfg_list[0::2], cfg_list[1::2]):
            if not hasattr(self, key) or callable(getattr(self, key)):
                known = [k for k, v in vars(self).items() if not k.startswith("_")]
                close = difflib.get_close_matches(key, known, n=1)
                hint = f"did you mean {close[0]!r}?" if close else "see the exp file for its keys"
                raise ValueError(f"unknown exp option {key!r}: {hint}")
            if key in OBJECTNESS_KEYS:
                setattr(self, key, _parse_setting(key, value))
            else:
                setattr(self, key, _parse_value(getattr(self, key), value))
        check_objectness_args(**self.objectness_settings())


class FocalExp(FocalExpMixin, YOLOXExp):
    """YOLOX's base ``Exp`` with the focal objectness head, for exps written from scratch."""
