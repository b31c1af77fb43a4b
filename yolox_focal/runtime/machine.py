"""What a run or a benchmark ran on: the CPU model and cores, the GPU, the versions."""

import os
import platform

__all__ = ["cpu_model", "machine"]


def cpu_model():
    """The CPU's model name ("AMD EPYC 7B13"), or the architecture where the OS does not say."""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine():
    """{"platform", "processor", "cpu_count", "torch_threads", "python", "torch"} and, where torch
    sees CUDA, "gpu" (the first device's name)."""
    import torch

    info = {
        "platform": platform.platform(),
        "processor": cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info
