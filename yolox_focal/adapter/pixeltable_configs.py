"""pixeltable-yolox configs with the loss kit: its yolox-nano to yolox-x with focal objectness
(``FocalExpMixin``'s ``FOCAL_OVERRIDES``), and the demo. Importable only where pixeltable-yolox is the
installed YOLOX; the command line names them by their public path, ``yolox_focal.pixeltable_configs``.

    yolox train -c yolox_focal.pixeltable_configs:YoloxSFocal -d 8 -b 64 --fp16 -D box_loss=ciou
    python tools/train.py -c yolox_focal.pixeltable_configs:DemoFocal -b 16      # on the CPU
"""

from yolox.config import YoloxL, YoloxM, YoloxNano, YoloxS, YoloxTiny, YoloxX

from .demo_exp import CHECKOUT_DATASETS, apply_demo_settings
from .exp import FocalExpMixin

__all__ = ["YoloxNanoFocal", "YoloxTinyFocal", "YoloxSFocal", "YoloxMFocal", "YoloxLFocal", "YoloxXFocal",
           "DemoFocal", "DemoBce"]


def _with_loss_kit(base, suffix="focal"):
    """``base`` (one of pixeltable's configs) with the loss kit, named ``<base's name>_<suffix>``."""

    class Config(FocalExpMixin, base):
        def __init__(self):
            super().__init__()
            self.name = f"{self.name}_{suffix}"

    Config.__name__ = Config.__qualname__ = f"{base.__name__}{suffix.capitalize()}"
    Config.__module__ = __name__  # so that launch's worker processes can unpickle it
    return Config


YoloxNanoFocal = _with_loss_kit(YoloxNano)
YoloxTinyFocal = _with_loss_kit(YoloxTiny)
YoloxSFocal = _with_loss_kit(YoloxS)
YoloxMFocal = _with_loss_kit(YoloxM)
YoloxLFocal = _with_loss_kit(YoloxL)
YoloxXFocal = _with_loss_kit(YoloxX)


class DemoFocal(YoloxNanoFocal):
    """The demo (exps/demo/demo_focal.py): yolox-nano, focal objectness, the demo data and schedule."""

    def __init__(self):
        super().__init__()
        self.name = "demo_focal"
        apply_demo_settings(self, CHECKOUT_DATASETS)


class DemoBce(DemoFocal):
    """The demo with YOLOX's BCE objectness (exps/demo/demo_bce.py)."""

    def __init__(self):
        super().__init__()
        self.name = "demo_bce"
        self.obj_loss = "bce"
