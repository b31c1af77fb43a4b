#!/usr/bin/env python3
"""Regenerate patches/ from this package, so the patch series never drifts from yolox_focal.

    python tools/make_patches.py [--yolox-src DIR] [--out patches] [--check]

The loss code the series adds to YOLOX's ``yolox/models/losses.py`` is the body of
``yolox_focal/losses.py`` and ``yolox_focal/objectness.py``, copied verbatim; the head and exp
edits are small insertions at lines that read the same in the PyPI 0.3.0 release and GitHub main.
The base is a YOLOX source tree (default: the installed ``yolox`` package). ``--check`` writes
nothing and exits 1 if the committed patches differ from what would be generated.
"""

import argparse
import ast
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "yolox_focal"
AUTHOR = "yolox-focal <yolox-focal@users.noreply.github.com>"
DATE = "2026-01-01T00:00:00+00:00"  # fixed, so the same inputs give the same bytes

LOSSES = "yolox/models/losses.py"
HEAD = "yolox/models/yolo_head.py"
EXP_BASE = "yolox/exp/yolox_base.py"
EXAMPLE_EXP = "exps/example/focal/yolox_s_focal.py"


def module_body(path):
    """A module's source after its docstring, imports and ``__all__``: the code to copy."""
    source = path.read_text()
    tree = ast.parse(source)
    header_end = 0
    for node in tree.body:
        is_docstring = isinstance(node, ast.Expr) and isinstance(getattr(node, "value", None), ast.Constant)
        is_all = isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "__all__" for t in node.targets)
        if is_docstring or is_all or isinstance(node, (ast.Import, ast.ImportFrom)):
            header_end = node.end_lineno
        else:
            break
    return "\n".join(source.splitlines()[header_end:]).strip() + "\n"


def focal_block():
    return (
        "\n\n# Focal-loss objectness, copied from yolox-focal's yolox_focal/losses.py and objectness.py\n"
        "# by its tools/make_patches.py: change it there and regenerate, not here.\n"
        "from numbers import Real  # noqa: E402\n\n"
        "import torch.nn.functional as F  # noqa: E402\n\n\n"
        + module_body(PACKAGE / "losses.py") + "\n\n" + module_body(PACKAGE / "objectness.py")
    )


def insert(text, anchor, addition, before=False, path=""):
    """Put ``addition`` on the lines after (or before) the one line equal to ``anchor``."""
    lines = text.split("\n")
    hits = [i for i, line in enumerate(lines) if line == anchor]
    if len(hits) != 1:
        raise SystemExit(f"error: {path}: expected the line {anchor.strip()!r} once, found it "
                         f"{len(hits)} times; is this an unmodified YOLOX 0.3.0 / main tree?")
    at = hits[0] if before else hits[0] + 1
    return "\n".join(lines[:at] + addition.split("\n") + lines[at:])


def replace(text, old, new, path):
    if text.count(old) != 1:
        raise SystemExit(f"error: {path}: expected {old.strip()!r} once, found it {text.count(old)} times")
    return text.replace(old, new)


EXAMPLE = '''#!/usr/bin/env python3
# yolox-s with focal-loss objectness (from yolox-focal's patch series).
import os

from yolox.exp import Exp as MyExp


class Exp(MyExp):
    def __init__(self):
        super(Exp, self).__init__()
        self.depth = 0.33
        self.width = 0.50
        self.exp_name = os.path.split(os.path.realpath(__file__))[1].split(".")[0]

        # objectness loss: "focal" or "bce"; also settable on the command line,
        # e.g. "python tools/train.py -f exps/example/focal/yolox_s_focal.py ... focal_gamma 2.0"
        self.obj_loss = "focal"
        self.focal_gamma = 1.5
        self.focal_alpha = 0.25  # None: no alpha balancing
        self.obj_loss_weight = 1.0
'''

SERIES = [
    ("losses: add sigmoid focal loss and ObjectnessLoss",
     "Adds focal_loss/FocalLoss (Lin et al. 2017, in the form YOLOv5 wraps around\n"
     "BCE-with-logits) and ObjectnessLoss, the element-wise objectness loss a head uses:\n"
     "focal or BCE, times a weight. Nothing uses them yet, so behaviour is unchanged.\n\n"
     "The loss computes its gradient in the forward pass in one fused step: about 2x BCE's\n"
     "time on the CPU where a straightforward formulation takes 4-5x, finite for every\n"
     "logit and every gamma >= 0, in float32 for float16/bfloat16 input as BCE under autocast.",
     lambda files: {LOSSES: files[LOSSES].rstrip("\n") + "\n" + focal_block()}),
    ("head: compute loss_obj with a configurable ObjectnessLoss",
     "YOLOXHead computes loss_obj with self.objectness_loss, an ObjectnessLoss that\n"
     "defaults to BCE (the same values as before, so every existing exp trains as it did).\n"
     "set_objectness_loss() switches it to focal loss. Classification still uses\n"
     "bcewithlog_loss; label assignment, the other losses and inference are untouched.",
     lambda files: {HEAD: _patch_head(files[HEAD])}),
    ("exp: obj_loss, focal_gamma, focal_alpha, obj_loss_weight; example focal exp",
     "Exp gains the four objectness settings (default BCE) and get_model() hands them\n"
     "to the head, so an exp (or the command line: '... focal_gamma 2.0') chooses the\n"
     "objectness loss. An exp that builds its model in its own get_model() calls\n"
     "self.model.head.set_objectness_loss(...) the same way.\n"
     "exps/example/focal/yolox_s_focal.py is yolox-s with focal objectness.",
     lambda files: {EXP_BASE: _patch_exp(files[EXP_BASE]), EXAMPLE_EXP: EXAMPLE}),
]


def _patch_head(text):
    text = replace(text, "from .losses import IOUloss\n", "from .losses import IOUloss, ObjectnessLoss\n", HEAD)
    text = insert(text, '        self.bcewithlog_loss = nn.BCEWithLogitsLoss(reduction="none")',
                  "        # objectness loss: BCE unless set_objectness_loss() chooses focal loss\n"
                  '        self.objectness_loss = ObjectnessLoss(obj_loss="bce")', path=HEAD)
    text = insert(text, "    def initialize_biases(self, prior_prob):",
                  '    def set_objectness_loss(self, obj_loss="bce", focal_gamma=1.5, focal_alpha=0.25,\n'
                  "                            obj_loss_weight=1.0):\n"
                  '        """Choose the objectness loss: "bce" (YOLOX\'s default) or "focal"."""\n'
                  "        self.objectness_loss = ObjectnessLoss(obj_loss, focal_gamma, focal_alpha, obj_loss_weight)\n",
                  before=True, path=HEAD)
    return replace(text, "            self.bcewithlog_loss(obj_preds.view(-1, 1), obj_targets)",
                   "            self.objectness_loss(obj_preds.view(-1, 1), obj_targets)", HEAD)


def _patch_exp(text):
    text = insert(text, "        self.nmsthre = 0.65",
                  "        # objectness loss of the head: \"bce\" (YOLOX's default) or \"focal\", with\n"
                  "        # focal_gamma >= 0 and focal_alpha in [0, 1] (None: no balancing), times obj_loss_weight\n"
                  '        self.obj_loss = "bce"\n'
                  "        self.focal_gamma = 1.5\n"
                  "        self.focal_alpha = 0.25\n"
                  "        self.obj_loss_weight = 1.0", path=EXP_BASE)
    return insert(text, "        self.model.head.initialize_biases(1e-2)",
                  "        self.model.head.set_objectness_loss(\n"
                  "            self.obj_loss, self.focal_gamma, self.focal_alpha, self.obj_loss_weight\n"
                  "        )", path=EXP_BASE)


def git(cwd, *args):
    env = dict(os.environ, GIT_AUTHOR_NAME="yolox-focal", GIT_AUTHOR_EMAIL=AUTHOR.split("<")[1][:-1],
               GIT_COMMITTER_NAME="yolox-focal", GIT_COMMITTER_EMAIL=AUTHOR.split("<")[1][:-1],
               GIT_AUTHOR_DATE=DATE, GIT_COMMITTER_DATE=DATE, GIT_CONFIG_GLOBAL=os.devnull,
               GIT_CONFIG_NOSYSTEM="1")
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout


def default_yolox_src():
    import yolox

    return Path(yolox.__file__).resolve().parents[1]


def generate(yolox_src, out):
    """Write the series into ``out`` (an empty or missing folder) and return the file names."""
    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        files = {}
        for name in (LOSSES, HEAD, EXP_BASE):
            source = Path(yolox_src) / name
            if not source.is_file():
                raise SystemExit(f"error: {source} not found; --yolox-src must be a YOLOX source tree")
            files[name] = source.read_text()
            (work / name).parent.mkdir(parents=True, exist_ok=True)
            (work / name).write_text(files[name])
        git(work, "init", "-q")
        git(work, "add", "-A")
        git(work, "commit", "-q", "-m", "yolox")
        for subject, body, change in SERIES:
            for name, text in change(files).items():
                files[name] = text
                (work / name).parent.mkdir(parents=True, exist_ok=True)
                (work / name).write_text(text)
            git(work, "add", "-A")
            git(work, "commit", "-q", "-m", subject, "-m", body)
        out.mkdir(parents=True, exist_ok=True)
        names = git(work, "format-patch", "-U1", "--zero-commit", "--no-signature", "-o", str(out),
                    "HEAD~%d" % len(SERIES)).split()
    return [Path(n).name for n in names]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--yolox-src", type=Path, default=None, help="YOLOX source tree (default: installed)")
    parser.add_argument("--out", type=Path, default=REPO / "patches")
    parser.add_argument("--check", action="store_true", help="compare with --out instead of writing")
    args = parser.parse_args()
    source = args.yolox_src or default_yolox_src()
    with tempfile.TemporaryDirectory() as fresh:
        names = generate(source, Path(fresh))
        if args.check:
            stale = [n for n in names if not (args.out / n).is_file()
                     or (args.out / n).read_bytes() != (Path(fresh) / n).read_bytes()]
            extra = sorted({p.name for p in args.out.glob("*.patch")} - set(names))
            if stale or extra:
                print(f"patches out of date: {', '.join(stale + extra)}; run python tools/make_patches.py")
                sys.exit(1)
            print(f"patches up to date ({len(names)} files)")
            return
        for old in args.out.glob("*.patch"):
            old.unlink()
        args.out.mkdir(parents=True, exist_ok=True)
        for name in names:
            shutil.copyfile(Path(fresh) / name, args.out / name)
    print("wrote " + ", ".join(str(args.out / n) for n in names))


if __name__ == "__main__":
    main()
