"""YOLOX training on the CPU, in one process or several.

YOLOX's ``Trainer`` assumes CUDA (``torch.cuda.set_device``, a CUDA-stream prefetcher, a CUDA
tensor in ``Exp.random_resize``, DDP with ``device_ids``, ``all_reduce_norm`` through CUDA).
``CPUTrainer`` replaces only those steps; the data pipeline and its sharding, loss, LR schedule,
EMA, ``train_log.txt`` and tensorboard events stay YOLOX's own, and its checkpoints are the GPU
route's (``checkpoints.WholeCheckpointTrainer``: written whole, with the loss state, and a line of
``metrics.jsonl`` each epoch, see ``epoch_metrics``).

Started by ``yolox_focal.runtime.distributed.launch`` in several processes (gloo), each trains on
its shard with DDP averaging the gradients, evaluates its shard of the validation set, and rank 0
scores the whole set and alone writes checkpoints and logs, as YOLOX does on GPUs.
"""

import math
import os
import random

import numpy as np
import torch
from loguru import logger
from torch.nn.parallel import DistributedDataParallel
from yolox.utils import ModelEMA, get_model_info, get_world_size

from . import interrupt
from .checkpoints import WholeCheckpointTrainer
from .cpu_evaluators import to_cpu_evaluator
from .cpu_noise import quiet_cpu_run
from .data_check import unreadable_image_in
from .distributed import all_reduce_norm, broadcast_size
from .errors import DataError, FixableError
from .tracking import MlflowRunLogger, flat_params, plain_values

__all__ = ["CPUTrainer", "LOGGERS"]

# -l: YOLOX's tensorboard, YOLOX's W&B logger, the project's MLflow logger; module -> the extra it needs
LOGGERS = {"tensorboard": None, "wandb": ("wandb", "pip install -e .[tracking] (or pip install wandb)"),
           "mlflow": ("mlflow", "pip install -e .[tracking] (or pip install mlflow)")}


def _check_logger(name):
    """-l NAME: one of ``LOGGERS``, its package installed; one line naming the fix otherwise."""
    import importlib.util

    if name not in LOGGERS:
        raise FixableError(f"-l {name} is not a logger of the CPU trainer; use -l tensorboard (the default), "
                           "-l mlflow or -l wandb")
    needs = LOGGERS[name]
    if needs and importlib.util.find_spec(needs[0]) is None:
        raise FixableError(f"-l {name} needs {needs[0]}, which is not installed: {needs[1]}")


class _Prefetcher:
    """The ``next()`` interface of YOLOX's CUDA ``DataPrefetcher``, for CPU tensors."""

    def __init__(self, loader):
        self.iterator = iter(loader)

    def next(self):
        inputs, targets, _, _ = next(self.iterator)
        return inputs, targets


def _random_resize_on_cpu(exp):
    """``Exp.random_resize`` with its size rule but no CUDA tensor: rank 0 draws the size and, in a
    distributed run, broadcasts it over gloo."""

    def random_resize(data_loader, epoch, rank, is_distributed):
        if getattr(exp, "random_size", None) is None:  # pixeltable's config declares it as None
            base = int(exp.input_size[0] / 32)
            exp.random_size = (base - exp.multiscale_range, base + exp.multiscale_range)
        size = random.randint(*exp.random_size)
        aspect = exp.input_size[1] * 1.0 / exp.input_size[0]
        drawn = int(32 * size), 32 * int(size * aspect)
        return broadcast_size(drawn) if is_distributed else drawn

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


class _DDP(DistributedDataParallel):
    """DDP whose state dict is the model's, without DDP's ``module.`` prefix: YOLOX saves
    ``self.model.state_dict()`` when the exp has no EMA, and its resume, eval and export load
    checkpoints into the bare model."""

    def state_dict(self, *args, **kwargs):
        return self.module.state_dict(*args, **kwargs)


class CPUTrainer(WholeCheckpointTrainer):
    """YOLOX's ``Trainer`` on the CPU, in float32, in one process or in each of a distributed run's;
    its checkpoints are ``WholeCheckpointTrainer``'s."""

    def __init__(self, exp, args):
        _check_logger(args.logger)  # checked here, before Trainer opens its log files
        args.fp16 = False  # float16 on the CPU is slower and unsupported by several ops
        quiet_cpu_run()
        super().__init__(exp, args)
        self.device = "cpu"
        exp.random_resize = _random_resize_on_cpu(exp)

    def before_train(self):
        # YOLOX 0.3.0's Trainer.before_train (yolox/core/trainer.py) without its CUDA lines: no
        # torch.cuda.set_device or occupy_mem, CPU batches instead of the CUDA-stream DataPrefetcher,
        # DDP without device_ids, the evaluator on the CPU, the logger (-l checked in __init__).
        # Added: seeded data-loader workers, metrics.jsonl and the watch on the backbone's features.
        logger.info("args: {}".format(self.args))
        logger.info("exp value:\n{}".format(self.exp))
        model = self.exp.get_model()
        logger.info("Model Summary: {}".format(get_model_info(model, self.exp.test_size)))
        model.to(self.device)
        self.optimizer = self.exp.get_optimizer(self.args.batch_size)
        model = self.resume_train(model)
        self.no_aug = self.start_epoch >= self.max_epoch - self.exp.no_aug_epochs
        self.train_loader = self.exp.get_data_loader(  # YOLOX's InfiniteSampler shards by rank
            batch_size=self.args.batch_size, is_distributed=self.is_distributed, no_aug=self.no_aug,
            cache_img=self.args.cache)
        if self.exp.seed is not None:
            self.train_loader.worker_init_fn = _seed_worker
        self.prefetcher = _Prefetcher(self.train_loader)
        self.max_iter = len(self.train_loader)
        self.lr_scheduler = self.exp.get_lr_scheduler(self.exp.basic_lr_per_img * self.args.batch_size, self.max_iter)
        self.model = model
        self._watch_features()
        if self.is_distributed:  # gradients averaged over gloo; buffers kept per process, as YOLOX does
            self.model = _DDP(model, broadcast_buffers=False)
        if self.use_model_ema:
            self.ema_model = ModelEMA(self.model, 0.9998)
            self.ema_model.updates = self.max_iter * self.start_epoch
        self.evaluator = to_cpu_evaluator(
            self.exp.get_evaluator(batch_size=self.args.batch_size, is_distributed=self.is_distributed))
        if self.rank == 0:
            self._start_logger()
            self.epoch_metrics.start(self.args.resume, self.start_epoch)
        processes = f", {get_world_size()} processes" if self.is_distributed else ""
        logger.info(f"Training start on the CPU ({torch.get_num_threads()} threads{processes})...")

    def train(self):
        self._finished = False
        try:
            super().train()
        except Exception as error:
            image = unreadable_image_in(error)
            if image is None:
                raise
            latest = os.path.join(self.file_name, "latest_ckpt.pth")
            raise DataError(
                f"cannot read image {image} (missing, or not a decodable image) at epoch {self.epoch + 1}, "
                f"iter {self.iter + 1}; replace or remove it (python tools/check_data.py -f EXP --images lists every "
                f"such file)" + (f"; the last checkpoint, intact, is {latest}" if os.path.isfile(latest) else "")
            ) from None

    def train_in_epoch(self):
        super().train_in_epoch()
        self._finished = True

    def _start_logger(self):
        """-l tensorboard: YOLOX's event files; -l wandb: YOLOX's own ``WandbLogger`` (YOLOX's
        trainer code, which this one inherits, logs the losses and AP to it); -l mlflow: the
        project's MLflow logger (``runtime.tracking``; YOLOX 0.3.0 has none), on
        ``MLFLOW_TRACKING_URI`` or ``sqlite:///<run folder>/mlflow.db``, the exp's values as params,
        each ``metrics.jsonl`` record as the epoch's metrics."""
        logger_name = self.args.logger
        if logger_name == "tensorboard":
            from torch.utils.tensorboard import SummaryWriter

            self.tblogger = SummaryWriter(os.path.join(self.file_name, "tensorboard"))
        elif logger_name == "wandb":
            from yolox.utils import WandbLogger

            if hasattr(WandbLogger, "initialize_wandb_logger"):  # YOLOX main
                self.wandb_logger = WandbLogger.initialize_wandb_logger(
                    self.args, self.exp, self.evaluator.dataloader.dataset)
            else:  # YOLOX 0.3.0: its trainer's call, the run's files in the run's folder
                self.wandb_logger = WandbLogger(name=self.args.experiment_name, save_dir=self.file_name,
                                                config=plain_values(self.exp))
        else:
            uri = os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{os.path.abspath(self.file_name)}/mlflow.db"
            self.mlflow_run = MlflowRunLogger(
                uri, os.environ.get("MLFLOW_EXPERIMENT_NAME", "yolox-focal"), run_name=self.args.experiment_name,
                params=flat_params(plain_values(self.exp)), tags={"yolox_focal.folder": os.path.abspath(self.file_name)})
            logger.info(f"MLflow run {self.mlflow_run.run_id} on {uri}")

    def _finish_logger(self, finished):
        if self.rank != 0:
            return
        if self.args.logger == "wandb" and getattr(self, "wandb_logger", None) is not None:
            self.wandb_logger.finish()
        elif self.args.logger == "mlflow" and getattr(self, "mlflow_run", None) is not None:
            self.mlflow_run.finish("FINISHED" if finished else "FAILED")

    def after_train(self):
        # YOLOX calls after_train in a `finally`: a run that failed says so itself, not that it is done
        self._finish_logger(self._finished)
        if not self._finished:
            return
        interrupt.set_phase("the end of training")
        # YOLOX logs the best AP in percent; the tools report fractions everywhere
        logger.info(f"Training of experiment is done and the best AP50:95 is {float(self.best_ap):.4f}")

    def save_ckpt(self, ckpt_name, update_best_ckpt=False, **kwargs):
        # pycocotools' AP is a numpy float64, which torch.load's default weights-only mode refuses;
        # plain floats keep the checkpoint loadable by YOLOX's own tools (eval, demo, export).
        # YOLOX main also passes ap= (stored as "curr_ap"); the PyPI release does not.
        self._stop_if_diverged()  # never overwrite a good checkpoint with NaN weights
        self.best_ap = float(self.best_ap)
        if kwargs.get("ap") is not None:
            kwargs["ap"] = float(kwargs["ap"])
        super().save_ckpt(ckpt_name, update_best_ckpt, **kwargs)

    def evaluate_and_save_model(self):
        interrupt.set_phase(f"the evaluation after epoch {self.epoch + 1}")
        super().evaluate_and_save_model()

    def train_one_iter(self):
        interrupt.set_phase(f"training (epoch {self.epoch + 1}/{self.max_epoch}, iter {self.iter + 1}/{self.max_iter})")
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
        raise FixableError(
            f"training diverged at epoch {self.epoch + 1}, iter {self.iter + 1} ({what} not finite): lower "
            f"basic_lr_per_img (now {self.exp.basic_lr_per_img:g}) or lengthen warmup_epochs"
            + (f"; the last checkpoint, from before, is {latest}" if os.path.isfile(latest) else ""))

    def after_epoch(self):
        # YOLOX 0.3.0's Trainer.after_epoch, with all_reduce_norm on the CPU, its latest checkpoint
        # written last (see WholeCheckpointTrainer.after_epoch). The EMA model's norm statistics are
        # averaged too: it is the model evaluated (each process its shard) and saved (rank 0's).
        self.last_evaluation = None
        self._stop_if_diverged()  # before evaluating NaN weights
        if (self.epoch + 1) % self.exp.eval_interval == 0:
            # Where a loss that keeps state (running means) will be made equal on every process too
            # (reduced as the norm statistics are), before it is evaluated and saved with the model.
            all_reduce_norm(self.model)
            if self.use_model_ema:
                all_reduce_norm(self.ema_model.ema)
            self.evaluate_and_save_model()
        self.record_epoch()
        self.save_ckpt(ckpt_name="latest")

    def record_epoch(self):
        record = super().record_epoch()
        if record is not None and self.args.logger == "mlflow":
            self.mlflow_run.log_epoch(record)
        return record
