"""What a VOC-format data set's files may look like beyond PASCAL VOC's own, in one place for the
data check (no YOLOX needed) and the VOC dataset.

- Images: YOLOX's ``VOCDetection`` opens only ``JPEGImages/<id>.jpg``; data sets written by other
  tools hold ``.png``, ``.jpeg``, ``.JPG``, ``.bmp``... ``image_files`` finds ``<id>.<ext>`` for
  every extension OpenCV reads.
- Objects: many annotation tools write only ``<name>`` and ``<bndbox>`` (perhaps ``<difficult>``),
  but YOLOX's VOC evaluation (``voc_eval.parse_rec``) reads ``<pose>``, ``<truncated>`` and
  ``<difficult>`` and the corners with ``int()``. ``EVAL_DEFAULTS`` are the values YOLOX's training
  reader assumes when they are missing (not truncated, not difficult); ``complete_for_eval``
  writes them into a copy of the XML, with the corners as the training reader reads them.
"""

import os
import xml.etree.ElementTree as ET

__all__ = ["IMAGE_EXTENSIONS", "EVAL_DEFAULTS", "image_files", "missing_eval_fields", "complete_for_eval"]

# What cv2.imread decodes (lower case; names are matched without regard to case)
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".jpe", ".png", ".bmp", ".dib", ".tif", ".tiff", ".webp", ".jp2",
                    ".pbm", ".pgm", ".ppm", ".pxm", ".pnm", ".sr", ".ras", ".exr", ".hdr", ".pic")
EVAL_DEFAULTS = {"pose": "Unspecified", "truncated": "0", "difficult": "0"}
CORNERS = ("xmin", "ymin", "xmax", "ymax")


def image_files(folder):
    """``{id: [file names]}`` for the images in ``folder`` (a ``JPEGImages``), ``<id>.jpg`` first
    (YOLOX's own name). An id with more than one file is ambiguous; one with none is missing."""
    found = {}
    try:
        entries = sorted(entry.name for entry in os.scandir(folder) if entry.is_file())
    except FileNotFoundError:
        return found
    for name in entries:
        stem, ext = os.path.splitext(name)
        if ext.lower() in IMAGE_EXTENSIONS:
            found.setdefault(stem, []).append(name)
    for names in found.values():
        names.sort(key=lambda name: not name.endswith(".jpg"))
    return found


def _text(element, tag):
    found = element.find(tag)
    return None if found is None or found.text is None or not found.text.strip() else found.text.strip()


def missing_eval_fields(obj):
    """The evaluation fields an ``<object>`` element lacks, in ``EVAL_DEFAULTS`` order."""
    return [tag for tag in EVAL_DEFAULTS if _text(obj, tag) is None]


def complete_for_eval(source, target):
    """Write the VOC XML file ``source`` to ``target`` with every object's missing ``<pose>``,
    ``<truncated>``, ``<difficult>`` set to ``EVAL_DEFAULTS`` and its corners as whole numbers,
    truncated as YOLOX's training reader does (``int(float(text))``), so that YOLOX's evaluation
    reads the boxes the model was trained on."""
    tree = ET.parse(source)
    for obj in tree.getroot().iter("object"):
        for tag in missing_eval_fields(obj):
            field = obj.find(tag)
            if field is None:
                field = ET.SubElement(obj, tag)
            field.text = EVAL_DEFAULTS[tag]
        box = obj.find("bndbox")
        for corner in CORNERS:
            field = box.find(corner)
            field.text = str(int(float(field.text)))
    os.makedirs(os.path.dirname(target), exist_ok=True)
    tree.write(target)
