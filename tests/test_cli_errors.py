"""Each mistake a user can make with the tools gets one line naming the problem and the fix."""

import pytest
import torch
from yolox.exp import get_exp

from cli_helpers import TINY, error_line, run_tool
from helpers import REPO
from yolox_focal.demo_data import make_demo_data

EXP = REPO / "exps" / "demo" / "demo_focal.py"


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    make_demo_data(str(root / "data"), train_images=4, val_images=2, size=128, progress=False, workers=1)
    return root


def test_missing_data_directory(tmp_path):
    line = error_line(run_tool("train.py", "-f", EXP, "data_dir", tmp_path / "nowhere", check=False))
    assert f"data directory not found: {tmp_path / 'nowhere'}" in line
    assert "python tools/make_demo_data.py" in line


def test_missing_annotation_file(tmp_path):
    (tmp_path / "annotations").mkdir()
    line = error_line(run_tool("eval.py", "-f", EXP, "data_dir", tmp_path, check=False))
    assert f"annotation file not found: {tmp_path / 'annotations' / 'instances_val2017.json'}" in line
    assert "python tools/make_demo_data.py" in line


def test_exp_file_that_fails_to_import_shows_the_cause(tmp_path):
    broken = tmp_path / "broken_exp.py"
    broken.write_text("import yolox_focal\nimport a_module_that_is_not_there\n")
    line = error_line(run_tool("train.py", "-f", broken, check=False))
    assert f"cannot load exp file {broken}" in line
    assert "No module named 'a_module_that_is_not_there'" in line


def test_missing_exp_file(tmp_path):
    line = error_line(run_tool("eval.py", "-f", tmp_path / "nope.py", check=False))
    assert f"exp file not found: {tmp_path / 'nope.py'}" in line


def test_two_gpus_asked_without_them(data):
    line = error_line(run_tool("train.py", "-f", EXP, "-d", "2", "data_dir", data / "data", check=False))
    assert "-d 2 asks for 2 GPUs" in line


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_asked_without_it():
    line = error_line(run_tool("eval.py", "-f", EXP, "--device", "cuda", check=False))
    assert "--device cuda asked for, but torch sees no CUDA GPU; use --device cpu" in line


def test_fp16_on_cpu_is_reported_as_ignored(tmp_path):
    result = run_tool("train.py", "-f", EXP, "--fp16", "--device", "cpu", "data_dir", tmp_path / "x",
                      check=False)
    assert "warning: --fp16 is ignored on the CPU" in result.stderr
    assert "data directory not found" in error_line(result)


def test_other_logger_on_cpu(data):
    line = error_line(run_tool("train.py", "-f", EXP, "--device", "cpu", "-l", "wandb",
                               "data_dir", data / "data", check=False))
    assert "-l wandb is not supported on the CPU; use -l tensorboard" in line


def test_misspelt_exp_option():
    line = error_line(run_tool("train.py", "-f", EXP, "focal_gama", "2.0", check=False))
    assert "unknown exp option 'focal_gama': did you mean 'focal_gamma'?" in line


@pytest.mark.parametrize("tool", ["train.py", "eval.py"])
def test_checkpoint_that_does_not_match_the_model(data, tool):
    other = get_exp(str(EXP))
    other.num_classes = 80
    bad = data / "coco_classes_ckpt.pth"
    torch.save({"model": other.get_model().state_dict(), "start_epoch": 1}, bad)
    flags = ["--resume", "-c", bad] if tool == "train.py" else ["-c", bad]
    line = error_line(run_tool(tool, "-f", EXP, *flags, "data_dir", data / "data",
                               "output_dir", data / "out", *TINY, check=False))
    assert f"checkpoint {bad} does not match the exp's model" in line
    assert "shape mismatches" in line and "head.cls_preds.0.weight" in line


def test_missing_checkpoint(data):
    line = error_line(run_tool("eval.py", "-f", EXP, "-c", data / "none.pth", "data_dir", data / "data",
                               check=False))
    assert f"checkpoint not found: {data / 'none.pth'}" in line


def test_training_that_diverges(data):
    # A learning rate far too high: NaN weights would otherwise fail deep in YOLOX's label assignment.
    line = error_line(run_tool("train.py", "-f", EXP, "-b", "4", "--device", "cpu", "-expn", "diverged",
                               "data_dir", data / "data", "output_dir", data / "out", *TINY, "max_epoch", "4",
                               "basic_lr_per_img", "1000", check=False))
    assert "training diverged at epoch" in line and "not finite" in line
    assert "lower basic_lr_per_img (now 1000)" in line
    checkpoint = data / "out" / "diverged" / "latest_ckpt.pth"
    if checkpoint.exists():  # named by the message, and never overwritten with NaN weights
        assert str(checkpoint) in line
        weights = torch.load(checkpoint, map_location="cpu", weights_only=True)["model"].values()
        assert all(torch.isfinite(w).all() for w in weights if w.is_floating_point())
