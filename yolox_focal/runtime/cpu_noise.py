"""What YOLOX's CUDA-minded code prints on every CPU run that says nothing about it, silenced for
those messages only (:func:`quiet_cpu_run`): by the CPU trainer and evaluators."""

import re
import warnings

from loguru import logger

__all__ = ["quiet_cpu_run"]

# What YOLOX prints on every CPU run that says nothing about it: its torch.cuda.amp calls (disabled
# on the CPU) are deprecated, its data loaders ask for pinned memory, and its log line reports the
# GPU memory as 0Mb.
_CPU_NOISE = (
    (FutureWarning, r"`torch\.cuda\.amp\.(autocast|GradScaler)\(args\.\.\.\)` is deprecated"),
    (UserWarning, r"'pin_memory' argument is set as true but no accelerator is found"),
    # distributed runs: torch 2.14 renamed DDP's broadcast_buffers, whose False (buffers kept per
    # process, as YOLOX asks) it still honours
    (FutureWarning, r"`broadcast_buffers` is deprecated"),
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
