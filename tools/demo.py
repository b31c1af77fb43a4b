#!/usr/bin/env python3
"""YOLOX's demo (image, video, webcam) with the exp's own class names on the boxes.

Takes YOLOX's tools/demo.py flags (``image|video|webcam``, -f, -n, -c, --path, --save_result,
--conf, --nms, --tsize, --device cpu|gpu, --fp16, --legacy, --fuse, --trt, -expn, --camid). YOLOX's
own demo labels every box with COCO's 80 class names, whatever the exp; this runs the same demo
code (``yolox.tools.demo``) with the exp's class names: its ``class_names``, or the categories of its
validation annotations. Megvii's YOLOX (pixeltable-yolox has its own ``yolox demo``).

    python tools/demo.py image -f exps/demo/demo_focal.py -c YOLOX_outputs/demo_focal/best_ckpt.pth \\
        --path datasets/demo/val2017 --conf 0.3 --save_result
"""

import importlib
import os

from yolox_focal.adapter import flavour
from yolox_focal.runtime.checkpoint_files import allow_numpy_scalars_in_checkpoints, load_checkpoint
from yolox_focal.runtime.cli import check_data, load_exp, main_guard
from yolox_focal.runtime.errors import UsageError

allow_numpy_scalars_in_checkpoints()  # the demo's torch.load reads checkpoints saved after an evaluation


def class_names_of(exp):
    """The exp's class names: ``exp.class_names``, else its validation annotations' categories."""
    names = getattr(exp, "class_names", None) or check_data(exp, ("val",)).class_names
    names = tuple(names)
    if len(names) != exp.num_classes:
        raise UsageError(f"the exp has {exp.num_classes} classes but {len(names)} class names; set class_names "
                         "(or num_classes) in the exp")
    return names


def without_gui_waits():
    """YOLOX's image demo waits for a key after each image (cv2.waitKey), which an OpenCV without a
    GUI (opencv-python-headless, as tools/setup.sh installs it) refuses with an error. There is no
    window to wait on there, so in this process waitKey returns at once; the images are saved as usual."""
    import cv2

    try:
        cv2.waitKey(1)
    except cv2.error:
        cv2.waitKey = lambda delay=0: -1


def main():
    if flavour.flavour() == "pixeltable":
        raise UsageError("tools/demo.py runs Megvii's YOLOX demo; with pixeltable-yolox use its own `yolox demo`")
    demo = importlib.import_module("yolox.tools.demo")
    args = demo.make_parser().parse_args()
    exp = load_exp(args.exp_file, args.name, [])
    names = class_names_of(exp)
    if not args.trt:
        experiment = args.experiment_name or exp.exp_name
        load_checkpoint(args.ckpt or os.path.join(exp.output_dir, experiment, "best_ckpt.pth"), exp.get_model())
    if args.demo == "image" and not os.path.exists(args.path):
        raise UsageError(f"--path {args.path}: no such image or folder")
    print(f"labels: {', '.join(names)}")
    without_gui_waits()
    demo.COCO_CLASSES = names  # the name YOLOX's demo main() labels its boxes with
    demo.main(exp, args)


if __name__ == "__main__":
    main_guard(main)
