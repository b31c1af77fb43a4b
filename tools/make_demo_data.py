#!/usr/bin/env python3
"""Write the seeded demo data set (COCO format, YOLOX layout) used by exps/demo/.

    python tools/make_demo_data.py                 # datasets/demo: 400 train + 100 val at 320 px
    python tools/make_demo_data.py --out /tmp/d --train-images 40 --val-images 10 --seed 3
    python tools/make_demo_data.py --format voc    # datasets/demo_voc: the same data in VOC's layout
"""

import argparse
import inspect
import os
import shutil

from yolox_focal.runtime.cli import main_guard
from yolox_focal.runtime.errors import UsageError
from yolox_focal.runtime.demo_data import VOC_SETS, demo_data_ready, make_demo_data, make_demo_voc_data

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULTS = {name: p.default for name, p in inspect.signature(make_demo_data).parameters.items()}  # one source


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="data directory (default: datasets/demo, or datasets/demo_voc for VOC)")
    parser.add_argument("--format", choices=["coco", "voc"], default="coco",
                        help="coco: YOLOX's COCO layout (exps/demo/demo_focal.py); voc: VOC2007's (exps/demo/demo_voc.py)")
    parser.add_argument("--train-images", type=int, default=DEFAULTS["train_images"])
    parser.add_argument("--val-images", type=int, default=DEFAULTS["val_images"])
    parser.add_argument("--size", type=int, default=DEFAULTS["size"], help="image side in px, a multiple of 32")
    parser.add_argument("--max-objects", type=int, default=DEFAULTS["max_objects"], help="objects per image, at most")
    parser.add_argument("--seed", type=int, default=DEFAULTS["seed"])
    parser.add_argument("--if-missing", action="store_true", help="do nothing if the data set exists")
    parser.add_argument("--force", action="store_true", help="replace an existing data set")
    args = parser.parse_args()
    voc = args.format == "voc"
    args.out = args.out or os.path.join(REPO, "datasets", "demo_voc" if voc else "demo")
    ready = (os.path.isfile(os.path.join(args.out, "VOC" + VOC_SETS["val"][0], "ImageSets", "Main",
                                         VOC_SETS["val"][1] + ".txt")) if voc else demo_data_ready(args.out))
    if ready:
        if args.if_missing:
            print(f"demo data already in {args.out}")
            return
        if not args.force:
            raise UsageError(f"{args.out} already holds a data set; add --force to replace it")
        shutil.rmtree(args.out)
    try:
        paths = (make_demo_voc_data if voc else make_demo_data)(args.out, args.train_images, args.val_images, args.size,
                               args.max_objects, args.seed)
    except ValueError as error:
        raise UsageError(str(error)) from None
    print("wrote " + ", ".join(paths))


if __name__ == "__main__":
    main_guard(main)
