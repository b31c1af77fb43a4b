"""Each mistake a user can make with the tools gets one line naming the problem and the fix."""

import shutil

import pytest
import torch
from yolox.exp import get_exp

from cli_helpers import TINY, error_line, run_tool
from helpers import REPO
from yolox_focal.losses import losses_for
from yolox_focal.runtime.demo_data import make_demo_data

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


def test_missing_coco_directory_of_ones_own_exp_names_datadir_settings(tmp_path):
    result = run_tool("check_data.py", "-f", REPO / "exps" / "yolox_s_focal.py", check=False)
    line = error_line(result)
    assert "data directory not found:" in line and "YOLOX_DATADIR" in line and "set data_dir in the exp" in line
    assert "make_demo_data" not in line  # the demo data is only for the demo exps


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
    line = error_line(run_tool("train.py", "-f", EXP, "--device", "cpu", "-l", "comet",
                               "data_dir", data / "data", check=False))
    assert line == "error: -l comet is not a logger of the CPU trainer; use -l tensorboard (the default), -l mlflow or -l wandb"


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


@pytest.mark.parametrize("option, value, expected", [
    ("max_epoch", "ten", "exp option max_epoch takes a whole number, got 'ten'"),
    ("basic_lr_per_img", "fast", "exp option basic_lr_per_img takes a number, got 'fast'"),
    ("input_size", "320", "exp option input_size takes a tuple like (320, 320), got '320'"),
    ("box_loss", "ciuo", "box_loss must be one of " + ", ".join(losses_for("box")) + "; got 'ciuo'"),
    ("focal_alpha", "half", "focal_alpha takes a number, got 'half'"),
    ("cls_label_smoothing", "1.5", "cls_label_smoothing must be in [0, 1), got 1.5"),
])
def test_exp_option_of_the_wrong_type(option, value, expected):
    assert error_line(run_tool("train.py", "-f", EXP, option, value, check=False)) == f"error: {expected}"


def test_batch_size_below_one():
    assert error_line(run_tool("eval.py", "-f", EXP, "-b", "0", check=False)) == \
        "error: -b 0: the batch size must be 1 or more"


def test_max_epoch_not_above_no_aug_epochs(data, tmp_path):
    line = error_line(run_tool("train.py", "-f", EXP, "--device", "cpu", "data_dir", data / "data",
                               "output_dir", tmp_path / "out", "max_epoch", "3", "no_aug_epochs", "3", check=False))
    assert "max_epoch 3 is not above no_aug_epochs 3: mosaic would be off from the first epoch" in line
    assert not (tmp_path / "out").exists()


@pytest.fixture(scope="module")
def one_epoch(data):
    """A run with a checkpoint after epoch 1, for failures in a resumed epoch 2 to leave intact."""
    out = data / "trained"
    run_tool("train.py", "-f", EXP, "-b", "4", "--device", "cpu", "-expn", "run", "data_dir", data / "data",
             "output_dir", out, *TINY, "max_epoch", "1", "eval_interval", "5")
    return out / "run" / "latest_ckpt.pth"


def resume(one_epoch, tmp_path, data_dir, *opts, max_epoch=2):
    folder = tmp_path / "out" / "run"
    folder.mkdir(parents=True)
    shutil.copy(one_epoch, folder / "latest_ckpt.pth")
    result = run_tool("train.py", "-f", EXP, "-b", "4", "--device", "cpu", "-expn", "run", "--resume",
                      "data_dir", data_dir, "output_dir", tmp_path / "out", *TINY, "max_epoch", str(max_epoch), *opts,
                      check=False)
    assert "Training of experiment is done" not in result.stdout + result.stderr  # a failed run says it failed
    return error_line(result), folder / "latest_ckpt.pth"


def assert_intact(checkpoint, epochs=(1,)):
    saved = torch.load(checkpoint, map_location="cpu", weights_only=True)
    assert saved["start_epoch"] in epochs
    assert all(torch.isfinite(w).all() for w in saved["model"].values() if w.is_floating_point())


def test_resume_with_other_losses_than_the_checkpoints(data, one_epoch, tmp_path):
    line, checkpoint = resume(one_epoch, tmp_path, data / "data", "box_loss", "wiou_v3")
    assert line.startswith(f"error: cannot resume from {checkpoint}: the loss state (none) does not fit this "
                           "loss kit")
    assert line.endswith("resume with the loss settings it was saved with")
    assert_intact(checkpoint)


def test_training_that_diverges(data, one_epoch, tmp_path):
    # A learning rate far too high: NaN weights would otherwise fail deep in YOLOX's label assignment.
    line, checkpoint = resume(one_epoch, tmp_path, data / "data", "basic_lr_per_img", "1000", "eval_interval", "5",
                              max_epoch=4)
    assert "training diverged at epoch" in line and "not finite" in line
    assert "lower basic_lr_per_img (now 1000)" in line
    assert str(checkpoint) in line  # named by the message, and never overwritten with NaN weights
    assert_intact(checkpoint, epochs=(1, 2, 3))  # from an epoch before the one that diverged


def test_image_that_fails_to_decode_mid_run(data, one_epoch, tmp_path):
    copy = tmp_path / "data"
    shutil.copytree(data / "data", copy)
    broken = copy / "train2017" / "000000000003.jpg"
    broken.write_bytes(b"not a jpeg")  # passes the annotation check; fails when YOLOX loads it
    line, checkpoint = resume(one_epoch, tmp_path, copy)
    assert f"cannot read image {broken} (missing, or not a decodable image) at epoch 2" in line
    assert "check_data.py -f EXP --images" in line
    assert f"the last checkpoint, intact, is {checkpoint}" in line
    assert_intact(checkpoint)
