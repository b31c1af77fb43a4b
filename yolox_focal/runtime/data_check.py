"""Check an exp's training and validation data before any work: one line per mistake.

Reads annotations (COCO JSON or VOC XML), not pixels, unless asked to open every image. Each error
names the file, the entry, what is wrong and how to fix it; what YOLOX survives (images without
objects, boxes it clips) is a warning with a count. The rules follow what YOLOX's ``COCODataset``,
``VOCDetection`` and their evaluators do with the data, so a set that passes loads and evaluates.

    from yolox_focal.runtime.data_check import check_exp_data
    report = check_exp_data(exp, ("train", "val"))   # raises DataError listing every error
    print("\\n".join(report.warnings))
"""

import json
import math
import os
import re
import xml.etree.ElementTree as ET
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

from .errors import DataError
from .voc_files import image_files, missing_eval_fields

__all__ = ["check_exp_data", "check_coco_split", "check_voc_split", "data_splits", "DataReport",
           "Findings", "unreadable_image_in", "SHOWN_PER_KIND"]

SHOWN_PER_KIND = 3  # errors of one kind in one file shown in full; the rest are counted
COCO_IMAGE_FOLDERS = {"train": "train2017", "val": "val2017"}  # fixed by YOLOX's exp and COCODataset


class Findings:
    """Errors and warnings, grouped by (file, kind) so that a mistake repeated 10,000 times costs a
    few lines and a count, not 10,000 lines."""

    def __init__(self):
        self._errors, self._warnings = {}, {}

    def error(self, path, kind, entry, problem, fix):
        # grouped by folder: VOC keeps one XML file per image, so a repeated mistake spans many files
        self._errors.setdefault((os.path.dirname(path), kind), []).append(f"{path}: {entry}: {problem}; {fix}")

    def warn(self, path, kind, what):
        """``what`` reads after a count: '3 images without objects (trained on as background)'."""
        self._warnings[(path, kind)] = (self._warnings.get((path, kind), (0, what))[0] + 1, what)

    @property
    def has_errors(self):
        return bool(self._errors)

    def error_lines(self):
        lines = []
        for (path, kind), found in self._errors.items():
            lines.extend(found[:SHOWN_PER_KIND])
            if len(found) > SHOWN_PER_KIND:
                lines.append(f"{path or '.'}: {len(found) - SHOWN_PER_KIND} more like the above ({kind})")
        return lines

    def warning_lines(self):
        return [f"{path}: {count} {what}" for (path, _), (count, what) in self._warnings.items()]


class DataReport:
    """What a passed check found: warnings and, per split, the number of images and objects."""

    def __init__(self, warnings, counts, class_names):
        self.warnings = warnings
        self.counts = counts  # {"train": {"images": n, "objects": m}, ...}
        self.class_names = class_names  # class index -> name, as YOLOX's dataset orders them


# --------------------------------------------------------------------------------------------- COCO

def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _duplicates(values):
    return sorted(v for v, n in Counter(values).items() if n > 1)


def _load_json(path, findings):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as error:
        findings.error(path, "json", f"line {error.lineno}, column {error.colno}", f"not valid JSON ({error.msg})",
                       "repair or re-export the file (a truncated copy or a stray comma is the usual cause)")
    except UnicodeDecodeError as error:
        findings.error(path, "json", f"byte {error.start}", "not UTF-8 text", "save the file as UTF-8 JSON")
    return None


def check_coco_split(ann_path, image_dir, num_classes, findings, open_images=False):
    """Check one COCO-format split as YOLOX's ``COCODataset`` reads it (boxes from ``annotations``,
    images from ``image_dir/file_name``). Returns ``{"images", "objects", "categories"}`` or None
    when the file cannot be read at all."""
    coco = _load_json(ann_path, findings)
    if coco is None:
        return None
    if not isinstance(coco, dict):
        findings.error(ann_path, "keys", "top level", f"a JSON {type(coco).__name__}, not an object",
                       "write COCO's object with 'images', 'annotations' and 'categories' lists")
        return None
    missing = [k for k in ("images", "annotations", "categories") if not isinstance(coco.get(k), list)]
    if missing:
        findings.error(ann_path, "keys", "top level", f"no {' / '.join(repr(k) for k in missing)} list",
                       "COCO's format needs 'images', 'annotations' and 'categories', each a list")
        return None

    categories = _check_categories(ann_path, coco["categories"], num_classes, findings)
    sizes = _check_images(ann_path, image_dir, coco["images"], findings, open_images)
    objects = _check_annotations(ann_path, coco["annotations"], sizes, categories, findings)
    if not coco["images"]:
        findings.error(ann_path, "empty", "images", "the split has no images",
                       "list the split's images in 'images' (and check that this is the right file)")
    elif not coco["annotations"]:
        findings.error(ann_path, "empty", "annotations", "the split has no annotations: nothing to learn or score",
                       "add the boxes to 'annotations' (and check that this is the right file)")
    else:
        empty = len(sizes) - len({image_id for image_id in objects if image_id in sizes})
        for _ in range(empty):
            findings.warn(ann_path, "no objects", "images without objects (used as background)")
    return {"images": len(coco["images"]), "objects": sum(objects.values()), "categories": categories}


def _check_categories(path, categories, num_classes, findings):
    names = {}
    for i, category in enumerate(categories):
        if not isinstance(category, dict) or not isinstance(category.get("id"), int) or "name" not in category:
            findings.error(path, "category", f"categories[{i}]", "needs an integer 'id' and a 'name'",
                           "write it as {\"id\": 1, \"name\": \"cat\"}")
            continue
        if category["id"] in names:
            findings.error(path, "duplicate id", f"category id {category['id']}", "used twice",
                           "give every category its own id")
        names[category["id"]] = str(category["name"])
    if len(names) > num_classes:
        findings.error(path, "num_classes", "categories", f"{len(names)} categories but the exp's num_classes is "
                       f"{num_classes}", f"set num_classes = {len(names)} in the exp (or 'num_classes {len(names)}')")
    elif 0 < len(names) < num_classes:
        findings.warn(path, "num_classes", f"categories for num_classes {num_classes}: the model has "
                      f"{num_classes - len(names)} class outputs that no box trains (set num_classes = {len(names)})")
    return names


def _check_images(path, image_dir, images, findings, open_images):
    """Image id -> (width, height) of every usable entry; checks that each file is there."""
    sizes, files = {}, {}
    try:
        present = {entry.name for entry in os.scandir(image_dir)}
    except FileNotFoundError:
        findings.error(path, "image folder", "images", f"image folder {image_dir} not found",
                       f"put the split's images in {image_dir} (YOLOX's layout)")
        present = None
    for i, image in enumerate(images):
        entry = f"images[{i}]" + (f" (id {image.get('id')})" if isinstance(image, dict) else "")
        if not isinstance(image, dict) or not isinstance(image.get("id"), int):
            findings.error(path, "image", entry, "needs an integer 'id'", "give every image entry an integer id")
            continue
        width, height = image.get("width"), image.get("height")
        if not (_is_number(width) and _is_number(height) and width > 0 and height > 0):
            findings.error(path, "image size", entry, f"width {width!r}, height {height!r}: YOLOX scales boxes "
                           "by them", "set 'width' and 'height' to the image's size in pixels")
            continue
        if image["id"] in sizes:
            findings.error(path, "duplicate id", entry, "image id used twice: one entry's boxes would be lost",
                           "give every image its own id")
        # YOLOX falls back to the zero-padded id when an entry has no file_name
        file_name = image.get("file_name") or f"{image['id']:012}.jpg"
        sizes[image["id"]] = (width, height)
        files[image["id"]] = file_name
        if present is not None and not (file_name in present if "/" not in file_name
                                        else os.path.isfile(os.path.join(image_dir, file_name))):
            findings.error(path, "missing image", entry, f"image file {os.path.join(image_dir, file_name)} not found",
                           "add the file, fix 'file_name', or remove the entry and its annotations")
    if open_images and present is not None:
        _open_images(path, image_dir, files, sizes, findings)
    return sizes


def _read_size(file):
    import cv2

    image = cv2.imread(file)
    return None if image is None else image.shape[:2]


def _open_images(path, image_dir, files, sizes, findings):
    ids = [i for i in files if os.path.isfile(os.path.join(image_dir, files[i]))]
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:  # cv2 releases the GIL
        shapes = pool.map(_read_size, [os.path.join(image_dir, files[i]) for i in ids])
        for image_id, shape in zip(ids, shapes):
            file = os.path.join(image_dir, files[image_id])
            if shape is None:
                findings.error(path, "unreadable image", f"image id {image_id}", f"{file} does not decode as an image",
                               "replace the file or remove the entry and its annotations")
            elif (shape[1], shape[0]) != tuple(sizes[image_id]):
                findings.error(path, "image size", f"image id {image_id}", f"{file} is {shape[1]}x{shape[0]} but the "
                               f"entry says {sizes[image_id][0]}x{sizes[image_id][1]}: boxes would be scaled wrongly",
                               "set the entry's width and height to the file's")


def _check_annotations(path, annotations, sizes, categories, findings):
    """Image id -> number of boxes YOLOX keeps; reports what it would mangle, drop or crash on."""
    objects = Counter()
    ids = []
    for i, ann in enumerate(annotations):
        if not isinstance(ann, dict):
            findings.error(path, "annotation", f"annotations[{i}]", "not an object", "write it as COCO does")
            continue
        entry = f"annotation id {ann.get('id')}" if "id" in ann else f"annotations[{i}]"
        lacking = [k for k in ("id", "image_id", "category_id", "bbox", "area", "iscrowd") if k not in ann]
        if lacking:
            findings.error(path, "annotation keys", entry, f"lacks {', '.join(lacking)}",
                           "COCO annotations need id, image_id, category_id, bbox [x, y, w, h], area and iscrowd "
                           "(0 for a single object)")
            continue
        ids.append(ann["id"])
        if ann["category_id"] not in categories:
            findings.error(path, "category", entry, f"category_id {ann['category_id']!r} is not among the categories "
                           f"({', '.join(map(str, sorted(categories))) or 'none'})",
                           "fix the category_id or add the category to 'categories'")
        if ann["image_id"] not in sizes:
            findings.error(path, "image_id", entry, f"image_id {ann['image_id']!r} is not among the images",
                           "fix the image_id or add the image entry")
            continue
        box = ann["bbox"]
        if not (isinstance(box, list) and len(box) == 4 and all(_is_number(v) for v in box)):
            findings.error(path, "bbox", entry, f"bbox {box!r} is not 4 numbers", "write bbox as [x, y, width, height]")
            continue
        if ann["iscrowd"]:
            continue  # crowd regions are not trained on and are ignored by the evaluation
        x, y, w, h = box
        width, height = sizes[ann["image_id"]]
        if w <= 0 or h <= 0:
            findings.error(path, "box size", entry, f"bbox {box} has non-positive width or height: YOLOX would train "
                           "on a box of zero size", "fix the box (COCO's bbox is [x, y, width, height]) or remove it")
        elif x >= width or y >= height or x + w <= 0 or y + h <= 0:
            findings.error(path, "box outside", entry, f"bbox {box} lies outside its {width}x{height} image: YOLOX "
                           "would drop it silently", "fix the box (COCO's bbox is [x, y, width, height] in pixels, "
                           "not x1, y1, x2, y2 nor fractions) or remove it")
        elif not _is_number(ann["area"]) or ann["area"] <= 0:
            findings.error(path, "area", entry, f"area {ann['area']!r}: YOLOX drops boxes whose area is not positive",
                           f"set area to the object's area in pixels (width x height = {w * h:g})")
        else:
            if x < 0 or y < 0 or x + w > width or y + h > height:
                findings.warn(path, "clipped", "boxes reach past their image's edge (YOLOX clips them to it)")
            objects[ann["image_id"]] += 1
    for duplicate in _duplicates(ids):
        findings.error(path, "duplicate id", f"annotation id {duplicate}", "used more than once: pycocotools would "
                       "keep only one of them", "give every annotation its own id")
    return objects


# ---------------------------------------------------------------------------------------------- VOC

def _text(element, tag):
    found = element.find(tag)
    return None if found is None or found.text is None else found.text.strip()


def check_voc_split(root, image_sets, class_names, num_classes, findings, open_images=False):
    """Check VOC-format image sets as ``NamedVOCDetection`` reads them (YOLOX's ``VOCDetection``:
    ``root/VOC<year>/{ImageSets/Main/<set>.txt, Annotations/<id>.xml, JPEGImages/<id>.jpg}``, with
    images of any type OpenCV reads). Returns ``{"images", "objects"}``."""
    if len(class_names) != num_classes:
        findings.error("exp", "num_classes", "class_names", f"{len(class_names)} class names but num_classes is "
                       f"{num_classes}", f"set num_classes = {len(class_names)} (or list {num_classes} class names)")
    known = set(class_names)
    images = objects = 0
    files = []
    for year, name in image_sets:
        folder = os.path.join(root, f"VOC{year}")
        list_file = os.path.join(folder, "ImageSets", "Main", f"{name}.txt")
        if not os.path.isfile(list_file):
            findings.error(list_file, "image set", "file", "image set not found",
                           f"write the split's image ids, one a line, to {list_file}")
            continue
        with open(list_file, encoding="utf-8") as f:
            ids = [line.strip() for line in f if line.strip()]
        if not ids:
            findings.error(list_file, "empty", "file", "the split has no images", "list the split's image ids")
        for duplicate in _duplicates(ids):
            findings.error(list_file, "duplicate id", f"id {duplicate}", "listed more than once",
                           "list every image once")
        images += len(ids)
        image_dir = os.path.join(folder, "JPEGImages")
        present = image_files(image_dir)
        for image_id in ids:
            found = present.get(image_id, [])
            if not found:
                findings.error(list_file, "missing image", f"id {image_id}",
                               f"no image file {image_dir}/{image_id}.jpg (nor .png or another image type) found",
                               "add the image or remove the id")
            elif len(found) > 1:
                findings.error(list_file, "two images", f"id {image_id}", f"{len(found)} image files in {image_dir} "
                               f"({', '.join(found)}): which one is labelled is unclear", "keep one of them")
            else:
                files.append(os.path.join(image_dir, found[0]))
            objects += _check_voc_xml(os.path.join(folder, "Annotations", f"{image_id}.xml"), list_file, known,
                                      findings)
    if images and not objects and not findings.has_errors:
        findings.error(root, "empty", "annotations", "the split's XML files hold no objects: nothing to learn or score",
                       "add <object> entries to the XML files")
    if open_images:
        with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
            for file, shape in zip(files, pool.map(_read_size, files)):
                if shape is None:
                    findings.error(file, "unreadable image", "file", "does not decode as an image",
                                   "replace the file or remove its id from the image set")
    return {"images": images, "objects": objects}


def _check_voc_xml(xml, list_file, known, findings):
    """Number of objects in one VOC XML file; reports what would crash YOLOX's reader or change
    what it trains on or scores."""
    if not os.path.isfile(xml):
        findings.error(xml, "missing xml", "file", "annotation file not found", "write the image's VOC XML file")
        return 0
    try:
        annotation = ET.parse(xml).getroot()
    except ET.ParseError as error:
        findings.error(xml, "xml", "file", f"XML does not parse ({error})", "repair or re-export the file")
        return 0
    size = annotation.find("size")
    try:
        width, height = int(_text(size, "width")), int(_text(size, "height"))
    except (TypeError, ValueError, AttributeError):
        findings.error(xml, "size", "<size>", "no integer <width> and <height>",
                       "add <size><width>W</width><height>H</height></size> in pixels")
        return 0
    folder = os.path.dirname(xml)
    count = 0
    for index, obj in enumerate(annotation.iter("object")):
        name = _text(obj, "name")
        entry = f"object {index + 1} ({name})"
        if name not in known:
            findings.error(xml, "class", entry, f"class name {name!r} is not in the exp's class_names "
                           f"({', '.join(sorted(known))})",
                           "add it to class_names (and num_classes) or fix the name")
            continue
        box = obj.find("bndbox")
        try:
            x1, y1, x2, y2 = (float(_text(box, k)) for k in ("xmin", "ymin", "xmax", "ymax"))
        except (TypeError, ValueError, AttributeError):
            findings.error(xml, "bndbox", entry, "no numeric <bndbox> xmin, ymin, xmax, ymax",
                           "write the box's corners in pixels")
            continue
        if obj.find("difficult") is not None and _text(obj, "difficult") not in ("0", "1"):
            findings.error(xml, "difficult", entry, f"<difficult> is {_text(obj, 'difficult')!r}: YOLOX reads it with "
                           "int()", "write <difficult>0</difficult> (or 1 for an object the evaluation ignores)")
            continue
        if missing_eval_fields(obj):
            findings.warn(folder, "eval fields", "objects without <pose>, <truncated> or <difficult> (read as "
                          "YOLOX's training reads them: not truncated, not difficult)")
        if not all(float(_text(box, k)).is_integer() for k in ("xmin", "ymin", "xmax", "ymax")):
            findings.warn(folder, "fractional box", "boxes with fractional corners (read as whole pixels, "
                          "as YOLOX's reader truncates them)")
        if x2 <= x1 or y2 <= y1:
            findings.error(xml, "box size", entry, f"box ({x1:g}, {y1:g}, {x2:g}, {y2:g}) has non-positive size: YOLOX "
                           "would train on a degenerate box", "fix the corners (xmin < xmax, ymin < ymax) or remove it")
        elif x1 >= width or y1 >= height or x2 <= 0 or y2 <= 0:
            findings.error(xml, "box outside", entry, f"box ({x1:g}, {y1:g}, {x2:g}, {y2:g}) lies outside the "
                           f"{width}x{height} image", "fix the corners (pixels, not fractions) or remove it")
        else:
            if x1 < 0 or y1 < 0 or x2 > width or y2 > height:
                findings.warn(xml, "clipped", "boxes reach past the image's edge (YOLOX clips them)")
            count += 1
    if count == 0:
        findings.warn(list_file, "no objects", "images without objects (used as background)")
    return count


# ---------------------------------------------------------------------------------------------- exps

def data_splits(exp, splits):
    """Where the exp's data for each split lives, as YOLOX's datasets will read it."""
    from yolox.data import get_yolox_datadir

    specs = []
    if getattr(exp, "data_format", "coco") == "voc":
        for split in splits:
            specs.append({"format": "voc", "split": split, "data_dir": exp.data_dir,
                          "image_sets": exp.train_sets if split == "train" else exp.val_sets})
        return specs
    data_dir = exp.data_dir or os.path.join(get_yolox_datadir(), "COCO")
    for split in splits:
        ann = exp.train_ann if split == "train" else exp.val_ann
        specs.append({"format": "coco", "split": split, "data_dir": data_dir,
                      "annotation": os.path.join(data_dir, "annotations", ann),
                      "image_dir": os.path.join(data_dir, COCO_IMAGE_FOLDERS[split])})
    return specs


def missing_data_dir_message(exp, data_dir, demo_hint=None):
    """One line for a data directory that is not there: where it was looked for and how to point
    the exp elsewhere."""
    from yolox.data import get_yolox_datadir

    if exp.data_dir:
        where = f"data directory not found: {data_dir} (the exp's data_dir)"
    else:
        source = ("YOLOX_DATADIR" if os.getenv("YOLOX_DATADIR")
                  else "YOLOX_DATADIR is unset, so YOLOX looks next to its own package")
        where = f"data directory not found: {data_dir} ({source}: {get_yolox_datadir()}, plus COCO)"
    fix = "set data_dir in the exp (or 'data_dir PATH' on the command line), or point YOLOX_DATADIR at the folder " \
          "that holds COCO/"
    return f"{where}; {demo_hint or fix}" + (f", or {fix}" if demo_hint else "")


def check_exp_data(exp, splits, open_images=False, demo_hint=None):
    """Check every split of the exp; raise :class:`DataError` with one line per error, else return a
    :class:`DataReport`. ``demo_hint`` replaces the usual fix for a missing data directory."""
    findings = Findings()
    counts, categories = {}, {}
    for spec in data_splits(exp, splits):
        if not spec["data_dir"] or not os.path.isdir(spec["data_dir"]):
            raise DataError(missing_data_dir_message(exp, spec["data_dir"], demo_hint))
        if spec["format"] == "coco":
            if not os.path.isfile(spec["annotation"]):
                raise DataError(f"annotation file not found: {spec['annotation']}; "
                                + (demo_hint or "put the split's COCO JSON there or set train_ann / val_ann in the exp"))
            found = check_coco_split(spec["annotation"], spec["image_dir"], exp.num_classes, findings, open_images)
            if found and getattr(exp, "class_names", None) is not None:
                _check_class_names(spec["annotation"], tuple(exp.class_names), found["categories"], findings)
            if found:
                categories[spec["split"]] = (spec["annotation"], found.pop("categories"))
                counts[spec["split"]] = found
        else:
            counts[spec["split"]] = check_voc_split(spec["data_dir"], spec["image_sets"], exp.class_names,
                                                    exp.num_classes, findings, open_images)
    _check_same_categories(categories, findings)
    if findings.has_errors:
        raise DataError("\n".join(findings.error_lines()))
    if getattr(exp, "class_names", None) is not None:
        class_names = list(exp.class_names)
    else:
        _, names = next(iter(categories.values()), (None, {}))
        class_names = [names[k] for k in sorted(names)]  # YOLOX's class index order
    return DataReport(findings.warning_lines(), counts, class_names)


def _check_class_names(path, class_names, categories, findings):
    """An exp's class_names (the demo's labels) must name the categories in YOLOX's class order."""
    in_file = tuple(categories[k] for k in sorted(categories))
    if class_names != in_file:
        findings.error(path, "class names", "categories", f"named {list(in_file)} (in order of id) but the exp's "
                       f"class_names are {list(class_names)}", f"set class_names = {in_file!r} in the exp")


def _check_same_categories(categories, findings):
    """YOLOX numbers classes by sorted category id in each split on its own: different category
    lists in training and validation would score every box against the wrong class."""
    if len(categories) == 2:
        (train_file, train), (val_file, val) = categories["train"], categories["val"]
        if train != val:
            findings.error(val_file, "categories", "categories", f"differ from {train_file}'s "
                           f"({sorted(val.items())} vs {sorted(train.items())})",
                           "use the same category ids and names in every split")


_UNREADABLE = re.compile(r"file named (.+?) not found")


def unreadable_image_in(error):
    """The image path in YOLOX's failure to read an image (missing, or not decodable), else None.
    YOLOX's datasets assert ``cv2.imread`` succeeded; a data-loader worker re-raises it with the
    original message inside its own."""
    match = _UNREADABLE.search(str(error))
    return match.group(1) if match else None
