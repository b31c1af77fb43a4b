"""COCO scoring with AP per class, on both routes.

``PerClassCOCOEvaluator`` is YOLOX's ``COCOEvaluator`` (its inference, on the GPU route) with its
scoring step, ``evaluate_prediction``, reporting AP as fractions with a per-class table and keeping
the per-class figures (``last_per_class``: ``{class name: (ap50_95, ap50)}``, None for a class
without objects) for the trainer's ``metrics.jsonl``. The GPU route's trainer
(``checkpoints.WholeCheckpointTrainer``) turns its exp's COCO evaluator into one; the CPU route's
``cpu_evaluators.CPUCOCOEvaluator`` is it with the inference loop on the CPU. Scoring is pycocotools' ``COCOeval``, as in YOLOX.
"""

import contextlib
import io

from yolox.utils import get_rank

from ..adapter.flavour import COCOEvaluator
from .ap_report import coco_per_class, per_class_table, readable_summary

__all__ = ["PerClassCOCOEvaluator", "with_per_class"]


class PerClassCOCOEvaluator(COCOEvaluator):
    """YOLOX's ``COCOEvaluator``, its scoring reported as fractions with the AP of each class
    ("-" where there is nothing to score), kept in ``last_per_class``."""

    last_per_class = None

    @classmethod
    def convert(cls, evaluator):
        """``evaluator`` (a YOLOX ``COCOEvaluator``) as this class, changed in place."""
        if not isinstance(evaluator, COCOEvaluator):
            raise TypeError(f"expected a yolox COCOEvaluator, got {type(evaluator).__name__}")
        evaluator.__class__ = cls
        return evaluator

    def evaluate_prediction(self, data_list, statistics):
        """pycocotools' COCOeval on the detections: ``(ap50_95, ap50, summary)`` where the summary
        holds YOLOX's timing line, pycocotools' table and AP per class; the per-class figures also
        go to ``last_per_class``. On a distributed run's other processes: YOLOX's ``(0, 0, None)``,
        before any work (rank 0 scores the whole set)."""
        from pycocotools.cocoeval import COCOeval

        self.last_per_class = None
        if get_rank() != 0:
            return 0, 0, None

        inference, nms, batches = statistics.tolist()
        images = max(batches * self.dataloader.batch_size, 1)
        info = (f"Average forward time: {1000 * inference / images:.2f} ms, Average NMS time: "
                f"{1000 * nms / images:.2f} ms, Average inference time: {1000 * (inference + nms) / images:.2f} ms\n")
        coco_gt = self.dataloader.dataset.coco
        if not data_list:
            self.last_per_class = {coco_gt.cats[k]["name"]: (0.0, 0.0) if coco_gt.getAnnIds(catIds=[k]) else None
                                   for k in sorted(coco_gt.cats)}
            return 0.0, 0.0, info + "no detections above the confidence threshold: AP 0\n"
        evaluation = COCOeval(coco_gt, coco_gt.loadRes(data_list), "bbox")
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            evaluation.evaluate()
            evaluation.accumulate()
            evaluation.summarize()
        summary = readable_summary(printed.getvalue()[printed.getvalue().index(" Average Precision"):])
        names = [coco_gt.cats[k]["name"] for k in evaluation.params.catIds]
        self.last_per_class = coco_per_class(evaluation, names)
        info += summary + "per class AP:\n" + per_class_table(self.last_per_class) + "\n"
        ap50_95, ap50 = (max(float(v), 0.0) for v in evaluation.stats[:2])
        return ap50_95, ap50, info


def with_per_class(evaluator):
    """An exp's evaluator with per-class AP where it is a COCO one (changed in place); any other
    (VOC's, whose data set keeps the per-class figures, or a user's own) as it is."""
    if isinstance(evaluator, COCOEvaluator) and not isinstance(evaluator, PerClassCOCOEvaluator):
        return PerClassCOCOEvaluator.convert(evaluator)
    return evaluator
