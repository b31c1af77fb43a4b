"""The demo experiment's settings: yolox-nano on the generated demo data set (tools/make_demo_data.py)
with a schedule short enough for a CPU (about 10 minutes on 2 cores). Shared by exps/demo/ (Megvii's
YOLOX) and the pixeltable-yolox demo configs (yolox_focal.pixeltable_configs)."""

import os

__all__ = ["apply_demo_settings", "CHECKOUT_DATASETS", "CLASSES"]

CLASSES = ("disc", "square", "triangle", "cross")  # the shapes tools/make_demo_data.py draws
# datasets/ of the checkout this package runs from (an editable install): where the pixeltable
# configs, which live in the package, look for the demo data. The exps in exps/demo/ find it from
# their own location instead.
CHECKOUT_DATASETS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                                 "datasets")


def apply_demo_settings(exp, datasets):
    """Give a yolox-nano exp or config the demo's data (``datasets``/demo) and schedule."""
    exp.data_dir = os.path.join(datasets, "demo")
    exp.class_names = CLASSES  # the eval tables' and tools/demo.py's labels
    exp.num_classes = len(CLASSES)
    exp.input_size = exp.test_size = (320, 320)
    exp.random_size = (10, 10)  # fixed 320 px: no multiscale on a short schedule
    exp.mosaic_scale = (0.8, 1.6)  # keep small objects from shrinking below a stride
    exp.max_epoch = 18
    exp.warmup_epochs = 1
    exp.no_aug_epochs = 3
    exp.eval_interval = 3
    exp.print_interval = 5
    # 8x COCO's 0.01 / 64: from scratch in 450 iterations, learning speed is what counts
    # (0.16 / 64 diverges in the first epoch).
    exp.basic_lr_per_img = 0.08 / 64.0
    exp.data_num_workers = 2
    exp.save_history_ckpt = False
    exp.seed = 0  # on the CPU a seeded run is repeatable: same seed, same augmentations, same AP
