"""Runs the head, exp, CPU-training and GPU-route trainer tests against another YOLOX source tree, e.g. a
checkout of GitHub main, whose head differs from the PyPI release (get_assignments takes other arguments)
and whose trainer's evaluate_and_save_model does (exp.eval returns the detections too).

    YOLOX_SRC=/path/to/YOLOX python -m pytest tests/test_yolox_main.py
"""

import os
import subprocess
import sys

import pytest

from helpers import REPO

SRC = os.environ.get("YOLOX_SRC")


@pytest.mark.skipif(not SRC, reason="set YOLOX_SRC to a YOLOX source tree to run")
def test_head_and_exps_against_other_yolox():
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([SRC, str(REPO / "tests")]))
    check = "import yolox, sys; assert yolox.__file__.startswith(sys.argv[1]), yolox.__file__"
    subprocess.run([sys.executable, "-c", check, os.path.realpath(SRC)], env=env, check=True)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         "tests/test_head.py", "tests/test_head_assign.py", "tests/test_exps.py", "tests/test_cpu_training.py",
         "tests/test_checkpoints.py"],
        cwd=REPO, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:]
