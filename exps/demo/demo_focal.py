# The demo experiment: yolox-nano with focal-loss objectness on the generated demo data set
# (python tools/make_demo_data.py), with a schedule short enough for a CPU (about 10 minutes on
# 2 cores). demo_bce.py is the same experiment with YOLOX's BCE objectness.
import os

from yolox.exp.default.yolox_nano import Exp as YOLOXNanoExp

from yolox_focal import FocalExpMixin
from yolox_focal.demo_data import CLASSES

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class Exp(FocalExpMixin, YOLOXNanoExp):
    def __init__(self):
        super().__init__()
        self.exp_name = os.path.splitext(os.path.basename(__file__))[0]
        self.data_dir = os.path.join(REPO, "datasets", "demo")
        self.num_classes = len(CLASSES)
        self.input_size = self.test_size = (320, 320)
        self.random_size = (10, 10)  # fixed 320 px: no multiscale on a short schedule
        self.mosaic_scale = (0.8, 1.6)  # keep small objects from shrinking below a stride
        self.max_epoch = 18
        self.warmup_epochs = 1
        self.no_aug_epochs = 3
        self.eval_interval = 3
        self.print_interval = 5
        # 8x COCO's 0.01 / 64: from scratch in 450 iterations, learning speed is what counts
        # (0.16 / 64 diverges in the first epoch).
        self.basic_lr_per_img = 0.08 / 64.0
        self.data_num_workers = 2
        self.save_history_ckpt = False
        self.seed = 0  # on the CPU a seeded run is repeatable: same seed, same augmentations, same AP
