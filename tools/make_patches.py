#!/usr/bin/env python3
"""Regenerate patches/ from this package, so the patch series cannot drift from yolox_focal.

    python tools/make_patches.py [--yolox-src DIR] [--out DIR] [--check]

The series copies the package's loss core, every ``*.py`` of ``yolox_focal/losses/`` unchanged,
into the YOLOX tree as the package ``yolox/models/loss_kit/`` (its modules import only torch and
each other, relatively, so they run there as they are; the generator refuses one that imports
``yolox_focal`` or reaches out of ``losses/``). Beside the core it carries the adapter modules the
patched exp calls, listed in ``CARRIED``, with their imports of the core pointed at the core there;
and it adds the files of ``patches/added/`` as they are (the example exp). The head and exp edits
are a few lines each, inserted at lines that read the same in the PyPI 0.3.0 release and GitHub
main: the head computes its losses with a ``LossKit`` (``losses/kit.py``) and hands its label
assignment to the kit where the kit's ``assigner`` setting chooses another than SimOTA; the exp calls
``adapter/exp_hook.py``, whose functions do the work.

The base is a YOLOX source tree: the folder that holds ``yolox/`` (default: the installed ``yolox``
package, i.e. the PyPI 0.3.0 release). ``--check`` writes nothing and exits 1 when the committed
patches differ from what would be generated.
"""

import argparse
import ast
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LOSS_CORE = REPO / "yolox_focal" / "losses"  # copied whole, file by file
# Adapter modules the patched exp calls: {source: path in the YOLOX tree, beside the core}.
CARRIED = {REPO / "yolox_focal" / "adapter" / "exp_hook.py": "yolox/models/loss_kit/exp_hook.py"}
CORE_IMPORT = re.compile(r"^(\s*from )\.\.losses\.", re.M)  # "from ..losses.kit import" in the adapter
ADDED = REPO / "patches" / "added"  # files the series adds to the YOLOX tree as they are
NAME, EMAIL = "yolox-focal", "yolox-focal@users.noreply.github.com"
DATE = "2026-01-01T00:00:00+00:00"  # fixed, so the same inputs give the same bytes

LOSS_KIT = "yolox/models/loss_kit"
HEAD = "yolox/models/yolo_head.py"
EXP_BASE = "yolox/exp/yolox_base.py"


class GenerateError(Exception):
    pass


def copied(source_dir, dest_dir, pattern="*"):
    """{path in the YOLOX tree: bytes}: every file under ``source_dir`` whose name matches
    ``pattern``, in sorted order, at the same place under ``dest_dir``; caches left out."""
    files = sorted(p for p in source_dir.rglob(pattern) if p.is_file() and "__pycache__" not in p.parts)
    if not files:
        raise GenerateError(f"no files to copy in {source_dir}")
    return {(Path(dest_dir) / p.relative_to(source_dir)).as_posix(): p.read_bytes() for p in files}


def loss_core():
    """The loss core's modules, as the series adds them; each must run inside the YOLOX tree, so it
    may import neither ``yolox_focal`` nor, relatively, anything above ``losses/``."""
    files = copied(LOSS_CORE, LOSS_KIT, "*.py")
    for name, source in files.items():
        module = Path(name).relative_to(LOSS_KIT)
        depth = len(module.parts) - 1  # 0 for losses/x.py: "from ." is the core, "from .." is not
        for node in ast.walk(ast.parse(source, name)):
            if isinstance(node, ast.ImportFrom):
                outside = node.level > depth + 1 or not node.level and node.module.split(".")[0] == "yolox_focal"
            else:
                outside = isinstance(node, ast.Import) and any(a.name.split(".")[0] == "yolox_focal" for a in node.names)
            if outside:
                raise GenerateError(f"{LOSS_CORE.name}/{module.as_posix()}:{node.lineno}: imports from outside the "
                                    "loss core, which the YOLOX tree does not have; import only torch and the "
                                    "core's own modules (relatively)")
    return files


def carried():
    """The adapter modules of ``CARRIED``, each with ``from ..losses.<module> import`` written
    ``from .<module> import``, as they sit beside the core; each may import, relatively, only the core."""
    files = {}
    for source, dest in CARRIED.items():
        text = source.read_text()
        for node in ast.walk(ast.parse(text, str(source))):
            if isinstance(node, ast.ImportFrom) and node.level:
                outside = node.level != 2 or not (node.module or "").startswith("losses.")
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module]
                outside = any(name.split(".")[0] == "yolox_focal" for name in names)
            else:
                continue
            if outside:
                raise GenerateError(f"{source.relative_to(REPO)}:{node.lineno}: a carried module may import only the "
                                    "loss core, as 'from ..losses.<module> import ...'")
        files[dest] = CORE_IMPORT.sub(r"\1.", text).encode()
    return files


# ---------------------------------------------------------------- the head and exp edits


def insert(text, anchor, addition, path, before=False):
    """Put ``addition`` (whole lines) after, or before, the one line that equals ``anchor``."""
    lines = text.split("\n")
    hits = [i for i, line in enumerate(lines) if line == anchor]
    if len(hits) != 1:
        raise GenerateError(f"{path}: expected the line {anchor.strip()!r} once, found it "
                            f"{len(hits)} times; --yolox-src must be an unmodified YOLOX tree")
    at = hits[0] if before else hits[0] + 1
    return "\n".join(lines[:at] + addition.split("\n") + lines[at:])


def replace(text, old, new, path):
    if text.count(old) != 1:
        raise GenerateError(f"{path}: expected {old.strip()!r} once, found it {text.count(old)} "
                            "times; --yolox-src must be an unmodified YOLOX tree")
    return text.replace(old, new)


def _patch_head(text):
    text = replace(text, "from .losses import IOUloss\n",
                   "from .loss_kit.kit import LossKit\nfrom .losses import IOUloss\n", HEAD)
    text = insert(text, "class YOLOXHead(nn.Module):",
                  "    # get_losses computes every loss with self.loss_kit (a LossKit; see loss_kit/kit.py)\n"
                  "    computes_losses_with_loss_kit = True\n", HEAD)
    text = insert(text, '        self.iou_loss = IOUloss(reduction="none")',
                  "        # the loss of each branch: YOLOX's own unless set_loss_kit() says otherwise\n"
                  "        self.loss_kit = LossKit()", HEAD)
    text = insert(text, "    def initialize_biases(self, prior_prob):",
                  "    def set_loss_kit(self, kit):\n"
                  '        """Compute the objectness, classification and box losses with ``kit``, a LossKit."""\n'
                  "        self.loss_kit = kit\n", HEAD, before=True)
    text = replace(text, "        dtype,\n    ):\n",
                   "        dtype,\n    ):\n"
                   "        self.loss_kit.start_batch(imgs)  # a loss may read the batch's input size\n", HEAD)
    text = replace(text, '        mode="gpu",\n    ):\n',
                   '        mode="gpu",\n    ):\n'
                   "        if self.loss_kit.assign is not None:  # the assigner setting chose another assignment\n"
                   "            return self.loss_kit.get_assignments(\n"
                   "                batch_idx=batch_idx, gt_bboxes_per_image=gt_bboxes_per_image,\n"
                   "                gt_classes=gt_classes, bboxes_preds_per_image=bboxes_preds_per_image,\n"
                   "                expanded_strides=expanded_strides, x_shifts=x_shifts, y_shifts=y_shifts,\n"
                   "                cls_preds=cls_preds, obj_preds=obj_preds, mode=mode)\n",
                   HEAD)
    text = replace(text, "            self.iou_loss(bbox_preds.view(-1, 4)[fg_masks], reg_targets)",
                   "            self.loss_kit.box(bbox_preds.view(-1, 4)[fg_masks], reg_targets)", HEAD)
    text = replace(text, "            self.bcewithlog_loss(obj_preds.view(-1, 1), obj_targets)",
                   "            self.loss_kit.obj(obj_preds.view(-1, 1), obj_targets)", HEAD)
    return replace(text, "            self.bcewithlog_loss(\n                cls_preds.view(-1, self.num_classes)",
                   "            self.loss_kit.cls(\n                cls_preds.view(-1, self.num_classes)", HEAD)


def _patch_exp(text):
    text = insert(text, "from .base_exp import BaseExp", "from yolox.models.loss_kit import exp_hook", EXP_BASE,
                  before=True)
    text = insert(text, "        self.nmsthre = 0.65", """
        # ---------------- loss kit config ---------------- #
        # one attribute per loss setting (obj_loss, focal_gamma, cls_loss, box_loss, ...), at
        # YOLOX's values; each setting's values: yolox/models/loss_kit/settings.py
        exp_hook.add_loss_settings(self)

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        exp_hook.wrap_get_model(cls)  # a get_model of its own (yolox_nano's) also sets the loss kit

    def merge(self, cfg_list):
        super().merge(exp_hook.merge_loss_settings(self, cfg_list))""", EXP_BASE)
    return insert(text, "        self.model.head.initialize_biases(1e-2)",
                  "        exp_hook.give_head_loss_kit(self, self.model)", EXP_BASE)


SERIES = [
    ("models: add loss_kit, a choice of loss for each head branch",
     "Adds the package yolox/models/loss_kit: yolox-focal's loss core, the files\n"
     "of its yolox_focal/losses/ copied unchanged. It holds the losses, the settings\n"
     "that choose one for each head branch (objectness, classification, box), each\n"
     "declared once with its range and default, and LossKit, the three branch\n"
     "losses those settings give (YOLOX's own losses when no setting is given). It\n"
     "needs only torch. Nothing uses it yet, so behaviour is unchanged.\n\n"
     "The copy is made by yolox-focal's tools/make_patches.py, so both routes\n"
     "compute the same losses.",
     lambda files: loss_core()),
    ("head: compute the losses with a LossKit",
     "YOLOXHead computes loss_obj, loss_cls and loss_iou with self.loss_kit, a LossKit\n"
     "that defaults to YOLOX's own losses with the same values as before, so existing\n"
     "exps train as they did. set_loss_kit(kit) chooses other losses. get_losses\n"
     "first hands the kit the batch's images (start_batch), as a loss may read the\n"
     "training input size. get_assignments hands the assignment to the kit when its\n"
     "assigner setting chooses another than YOLOX's SimOTA (tal, dsl, or simota with\n"
     "a Gaussian similarity); at the default it is YOLOX's own. The L1 loss, the\n"
     "normalisation, inference and the state dict are unchanged.",
     lambda files: {HEAD: _patch_head(files[HEAD])}),
    ("exp: loss-kit settings; example focal exp",
     "Exp gains one attribute per loss-kit setting (default: YOLOX's losses) and hands\n"
     "them to the head after get_model(), so an exp file, or the command line\n"
     "('... focal_gamma 2.0 box_loss ciou'), chooses each branch's loss. merge()\n"
     "parses those settings as they are declared and checks them. A get_model()\n"
     "that a subclass defines itself (yolox_nano's builds its own depthwise head) is\n"
     "wrapped the same way, so every exp honours the settings. The work is done by\n"
     "yolox/models/loss_kit/exp_hook.py, added here: yolox-focal's\n"
     "yolox_focal/adapter/exp_hook.py, its imports pointed at the loss kit.\n\n"
     "exps/example/focal/yolox_s_focal.py is yolox-s with focal objectness; it runs\n"
     "with tools/train.py and tools/eval.py like any exp.",
     lambda files: {EXP_BASE: _patch_exp(files[EXP_BASE]), **carried(), **copied(ADDED, ".")}),
]


# ---------------------------------------------------------------- writing the series with git


def git(cwd, *args):
    env = dict(os.environ, GIT_AUTHOR_NAME=NAME, GIT_AUTHOR_EMAIL=EMAIL, GIT_COMMITTER_NAME=NAME,
               GIT_COMMITTER_EMAIL=EMAIL, GIT_AUTHOR_DATE=DATE, GIT_COMMITTER_DATE=DATE,
               GIT_CONFIG_GLOBAL=os.devnull, GIT_CONFIG_NOSYSTEM="1")
    result = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True)
    if result.returncode:
        raise GenerateError(f"git {args[0]} failed: {result.stderr.strip()}")
    return result.stdout


def default_yolox_src():
    import yolox

    return Path(yolox.__file__).resolve().parents[1]


def generate(yolox_src, out):
    """Write the series into the folder ``out``; return the patch file names in order."""
    files = {}
    for name in (HEAD, EXP_BASE):
        source = Path(yolox_src) / name
        if not source.is_file():
            raise GenerateError(f"{source} not found; --yolox-src must be the folder that holds yolox/")
        files[name] = source.read_bytes().decode()
    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        git(work, "init", "-q")

        def write_and_commit(message_args):
            for name, text in files.items():
                (work / name).parent.mkdir(parents=True, exist_ok=True)
                (work / name).write_bytes(text if isinstance(text, bytes) else text.encode())
            git(work, "add", "-A")
            git(work, "commit", "-q", *message_args)

        write_and_commit(["-m", "yolox"])
        for subject, body, change in SERIES:
            files.update(change(files))
            write_and_commit(["-m", subject, "-m", body])
        out.mkdir(parents=True, exist_ok=True)
        names = git(work, "format-patch", "-U1", "--zero-commit", "--no-signature",
                    "-o", str(out), f"HEAD~{len(SERIES)}").split()
    return [Path(n).name for n in names]


def base_mismatch(yolox_src, patches):
    """Files whose blob in ``yolox_src`` is not the one the committed patches start from."""
    odd = []
    for patch in patches:
        for path, blob in re.findall(r"^diff --git a/(\S+) .*\nindex ([0-9a-f]+)\.\.", patch.read_text(),
                                     flags=re.M):
            source = Path(yolox_src) / path
            if source.is_file() and not git(REPO, "hash-object", str(source)).startswith(blob):
                odd.append(path)
    return odd


def check(yolox_src, out, fresh, names):
    stale = [n for n in names if not (out / n).is_file()
             or (out / n).read_bytes() != (fresh / n).read_bytes()]
    extra = sorted({p.name for p in out.glob("*.patch")} - set(names))
    if not stale and not extra:
        return f"patches up to date ({len(names)} files)"
    odd = base_mismatch(yolox_src, sorted(out.glob("*.patch")))
    if odd:
        raise GenerateError(f"{yolox_src} is not the YOLOX tree the patches were made from ({odd[0]} "
                            "differs); pass --yolox-src with the yolox 0.3.0 source from PyPI")
    raise GenerateError(f"patches out of date: {', '.join(stale + extra)}; "
                        "run python tools/make_patches.py")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--yolox-src", type=Path, default=None,
                        help="YOLOX source tree, the folder that holds yolox/ (default: installed yolox)")
    parser.add_argument("--out", type=Path, default=REPO / "patches")
    parser.add_argument("--check", action="store_true", help="compare with --out instead of writing")
    args = parser.parse_args()
    try:
        source = args.yolox_src or default_yolox_src()
        with tempfile.TemporaryDirectory() as fresh:
            fresh = Path(fresh)
            names = generate(source, fresh)
            if args.check:
                print(check(source, args.out, fresh, names))
                return
            args.out.mkdir(parents=True, exist_ok=True)
            for old in args.out.glob("*.patch"):
                old.unlink()
            for name in names:
                shutil.copyfile(fresh / name, args.out / name)
        print("wrote " + ", ".join(str(args.out / n) for n in names))
    except GenerateError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
