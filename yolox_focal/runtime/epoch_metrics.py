"""``metrics.jsonl``: a run's record of each epoch, one JSON line per epoch in its output folder.

Each line holds the epoch (from 1), the epoch's mean of every loss YOLOX logs (full precision; the
log line rounds them to 0.1; ``obj_loss`` is YOLOX's ``conf_loss``) and, after an evaluation, its
AP: ``ap50_95``, ``ap50``, the rest of pycocotools' summary where there is one, and per class
(``"per_class": {name: {"ap50_95": ..., "ap50": ...}}``, null for a class without objects). Both
routes' trainers write it (``checkpoints.WholeCheckpointTrainer``, rank 0 only); the ablation's
report and the MLflow logger read it.
"""

import json
import os

from .ap_report import SUMMARY_KEYS, parse_coco_summary
from .checkpoint_files import temporary_name

__all__ = ["EpochMetrics", "metrics_record"]


def metrics_record(epoch, losses, evaluation=None, per_class=None):
    """One line of ``metrics.jsonl``: ``losses`` ({name: the epoch's mean}); ``evaluation``, YOLOX's
    ``(ap50_95, ap50, summary)`` or None (no evaluation this epoch); ``per_class``, ``{class name:
    (ap50_95, ap50) or None}``."""
    record = {"epoch": epoch, **losses}
    record["obj_loss"] = record.get("conf_loss")
    if evaluation is not None:
        ap50_95, ap50, summary = evaluation
        record.update(dict.fromkeys(SUMMARY_KEYS.values()), **parse_coco_summary(summary or ""))
        record.update(ap50_95=float(ap50_95), ap50=float(ap50))
        record["per_class"] = {name: None if figures is None else dict(zip(("ap50_95", "ap50"), map(float, figures)))
                               for name, figures in (per_class or {}).items()}
    return record


class EpochMetrics:
    """The ``metrics.jsonl`` of the run folder ``folder``: started afresh or, on a resumed run, kept
    up to the epoch it resumes from; the losses summed over the epoch's iterations; a line written
    at the end of each epoch."""

    def __init__(self, folder):
        self.path = os.path.join(folder, "metrics.jsonl")
        self._sums, self._count = {}, 0

    def start(self, resume, start_epoch):
        """Start the file as YOLOX starts ``train_log.txt``: afresh for a new run; a resumed run keeps
        the epochs its checkpoint holds (up to ``start_epoch``) and drops later ones, which it trains
        again. Written whole (a temporary file renamed into place)."""
        kept = []
        if resume and os.path.isfile(self.path):
            with open(self.path) as f:
                kept = [line for line in f if line.strip() and json.loads(line)["epoch"] <= start_epoch]
        temporary = temporary_name(self.path)
        with open(temporary, "w") as f:
            f.writelines(kept)
        os.replace(temporary, self.path)

    def add_iteration(self, loss_meters):
        """Add one iteration's losses (YOLOX's ``meter.get_filtered_meter("loss")``)."""
        for name, meter in loss_meters.items():
            value = meter.latest  # a tensor stays where it is: no device sync each iteration
            value = value.detach() if hasattr(value, "detach") else float(value)
            self._sums[name] = self._sums.get(name, 0.0) + value
        self._count += 1

    def end_epoch(self, epoch, evaluation=None, per_class=None, write=True):
        """The epoch's record (:func:`metrics_record`), appended to the file where ``write`` (rank 0);
        the sums start again for the next epoch. Returns the record, or None where not written."""
        losses = {k: float(v) / max(self._count, 1) for k, v in self._sums.items()}
        self._sums, self._count = {}, 0
        if not write:
            return None
        record = metrics_record(epoch, losses, evaluation, per_class)
        with open(self.path, "a") as f:
            f.write(json.dumps(record) + "\n")
        return record
