"""benchmarks/gpu_check.sh, the checks a release runs on a CUDA machine: CI has no GPU, so only
its refusals run here, each one line before any work (nothing is written)."""

import os
import subprocess

import pytest

from cli_helpers import error_line
from helpers import REPO

SCRIPT = REPO / "benchmarks" / "gpu_check.sh"


def gpu_check(*args, yolox_src):
    env = {k: v for k, v in os.environ.items() if k != "YOLOX_SRC"}
    if yolox_src is not None:
        env["YOLOX_SRC"] = str(yolox_src)
    return subprocess.run(["bash", str(SCRIPT), *map(str, args)], capture_output=True, text=True, env=env)


@pytest.fixture
def checkout(tmp_path):
    """The part of a YOLOX checkout the script looks for."""
    (tmp_path / "YOLOX" / "tools").mkdir(parents=True)
    (tmp_path / "YOLOX" / "tools" / "train.py").write_text("")
    return tmp_path / "YOLOX"


def test_an_unknown_step_is_named_with_the_steps_there_are(tmp_path, checkout):
    line = error_line(gpu_check(tmp_path / "out", "yolox", "benhc", yolox_src=checkout))
    assert line == "error: unknown step 'benhc'; the steps are yolox, bench, ablate"
    assert not (tmp_path / "out").exists()


def test_a_yolox_src_that_is_no_checkout_is_named(tmp_path):
    line = error_line(gpu_check(tmp_path / "out", yolox_src=tmp_path))
    assert line == f"error: YOLOX_SRC={tmp_path} has no tools/train.py; set it to a YOLOX checkout"
    assert not (tmp_path / "out").exists()


def test_without_yolox_src_it_says_where_a_checkout_comes_from(tmp_path):
    line = error_line(gpu_check(tmp_path / "out", yolox_src=None))
    assert line.startswith("error: YOLOX_SRC is not set; set it to a YOLOX checkout (git clone https://github.com/")
    assert not (tmp_path / "out").exists()
