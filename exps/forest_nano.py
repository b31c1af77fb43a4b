# Real data: yolox-nano from scratch on aerial tree crowns (one class, Tree), 256 px tiles of the
# deepforest wheel's annotated scenes in VOC's layout, made by
#     pip install --no-deps deepforest && python tools/make_forest_data.py    # datasets/forest
# (another folder: "data_dir /path" after the flags). YOLOX's own losses (the loss kit at YOLOX's
# values): the baseline that tools/ablate.py -f exps/forest_nano.py varies. The schedule is one in
# which the baseline learns on 2 CPU cores: 100 epochs of 12 iterations (89 training tiles,
# -b 8), evaluated every 10 epochs on the validation tiles, which come from the same scenes.
import os

from yolox.exp.default.yolox_nano import Exp as YOLOXNanoExp

from yolox_focal import FocalExpMixin, yolox_settings
from yolox_focal.runtime.forest_data import FOREST_CLASS, VOC_SETS
from yolox_focal.runtime.voc import VOCExpMixin

DATASETS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "datasets")


class Exp(FocalExpMixin, VOCExpMixin, YOLOXNanoExp):
    def __init__(self):
        super().__init__()
        self.exp_name = os.path.splitext(os.path.basename(__file__))[0]
        for key, value in yolox_settings().items():  # YOLOX's losses, not the kit's focal objectness
            setattr(self, key, value)
        self.data_dir = os.path.join(DATASETS, "forest")
        self.train_sets = [VOC_SETS["train"]]
        self.val_sets = [VOC_SETS["val"]]
        self.class_names = (FOREST_CLASS,)  # tools/make_forest_data.py --keep-classes: ("Alive", "Dead", "Tree")
        self.num_classes = len(self.class_names)
        self.input_size = self.test_size = (256, 256)  # the tiles' size
        self.random_size = (8, 8)  # fixed 256 px: no multiscale on a short schedule
        self.mosaic_scale = (0.8, 1.6)  # crowns are 10-100 px: keep the small ones above a stride
        self.max_epoch = 100
        self.warmup_epochs = 5
        self.no_aug_epochs = 10
        self.eval_interval = 10
        self.print_interval = 6
        self.basic_lr_per_img = 0.08 / 64.0  # the demo's: from scratch in a few thousand iterations
        self.data_num_workers = 2
        self.save_history_ckpt = False
        self.seed = 0
