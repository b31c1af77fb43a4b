"""Experiment support: any YOLOX exp gains the loss kit by mixing this in first.

    from yolox.exp.default.yolox_s import Exp as YOLOXSExp
    from yolox_focal import FocalExpMixin

    class Exp(FocalExpMixin, YOLOXSExp):
        def __init__(self):
            super().__init__()
            self.box_loss = "ciou"

The exp's own ``get_model`` builds the model (so nano keeps its depthwise head, a user's exp its
own head); the mixin then gives the head a loss kit in place. Every setting of
``yolox_focal.settings`` is an attribute, settable in the exp or on the command line the YOLOX way
(``... -f exps/yolox_s_focal.py focal_gamma 2.0 box_loss ciou``).
"""

import ast
import difflib

from .flavour import ExpBase  # Megvii's Exp or pixeltable-yolox's YoloxConfig
from .head import FocalYOLOXHead
from .settings import SETTINGS, SETTINGS_BY_NAME, check_settings, parse_setting

__all__ = ["FocalExpMixin", "FocalExp", "parse_exp_value"]


def parse_exp_value(current, text):
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
    """Adds every loss setting (``obj_loss``, ``focal_gamma``, ``cls_loss``, ``box_loss``, ...) to a
    YOLOX exp, with this project's defaults, and builds the model's head with them."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for setting in SETTINGS:
            setattr(self, setting.name, setting.default)

    def loss_settings(self):
        """{setting: value} of every loss setting, as this exp has them now."""
        return {s.name: getattr(self, s.name) for s in SETTINGS}

    def get_model(self, *args, **kwargs):
        check_settings(self.loss_settings())  # fail before building anything
        model = super().get_model(*args, **kwargs)
        FocalYOLOXHead.convert(model.head, **self.loss_settings())
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
            if key in SETTINGS_BY_NAME:
                setattr(self, key, parse_setting(key, value))
            else:
                setattr(self, key, parse_exp_value(getattr(self, key), value))
        check_settings(self.loss_settings())

    def update(self, opts):
        """pixeltable-yolox's ``-D key=value`` options ({key: text}): the loss settings are parsed
        and checked as declared, the rest is the config's own ``update``."""
        own = {k: parse_setting(k, v) for k, v in opts.items() if k in SETTINGS_BY_NAME}
        super().update({k: v for k, v in opts.items() if k not in SETTINGS_BY_NAME})
        vars(self).update(own)
        check_settings(self.loss_settings())


class FocalExp(FocalExpMixin, ExpBase):
    """YOLOX's base ``Exp`` (pixeltable-yolox: ``YoloxConfig``) with the loss kit, for exps written
    from scratch."""
