"""The patch series (patches/) and tools/patch_yolox.py on the yolox 0.3.0 source from PyPI, copied
from the installed package. With YOLOX_SRC=/path/to/YOLOX (a checkout of GitHub main, say) the
tree tests also run on a copy of that tree."""

import ast
import hashlib
import json
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

TOOL = REPO / "tools" / "patch_yolox.py"
PATCHES = sorted((REPO / "patches").glob("*.patch"))
SOURCES = {"pypi-0.3.0": Path(yolox.__file__).resolve().parent.parent}
if os.environ.get("YOLOX_SRC"):
    SOURCES["YOLOX_SRC"] = Path(os.environ["YOLOX_SRC"]).resolve()
HEAD = "yolox/models/yolo_head.py"
LOSS_KIT = "yolox/models/loss_kit.py"
# a change on every branch
KIT = dict(obj_loss="focal", focal_gamma=2.0, focal_alpha=0.3, obj_loss_weight=2.0, cls_loss="varifocal",
           cls_label_smoothing=0.1, box_loss="siou", box_loss_weight=1.5)


def tool(*args):
    return subprocess.run([sys.executable, str(TOOL), *map(str, args)], capture_output=True, text=True)


def copy_yolox(source, dest):
    """The parts of a YOLOX tree the series and the tests use: yolox/ and, if present, exps/."""
    ignore = shutil.ignore_patterns("__pycache__")
    shutil.copytree(source / "yolox", dest / "yolox", ignore=ignore)
    if (source / "exps").is_dir():
        shutil.copytree(source / "exps", dest / "exps", ignore=ignore)
    return dest


def snapshot(root):
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and ".git" not in p.parts}


@pytest.fixture(params=list(SOURCES))
def source(request):
    return SOURCES[request.param]


@pytest.fixture
def tree(source, tmp_path):
    return copy_yolox(source, tmp_path / "yolox-tree")


def test_committed_patches_are_what_the_generator_makes():
    result = subprocess.run([sys.executable, str(REPO / "tools" / "make_patches.py"), "--check"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_added_loss_code_is_the_packages(tmp_path):
    """Independent of the generator: every top-level definition of the package's loss-kit modules
    is in the added loss_kit.py with the same source text."""
    tree = copy_yolox(SOURCES["pypi-0.3.0"], tmp_path)
    assert tool("apply", tree).returncode == 0
    patched = (tree / LOSS_KIT).read_text()
    defined = {getattr(n, "name", None) or ast.unparse(n.targets[0]): ast.get_source_segment(patched, n)
               for n in ast.parse(patched).body if not isinstance(n, (ast.Import, ast.ImportFrom, ast.Expr))}
    checked = 0
    for module in ("losses/_common.py", "losses/declare.py", "losses/focal.py", "losses/bce.py", "losses/iou.py",
                   "losses/settings.py", "losses/kit.py"):
        source = (REPO / "yolox_focal" / module).read_text()
        for node in ast.parse(source).body:
            if isinstance(node, (ast.FunctionDef, ast.ClassDef, ast.Assign)):
                name = getattr(node, "name", None) or ast.unparse(node.targets[0])
                if name != "__all__":
                    assert defined.get(name) == ast.get_source_segment(source, node), name
                    checked += 1
    assert checked >= 40  # every loss, module, spec, setting and the kit


def test_apply_check_apply_again_revert(tree):
    before = snapshot(tree)
    check = tool("check", tree)
    assert check.returncode == 0 and check.stdout.startswith("applies: the 3 patches apply cleanly")
    applied = tool("apply", tree)
    assert applied.returncode == 0 and applied.stdout.startswith("applied 3 patches")
    assert f"{HEAD} +13 -3" in applied.stdout and f"{LOSS_KIT} +" in applied.stdout
    after = snapshot(tree)
    assert set(after) - set(before) == {"exps/example/focal/yolox_s_focal.py", LOSS_KIT}
    assert after[HEAD] != before[HEAD]
    again = tool("apply", tree)
    assert again.returncode == 0 and again.stdout.strip() == f"already applied to {tree}; nothing changed"
    assert snapshot(tree) == after
    assert tool("check", tree).stdout.startswith("already applied")
    reverted = tool("revert", tree)
    assert reverted.returncode == 0 and reverted.stdout.startswith("reverted 3 patches")
    assert snapshot(tree) == before  # byte for byte, and the example exp's folder is gone
    assert not (tree / "exps" / "example" / "focal").exists()
    assert "not applied" in tool("revert", tree).stdout and snapshot(tree) == before


def test_partly_applied_series_is_completed_and_reverted(tree):
    before = snapshot(tree)
    subprocess.run(["git", "apply", str(PATCHES[0])], cwd=tree, check=True)
    check = tool("check", tree)
    assert check.returncode == 0 and check.stdout.startswith(f"partly applied: {tree} has {PATCHES[0].name}")
    applied = tool("apply", tree)
    assert applied.stdout.startswith("applied 2 patches (1 already applied)")
    assert LOSS_KIT not in applied.stdout  # it was not written twice
    assert tool("revert", tree).returncode == 0 and snapshot(tree) == before


def test_conflict_says_where_and_changes_nothing(tree):
    head = tree / HEAD
    head.write_text(head.read_text().replace("self.bcewithlog_loss(obj_preds.view(-1, 1), obj_targets)",
                                             "self.my_obj_loss(obj_preds, obj_targets)"))
    before = snapshot(tree)
    check = tool("check", tree)
    assert check.returncode == 1 and check.stderr.startswith("error: conflicts:")
    where = f"{HEAD} hunk 5/5 of {PATCHES[1].name} does not match the tree near line"
    assert where in check.stderr and "expects 'self.iou_loss(bbox_preds.view(-1, 4)[fg_masks]" in check.stderr
    result = tool("apply", tree)
    assert result.returncode == 1 and "nothing changed" in result.stderr and where in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert snapshot(tree) == before  # losses.py, whose patch would apply, was left alone too


def test_revert_refuses_an_edited_patched_line(tree):
    assert tool("apply", tree).returncode == 0
    head = tree / HEAD
    head.write_text(head.read_text().replace("self.loss_kit.obj(obj_preds.view(-1, 1), obj_targets)",
                                             "self.my_obj_loss(obj_preds, obj_targets)"))
    before = snapshot(tree)
    result = tool("revert", tree)
    assert result.returncode == 1 and result.stderr.startswith("error: conflicts: the series cannot be reverted")
    assert f"{HEAD} hunk 5/5" in result.stderr and snapshot(tree) == before


def test_refuses_uncommitted_changes_unless_forced(tree):
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(git + ["init", "-q"], cwd=tree, check=True)
    subprocess.run(git + ["add", "-A"], cwd=tree, check=True)
    subprocess.run(git + ["commit", "-qm", "yolox"], cwd=tree, check=True)
    base = tree / "yolox" / "exp" / "yolox_base.py"
    base.write_text(base.read_text() + "\n# a local note\n")
    before = snapshot(tree)
    refused = tool("apply", tree)
    assert refused.returncode == 2 and snapshot(tree) == before
    assert refused.stderr.strip() == ("error: uncommitted changes in yolox/exp/yolox_base.py, which the "
                                      "series changes; commit or stash them, or add --force; nothing changed")
    assert tool("apply", tree, "--force").returncode == 0
    assert "# a local note" in base.read_text() and "configure_loss_kit" in base.read_text()
    assert tool("revert", tree).returncode == 0 and snapshot(tree) == before


def test_not_a_yolox_tree(tmp_path):
    result = tool("check", tmp_path)
    assert result.returncode == 2
    assert result.stderr == (f"error: {tmp_path} is not a YOLOX source tree: no yolox/models/yolo_head.py; "
                             "give the folder that holds yolox/\n")
    package = tool("apply", SOURCES["pypi-0.3.0"] / "yolox")
    assert package.returncode == 2 and "give its parent" in package.stderr
    assert len(package.stderr.splitlines()) == 1


HEAD_LOSSES = """
import sys, torch
import yolox
assert yolox.__file__.startswith(sys.argv[1]), yolox.__file__
from yolox.models import YOLOXHead

data = torch.load(sys.argv[2])
kit = data["kit"]

def losses(head):
    head.load_state_dict(data["state"])
    head.train()
    out = head(data["feats"], data["labels"], data["imgs"])
    out[0].backward()
    grads = [p.grad for p in head.parameters()]
    return [torch.as_tensor(v).detach() for v in out] + grads

result = {}
if sys.argv[4] == "patched":
    from yolox.models.loss_kit import LossKit
    default = YOLOXHead(3, 0.25)
    chosen = YOLOXHead(3, 0.25)
    chosen.set_loss_kit(LossKit(**kit))
    from yolox_focal import FocalYOLOXHead, yolox_settings  # the package route in the patched tree
    result["package_kit"] = losses(FocalYOLOXHead(3, 0.25, **kit))
    result["package_yolox"] = losses(FocalYOLOXHead(3, 0.25, **yolox_settings()))
    result["package_converted"] = losses(FocalYOLOXHead.convert(YOLOXHead(3, 0.25), **kit))
else:
    from yolox_focal import FocalYOLOXHead
    default = YOLOXHead(3, 0.25)
    chosen = FocalYOLOXHead(3, 0.25, **kit)
result.update(default=losses(default), kit=losses(chosen))
torch.save(result, sys.argv[3])
"""


def head_losses(tree, data, mode):
    out = data.parent / f"{mode}.pt"
    subprocess.run([sys.executable, "-c", HEAD_LOSSES, str(tree), str(data), str(out), mode],
                   check=True, cwd=data.parent, env=dict(os.environ, PYTHONPATH=str(tree)))
    return torch.load(out)


def test_patched_head_gives_the_packages_losses(source, tmp_path):
    """A kit changing every branch: the patched YOLOXHead equals FocalYOLOXHead; default: it equals
    the unpatched head (losses and gradients, bit for bit), each computed in its own tree in a
    subprocess."""
    pristine = copy_yolox(source, tmp_path / "pristine")
    patched = copy_yolox(source, tmp_path / "patched")
    assert tool("apply", patched).returncode == 0
    torch.manual_seed(0)
    stock = YOLOXHead(3, 0.25)
    stock.initialize_biases(1e-2)
    feats, labels, imgs = head_inputs(3)
    torch.save({"state": stock.state_dict(), "feats": feats, "labels": labels, "imgs": imgs,
                "kit": KIT}, tmp_path / "in.pt")
    ours = head_losses(patched, tmp_path / "in.pt", "patched")
    package = head_losses(pristine, tmp_path / "in.pt", "reference")
    for name in ("default", "kit"):
        assert len(ours[name]) == len(package[name]) > 6
        for got, expected in zip(ours[name], package[name]):
            assert torch.equal(got, expected), name
    for branch in (1, 2, 3):  # loss_iou, loss_obj, loss_cls: each differs from YOLOX's
        assert not torch.equal(ours["kit"][branch], ours["default"][branch])
    # The package's head also works in the patched tree, through the patched head's hook.
    for name, expected in (("package_kit", "kit"), ("package_converted", "kit"), ("package_yolox", "default")):
        for got, want in zip(ours[name], package[expected]):
            assert torch.equal(got, want), name


EXPS = """
import json, sys, torch
import yolox
assert yolox.__file__.startswith(sys.argv[1]), yolox.__file__
from yolox.exp import get_exp

def settings(exp):
    kit = exp.get_model().head.loss_kit
    return [kit.settings[k] for k in ("obj_loss", "obj_focal_gamma", "obj_focal_alpha", "obj_loss_weight", "cls_loss",
                                      "box_loss")] + [kit.obj.name, kit.cls.name, kit.box.name]

report = {}
example = get_exp(sys.argv[1] + "/exps/example/focal/yolox_s_focal.py", None)
example.merge(["focal_gamma", "2.0", "focal_alpha", "None", "obj_loss_weight", "3", "cls_loss", "qfocal",
               "box_loss", "giou"])
report["example"] = settings(example)
model = example.get_model()
imgs = torch.rand(2, 3, 64, 64)
labels = torch.tensor([[[0, 20, 20, 16, 24], [5, 40, 44, 20, 12]], [[1, 30, 30, 40, 40], [0, 0, 0, 0, 0]]])
out = model(imgs, labels.float())
out["total_loss"].backward()
report["losses"] = {k: float(v) for k, v in out.items()}
report["grads_finite"] = all(bool(torch.isfinite(p.grad).all()) for p in model.parameters() if p.grad is not None)
report["default"] = settings(get_exp(None, "yolox-s"))
nano = get_exp(None, "yolox-nano")
nano.obj_loss = "focal"
report["nano"] = settings(nano)
report["nano_depthwise"] = any(type(m).__name__ == "DWConv" for m in nano.get_model().head.modules())
bad = get_exp(None, "yolox-s")
bad.focal_gamma = -1.0
bad.obj_loss = "focal"
try:
    bad.get_model()
except ValueError as error:
    report["bad"] = str(error)
print(json.dumps(report))
"""


def test_exps_in_the_patched_tree_choose_each_branchs_loss(source, tmp_path):
    """The example exp (with command-line options), a default exp and nano, whose get_model
    builds its own head, in the patched tree; the example exp's model trains a step on the CPU."""
    tree = copy_yolox(source, tmp_path)
    assert tool("apply", tree).returncode == 0
    result = subprocess.run([sys.executable, "-c", EXPS, str(tree)], capture_output=True, text=True,
                            cwd=tmp_path, env=dict(os.environ, PYTHONPATH=str(tree)))
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.splitlines()[-1])
    assert report["example"] == ["focal", 2.0, None, 3.0, "qfocal", "giou", "focal", "qfocal", "giou"]
    assert report["default"] == ["bce", 1.5, 0.25, 1.0, "bce", "iou", "bce", "bce", "iou"]
    assert report["nano"] == ["focal", 1.5, 0.25, 1.0, "bce", "iou", "focal", "bce", "iou"]
    assert report["nano_depthwise"]
    assert report["bad"] == "obj_focal_gamma must be a finite number >= 0, got -1.0"
    assert report["grads_finite"] and report["losses"]["conf_loss"] > 0
    assert all(v == v for v in report["losses"].values())  # no NaN
