# Your own PASCAL VOC-format data set: copy this file and set the values marked SET.
# Layout (YOLOX's VOCDetection): data_dir/VOC<year>/ImageSets/Main/<image set>.txt (one image id a
# line), data_dir/VOC<year>/Annotations/<id>.xml, data_dir/VOC<year>/JPEGImages/<id>.jpg (or .png,
# or any image type OpenCV reads). <pose>, <truncated> and <difficult> may be left out.
# Check it: python tools/check_data.py -f exps/custom_voc.py
import os

from yolox.exp.default.yolox_s import Exp as YOLOXExp  # or yolox_nano / yolox_tiny / yolox_m ...

from yolox_focal import FocalExpMixin
from yolox_focal.runtime.voc import VOCExpMixin


class Exp(FocalExpMixin, VOCExpMixin, YOLOXExp):
    def __init__(self):
        super().__init__()
        self.exp_name = os.path.splitext(os.path.basename(__file__))[0]  # SET: outputs go to YOLOX_outputs/<exp_name>
        self.data_dir = "datasets/VOCdevkit"  # SET: the folder that holds VOC<year>/
        self.train_sets = [("2007", "trainval")]  # SET: (year, image set) pairs to train on
        self.val_sets = [("2007", "test")]  # SET: and to evaluate on (years before 2010 use VOC07's 11-point AP)
        self.class_names = ("cat", "dog")  # SET: the <name>s in the XML files
        self.num_classes = len(self.class_names)
        self.input_size = self.test_size = (640, 640)  # SET: (height, width), multiples of 32
        self.max_epoch = 100  # small data sets need fewer epochs than COCO's 300
        self.no_aug_epochs = 10  # the last epochs train without mosaic: keep it below max_epoch
