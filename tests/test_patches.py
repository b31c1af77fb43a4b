"""The patch series (patches/) and tools/patch_yolox.py on the yolox 0.3.0 source from PyPI, copied
from the installed package. With YOLOX_SRC=/path/to/YOLOX (a checkout of GitHub main, say) the
tree tests also run on a copy of that tree."""

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
from yolox_focal.losses.kit import LossKit
from yolox_focal.losses.settings import all_settings, yolox_settings

TOOL = REPO / "tools" / "patch_yolox.py"
PATCHES = sorted((REPO / "patches").glob("*.patch"))
SOURCES = {"pypi-0.3.0": Path(yolox.__file__).resolve().parent.parent}
if os.environ.get("YOLOX_SRC"):
    SOURCES["YOLOX_SRC"] = Path(os.environ["YOLOX_SRC"]).resolve()
HEAD = "yolox/models/yolo_head.py"
LOSS_KIT = "yolox/models/loss_kit"
LOSS_CORE = REPO / "yolox_focal" / "losses"
EXP_HOOK = REPO / "yolox_focal" / "adapter" / "exp_hook.py"  # what the patched exp calls
EXAMPLE_EXP = "exps/example/focal/yolox_s_focal.py"
# a change on every branch
KIT = dict(obj_loss="focal", obj_loss_weight=2.0, cls_loss="varifocal", cls_label_smoothing=0.1, box_loss="siou",
           box_loss_weight=1.5)
# each label assignment other than YOLOX's, with parameters other than the defaults
ASSIGNER_KITS = {"assigner=tal": dict(assigner="tal", assigner_tal_alpha=1.0, assigner_tal_topk=13),
                 "assigner=dsl": dict(assigner="dsl", assigner_similarity="gcd", assigner_dsl_topk=9),
                 "assigner=simota": dict(assigner="simota", assigner_similarity="nwd", assigner_nwd_constant=20.0)}


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


def core_files():
    """The loss core's modules, by their path inside the package: what the series must carry."""
    return {p.relative_to(LOSS_CORE).as_posix(): p.read_bytes() for p in sorted(LOSS_CORE.rglob("*.py"))
            if "__pycache__" not in p.parts}


def added_files():
    """What the series adds under loss_kit/: the loss core, and the adapter's exp_hook beside it, whose
    imports of the core (``from ..losses.kit``) read ``from .kit`` there."""
    hook = EXP_HOOK.read_text()
    assert hook.count("from ..losses.") == 2 and "from ." not in hook.replace("from ..losses.", "")
    return dict(core_files(), **{"exp_hook.py": hook.replace("from ..losses.", "from .").encode()})


def test_the_added_loss_kit_is_the_packages_loss_core_unchanged_and_its_exp_hook(tmp_path):
    """Independent of the generator: yolox/models/loss_kit/ in a patched tree holds every module of
    yolox_focal/losses/, byte for byte, the adapter's exp_hook.py, and nothing else."""
    tree = copy_yolox(SOURCES["pypi-0.3.0"], tmp_path)
    assert tool("apply", tree).returncode == 0
    added = {p.relative_to(tree / LOSS_KIT).as_posix(): p.read_bytes() for p in (tree / LOSS_KIT).rglob("*")
             if p.is_file()}
    assert added == added_files()
    assert {"__init__.py", "kit.py", "settings.py", "exp_hook.py"} <= set(added)
    assert "exp_hook.py" not in core_files()  # the loss core holds no YOLOX glue


def test_apply_check_apply_again_revert(tree):
    before = snapshot(tree)
    check = tool("check", tree)
    assert check.returncode == 0 and check.stdout.startswith("applies: the 3 patches apply cleanly")
    applied = tool("apply", tree)
    assert applied.returncode == 0 and applied.stdout.startswith("applied 3 patches")
    assert f"{HEAD} +20 -3" in applied.stdout and f"{LOSS_KIT}/kit.py +" in applied.stdout
    after = snapshot(tree)
    assert set(after) - set(before) == {EXAMPLE_EXP} | {f"{LOSS_KIT}/{name}" for name in added_files()}
    assert after[HEAD] != before[HEAD]
    again = tool("apply", tree)
    assert again.returncode == 0 and again.stdout.strip() == f"already applied to {tree}; nothing changed"
    assert snapshot(tree) == after
    assert tool("check", tree).stdout.startswith("already applied")
    # Python's caches of the added modules, as importing them leaves them
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(tree / LOSS_KIT)], check=True)
    assert list((tree / LOSS_KIT / "__pycache__").glob("kit.*.pyc"))
    reverted = tool("revert", tree)
    assert reverted.returncode == 0 and reverted.stdout.startswith("reverted 3 patches")
    assert snapshot(tree) == before  # byte for byte, and the example exp's folder is gone
    assert not (tree / "exps" / "example" / "focal").exists() and not (tree / LOSS_KIT).exists()
    assert "not applied" in tool("revert", tree).stdout and snapshot(tree) == before


def test_partly_applied_series_is_completed_and_reverted(tree):
    before = snapshot(tree)
    subprocess.run(["git", "apply", str(PATCHES[0])], cwd=tree, check=True)
    check = tool("check", tree)
    assert check.returncode == 0 and check.stdout.startswith(f"partly applied: {tree} has {PATCHES[0].name}")
    applied = tool("apply", tree)
    assert applied.stdout.startswith("applied 2 patches (1 already applied)")
    assert not [name for name in core_files() if f"{LOSS_KIT}/{name} +" in applied.stdout]  # not written twice
    assert f"{LOSS_KIT}/exp_hook.py +" in applied.stdout  # the exp's patch adds it
    assert tool("revert", tree).returncode == 0 and snapshot(tree) == before


def test_conflict_says_where_and_changes_nothing(tree):
    head = tree / HEAD
    head.write_text(head.read_text().replace("self.bcewithlog_loss(obj_preds.view(-1, 1), obj_targets)",
                                             "self.my_obj_loss(obj_preds, obj_targets)"))
    before = snapshot(tree)
    check = tool("check", tree)
    assert check.returncode == 1 and check.stderr.startswith("error: conflicts:")
    where = f"{HEAD} hunk 6/7 of {PATCHES[1].name} does not match the tree near line"
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
    assert f"{HEAD} hunk 6/7" in result.stderr and snapshot(tree) == before


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
    assert "# a local note" in base.read_text() and "exp_hook.give_head_loss_kit" in base.read_text()
    assert tool("revert", tree).returncode == 0 and snapshot(tree) == before


def test_not_a_yolox_tree(tmp_path):
    result = tool("check", tmp_path)
    assert result.returncode == 2
    assert result.stderr == (f"error: {tmp_path} is not a YOLOX source tree: no yolox/models/yolo_head.py; "
                             "give the folder that holds yolox/\n")
    package = tool("apply", SOURCES["pypi-0.3.0"] / "yolox")
    assert package.returncode == 2 and "give its parent" in package.stderr
    assert len(package.stderr.splitlines()) == 1


# ---------------------------------------------------------------- the losses by both routes

BRANCH_INPUTS = {  # what YOLOXHead's get_losses hands each branch: logits and targets, or boxes
    "obj": lambda g: (torch.randn(40, 1, generator=g) * 3, (torch.rand(40, 1, generator=g) > 0.7).float()),
    "cls": lambda g: (torch.randn(12, 3, generator=g) * 3,  # IoU-valued targets, zeros elsewhere
                      torch.rand(12, 3, generator=g) * (torch.rand(12, 3, generator=g) > 0.6)),
    "box": lambda g: (torch.rand(12, 4, generator=g) * 30 + 2, torch.rand(12, 4, generator=g) * 30 + 2),
}
LOSS_CHOICES = [s for s in all_settings() if s.name.endswith("_loss") and getattr(s, "choices", None)]


def branch_loss(settings, branch):
    kit = LossKit(**settings)
    kit.start_batch(torch.zeros(2, 3, 64, 96))
    kit.set_progress(0.3)  # as the package's trainers give it (uiou reads it)
    return getattr(kit, branch)(*BRANCH_INPUTS[branch](torch.Generator().manual_seed(0)))


def other_values(setting):
    """Values of a setting other than YOLOX's, to try in turn (the kit refuses those out of range)."""
    if getattr(setting, "choices", None):
        return [c for c in setting.choices if c != setting.yolox]
    value = setting.yolox
    if value is None:
        return [0.3, 0.5, 2.0]
    if isinstance(value, bool):
        return [not value]
    return [v for v in (round(value * 1.5 + 0.1, 4), round(value * 0.5, 4), 0.3, 0.5, 2.0) if v != value]


def kits_for_every_loss():
    """{"obj_loss=focal": settings, ...}: for each loss a branch can be given (every value of
    obj_loss, cls_loss and box_loss), every setting with each setting that changes that loss at a
    value other than YOLOX's. Which settings change it is found by computing it, so the list follows
    the kit as losses and parameters are added."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: more threads only contend
    try:
        kits = {}
        for choice in LOSS_CHOICES:
            branch = choice.name[:-len("_loss")]
            for loss in choice.choices:
                settings = dict(yolox_settings(), **{choice.name: loss})
                reference = branch_loss(settings, branch)
                for setting in all_settings():
                    if setting in LOSS_CHOICES:
                        continue
                    for value in other_values(setting):
                        try:
                            changed = branch_loss(dict(settings, **{setting.name: value}), branch)
                        except ValueError:  # out of this setting's range, or not with the others chosen
                            continue
                        if not torch.equal(changed, reference):
                            settings[setting.name], reference = value, changed
                        break
                kits[f"{choice.name}={loss}"] = settings
        return kits
    finally:
        torch.set_num_threads(threads)


ROUTES = """
import sys, torch
import yolox
assert yolox.__file__.startswith(sys.argv[1]), yolox.__file__
torch.set_num_threads(1)  # tiny tensors: more threads only contend
from torch import nn
from yolox.models import YOLOXHead
from yolox_focal import FocalYOLOXHead

data = torch.load(sys.argv[2])
patched = sys.argv[4] == "patched"

def losses(head):
    for m in head.modules():  # as YOLOX's Exp.get_model sets them
        if isinstance(m, nn.BatchNorm2d):
            m.eps, m.momentum = 1e-3, 0.03
    head.load_state_dict(data["state"])
    head.train()
    if getattr(head, "loss_kit", None) is not None:  # the training progress, as the package's trainers give it
        head.loss_kit.set_progress(0.3)
    out = head(data["feats"], data["labels"], data["imgs"])
    out[0].backward()
    return [torch.as_tensor(v).detach() for v in out] + [p.grad for p in head.parameters()]

result = {("stock", "YOLOXHead"): losses(YOLOXHead(3, 0.25))}  # in the patched tree: the patched head
for label, settings in data["kits"].items():
    result[label, "package"] = losses(FocalYOLOXHead(3, 0.25, **settings))
    if patched:
        from yolox.exp import Exp

        exp = Exp()  # the exp's route: the settings as command-line options, YOLOX's merge
        exp.num_classes, exp.depth, exp.width = 3, 0.33, 0.25
        exp.merge([str(v) for item in settings.items() for v in item])
        result[label, "exp"] = losses(exp.get_model().head)
        result[label, "converted"] = losses(FocalYOLOXHead.convert(YOLOXHead(3, 0.25), **settings))
torch.save(result, sys.argv[3])
"""


@pytest.fixture(scope="module", params=list(SOURCES))
def routes(request, tmp_path_factory):
    """(kits, {"patched"|"reference": {(kit label, route): [losses..., gradients...]}}): every kit
    of kits_for_every_loss, "yolox" (no setting changed) and "every branch" (a change on each),
    computed by a head in a patched tree and in an unpatched one, each in its own subprocess from
    the same weights and inputs."""
    source, work = SOURCES[request.param], tmp_path_factory.mktemp(request.param)
    yolox = yolox_settings()
    kits = dict(kits_for_every_loss(), yolox=yolox, **{"every branch": dict(yolox, **KIT)},
                **{label: dict(yolox, **settings) for label, settings in ASSIGNER_KITS.items()})
    pristine = copy_yolox(source, work / "pristine")
    patched = copy_yolox(source, work / "patched")
    assert tool("apply", patched).returncode == 0
    torch.manual_seed(0)
    stock = YOLOXHead(3, 0.25)
    stock.initialize_biases(1e-2)
    feats, labels, imgs = head_inputs(3, batch=2, gts_per_image=(3, 5))
    torch.save({"state": stock.state_dict(), "feats": feats, "labels": labels, "imgs": imgs, "kits": kits},
               work / "in.pt")
    results = {}
    for tree, mode in ((patched, "patched"), (pristine, "reference")):
        subprocess.run([sys.executable, "-c", ROUTES, str(tree), str(work / "in.pt"), str(work / f"{mode}.pt"), mode],
                       check=True, cwd=work, env=dict(os.environ, PYTHONPATH=f"{tree}{os.pathsep}{REPO}"))
        results[mode] = torch.load(work / f"{mode}.pt")
    return kits, results


def assert_same(got, expected, label):
    assert len(got) == len(expected) > 6, label  # 6 loss outputs, then one gradient per parameter
    for a, b in zip(got, expected):
        assert torch.equal(a, b), label


def test_patched_head_is_yolox_by_default_and_the_packages_otherwise(routes):
    """With no setting changed the patched YOLOXHead is the unpatched one, losses and gradients bit
    for bit; with a change on every branch, by the exp, set on the patched head by FocalYOLOXHead
    or by FocalYOLOXHead.convert, it is the package's FocalYOLOXHead on the unpatched tree."""
    _, results = routes
    ours, package = results["patched"], results["reference"]
    assert_same(ours["stock", "YOLOXHead"], package["stock", "YOLOXHead"], "default")
    for route in ("exp", "package", "converted"):
        assert_same(ours["yolox", route], package["stock", "YOLOXHead"], ("yolox", route))
        assert_same(ours["every branch", route], package["every branch", "package"], ("every branch", route))
    for branch in (1, 2, 3):  # loss_iou, loss_obj, loss_cls: each differs from YOLOX's
        assert not torch.equal(ours["every branch", "exp"][branch], ours["stock", "YOLOXHead"][branch])


def test_every_loss_is_the_same_by_both_routes(routes):
    """For every loss of every branch, with its parameters changed from YOLOX's: an exp of the
    patched tree given the settings on its command line trains with the losses and gradients of the
    package's FocalYOLOXHead on the unpatched tree (and FocalYOLOXHead in the patched tree does too),
    bit for bit."""
    kits, results = routes
    for choice in LOSS_CHOICES:
        assert {f"{choice.name}={loss}" for loss in choice.choices} <= set(kits)
    yolox = yolox_settings()
    every = {label: settings for label, settings in kits.items() if "_loss=" in label}
    for label, settings in every.items():  # each with a parameter other than YOLOX's
        assert any(v != yolox[k] for k, v in settings.items() if k not in label), label
    for label in every:
        for route in ("exp", "package", "converted"):
            assert_same(results["patched"][label, route], results["reference"][label, "package"], (label, route))
        # the settings reach the losses: each changes its branch's loss from YOLOX's
        index = {"box": 1, "obj": 2, "cls": 3}[label.split("_loss=")[0]]  # (loss, iou, obj, cls, l1, fg)
        assert not torch.equal(results["reference"][label, "package"][index],
                               results["reference"]["stock", "YOLOXHead"][index]), label


def test_every_assigner_is_the_same_by_both_routes(routes):
    """tal, dsl and simota with a Gaussian similarity: the patched tree's get_assignments hands the
    assignment to the kit as the package's head does on the unpatched tree, bit for bit, by the
    exp's command line, FocalYOLOXHead and convert; each changes the losses from YOLOX's."""
    _, results = routes
    for label in ASSIGNER_KITS:
        for route in ("exp", "package", "converted"):
            assert_same(results["patched"][label, route], results["reference"][label, "package"], (label, route))
        assert not torch.equal(results["reference"][label, "package"][0],
                               results["reference"]["stock", "YOLOXHead"][0]), label


EXPS = """
import json, sys, torch
import yolox
assert yolox.__file__.startswith(sys.argv[1]), yolox.__file__
torch.set_num_threads(1)  # tiny tensors: more threads only contend
from yolox.exp import get_exp
from yolox.models.loss_kit import exp_hook
from yolox.models.loss_kit.kit import LossKit
from yolox.models.loss_kit.settings import yolox_settings

g = torch.Generator().manual_seed(0)
INPUTS = {"obj": (torch.randn(40, 1, generator=g), (torch.rand(40, 1, generator=g) > 0.7).float()),
          "cls": (torch.randn(12, 3, generator=g), torch.rand(12, 3, generator=g)),
          "box": (torch.rand(12, 4, generator=g) * 30 + 2, torch.rand(12, 4, generator=g) * 30 + 2)}

def computes_as(kit, other):
    # the kit's three branch losses equal other's on the same inputs
    for k in (kit, other):
        k.start_batch(torch.zeros(2, 3, 64, 64))
    return all(torch.equal(getattr(kit, b)(*x), getattr(other, b)(*x)) for b, x in INPUTS.items())

def settings(exp):
    # the exp's loss settings that differ from YOLOX's, and whether its model's head computes them
    values = exp_hook.loss_settings(exp)
    head = exp.get_model().head
    changed = {k: v for k, v in values.items() if v != yolox_settings()[k]}
    return changed, computes_as(head.loss_kit, LossKit(**values)), computes_as(head.loss_kit, LossKit())

report = {}
example = get_exp(sys.argv[1] + "/exps/example/focal/yolox_s_focal.py", None)
example.merge(["focal_gamma", "2.0", "focal_alpha", "None", "obj_loss_weight", "3", "cls_loss", "qfocal",
               "box_loss", "giou", "obj_qfocal_alpha", "0.4", "max_epoch", "7"])
report["example"] = settings(example)
report["example_alias"] = example.focal_gamma
report["max_epoch"] = example.max_epoch  # YOLOX's own merge still takes the other options
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
try:
    get_exp(None, "yolox-s").merge(["cls_loss", "focall"])
except ValueError as error:
    report["bad_merge"] = str(error)
# a loss that reads the training progress, under the tree's own trainer, which gives none: its first
# step (the model's training forward) stops with one line; given the progress, it trains
uiou = get_exp(None, "yolox-s")
uiou.merge(["box_loss", "uiou"])
model = uiou.get_model().train()
try:
    model(imgs, labels.float())
except ValueError as error:
    report["uiou_without_progress"] = str(error)
model.head.loss_kit.set_progress(0.5)
report["uiou_with_progress"] = float(model(imgs, labels.float())["iou_loss"])
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
    name = {key: s.name for s in all_settings() for key in (s.name, *getattr(s, "aliases", ()))}  # focal_gamma's name
    example = {"obj_loss": "focal", "focal_gamma": 2.0, "focal_alpha": None, "obj_loss_weight": 3.0,
               "obj_qfocal_alpha": 0.4, "cls_loss": "qfocal", "box_loss": "giou"}
    assert report["example"] == [{name[k]: v for k, v in example.items()}, True, False]
    assert report["example_alias"] == 2.0  # an exp reads a setting by the name it was given
    assert report["max_epoch"] == 7
    assert report["default"] == [{}, True, True]
    assert report["nano"] == [{"obj_loss": "focal"}, True, False]
    assert report["nano_depthwise"]
    assert report["bad"] == f"{name['focal_gamma']} must be a finite number >= 0, got -1.0"
    assert report["bad_merge"].startswith("cls_loss ") and "'focall'" in report["bad_merge"]
    assert report["grads_finite"] and report["losses"]["conf_loss"] > 0
    assert report["uiou_without_progress"].startswith("the uiou loss needs the training progress, and none was given: ")
    assert "set_progress(fraction)" in report["uiou_without_progress"] and "\n" not in report["uiou_without_progress"]
    assert report["uiou_with_progress"] > 0
    assert all(v == v for v in report["losses"].values())  # no NaN
