"""YOLOX's COCO and VOC evaluators on the CPU, in one process or several.

YOLOX's ``COCOEvaluator`` and ``VOCEvaluator`` assume CUDA (``torch.cuda.FloatTensor`` inputs,
``yolox.utils.gather``). These subclasses replace only the inference loop and the gathering of a
distributed run's detections (each process infers its shard, rank 0 scores the whole set);
pycocotools and YOLOX's VOC scoring stay YOLOX's own. After an evaluation each keeps, on rank 0,
``last_per_class`` (``{class name: (ap50_95, ap50)}``, None for a class without objects), which the
trainer writes to ``metrics.jsonl``; the COCO scoring is ``coco_scoring``'s, the GPU route's too.
"""

import time

import torch
from tqdm import tqdm
from yolox.utils import get_rank, get_world_size, postprocess

from ..adapter.flavour import VOCEvaluator
from .ap_report import per_class_table
from .coco_scoring import PerClassCOCOEvaluator
from .cpu_noise import quiet_cpu_run
from .distributed import merge_gathered

__all__ = ["CPUCOCOEvaluator", "CPUVOCEvaluator", "to_cpu_evaluator"]


def _infer(evaluator, model, convert):
    """Run the evaluator's data through the model on the CPU; ``convert(outputs, info_imgs, ids)``
    turns each batch's detections into the evaluator's format. Returns the converted batches and
    YOLOX's timing statistics."""
    model = model.float().eval()
    batches = []
    inference_time = nms_time = 0.0
    shown = tqdm(evaluator.dataloader, desc="evaluating", unit="batch", disable=get_rank() != 0)
    for imgs, _, info_imgs, ids in shown:
        with torch.no_grad():
            start = time.perf_counter()
            outputs = model(imgs.float())
            inferred = time.perf_counter()
            outputs = postprocess(outputs, evaluator.num_classes, evaluator.confthre, evaluator.nmsthre)
            nms_time += time.perf_counter() - inferred
            inference_time += inferred - start
        batches.append(convert(outputs, info_imgs, ids))
    return batches, torch.tensor([inference_time, nms_time, len(evaluator.dataloader)])


class CPUCOCOEvaluator(PerClassCOCOEvaluator):
    """``COCOEvaluator`` whose inference loop runs on the CPU; scoring is pycocotools', with the
    per-class figures of ``PerClassCOCOEvaluator``."""

    @classmethod
    def convert(cls, evaluator):
        evaluator = super().convert(evaluator)
        quiet_cpu_run()
        return evaluator

    def evaluate(self, model, distributed=False, half=False, *args, return_outputs=False, **kwargs):
        """YOLOX's ``(ap50_95, ap50, summary)``; with ``return_outputs`` (YOLOX main's trainer asks
        for it) also the per-image detections, as main's evaluator returns them.

        ``distributed``: every process infers its shard and rank 0 scores them all, each image once;
        the other ranks return YOLOX's ``(0, 0, None)``."""
        def convert(outputs, info_imgs, ids):
            if return_outputs:  # YOLOX main's keyword; the PyPI release's method has none
                detections, image_wise = self.convert_to_coco_format(outputs, info_imgs, ids, return_outputs=True)
            else:
                detections, image_wise = self.convert_to_coco_format(outputs, info_imgs, ids), {}
            by_image = {int(i): [] for i in ids}
            for detection in detections:
                by_image[int(detection["image_id"])].append(detection)
            return by_image, image_wise

        batches, statistics = _infer(self, model, convert)
        by_image = {k: v for detections, _ in batches for k, v in detections.items()}
        per_image = {k: v for _, image_wise in batches for k, v in image_wise.items()}
        if distributed:
            by_image, per_image, statistics = _gather_to_rank0(by_image, per_image, statistics)
        results = self.evaluate_prediction([d for ds in by_image.values() for d in ds], statistics)
        return (results, per_image) if return_outputs else results


class CPUVOCEvaluator(VOCEvaluator):
    """YOLOX's ``VOCEvaluator`` with its inference loop on the CPU; scoring is YOLOX's ``voc_eval``
    through ``NamedVOCDetection``, whose per-class AP the summary lists."""

    @classmethod
    def convert(cls, evaluator):
        if not isinstance(evaluator, VOCEvaluator):
            raise TypeError(f"expected a yolox VOCEvaluator, got {type(evaluator).__name__}")
        evaluator.__class__ = cls
        return evaluator

    def evaluate(self, model, distributed=False, half=False, *args, return_outputs=False, **kwargs):
        """YOLOX's ``(ap50_95, ap50, summary)``; with ``return_outputs`` (the trainers of YOLOX main
        and pixeltable-yolox ask for it) also the per-image detections."""
        batches, statistics = _infer(self, model, self.convert_to_voc_format)
        predictions = {k: v for batch in batches for k, v in batch.items()}
        if distributed:
            predictions, _, statistics = _gather_to_rank0(predictions, {}, statistics)
        self.last_per_class = None
        if get_rank() != 0:
            return 0, 0, None
        ap50_95, ap50, info = self.evaluate_prediction(predictions, statistics)
        per_class = getattr(self.dataloader.dataset, "last_per_class", None)
        summary = (info or "") + f"VOC AP50:95 {ap50_95:.4f}, AP50 {ap50:.4f}\n"
        if per_class:
            summary += "per class AP:\n" + per_class_table(per_class) + "\n"
        results = (float(ap50_95), float(ap50), summary)
        self.last_per_class = dict(per_class) if per_class else None
        return (results, predictions) if return_outputs else results


def _gather_to_rank0(by_image, per_image, statistics):
    """Each process's detections (keyed by image) and timings, merged on rank 0 (the others get
    empty dicts), each image kept once. What YOLOX's evaluators do with ``yolox.utils.gather``,
    here with torch's ``gather_object``, which pickles without YOLOX's deprecated ByteStorage."""
    torch.distributed.reduce(statistics, dst=0)
    parts = [None] * get_world_size() if get_rank() == 0 else None
    torch.distributed.gather_object((by_image, per_image), parts, dst=0)
    if get_rank() != 0:
        return {}, {}, statistics
    return merge_gathered(p[0] for p in parts), merge_gathered(p[1] for p in parts), statistics


def to_cpu_evaluator(evaluator):
    """The CPU version of a YOLOX COCO or VOC evaluator (changed in place)."""
    for cpu_class, yolox_class in ((CPUCOCOEvaluator, PerClassCOCOEvaluator.__mro__[1]),
                                   (CPUVOCEvaluator, VOCEvaluator)):
        if isinstance(evaluator, yolox_class):
            return cpu_class.convert(evaluator)
    raise TypeError(f"no CPU evaluation for {type(evaluator).__name__}; use a COCO or VOC evaluator")
