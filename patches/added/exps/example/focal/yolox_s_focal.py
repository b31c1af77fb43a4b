#!/usr/bin/env python3
# yolox-s with focal-loss objectness. Every loss-kit setting (obj_loss, cls_loss, box_loss, their
# parameters and weights: yolox/models/loss_kit/settings.py; all default to YOLOX's losses) works
# in any exp and on the command line, e.g. "... -f exps/example/focal/yolox_s_focal.py focal_gamma
# 2.0 box_loss ciou" or "focal_alpha None".
import os

from yolox.exp import Exp as MyExp


class Exp(MyExp):
    def __init__(self):
        super(Exp, self).__init__()
        self.depth = 0.33
        self.width = 0.50
        self.exp_name = os.path.split(os.path.realpath(__file__))[1].split(".")[0]

        self.obj_loss = "focal"
