# Your own COCO-format data set: copy this file and set the values marked SET.
# Layout (YOLOX's): data_dir/annotations/<train_ann>, data_dir/train2017/<file_name>,
# data_dir/annotations/<val_ann>, data_dir/val2017/<file_name>.
# Check it: python tools/check_data.py -f exps/custom_coco.py
import os

from yolox.exp.default.yolox_s import Exp as YOLOXExp  # or yolox_nano / yolox_tiny / yolox_m ...

from yolox_focal import FocalExpMixin


class Exp(FocalExpMixin, YOLOXExp):
    def __init__(self):
        super().__init__()
        self.exp_name = os.path.splitext(os.path.basename(__file__))[0]  # SET: outputs go to YOLOX_outputs/<exp_name>
        self.data_dir = "datasets/my_data"  # SET: relative to where you run the tools, or absolute
        self.train_ann = "instances_train2017.json"  # in data_dir/annotations/
        self.val_ann = "instances_val2017.json"
        self.class_names = ("cat", "dog")  # SET: the categories' names in order of their ids
        self.num_classes = len(self.class_names)
        self.input_size = self.test_size = (640, 640)  # SET: (height, width), multiples of 32
        self.max_epoch = 100  # small data sets need fewer epochs than COCO's 300
        self.no_aug_epochs = 10  # the last epochs train without mosaic: keep it below max_epoch
