"""The patch series on the PyPI 0.3.0 source (copied from the installed package)."""

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yolox
from yolox.models import YOLOXHead

from helpers import REPO, head_inputs
from yolox_focal import FocalYOLOXHead

TOOL = REPO / "tools" / "patch_yolox.py"
INSTALLED = Path(yolox.__file__).resolve().parent


def tool(*args):
    return subprocess.run([sys.executable, str(TOOL), *map(str, args)], capture_output=True, text=True)


def snapshot(root):
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "yolox-0.3.0"
    shutil.copytree(INSTALLED, root / "yolox", ignore=shutil.ignore_patterns("__pycache__"))
    return root


def test_committed_patches_are_generated_from_the_package():
    result = subprocess.run([sys.executable, str(REPO / "tools" / "make_patches.py"), "--check"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    added = (REPO / "patches").glob("0001-*.patch")
    body = next(added).read_text()
    for line in (REPO / "yolox_focal" / "losses.py").read_text().splitlines():
        if line.startswith("def ") or line.startswith("class "):
            assert "+" + line in body.splitlines()


def test_apply_check_apply_again_revert(tree):
    before = snapshot(tree)
    assert "applies cleanly" in tool("check", tree).stdout
    applied = tool("apply", tree)
    assert applied.returncode == 0 and "applied 3 patches" in applied.stdout
    assert "yolox/models/yolo_head.py" in applied.stdout
    after = snapshot(tree)
    assert after != before and "exps/example/focal/yolox_s_focal.py" in after
    again = tool("apply", tree)
    assert again.returncode == 0 and "already applied" in again.stdout and "nothing changed" in again.stdout
    assert snapshot(tree) == after
    assert "already applied" in tool("check", tree).stdout
    assert tool("revert", tree).returncode == 0
    assert snapshot(tree) == before
    assert not (tree / "exps").exists()


def test_conflict_says_where_and_changes_nothing(tree):
    head = tree / "yolox" / "models" / "yolo_head.py"
    head.write_text(head.read_text().replace("self.bcewithlog_loss(obj_preds.view(-1, 1), obj_targets)",
                                             "self.my_own_obj_loss(obj_preds, obj_targets)"))
    before = snapshot(tree)
    assert "conflicts" in tool("check", tree).stdout and "yolox/models/yolo_head.py" in tool("check", tree).stdout
    result = tool("apply", tree)
    assert result.returncode == 2 and "nothing changed" in result.stderr
    assert "yolox/models/yolo_head.py" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert snapshot(tree) == before  # the losses.py patch, which would apply, was not applied either


def test_refuses_uncommitted_changes_unless_forced(tree):
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(git + ["init", "-q"], cwd=tree, check=True)
    subprocess.run(git + ["add", "-A"], cwd=tree, check=True)
    subprocess.run(git + ["commit", "-qm", "yolox"], cwd=tree, check=True)
    base = tree / "yolox" / "exp" / "yolox_base.py"
    base.write_text(base.read_text() + "\n# a local note\n")
    refused = tool("apply", tree)
    assert refused.returncode == 2 and "uncommitted changes in yolox/exp/yolox_base.py" in refused.stderr
    assert "--force" in refused.stderr
    assert tool("apply", tree, "--force").returncode == 0
    assert "# a local note" in base.read_text() and "set_objectness_loss" in base.read_text()


def test_not_a_yolox_tree(tmp_path):
    result = tool("check", tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == (f"error: {tmp_path} is not a YOLOX source tree (no "
                                      "yolox/models/yolo_head.py); give the folder that holds yolox/")


PATCHED_HEAD = """
import sys, torch
import yolox
assert yolox.__file__.startswith(sys.argv[1]), yolox.__file__
from yolox.models import YOLOXHead
data = torch.load(sys.argv[2])
results = {}
for name, settings in data["settings"].items():
    head = YOLOXHead(3, 0.25, in_channels=[256, 512, 1024])
    head.load_state_dict(data["state"])
    if settings is not None:
        head.set_objectness_loss(**settings)
    head.train()
    results[name] = [torch.as_tensor(v) for v in head(data["feats"], data["labels"], data["imgs"])]
torch.save(results, sys.argv[3])
"""


def test_patched_head_matches_the_package(tree, tmp_path):
    assert tool("apply", tree).returncode == 0
    torch.manual_seed(0)
    stock = YOLOXHead(3, 0.25, in_channels=[256, 512, 1024])
    stock.initialize_biases(1e-2)
    feats, labels, imgs = head_inputs(3)
    focal = dict(obj_loss="focal", focal_gamma=2.0, focal_alpha=0.3, obj_loss_weight=2.0)
    torch.save({"state": stock.state_dict(), "feats": feats, "labels": labels, "imgs": imgs,
                "settings": {"default": None, "focal": focal}}, tmp_path / "in.pt")
    subprocess.run([sys.executable, "-c", PATCHED_HEAD, str(tree), str(tmp_path / "in.pt"),
                    str(tmp_path / "out.pt")], check=True, cwd=tmp_path,
                   env=dict(os.environ, PYTHONPATH=str(tree)))
    patched = torch.load(tmp_path / "out.pt")

    ours = FocalYOLOXHead(3, 0.25, in_channels=[256, 512, 1024], **focal)
    ours.load_state_dict(stock.state_dict())
    for got, expected in zip(patched["focal"], ours.train()(feats, labels, imgs)):
        torch.testing.assert_close(got, torch.as_tensor(expected), atol=1e-6, rtol=1e-6)
    for got, expected in zip(patched["default"], stock.train()(feats, labels, imgs)):
        assert torch.equal(got, torch.as_tensor(expected))
