# yolox-l exactly as YOLOX's exps/default/yolox_l.py, but with focal-loss objectness.
# Objectness keys (defaults from FocalExpMixin; set here or on the command line, e.g.
# "... -f exps/yolox_l_focal.py focal_gamma 2.0"): obj_loss="focal", focal_gamma=1.5,
# focal_alpha=0.25, obj_loss_weight=1.0.
import os

from yolox.exp.default.yolox_l import Exp as YOLOXExp

from yolox_focal import FocalExpMixin


class Exp(FocalExpMixin, YOLOXExp):
    def __init__(self):
        super().__init__()
        self.exp_name = os.path.splitext(os.path.basename(__file__))[0]
