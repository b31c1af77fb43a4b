"""Real data for the ablation: aerial tree crowns, tiled into a VOC-format set (tools/make_forest_data.py).

The source is the ``data/`` folder of the ``deepforest`` wheel (``pip install --no-deps deepforest``;
only its files are read, the package is never imported): RGB scenes of forest from above (NEON
airborne imagery, about 10 cm a pixel), each ``<stem>.xml`` a PASCAL VOC annotation of its image
(``<filename>``, ``<size>``, ``<object>`` with ``<name>`` and ``<bndbox>``, VOC's 1-based pixel
corners). The wheel holds 4 annotated scenes with 951 crowns: two Yellowstone crops (2299 x 2472
and 1249 x 1035 px), OSBS_029 and SOAP_061 (400 x 400); SOAP_061 labels crowns ``Alive`` or
``Dead``, the others ``Tree``.

The scenes are cut into square tiles (``size`` px, neighbours overlapping by ``overlap`` px, the last
tile of a row or column moved back to end at the scene's edge). A box is shifted into each tile it
touches, clipped to the tile, and kept if at least ``min_visible`` of its area lies inside (and it is
at least 2 px wide and high after clipping); tiles left without a box are dropped unless
``keep_empty``. Tiles are split into training and validation tiles at random with ``seed``: the
validation tiles come from the same scenes as the training tiles (and, with an overlap, may share
pixels with them), so the validation AP measures fit to these scenes, not transfer to new forest.

    <out>/VOC2007/JPEGImages/<scene>_x<left>_y<top>.png   # the tile's pixels, lossless
    <out>/VOC2007/Annotations/<scene>_x<left>_y<top>.xml  # VOC XML, corners 1-based in the tile
    <out>/VOC2007/ImageSets/Main/trainval.txt, test.txt   # training and validation tile ids
    <out>/forest_data.json, <out>/README.md               # what was made, from what, and how

The output depends on the arguments and the source files only (no times, no randomness but the
seeded split), and appears whole: it is written into a hidden folder beside ``out`` and renamed.
"""

import hashlib
import importlib.util
import json
import os
import re
import shutil
import tempfile
import xml.etree.ElementTree as ET
from typing import NamedTuple

import cv2
import numpy as np

from .errors import DataError, UsageError
from .voc_files import image_files

__all__ = ["FOREST_CLASS", "VOC_SETS", "INSTALL_HINT", "deepforest_data_dir", "read_scenes", "tile_windows",
           "clip_box", "make_forest_data", "Scene"]

FOREST_CLASS = "Tree"  # every crown's class unless keep_classes
VOC_SETS = {"train": ("2007", "trainval"), "val": ("2007", "test")}  # (year, image set), as the demo's VOC set
INSTALL_HINT = "pip install --no-deps deepforest"
SUMMARY = "forest_data.json"
MIN_SIDE = 2  # px: a clipped box thinner than this is dropped


class Scene(NamedTuple):
    """An annotated scene: its name (the XML's stem), image file, pixels (BGR) and boxes, each
    ``(name, xmin, ymin, xmax, ymax)`` in VOC's 1-based whole-pixel corners."""
    name: str
    xml_path: str
    image_path: str
    image: np.ndarray
    boxes: list


def deepforest_data_dir():
    """The ``data/`` folder of the installed ``deepforest`` package, found without importing it."""
    spec = importlib.util.find_spec("deepforest")
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    if not locations:
        raise UsageError(f"the deepforest package is not installed; install its data with: {INSTALL_HINT}")
    for location in locations:
        folder = os.path.join(location, "data")
        if os.path.isdir(folder):
            return folder
    raise UsageError(f"the installed deepforest package ({locations[0]}) has no data/ folder; reinstall it: "
                     f"{INSTALL_HINT}")


def _number(element, tag, where):
    found = element.find(tag)
    try:
        return float(found.text)
    except (AttributeError, TypeError, ValueError):
        raise DataError(f"{where}: <{tag}> is missing or not a number") from None


def _read_image(path):
    # GeoTIFFs carry tags OpenCV does not know and warns about, once per tag: not a problem here
    level = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
    try:
        return cv2.imread(path, cv2.IMREAD_COLOR)
    finally:
        cv2.utils.logging.setLogLevel(level)


def read_scenes(source):
    """Every annotated scene in ``source``: each ``*.xml`` whose root is ``<annotation>``, with the
    image its ``<filename>`` names (or, where that file is absent, the one image ``<stem>.<ext>``)."""
    if not os.path.isdir(source):
        raise UsageError(f"{source} is not a folder")
    scenes = []
    images = image_files(source)
    for file_name in sorted(f for f in os.listdir(source) if f.lower().endswith(".xml")):
        xml_path = os.path.join(source, file_name)
        try:
            root = ET.parse(xml_path).getroot()
        except ET.ParseError as error:
            raise DataError(f"{xml_path}: not readable XML ({error})") from None
        if root.tag != "annotation":
            continue
        stem = os.path.splitext(file_name)[0]
        named = (root.findtext("filename") or "").strip()
        if named and os.path.isfile(os.path.join(source, named)):
            image_path = os.path.join(source, named)
        elif len(images.get(stem, [])) == 1:
            image_path = os.path.join(source, images[stem][0])
        else:
            raise DataError(f"{xml_path}: its image {named or stem + '.<ext>'} is not in {source}")
        image = _read_image(image_path)
        if image is None:
            raise DataError(f"{image_path}: not a decodable image")
        height, width = image.shape[:2]
        size = root.find("size")
        if size is not None and size.find("width") is not None:
            stated = (int(_number(size, "width", xml_path)), int(_number(size, "height", xml_path)))
            if stated != (width, height):
                raise DataError(f"{xml_path}: <size> says {stated[0]} x {stated[1]} px but {image_path} is "
                                f"{width} x {height}")
        boxes = []
        for index, obj in enumerate(root.iter("object")):
            where = f"{xml_path}: object {index + 1}"
            name = (obj.findtext("name") or "").strip()
            box = obj.find("bndbox")
            if not name or box is None:
                raise DataError(f"{where} has no <name> or no <bndbox>")
            x1, y1, x2, y2 = (int(round(_number(box, tag, where))) for tag in ("xmin", "ymin", "xmax", "ymax"))
            if not (1 <= x1 < x2 <= width and 1 <= y1 < y2 <= height):
                raise DataError(f"{where}: box ({x1}, {y1}, {x2}, {y2}) is empty or outside the "
                                f"{width} x {height} px image (VOC corners are 1-based)")
            boxes.append((name, x1, y1, x2, y2))
        scenes.append(Scene(stem, xml_path, image_path, image, boxes))
    if not any(scene.boxes for scene in scenes):
        raise DataError(f"{source} holds no VOC annotation (<stem>.xml) with objects")
    return scenes


def _starts(extent, size, stride):
    if extent <= size:
        return [0]
    starts = list(range(0, extent - size + 1, stride))
    if starts[-1] != extent - size:
        starts.append(extent - size)  # the last tile ends at the edge
    return starts


def tile_windows(width, height, size, overlap):
    """The tiles of a ``width`` x ``height`` scene as ``(left, top, tile width, tile height)``, row
    by row: ``size`` px squares (the scene's side where it is smaller) ``size - overlap`` apart."""
    stride = size - overlap
    return [(x, y, min(size, width), min(size, height))
            for y in _starts(height, size, stride) for x in _starts(width, size, stride)]


def clip_box(box, window, min_visible):
    """``box`` ``(xmin, ymin, xmax, ymax)`` (1-based scene corners) in the tile ``window``
    ``(left, top, width, height)``: its 1-based corners there, clipped, or None when less than
    ``min_visible`` of its area lies in the tile or less than 2 px of it in either direction."""
    x1, y1, x2, y2 = box
    left, top, width, height = window
    # pixels xmin..xmax cover [xmin - 1, xmax) in 0-based coordinates; the tile covers [left, left + width)
    lo_x, hi_x = max(x1 - 1, left), min(x2, left + width)
    lo_y, hi_y = max(y1 - 1, top), min(y2, top + height)
    if hi_x - lo_x < MIN_SIDE or hi_y - lo_y < MIN_SIDE:
        return None
    if (hi_x - lo_x) * (hi_y - lo_y) < min_visible * (x2 - x1 + 1) * (y2 - y1 + 1):
        return None
    return lo_x - left + 1, lo_y - top + 1, hi_x - left, hi_y - top


def _check(size, overlap, min_visible, val_fraction):
    if not isinstance(size, int) or size < 64 or size % 32:
        raise UsageError(f"tile size must be a multiple of 32 and >= 64 (YOLOX strides), got {size!r}")
    if not isinstance(overlap, int) or not 0 <= overlap < size:
        raise UsageError(f"overlap must be a whole number of px from 0 to below the tile size {size}, got {overlap!r}")
    if not 0 < min_visible <= 1:
        raise UsageError(f"min visible must be above 0 and at most 1, got {min_visible!r}")
    if not 0 < val_fraction < 1:
        raise UsageError(f"validation fraction must be above 0 and below 1, got {val_fraction!r}")


def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _voc_xml(file_name, width, height, objects):
    """A VOC annotation in the layout the deepforest files use."""
    lines = ["<annotation>", "    <folder>JPEGImages</folder>", f"    <filename>{file_name}</filename>",
             "    <size>", f"        <width>{width}</width>", f"        <height>{height}</height>",
             "        <depth>3</depth>", "    </size>", "    <segmented>0</segmented>"]
    for name, x1, y1, x2, y2 in objects:
        lines += ["    <object>", f"        <name>{name}</name>", "        <pose>Unspecified</pose>",
                  "        <truncated>0</truncated>", "        <difficult>0</difficult>", "        <bndbox>",
                  f"            <xmin>{x1}</xmin>", f"            <ymin>{y1}</ymin>",
                  f"            <xmax>{x2}</xmax>", f"            <ymax>{y2}</ymax>", "        </bndbox>",
                  "    </object>"]
    return "\n".join(lines + ["</annotation>"]) + "\n"


def _scene_id(name):
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def _deepforest_version():
    from importlib import metadata

    try:
        return metadata.version("deepforest")
    except metadata.PackageNotFoundError:
        return None


def make_forest_data(out, source=None, size=256, overlap=0, min_visible=0.5, val_fraction=0.2, seed=0,
                     keep_classes=False, keep_empty=False, force=False):
    """Tile the scenes of ``source`` (default: the deepforest wheel's ``data/``) into a VOC set at
    ``out``; returns the summary written to ``out/forest_data.json``."""
    _check(size, overlap, min_visible, val_fraction)
    from_wheel = source is None
    source = deepforest_data_dir() if from_wheel else source
    out = os.path.abspath(out)
    if os.path.exists(out):
        if not os.path.isfile(os.path.join(out, SUMMARY)):
            raise UsageError(f"{out} exists and is not a tree-crown data set; choose another --out")
        if not force:
            raise UsageError(f"{out} already holds a tree-crown data set; add --force to replace it")
    scenes = read_scenes(source)

    tiles, dropped, empty = [], 0, 0
    kept_somewhere = set()  # (scene index, box index) of the boxes kept in at least one tile
    for scene_index, scene in enumerate(scenes):
        height, width = scene.image.shape[:2]
        for window in tile_windows(width, height, size, overlap):
            objects, sources = [], []
            for box_index, (name, *box) in enumerate(scene.boxes):
                clipped = clip_box(box, window, min_visible)
                if clipped is not None:
                    objects.append((name if keep_classes else FOREST_CLASS, *clipped))
                    sources.append((scene_index, box_index))
                    kept_somewhere.add((scene_index, box_index))
                elif _touches(box, window):
                    dropped += 1  # a piece of a box in a tile that does not keep it
            if objects or keep_empty:
                left, top, w, h = window
                tiles.append({"id": f"{_scene_id(scene.name)}_x{left:05d}_y{top:05d}", "scene": scene.name,
                              "left": left, "top": top, "width": w, "height": h, "objects": objects,
                              "sources": sources})
            else:
                empty += 1
    if len(tiles) < 2:
        raise DataError(f"{source}: {len(tiles)} tile(s) with boxes at {size} px: too few to split into "
                        f"training and validation; use a smaller tile size")
    order = np.random.default_rng(seed).permutation(len(tiles))
    n_val = min(max(1, int(round(val_fraction * len(tiles)))), len(tiles) - 1)
    val = {int(i) for i in order[:n_val]}
    for index, tile in enumerate(tiles):
        tile["split"] = "val" if index in val else "train"

    in_train = {b for t in tiles if t["split"] == "train" for b in t["sources"]}
    in_val = {b for t in tiles if t["split"] == "val" for b in t["sources"]}
    classes = sorted({o[0] for t in tiles for o in t["objects"]}) if keep_classes else [FOREST_CLASS]
    source_names = sorted({b[0] for s in scenes for b in s.boxes})
    splits = {split: {"image_set": "/".join(VOC_SETS[split]),
                      "tiles": sum(t["split"] == split for t in tiles),
                      "boxes": sum(len(t["objects"]) for t in tiles if t["split"] == split),
                      "boxes_per_class": {c: sum(o[0] == c for t in tiles if t["split"] == split
                                                 for o in t["objects"]) for c in classes}}
              for split in ("train", "val")}
    summary = {
        "description": "aerial RGB tree-crown scenes (deepforest's data/ folder), tiled for YOLOX's VOC route",
        "source": {"folder": "deepforest/data (installed wheel)" if from_wheel else os.path.abspath(source),
                   "deepforest_version": _deepforest_version() if from_wheel else None,
                   "scenes": [{"name": s.name, "image": os.path.basename(s.image_path),
                               "annotation": os.path.basename(s.xml_path),
                               "width": s.image.shape[1], "height": s.image.shape[0], "boxes": len(s.boxes),
                               "boxes_per_name": {n: sum(b[0] == n for b in s.boxes)
                                                  for n in sorted({b[0] for b in s.boxes})},
                               "image_sha256": _sha256(s.image_path), "annotation_sha256": _sha256(s.xml_path)}
                              for s in scenes]},
        "settings": {"tile_size": size, "overlap": overlap, "min_visible": min_visible,
                     "val_fraction": val_fraction, "seed": seed, "keep_classes": keep_classes,
                     "keep_empty": keep_empty},
        "classes": classes,
        "class_mapping": {n: (n if keep_classes else FOREST_CLASS) for n in source_names},
        "splits": splits,
        "boxes_dropped": dropped,
        "boxes_in_no_tile": sum(len(sc.boxes) for sc in scenes) - len(kept_somewhere),
        "empty_tiles_dropped": empty,
        "val_boxes_also_in_train": len(in_val & in_train),
        "caveat": "validation tiles are drawn at random from the same scenes as the training tiles (a split by "
                  "tile, not by scene): validation AP measures fit to these scenes, not transfer to new forest; "
                  "neighbouring tiles share pixels where the overlap is above 0 and at each scene's right and "
                  "bottom edge (the last tile ends at the edge), so a crown there can be in a training and a "
                  "validation tile (val_boxes_also_in_train counts them)",
        "tiles": [{k: (len(v) if k == "objects" else v) for k, v in t.items() if k != "sources"} for t in tiles],
    }
    _write_all(out, scenes, tiles, summary)
    return summary


def _touches(box, window):
    x1, y1, x2, y2 = box
    left, top, width, height = window
    return x1 - 1 < left + width and x2 > left and y1 - 1 < top + height and y2 > top


def _readme(summary):
    s = summary["settings"]
    train, val = summary["splits"]["train"], summary["splits"]["val"]
    mapping = ", ".join(f"{k} -> {v}" for k, v in summary["class_mapping"].items())
    return f"""# Tree crowns, tiled (made by tools/make_forest_data.py)

Aerial RGB forest scenes and their crown boxes from the deepforest wheel's data/ folder
({len(summary['source']['scenes'])} annotated scenes), cut into {s['tile_size']} px tiles overlapping by
{s['overlap']} px, in PASCAL VOC's layout (VOC2007/: JPEGImages/*.png, Annotations/*.xml,
ImageSets/Main/trainval.txt and test.txt) for exps/forest_nano.py.

- Training (trainval): {train['tiles']} tiles, {train['boxes']} boxes.
- Validation (test): {val['tiles']} tiles, {val['boxes']} boxes.
- Classes: {', '.join(summary['classes'])} ({mapping}).
- A box is kept in a tile when at least {s['min_visible']:g} of its area lies inside, clipped to the tile;
  {summary['boxes_dropped']} pieces of boxes in tiles that do not keep them were dropped, and
  {summary['boxes_in_no_tile']} source boxes are in no tile. Tiles without boxes are
  {'kept' if s['keep_empty'] else f"dropped ({summary['empty_tiles_dropped']})"}.
- Split by tile at random (seed {s['seed']}, validation fraction {s['val_fraction']:g});
  {summary['val_boxes_also_in_train']} validation crowns are also (partly) in a training tile.

Caveat: {summary['caveat']}. VOC2007 scores with VOC07's 11-point AP. forest_data.json lists every
tile (scene, position, split, boxes) and the source files' SHA-256.
"""


def _write_all(out, scenes, tiles, summary):
    parent = os.path.dirname(out)
    os.makedirs(parent, exist_ok=True)
    work = tempfile.mkdtemp(dir=parent, prefix=f".{os.path.basename(out)}.part-")
    try:
        folder = os.path.join(work, "VOC" + VOC_SETS["train"][0])
        for sub in ("JPEGImages", "Annotations", os.path.join("ImageSets", "Main")):
            os.makedirs(os.path.join(folder, sub))
        by_name = {scene.name: scene for scene in scenes}
        for tile in tiles:
            image = by_name[tile["scene"]].image
            crop = image[tile["top"]:tile["top"] + tile["height"], tile["left"]:tile["left"] + tile["width"]]
            if not cv2.imwrite(os.path.join(folder, "JPEGImages", tile["id"] + ".png"), crop):
                raise DataError(f"could not write {tile['id']}.png under {folder}")
            with open(os.path.join(folder, "Annotations", tile["id"] + ".xml"), "w", encoding="utf-8") as f:
                f.write(_voc_xml(tile["id"] + ".png", tile["width"], tile["height"], tile["objects"]))
        for split, (_, image_set) in VOC_SETS.items():
            with open(os.path.join(folder, "ImageSets", "Main", image_set + ".txt"), "w") as f:
                f.writelines(t["id"] + "\n" for t in tiles if t["split"] == split)
        with open(os.path.join(work, SUMMARY), "w") as f:
            json.dump(summary, f, indent=1)
            f.write("\n")
        with open(os.path.join(work, "README.md"), "w") as f:
            f.write(_readme(summary))
        os.chmod(work, 0o755)  # mkdtemp's 0700 would make the data set private
        if os.path.exists(out):  # --force: the old set goes only once the new one is complete
            old = tempfile.mkdtemp(dir=parent, prefix=f".{os.path.basename(out)}.old-")
            os.replace(out, os.path.join(old, "set"))
            os.replace(work, out)
            shutil.rmtree(old)
        else:
            os.replace(work, out)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
