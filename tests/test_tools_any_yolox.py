"""tools/train.py and tools/eval.py on the CPU with whichever YOLOX is installed: Megvii's with our
demo exp, pixeltable-yolox with a config class and its -D key=value options. A CPU run prints none
of YOLOX's CUDA-minded noise."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

from cli_helpers import error_line
from helpers import REPO
from yolox_focal.adapter import flavour
from yolox_focal.losses import losses_for
from yolox_focal.runtime.demo_data import make_demo_data

pytestmark = pytest.mark.any_yolox

PIXELTABLE = flavour.flavour() == "pixeltable"
TINY = {"input_size": "(128, 128)", "test_size": "(128, 128)", "random_size": "(4, 4)", "data_num_workers": "2",
        "print_interval": "1", "eval_interval": "1", "no_aug_epochs": "0", "warmup_epochs": "1", "max_epoch": "1",
        "cls_loss": "varifocal", "box_loss": "ciou", "focal_alpha": "none"}  # the loss kit, in either YOLOX
PIXELTABLE_CONFIG = """
    from yolox.config import YoloxConfig

    class Demo(YoloxConfig):
        def __init__(self):
            super().__init__("demo")
            self.depth, self.width, self.depthwise, self.num_classes = 0.33, 0.25, True, 4
"""
NOISE = ("is deprecated", "pin_memory", "Warning")


def exp_args(root, **opts):
    """The flags that pick the exp and set its options, in the installed YOLOX's style."""
    opts = dict(TINY, data_dir=str(root / "data"), output_dir=str(root / "out"), **opts)
    if PIXELTABLE:
        return (["-c", "yolox_focal.pixeltable_configs:DemoFocal"]
                + [f"-D{k}={v.strip('()').replace(' ', '')}" for k, v in opts.items()])
    return ["-f", str(REPO / "exps" / "demo" / "demo_focal.py")] + [x for kv in opts.items() for x in kv]


def run(root, tool, *args):
    # The run's flags come before the exp's: Megvii's trailing options take the rest of the line.
    return subprocess.run([sys.executable, str(REPO / "tools" / tool), *map(str, args)], cwd=root,
                          env=dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), str(root)])),
                          capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("any_yolox")
    make_demo_data(str(root / "data"), train_images=8, val_images=4, size=128, progress=False, workers=1)
    (root / "demo_cfg.py").write_text(textwrap.dedent(PIXELTABLE_CONFIG))
    result = run(root, "train.py", "-b", "4", "--device", "cpu", *exp_args(root))
    assert result.returncode == 0, result.stderr[-4000:]
    return root, result


def run_folder(root):
    return root / "out" / "demo_focal"


def test_cpu_training_writes_yolox_outputs(trained):
    root, result = trained
    folder = run_folder(root)
    assert (folder / "latest_ckpt.pth").is_file()
    log = (folder / "train_log.txt").read_text()
    assert "Training start on the CPU" in log and "epoch: 1/1, iter: 2/2" in log
    (record,) = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    assert record["epoch"] == 1 and record["total_loss"] > 0 and "ap50_95" in record
    assert "best AP50:95" in result.stdout


def test_cpu_run_prints_no_cuda_noise(trained):
    root, result = trained
    for noise in NOISE:
        assert noise not in result.stderr
    log = (run_folder(root) / "train_log.txt").read_text()
    iteration_lines = [line for line in log.splitlines() if "epoch: 1/1, iter:" in line]
    assert len(iteration_lines) == 2
    assert not any("0Mb" in line for line in iteration_lines)


def test_cpu_evaluation(trained):
    root, _ = trained
    checkpoint = run_folder(root) / "latest_ckpt.pth"
    flag = "--ckpt" if PIXELTABLE else "-c"
    result = run(root, "eval.py", "-b", "4", flag, checkpoint, "--conf", "0.0", "--device", "cpu", *exp_args(root))
    assert result.returncode == 0, result.stderr[-4000:]
    row = next(line for line in result.stdout.splitlines() if str(checkpoint) in line and "log:" not in line)
    ap50_95, ap50 = map(float, row.split()[1:3])
    assert 0 <= ap50_95 <= ap50 <= 1
    for noise in NOISE:
        assert noise not in result.stderr


def test_cpu_training_with_the_task_aligned_assignment(trained, tmp_path):
    # the label assignment is the installed YOLOX's get_assignments replaced: its arguments differ
    # between Megvii's 0.3.0 and pixeltable-yolox (GitHub main's)
    root, _ = trained
    (tmp_path / "data").symlink_to(root / "data")
    result = run(tmp_path, "train.py", "-b", "4", "--device", "cpu", *exp_args(tmp_path, assigner="tal"))
    assert result.returncode == 0, result.stderr[-4000:]
    (record,) = [json.loads(line) for line in (run_folder(tmp_path) / "metrics.jsonl").read_text().splitlines()]
    assert all(record[k] > 0 for k in ("obj_loss", "iou_loss", "cls_loss")), record


@pytest.mark.skipif(not PIXELTABLE, reason="pixeltable-yolox's -c module:Class and -D options")
def test_pixeltable_config_mistakes_are_one_line(trained):
    root, _ = trained
    line = error_line(run(root, "train.py", "-c", "no_such_module:Demo", "--device", "cpu"))
    assert line == "error: cannot load config no_such_module:Demo: ModuleNotFoundError: No module named 'no_such_module'"
    line = error_line(run(root, "train.py", "-c", "demo_cfg:Demo", "-D", "focal_gama=2", "--device", "cpu"))
    assert line == "error: Unknown model configuration option: focal_gama"
    line = error_line(run(root, "train.py", "-c", "demo_cfg:Demo", "-D", "max_epoch", "--device", "cpu"))
    assert line == "error: -D takes key=value, got 'max_epoch'"
    line = error_line(run(root, "train.py", "-c", "yolox_focal.pixeltable_configs:DemoFocal", "-D", "box_loss=ciuo",
                          "--device", "cpu"))
    assert line == "error: box_loss must be one of " + ", ".join(losses_for("box")) + "; got 'ciuo'"
