# The demo experiment: yolox-nano with focal-loss objectness on the generated demo data set
# (python tools/make_demo_data.py), with a schedule short enough for a CPU (about 10 minutes on
# 2 cores; the data and schedule are in yolox_focal/adapter/demo_exp.py, shared with the pixeltable-yolox
# demo config). demo_bce.py is the same experiment with YOLOX's BCE objectness.
import os

from yolox.exp.default.yolox_nano import Exp as YOLOXNanoExp

from yolox_focal import FocalExpMixin
from yolox_focal.adapter.demo_exp import apply_demo_settings

DATASETS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "datasets")


class Exp(FocalExpMixin, YOLOXNanoExp):
    def __init__(self):
        super().__init__()
        self.exp_name = os.path.splitext(os.path.basename(__file__))[0]
        apply_demo_settings(self, DATASETS)
