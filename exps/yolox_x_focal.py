# yolox-x exactly as YOLOX's exps/default/yolox_x.py, with the loss kit: focal-loss objectness,
# YOLOX's classification and box losses. Every loss setting (README, "Loss settings") can be set
# here or on the command line, e.g. "... -f exps/yolox_x_focal.py focal_gamma 2.0 box_loss ciou".
import os

from yolox.exp.default.yolox_x import Exp as YOLOXExp

from yolox_focal import FocalExpMixin


class Exp(FocalExpMixin, YOLOXExp):
    def __init__(self):
        super().__init__()
        self.exp_name = os.path.splitext(os.path.basename(__file__))[0]
