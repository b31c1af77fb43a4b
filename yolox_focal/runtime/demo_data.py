"""A small, seeded COCO-format detection data set in YOLOX's layout, made for focal objectness.

Each image has a few mostly small objects (about 8 to 100 px) over a textured, cluttered
background with distractors: the many-easy-negatives, few-positives regime focal loss is meant
for. Classes differ by shape; colours are shared between classes and distractors, so colour alone
does not find an object. Objects may overlap and distractors may cover parts of them (partial
occlusion); boxes are the objects' full extents.

    datasets/demo/
      annotations/instances_train2017.json, instances_val2017.json
      train2017/000000000001.jpg ...
      val2017/...

Image ``i`` of a split is drawn from its own generator seeded by (seed, split, i), so the data set
is the same bytes for the same arguments whatever the order or number of processes.
"""

import json
import math
import os
import tempfile
from concurrent.futures import ProcessPoolExecutor

import cv2
import numpy as np
from tqdm import tqdm

from ..adapter.demo_exp import CLASSES  # the demo exp's classes, which the data is drawn with

__all__ = ["CLASSES", "make_demo_data", "make_demo_voc_data", "write_voc_annotation", "demo_data_ready", "SPLITS",
           "VOC_SETS"]

SPLITS = {"train": "train2017", "val": "val2017"}
VOC_SETS = {"train": ("2007", "trainval"), "val": ("2007", "test")}  # (year, image set), as PASCAL VOC 2007
PALETTE = np.array([(230, 60, 50), (60, 200, 80), (50, 90, 230), (230, 210, 40), (210, 70, 220),
                    (40, 210, 220), (245, 245, 245), (25, 25, 25)], dtype=np.int32)


def _background(rng, size):
    """Smooth coloured noise plus random lines and blobs: texture without objects."""
    coarse = rng.integers(60, 200, size=(6, 6, 3)).astype(np.uint8)
    image = cv2.resize(coarse, (size, size), interpolation=cv2.INTER_CUBIC)
    grain = rng.normal(0, 12, size=(size, size, 3))
    image = np.clip(image + grain, 0, 255).astype(np.uint8)
    for _ in range(rng.integers(6, 14)):
        p1, p2 = rng.integers(0, size, 2), rng.integers(0, size, 2)
        colour = [int(c) for c in rng.integers(40, 220, 3)]
        cv2.line(image, tuple(int(v) for v in p1), tuple(int(v) for v in p2), colour,
                 int(rng.integers(1, 3)), cv2.LINE_AA)
    return image


def _colour(rng):
    base = PALETTE[rng.integers(len(PALETTE))] + rng.integers(-25, 26, 3)
    return [int(c) for c in np.clip(base, 0, 255)]


def _draw_shape(image, kind, cx, cy, w, h, colour, angle=0.0):
    """Draw a class shape (or, for distractors, an ellipse or bar) filling a w x h box."""
    centre = (int(round(cx)), int(round(cy)))
    if kind == "disc":
        cv2.ellipse(image, centre, (max(int(w / 2), 1), max(int(h / 2), 1)), 0, 0, 360, colour, -1,
                    cv2.LINE_AA)
    elif kind == "square":
        cv2.rectangle(image, (int(cx - w / 2), int(cy - h / 2)), (int(cx + w / 2), int(cy + h / 2)),
                      colour, -1)
    elif kind == "triangle":
        points = np.array([[cx, cy - h / 2], [cx - w / 2, cy + h / 2], [cx + w / 2, cy + h / 2]])
        cv2.fillPoly(image, [points.round().astype(np.int32)], colour, cv2.LINE_AA)
    elif kind == "cross":
        t = max(int(min(w, h) / 4), 1)
        cv2.rectangle(image, (int(cx - w / 2), int(cy - t)), (int(cx + w / 2), int(cy + t)), colour, -1)
        cv2.rectangle(image, (int(cx - t), int(cy - h / 2)), (int(cx + t), int(cy + h / 2)), colour, -1)
    elif kind == "ring":  # distractor: a hollow ellipse
        cv2.ellipse(image, centre, (max(int(w / 2), 1), max(int(h / 2), 1)), angle, 0, 360, colour,
                    max(int(min(w, h) / 8), 1), cv2.LINE_AA)
    else:  # "bar" distractor: a rotated rectangle at least 6 times longer than thick
        box = cv2.boxPoints(((cx, cy), (max(w, h), max(min(w, h) / 6, 2)), angle))
        cv2.fillPoly(image, [box.round().astype(np.int32)], colour, cv2.LINE_AA)


def _object_size(rng, size):
    """Mostly small: log-uniform from 8 px to about 100 px at 320 px (scaled with image size)."""
    side = math.exp(rng.uniform(math.log(8), math.log(100))) * size / 320
    aspect = math.exp(rng.uniform(-0.3, 0.3))
    return max(side * aspect, 4.0), max(side / aspect, 4.0)


def _make_image(args):
    """Draw one image; return its pixels and its object boxes [x, y, w, h, class index]."""
    seed, split_index, index, size, max_objects = args
    rng = np.random.default_rng([seed, split_index, index])
    image = _background(rng, size)
    for _ in range(rng.integers(3, 9)):  # distractors under the objects
        w, h = _object_size(rng, size)
        _draw_shape(image, rng.choice(["ring", "bar"]), rng.uniform(0, size), rng.uniform(0, size), w, h,
                    _colour(rng), rng.uniform(0, 180))
    boxes = []
    for _ in range(rng.integers(1, max_objects + 1)):
        w, h = _object_size(rng, size)
        cx, cy = rng.uniform(w / 2, size - w / 2), rng.uniform(h / 2, size - h / 2)
        label = int(rng.integers(len(CLASSES)))
        _draw_shape(image, CLASSES[label], cx, cy, w, h, _colour(rng))
        boxes.append([cx - w / 2, cy - h / 2, w, h, label])
    for _ in range(rng.integers(0, 3)):  # small occluders over the objects
        w, h = _object_size(rng, size)
        w, h = w / 2, h / 2
        _draw_shape(image, "bar", rng.uniform(0, size), rng.uniform(0, size), w, h, _colour(rng),
                    rng.uniform(0, 180))
    return image, boxes


def _write_image(args):
    path = args[-1]
    image, boxes = _make_image(args[:-1])
    cv2.imwrite(path, image, [cv2.IMWRITE_JPEG_QUALITY, 92])
    return boxes


def demo_data_ready(data_dir):
    """True when both annotation files of a demo data set exist under ``data_dir``."""
    return all(os.path.isfile(os.path.join(data_dir, "annotations", f"instances_{name}.json"))
               for name in SPLITS.values())


def make_demo_data(data_dir, train_images=400, val_images=100, size=320, max_objects=6, seed=0,
                   workers=None, progress=True):
    """Write the data set under ``data_dir`` and return its annotation file paths."""
    for name, value in (("train_images", train_images), ("val_images", val_images),
                        ("max_objects", max_objects)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a whole number >= 1, got {value!r}")
    if not isinstance(size, int) or size < 64 or size % 32:
        raise ValueError(f"size must be a multiple of 32 and >= 64 (YOLOX strides), got {size!r}")
    os.makedirs(os.path.join(data_dir, "annotations"), exist_ok=True)
    categories = [{"id": i + 1, "name": name, "supercategory": "shape"} for i, name in enumerate(CLASSES)]
    written = []
    with ProcessPoolExecutor(max_workers=workers or min(4, os.cpu_count() or 1)) as pool:
        for split_index, (count, folder) in enumerate(((train_images, SPLITS["train"]),
                                                       (val_images, SPLITS["val"]))):
            os.makedirs(os.path.join(data_dir, folder), exist_ok=True)
            files = [f"{i + 1:012d}.jpg" for i in range(count)]
            jobs = [(seed, split_index, i, size, max_objects, os.path.join(data_dir, folder, f))
                    for i, f in enumerate(files)]
            results = pool.map(_write_image, jobs, chunksize=8)
            if progress:
                results = tqdm(results, total=count, desc=f"demo data {folder}", unit="img")
            images, annotations = [], []
            for i, (file_name, boxes) in enumerate(zip(files, results)):
                images.append({"id": i + 1, "file_name": file_name, "width": size, "height": size})
                for x, y, w, h, label in boxes:
                    annotations.append({
                        "id": len(annotations) + 1, "image_id": i + 1, "category_id": label + 1,
                        "bbox": [round(x, 2), round(y, 2), round(w, 2), round(h, 2)],
                        "area": round(w * h, 2), "iscrowd": 0,
                    })
            coco = {"info": {"description": "yolox-focal demo data", "seed": seed},
                    "images": images, "annotations": annotations, "categories": categories}
            path = os.path.join(data_dir, "annotations", f"instances_{folder}.json")
            tmp = path + ".part"  # written whole, then renamed: never a half-written file
            with open(tmp, "w") as f:
                json.dump(coco, f, sort_keys=True)
            os.replace(tmp, path)
            written.append(path)
    return written


def write_voc_annotation(path, file_name, width, height, objects):
    """Write one PASCAL VOC XML file; ``objects`` are (class name, xmin, ymin, xmax, ymax) in VOC's
    1-based pixel corners."""
    parts = [f"<annotation><folder>JPEGImages</folder><filename>{file_name}</filename>",
             f"<size><width>{width}</width><height>{height}</height><depth>3</depth></size>"]
    for name, x1, y1, x2, y2 in objects:
        parts.append(f"<object><name>{name}</name><pose>Unspecified</pose><truncated>0</truncated>"
                     f"<difficult>0</difficult><bndbox><xmin>{x1}</xmin><ymin>{y1}</ymin><xmax>{x2}</xmax>"
                     f"<ymax>{y2}</ymax></bndbox></object>")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(parts) + "\n</annotation>\n")


def make_demo_voc_data(data_dir, train_images=400, val_images=100, size=320, max_objects=6, seed=0,
                       workers=None, progress=True):
    """The demo data set in PASCAL VOC's layout, read by YOLOX's ``VOCDetection``:
    ``data_dir/VOC2007/{JPEGImages/<id>.jpg, Annotations/<id>.xml, ImageSets/Main/{trainval,test}.txt}``.
    The same images and boxes as :func:`make_demo_data` with the same arguments, box corners rounded
    to whole pixels. Returns the image-set files."""
    with tempfile.TemporaryDirectory(dir=os.path.dirname(os.path.abspath(data_dir)) or None) as coco_dir:
        make_demo_data(coco_dir, train_images, val_images, size, max_objects, seed, workers, progress)
        folder = os.path.join(data_dir, "VOC" + VOC_SETS["train"][0])
        for sub in ("JPEGImages", "Annotations", os.path.join("ImageSets", "Main")):
            os.makedirs(os.path.join(folder, sub), exist_ok=True)
        written = []
        for split, (_, image_set) in VOC_SETS.items():
            with open(os.path.join(coco_dir, "annotations", f"instances_{SPLITS[split]}.json")) as f:
                coco = json.load(f)
            boxes = {}
            for ann in coco["annotations"]:
                x, y, w, h = ann["bbox"]
                corners = [min(max(int(round(v)) + 1, 1), size) for v in (x, y, x + w, y + h)]  # 1-based
                boxes.setdefault(ann["image_id"], []).append((CLASSES[ann["category_id"] - 1], *corners))
            ids = []
            for image in coco["images"]:
                image_id = f"{split}_{image['id']:06d}"  # one folder holds both splits, as in VOC
                os.replace(os.path.join(coco_dir, SPLITS[split], image["file_name"]),
                           os.path.join(folder, "JPEGImages", image_id + ".jpg"))
                write_voc_annotation(os.path.join(folder, "Annotations", image_id + ".xml"), image_id + ".jpg",
                                     image["width"], image["height"], boxes.get(image["id"], []))
                ids.append(image_id)
            path = os.path.join(folder, "ImageSets", "Main", image_set + ".txt")
            with open(path, "w") as f:
                f.write("\n".join(ids) + "\n")
            written.append(path)
    return written
