#!/usr/bin/env python3
"""Check an exp's training and validation data (COCO or VOC format) before training on it.

Prints one line per mistake (file, entry, what is wrong, how to fix it) and exits with status 2;
survivable oddities are warnings with a count. tools/train.py and tools/eval.py run the same check.

    python tools/check_data.py -f exps/custom_coco.py                 # annotations and file names
    python tools/check_data.py -f exps/custom_coco.py --images        # also decode every image
    python tools/check_data.py -f exps/custom_voc.py --split val data_dir /data/VOCdevkit
"""

from yolox_focal.runtime import interrupt  # first: from here on a Ctrl-C or SIGTERM stops with one line

interrupt.install()

import argparse  # noqa: E402
import sys  # noqa: E402

from yolox_focal.runtime.cli import check_data, load_exp, main_guard  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-f", "--exp_file", required=True, help="the exp file")
    parser.add_argument("--split", choices=["train", "val", "both"], default="both")
    parser.add_argument("--images", action="store_true", help="open every image (slower: decodes the pixels)")
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="exp options as 'key value' pairs")
    args = parser.parse_args()
    exp = load_exp(args.exp_file, None, args.opts)
    splits = ("train", "val") if args.split == "both" else (args.split,)
    interrupt.set_phase(f"the data check ({', '.join(splits)})")
    report = check_data(exp, splits, open_images=args.images)
    for line in report.warnings:
        print(f"warning: {line}", file=sys.stderr)
    counts = ", ".join(f"{split} {c['images']} images, {c['objects']} objects" for split, c in report.counts.items())
    print(f"data OK: {counts}; {len(report.class_names)} classes: {', '.join(report.class_names)}")


if __name__ == "__main__":
    main_guard(main)
