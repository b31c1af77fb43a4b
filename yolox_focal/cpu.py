"""YOLOX training and COCO evaluation on the CPU.

YOLOX's ``Trainer`` and ``COCOEvaluator`` assume CUDA (``torch.cuda.set_device``, a CUDA-stream
prefetcher, ``torch.cuda.FloatTensor`` inputs, a CUDA tensor in ``Exp.random_resize``). These
subclasses replace only those steps; the data pipeline, loss, LR schedule, EMA, checkpoint format,
``train_log.txt``, tensorboard events and pycocotools evaluation stay YOLOX's own. Each epoch also
appends a line to ``metrics.jsonl``: the epoch's mean losses and, after an evaluation, its AP.
"""

import json
import math
import os
import random
import re
import time
import warnings

import numpy as np
import torch
from loguru import logger
from tqdm import tqdm
from yolox.utils import ModelEMA, get_model_info, postprocess

from .cli import UsageError
from .flavour import COCOEvaluator, Trainer

__all__ = ["CPUTrainer", "CPUCOCOEvaluator", "parse_coco_summary", "quiet_cpu_run"]

_SUMMARY_KEYS = {
    ("Precision", "0.50:0.95", "all"): "ap50_95",
    ("Precision", "0.50", "all"): "ap50",
    ("Precision", "0.75", "all"): "ap75",
    ("Precision", "0.50:0.95", "small"): "ap_small",
    ("Precision", "0.50:0.95", "medium"): "ap_medium",
    ("Precision", "0.50:0.95", "large"): "ap_large",
}
_SUMMARY_LINE = re.compile(
    r"Average (Precision|Recall)\s+\(A[PR]\) @\[ IoU=([\d.:]+)\s*\| area=\s*(\w+) \| maxDets=\s*(\d+) \] = (-?[\d.]+)")


def parse_coco_summary(summary):
    """AP figures from pycocotools' printed summary, as {"ap50_95": ..., "ap_small": ...}."""
    figures = {}
    for kind, iou, area, _, value in _SUMMARY_LINE.findall(summary or ""):
        key = _SUMMARY_KEYS.get((kind, iou, area))
        if key:
            figures[key] = float(value)
    return figures


# What YOLOX prints on every CPU run that says nothing about it: its torch.cuda.amp calls (disabled
# on the CPU) are deprecated, its data loaders ask for pinned memory, and its log line reports the
# GPU memory as 0Mb.
_CPU_NOISE = (
    (FutureWarning, r"`torch\.cuda\.amp\.(autocast|GradScaler)\(args\.\.\.\)` is deprecated"),
    (UserWarning, r"'pin_memory' argument is set as true but no accelerator is found"),
)
_GPU_MEMORY = re.compile(r"(gpu )?mem: 0Mb, ")


def _drop_gpu_memory(record):
    if record["message"].startswith("epoch: "):
        record["message"] = _GPU_MEMORY.sub("", record["message"], count=1)


def quiet_cpu_run():
    """Silence, for these messages only, what YOLOX's CUDA-minded code prints on a CPU run."""
    for category, message in _CPU_NOISE:
        warnings.filterwarnings("ignore", message=message, category=category)
    logger.configure(patcher=_drop_gpu_memory)


class CPUCOCOEvaluator(COCOEvaluator):
    """``COCOEvaluator`` whose inference loop runs on the CPU; scoring is YOLOX's own."""

    @classmethod
    def convert(cls, evaluator):
        if not isinstance(evaluator, COCOEvaluator):
            raise TypeError(f"expected a yolox COCOEvaluator, got {type(evaluator).__name__}")
        evaluator.__class__ = cls
        quiet_cpu_run()
        return evaluator

    def evaluate(self, model, distributed=False, half=False, *args, return_outputs=False, **kwargs):
        """YOLOX's ``(ap50_95, ap50, summary)``; with ``return_outputs`` (YOLOX main's trainer asks
        for it) also the per-image detections, as main's evaluator returns them."""
        if distributed:
            raise ValueError("CPU evaluation runs in one process; drop -d/--dist-url")
        model = model.float().eval()
        data_list, per_image = [], {}
        inference_time = nms_time = 0.0
        for imgs, _, info_imgs, ids in tqdm(self.dataloader, desc="evaluating", unit="batch"):
            with torch.no_grad():
                start = time.perf_counter()
                outputs = model(imgs.float())
                inferred = time.perf_counter()
                outputs = postprocess(outputs, self.num_classes, self.confthre, self.nmsthre)
                nms_time += time.perf_counter() - inferred
                inference_time += inferred - start
            if return_outputs:
                detections, image_wise = self.convert_to_coco_format(outputs, info_imgs, ids, return_outputs=True)
                per_image.update(image_wise)
            else:
                detections = self.convert_to_coco_format(outputs, info_imgs, ids)
            data_list.extend(detections)
        statistics = torch.tensor([inference_time, nms_time, len(self.dataloader)])
        self.last_results = self.evaluate_prediction(data_list, statistics)
        return (self.last_results, per_image) if return_outputs else self.last_results


class _Prefetcher:
    """The ``next()`` interface of YOLOX's CUDA ``DataPrefetcher``, for CPU tensors."""

    def __init__(self, loader):
        self.iterator = iter(loader)

    def next(self):
        inputs, targets, _, _ = next(self.iterator)
        return inputs, targets


def _random_resize_on_cpu(exp):
    """``Exp.random_resize`` with its size rule but no CUDA tensor (single process)."""

    def random_resize(data_loader, epoch, rank, is_distributed):
        if getattr(exp, "random_size", None) is None:  # pixeltable's config declares it as None
            base = int(exp.input_size[0] / 32)
            exp.random_size = (base - exp.multiscale_range, base + exp.multiscale_range)
        size = random.randint(*exp.random_size)
        aspect = exp.input_size[1] * 1.0 / exp.input_size[0]
        return int(32 * size), 32 * int(size * aspect)

    return random_resize


def _seed_worker(worker_id):
    """Seed a data-loader worker's ``random`` and numpy from its torch seed.

    YOLOX reseeds every worker from uuid4, so augmentations differ run to run even with
    ``exp.seed`` set. torch derives each worker's seed from the main process's generator, which
    ``exp.seed`` seeds: with it, the same exp and seed give the same augmentations.
    """
    seed = torch.initial_seed() % 2**32
    random.seed(seed)
    np.random.seed(seed)


class CPUTrainer(Trainer):
    """YOLOX's ``Trainer`` on the CPU, in one process, in float32."""

    def __init__(self, exp, args):
        if args.logger != "tensorboard":  # checked here, before Trainer opens its log files
            raise UsageError(f"-l {args.logger} is not supported on the CPU; use -l tensorboard (the default)")
        args.fp16 = False  # float16 on the CPU is slower and unsupported by several ops
        quiet_cpu_run()
        super().__init__(exp, args)
        self.device = "cpu"
        exp.random_resize = _random_resize_on_cpu(exp)
        self.metrics_path = os.path.join(self.file_name, "metrics.jsonl")
        self._loss_sums, self._loss_count = {}, 0

    def before_train(self):
        # As Trainer.before_train, minus torch.cuda.set_device, the CUDA prefetcher and DDP.
        logger.info("args: {}".format(self.args))
        logger.info("exp value:\n{}".format(self.exp))
        model = self.exp.get_model()
        logger.info("Model Summary: {}".format(get_model_info(model, self.exp.test_size)))
        model.to(self.device)
        self.optimizer = self.exp.get_optimizer(self.args.batch_size)
        model = self.resume_train(model)
        self._start_metrics()
        self.no_aug = self.start_epoch >= self.max_epoch - self.exp.no_aug_epochs
        self.train_loader = self.exp.get_data_loader(
            batch_size=self.args.batch_size,
            is_distributed=False,
            no_aug=self.no_aug,
            cache_img=self.args.cache,
        )
        if self.exp.seed is not None:
            self.train_loader.worker_init_fn = _seed_worker
        self.prefetcher = _Prefetcher(self.train_loader)
        self.max_iter = len(self.train_loader)
        self.lr_scheduler = self.exp.get_lr_scheduler(
            self.exp.basic_lr_per_img * self.args.batch_size, self.max_iter
        )
        if self.use_model_ema:
            self.ema_model = ModelEMA(model, 0.9998)
            self.ema_model.updates = self.max_iter * self.start_epoch
        self.model = model
        self._watch_features()
        self.evaluator = CPUCOCOEvaluator.convert(
            self.exp.get_evaluator(batch_size=self.args.batch_size, is_distributed=False)
        )
        from torch.utils.tensorboard import SummaryWriter

        self.tblogger = SummaryWriter(os.path.join(self.file_name, "tensorboard"))
        logger.info("Training start on the CPU ({} threads)...".format(torch.get_num_threads()))

    def _start_metrics(self):
        """Start metrics.jsonl as YOLOX starts train_log.txt: afresh for a new run; a resumed run
        keeps the epochs its checkpoint holds and drops later ones, which it trains again."""
        kept = []
        if self.args.resume and os.path.isfile(self.metrics_path):
            with open(self.metrics_path) as f:
                kept = [line for line in f if line.strip() and json.loads(line)["epoch"] <= self.start_epoch]
        with open(self.metrics_path + ".part", "w") as f:
            f.writelines(kept)
        os.replace(self.metrics_path + ".part", self.metrics_path)

    def save_ckpt(self, ckpt_name, update_best_ckpt=False, **kwargs):
        # pycocotools' AP is a numpy float64, which torch.load's default weights-only mode refuses;
        # plain floats keep the checkpoint loadable by YOLOX's own tools (eval, demo, export).
        # YOLOX main also passes ap= (stored as "curr_ap"); the PyPI release does not.
        self._stop_if_diverged()  # never overwrite a good checkpoint with NaN weights
        self.best_ap = float(self.best_ap)
        if kwargs.get("ap") is not None:
            kwargs["ap"] = float(kwargs["ap"])
        super().save_ckpt(ckpt_name, update_best_ckpt, **kwargs)

    def train_one_iter(self):
        try:
            super().train_one_iter()
        except RuntimeError:  # non-finite features fail inside YOLOX's label assignment, far from the cause
            self._stop_if_diverged()
            raise
        if not math.isfinite(float(self.meter["total_loss"].latest)):  # just updated by YOLOX
            self._stop_if_diverged()

    def _watch_features(self):
        """Track whether the backbone's last features were finite: weights can still be finite
        (only huge) when they are not, and nothing else would say why training failed."""
        def check(module, inputs, features):
            self._features_finite = all(torch.isfinite(f).all() for f in features)

        self._features_finite = True
        if hasattr(self.model, "backbone"):  # added after ModelEMA's copy: evaluation is not watched
            self.model.backbone.register_forward_hook(check)

    def _stop_if_diverged(self):
        """Stop with one line, not a traceback, once the loss, the weights or the features are no
        longer finite."""
        meter = self.meter.get("total_loss")  # emptied after each log line: latest may be None
        bad_loss = meter is not None and meter.latest is not None and not math.isfinite(float(meter.latest))
        bad_weights = not all(torch.isfinite(p).all() for p in self.model.parameters())
        bad = {"loss": bad_loss, "weights": bad_weights, "features": not self._features_finite}
        if not any(bad.values()):
            return
        what = ", ".join(name for name, is_bad in bad.items() if is_bad)
        latest = os.path.join(self.file_name, "latest_ckpt.pth")
        raise UsageError(
            f"training diverged at epoch {self.epoch + 1}, iter {self.iter + 1} ({what} not finite): lower "
            f"basic_lr_per_img (now {self.exp.basic_lr_per_img:g}) or lengthen warmup_epochs"
            + (f"; the last checkpoint, from before, is {latest}" if os.path.isfile(latest) else ""))

    def after_iter(self):
        # Keep full-precision loss means for metrics.jsonl; the log line rounds them to 0.1.
        for name, meter in self.meter.get_filtered_meter("loss").items():
            self._loss_sums[name] = self._loss_sums.get(name, 0.0) + float(meter.latest)
        self._loss_count += 1
        super().after_iter()

    def after_epoch(self):
        self.evaluator.last_results = None
        super().after_epoch()
        record = {"epoch": self.epoch + 1}
        record.update({k: v / max(self._loss_count, 1) for k, v in self._loss_sums.items()})
        record["obj_loss"] = record.get("conf_loss")
        if self.evaluator.last_results is not None:
            ap50_95, ap50, summary = self.evaluator.last_results
            record.update(parse_coco_summary(summary), ap50_95=float(ap50_95), ap50=float(ap50))
        with open(self.metrics_path, "a") as f:
            f.write(json.dumps(record) + "\n")
        self._loss_sums, self._loss_count = {}, 0
