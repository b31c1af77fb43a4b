"""Experiment support: any YOLOX exp gains the loss kit by mixing this in first.

    from yolox.exp.default.yolox_s import Exp as YOLOXSExp
    from yolox_focal import FocalExpMixin

    class Exp(FocalExpMixin, YOLOXSExp):
        def __init__(self):
            super().__init__()
            self.box_loss = "ciou"

The exp's own ``get_model`` builds the model (so nano keeps its depthwise head, a user's exp its
own head); the mixin then gives the head a loss kit in place. Every setting of
``yolox_focal.losses.settings`` is an attribute, settable in the exp or on the command line the YOLOX way
(``... -f exps/yolox_s_focal.py focal_gamma 2.0 box_loss ciou``).
"""

import ast
import difflib
import math

from ..losses.settings import ALIASES
from .exp_hook import add_loss_settings, loss_kit, loss_settings, merge_loss_settings
from .flavour import ExpBase  # Megvii's Exp or pixeltable-yolox's YoloxConfig
from .head import FOCAL_OVERRIDES, FocalYOLOXHead

__all__ = ["FocalExpMixin", "FocalExp", "parse_exp_value"]


_VALUE_KINDS = {bool: "true or false", int: "a whole number", float: "a number"}


def parse_exp_value(key, current, text):
    """A command-line string as the type of the exp's current value, or a one-line ValueError
    naming the option, the type it takes and the text.

    YOLOX's merge calls ``type(current)(text)``, which keeps "1" as a string where the default is
    None, makes "false" true and splits "(320, 320)" into characters for a tuple; literals fix all
    three, and a value of the wrong type is refused here instead of failing mid-run.
    """
    if not isinstance(text, str) or isinstance(current, str):
        return text
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        value = text
    kind = type(current)
    if current is None or kind not in (bool, int, float, tuple, list):
        return value  # None takes anything; other types are the exp's own business
    if kind is bool:
        if text.strip().lower() in ("true", "false"):
            return text.strip().lower() == "true"
    elif kind in (int, float):
        if _is_number(value) and (kind is float or math.isfinite(value) and value == int(value)):
            return kind(value)
    elif isinstance(value, (tuple, list)) and len(value) == len(current) and all(
            isinstance(v, type(c)) or _is_number(v) and _is_number(c) for v, c in zip(value, current)):
        return kind(value)
    expected = _VALUE_KINDS.get(kind) or f"a {kind.__name__} like {current!r}"
    raise ValueError(f"exp option {key} takes {expected}, got {text!r}")


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class FocalExpMixin:
    """Adds every loss setting (``obj_loss``, ``focal_gamma``, ``cls_loss``, ``box_loss``, ...) to a
    YOLOX exp, at YOLOX's values but for ``FOCAL_OVERRIDES`` (focal objectness), and builds the
    model's head with them. The settings' work is ``exp_hook``'s, which a patched YOLOX tree's
    ``Exp`` calls too."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        add_loss_settings(self, FOCAL_OVERRIDES)

    def loss_settings(self):
        """{setting: value} of every loss setting, as this exp has them now."""
        return loss_settings(self)

    def get_model(self, *args, **kwargs):
        kit = loss_kit(self)  # a bad setting fails before anything is built
        model = super().get_model(*args, **kwargs)
        FocalYOLOXHead.convert(model.head, kit)
        return model

    def get_trainer(self, args):
        """YOLOX's trainer (the GPU route), its checkpoints written whole (a temporary file renamed
        into place): a run stopped mid-write keeps its last good checkpoint."""
        from ..runtime.checkpoints import WholeCheckpointTrainer

        return WholeCheckpointTrainer(self, args)

    def merge(self, cfg_list):
        """YOLOX's ``key value`` command-line options, but a key the exp lacks is an error."""
        if len(cfg_list) % 2:
            raise ValueError(f"exp options come in 'key value' pairs, got {list(cfg_list)}")
        rest = merge_loss_settings(self, cfg_list)
        for key, value in zip(rest[0::2], rest[1::2]):
            if not hasattr(self, key) or callable(getattr(self, key)):
                known = [k for k, v in vars(self).items() if not k.startswith("_")] + list(ALIASES)
                close = difflib.get_close_matches(key, known, n=1)
                hint = f"did you mean {close[0]!r}?" if close else "see the exp file for its keys"
                raise ValueError(f"unknown exp option {key!r}: {hint}")
            setattr(self, key, parse_exp_value(key, getattr(self, key), value))

    def update(self, opts):
        """pixeltable-yolox's ``-D key=value`` options ({key: text}): the loss settings as ``merge``
        takes them, the rest by the config's own ``update``."""
        rest = merge_loss_settings(self, [part for item in opts.items() for part in item])
        super().update(dict(zip(rest[0::2], rest[1::2])))


class FocalExp(FocalExpMixin, ExpBase):
    """YOLOX's base ``Exp`` (pixeltable-yolox: ``YoloxConfig``) with the loss kit, for exps written
    from scratch."""
