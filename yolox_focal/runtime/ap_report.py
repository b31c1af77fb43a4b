"""AP reported one way everywhere: a fraction in [0, 1], and "-" (None in metrics.jsonl) where
there is nothing to score, such as an area or a class with no objects. pycocotools writes -1 there
and YOLOX's tables show percent and nan; the tools show these instead."""

import math
import re

from tabulate import tabulate

__all__ = ["parse_coco_summary", "format_ap", "per_class_table", "readable_summary", "SUMMARY_KEYS"]

SUMMARY_KEYS = {
    ("Precision", "0.50:0.95", "all"): "ap50_95",
    ("Precision", "0.50", "all"): "ap50",
    ("Precision", "0.75", "all"): "ap75",
    ("Precision", "0.50:0.95", "small"): "ap_small",
    ("Precision", "0.50:0.95", "medium"): "ap_medium",
    ("Precision", "0.50:0.95", "large"): "ap_large",
}
_SUMMARY_LINE = re.compile(
    r"Average (Precision|Recall)\s+\(A[PR]\) @\[ IoU=([\d.:]+)\s*\| area=\s*(\w+) \| maxDets=\s*(\d+) \] = (-?[\d.]+|-)")


def parse_coco_summary(summary):
    """AP figures from pycocotools' printed summary, as {"ap50_95": ..., "ap_small": ...}; an area
    without objects (pycocotools' -1) is None."""
    figures = {}
    for kind, iou, area, _, value in _SUMMARY_LINE.findall(summary or ""):
        key = SUMMARY_KEYS.get((kind, iou, area))
        if key:
            figures[key] = None if value == "-" or float(value) < 0 else float(value)
    return figures


def readable_summary(summary):
    """pycocotools' summary with its -1 (nothing to score) written as "-"."""
    return re.sub(r"= -1\.000", "=      -", summary)


def format_ap(value, digits=4):
    """A fraction to ``digits`` places, or "-" for nothing to score (None, nan, pycocotools' -1)."""
    if value is None or not math.isfinite(value) or value < 0:
        return "-"
    return f"{value:.{digits}f}"


def per_class_table(per_class):
    """``{name: (ap50_95, ap50) or None}`` as a table; None (no objects of the class) reads "-"."""
    rows = [[name, *(("-", "-") if figures is None else map(format_ap, figures))]
            for name, figures in per_class.items()]
    return tabulate(rows, headers=["class", "AP50:95", "AP50"], floatfmt=".4f")


def coco_per_class(evaluation, class_names):
    """Per-class ``(AP50:95, AP50)`` from an accumulated pycocotools ``COCOeval``, area "all",
    most detections; None for a class without objects."""
    precision = evaluation.eval["precision"]  # [IoU, recall, class, area, max detections]
    figures = {}
    for k, name in enumerate(class_names):
        every_iou, at_50 = precision[:, :, k, 0, -1], precision[0, :, k, 0, -1]
        if (every_iou > -1).any():
            figures[name] = (float(every_iou[every_iou > -1].mean()), float(at_50[at_50 > -1].mean()))
        else:
            figures[name] = None
    return figures
