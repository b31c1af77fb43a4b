# The demo experiment on VOC-format data: demo_focal.py (yolox-nano, focal objectness) reading the
# demo data set in PASCAL VOC's layout (python tools/make_demo_data.py --format voc), scored with
# YOLOX's VOC evaluation.
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # YOLOX's exp loader does this too
from demo_focal import DATASETS  # noqa: E402
from demo_focal import Exp as FocalDemoExp  # noqa: E402

from yolox_focal.runtime.demo_data import CLASSES, VOC_SETS  # noqa: E402
from yolox_focal.runtime.voc import VOCExpMixin  # noqa: E402


class Exp(VOCExpMixin, FocalDemoExp):
    def __init__(self):
        super().__init__()
        self.exp_name = os.path.splitext(os.path.basename(__file__))[0]
        self.data_dir = os.path.join(DATASETS, "demo_voc")
        self.train_sets = [VOC_SETS["train"]]
        self.val_sets = [VOC_SETS["val"]]
        self.class_names = CLASSES
        self.num_classes = len(CLASSES)
