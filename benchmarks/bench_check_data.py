#!/usr/bin/env python3
"""Time the data check on a generated COCO-format annotation file the size of COCO's val2017
(5,000 images, 36,781 boxes, 80 categories; image files are empty placeholders: the check reads
annotations and file names, not pixels).

    python benchmarks/bench_check_data.py [--images 5000] [--boxes 36781] [--repeats 5]
"""

import argparse
import json
import os
import platform
import random
import statistics
import tempfile
import time

from yolox_focal.runtime.data_check import Findings, check_coco_split


def write_data_set(root, images, boxes, classes, seed=0):
    rng = random.Random(seed)
    os.makedirs(os.path.join(root, "val2017"))
    entries = []
    for i in range(1, images + 1):
        name = f"{i:012d}.jpg"
        open(os.path.join(root, "val2017", name), "wb").close()
        entries.append({"id": i, "file_name": name, "width": 640, "height": 480})
    annotations = []
    for i in range(1, boxes + 1):
        w, h = rng.uniform(4, 300), rng.uniform(4, 300)
        x, y = rng.uniform(0, 640 - w), rng.uniform(0, 480 - h)
        annotations.append({"id": i, "image_id": rng.randint(1, images), "category_id": rng.randint(1, classes),
                            "bbox": [round(x, 2), round(y, 2), round(w, 2), round(h, 2)],
                            "area": round(w * h, 2), "iscrowd": 0, "segmentation": []})
    path = os.path.join(root, "instances_val2017.json")
    with open(path, "w") as f:
        json.dump({"images": entries, "annotations": annotations,
                   "categories": [{"id": c, "name": f"class{c}"} for c in range(1, classes + 1)]}, f)
    return path


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=5000)
    parser.add_argument("--boxes", type=int, default=36781)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as root:
        path = write_data_set(root, args.images, args.boxes, 80)
        times = []
        for _ in range(args.repeats):
            findings = Findings()
            start = time.perf_counter()
            found = check_coco_split(path, os.path.join(root, "val2017"), 80, findings)
            times.append(time.perf_counter() - start)
            assert not findings.has_errors and found["objects"] == args.boxes
        size_mb = os.path.getsize(path) / 2**20
    print(f"data check, COCO val-sized file ({args.images} images, {args.boxes} boxes, {size_mb:.1f} MiB): "
          f"median {statistics.median(times):.3f} s, min {min(times):.3f} s over {args.repeats} runs "
          f"({platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()})")


if __name__ == "__main__":
    main()
