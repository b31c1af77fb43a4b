"""Running the tools as a user does: a subprocess from the repository root."""

import subprocess
import sys

import numpy as np
import pytest

from helpers import REPO

TINY = ["input_size", "(128, 128)", "test_size", "(128, 128)", "random_size", "(4, 4)",
        "data_num_workers", "0", "print_interval", "1", "eval_interval", "1", "no_aug_epochs", "0",
        "warmup_epochs", "1"]


def run_tool(tool, *args, check=True):
    result = subprocess.run([sys.executable, str(REPO / "tools" / tool), *map(str, args)],
                            cwd=REPO, capture_output=True, text=True, timeout=600)
    if check and result.returncode != 0:
        raise AssertionError(f"{tool} failed ({result.returncode}):\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}")
    return result


def error_line(result):
    """The one line a refused command prints: stderr's last line, checked to be the only error."""
    assert result.returncode == 2, result.stderr[-3000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ")
    return last


def check_per_class(record, classes):
    """Per-class AP50:95 and AP50 in [0, 1] for every class, and the overall AP their mean (as
    pycocotools and VOC average it: over the classes with objects)."""
    per_class = record["per_class"]
    assert list(per_class) == list(classes)
    scored = [figures for figures in per_class.values() if figures is not None]
    assert scored and all(set(f) == {"ap50_95", "ap50"} and 0 <= f["ap50_95"] <= f["ap50"] <= 1 for f in scored)
    for metric in ("ap50_95", "ap50"):
        assert np.mean([f[metric] for f in scored]) == pytest.approx(record[metric], abs=1e-9)
