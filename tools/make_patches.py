#!/usr/bin/env python3
"""Regenerate patches/ from this package, so the patch series cannot drift from yolox_focal.

    python tools/make_patches.py [--yolox-src DIR] [--out DIR] [--check]

The series adds ``yolox/models/loss_kit.py``: the package's torch-only loss-kit modules
(``LOSS_KIT_MODULES``) without their docstring/import headers, copied verbatim, after the imports
they need. The head and exp edits are small insertions at lines that read the same in the PyPI
0.3.0 release and GitHub main; the exp's settings lines are written from ``yolox_focal.losses.settings``.

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
sys.path.insert(0, str(REPO))  # the package's settings, even where it is not installed
from yolox_focal.losses.settings import ALIASES, SETTINGS  # noqa: E402

PACKAGE = REPO / "yolox_focal"
# copied in this order: each uses only the ones before it
LOSS_KIT_MODULES = ("losses/_common.py", "losses/declare.py", "losses/bce.py", "losses/focal.py", "losses/iou.py",
                    "losses/settings.py", "losses/kit.py")
NAME, EMAIL = "yolox-focal", "yolox-focal@users.noreply.github.com"
DATE = "2026-01-01T00:00:00+00:00"  # fixed, so the same inputs give the same bytes

LOSS_KIT = "yolox/models/loss_kit.py"
HEAD = "yolox/models/yolo_head.py"
EXP_BASE = "yolox/exp/yolox_base.py"
EXAMPLE_EXP = "exps/example/focal/yolox_s_focal.py"


class GenerateError(Exception):
    pass


# ---------------------------------------------------------------- the loss code, from the package


def _is_header(node):
    """Docstring, import or ``__all__``: the part of a module that is not copied."""
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        return True
    if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
        return isinstance(node.value.value, str)
    return isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "__all__" for t in node.targets)


def split_module(path):
    """(header imports, defined top-level names, code after the header) of a Python module."""
    source = path.read_text()
    tree = ast.parse(source)
    count = 0
    while count < len(tree.body) and _is_header(tree.body[count]):
        count += 1
    header, body = tree.body[:count], tree.body[count:]
    header_end = header[-1].end_lineno if header else 0
    imports = [n for n in header if isinstance(n, (ast.Import, ast.ImportFrom))]
    stray = [n for n in body if isinstance(n, (ast.Import, ast.ImportFrom))]
    if stray:
        raise GenerateError(f"{path.name}:{stray[0].lineno}: move this import to the module's header")
    names = set()
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            for target in node.targets if isinstance(node, ast.Assign) else [node.target]:
                names.update(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
    code = "\n".join(source.splitlines()[header_end:]).strip("\n") + "\n"
    return imports, names, code


def _bindings(node):
    """[(alias, name bound, what it is bound to)] for an absolute import statement."""
    if isinstance(node, ast.ImportFrom):
        return [(a, a.asname or a.name, f"{node.module}.{a.name}") for a in node.names]
    return [(a, a.asname or a.name.split(".")[0], a.name if a.asname else a.name.split(".")[0])
            for a in node.names]


def loss_kit_file():
    """The text of yolox/models/loss_kit.py: the imports the copied modules need, then their code."""
    bound = {}  # name -> what it is bound to
    imports, codes, copied = [], [], set()
    for module in LOSS_KIT_MODULES:
        nodes, names, code = split_module(PACKAGE / module)
        for node in nodes:
            if getattr(node, "level", 0):  # from .losses import ...: defined by the copied code
                missing = [a.name for a in node.names if a.name not in copied]
                if missing:
                    raise GenerateError(f"{module} imports {missing[0]} from .{node.module}, which "
                                        f"is not among the modules copied before it {LOSS_KIT_MODULES}")
                continue
            keep = []
            for alias, name, target in _bindings(node):
                if bound.get(name, target) != target:
                    raise GenerateError(f"{module} imports {name} as {target}; an earlier module binds it "
                                        f"to {bound[name]}")
                if name not in bound:
                    keep.append(alias)
                    bound[name] = target
            if keep:
                statement = ast.ImportFrom(node.module, keep, 0) if isinstance(node, ast.ImportFrom) \
                    else ast.Import(keep)
                imports.append(ast.unparse(statement))
        clash = sorted(names & (set(bound) | copied))
        if clash:
            raise GenerateError(f"{module} defines {clash[0]}, a name an earlier module already defines")
        copied |= names
        codes.append(code)
    imports.sort(key=lambda line: (line.startswith("from"), line))
    return (
        "#!/usr/bin/env python\n"
        "# The loss kit of yolox-focal: a choice of loss for each branch of YOLOXHead (objectness,\n"
        "# classification, box) and the settings that choose them. Generated by yolox-focal's\n"
        "# tools/make_patches.py from " + ", ".join(f"yolox_focal/{m}" for m in LOSS_KIT_MODULES) + ":\n"
        "# change it there and regenerate the patches.\n"
        + "".join(line + "\n" for line in imports) + "\n\n" + "\n\n".join(codes)
    )


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
                   "from .loss_kit import LossKit\nfrom .losses import IOUloss\n", HEAD)
    text = insert(text, "class YOLOXHead(nn.Module):",
                  "    # get_losses computes every loss with self.loss_kit (a LossKit; see loss_kit.py)\n"
                  "    computes_losses_with_loss_kit = True\n", HEAD)
    text = insert(text, '        self.iou_loss = IOUloss(reduction="none")',
                  "        # the loss of each branch: YOLOX's own unless set_loss_kit() says otherwise\n"
                  "        self.loss_kit = LossKit()", HEAD)
    text = insert(text, "    def initialize_biases(self, prior_prob):",
                  "    def set_loss_kit(self, kit):\n"
                  '        """Compute the objectness, classification and box losses with ``kit``, a LossKit."""\n'
                  "        self.loss_kit = kit\n", HEAD, before=True)
    text = replace(text, "            self.iou_loss(bbox_preds.view(-1, 4)[fg_masks], reg_targets)",
                   "            self.loss_kit.box(bbox_preds.view(-1, 4)[fg_masks], reg_targets)", HEAD)
    text = replace(text, "            self.bcewithlog_loss(obj_preds.view(-1, 1), obj_targets)",
                   "            self.loss_kit.obj(obj_preds.view(-1, 1), obj_targets)", HEAD)
    return replace(text, "            self.bcewithlog_loss(\n                cls_preds.view(-1, self.num_classes)",
                   "            self.loss_kit.cls(\n                cls_preds.view(-1, self.num_classes)", HEAD)


def exp_settings():
    """The exp's settings lines, one per declared setting, at YOLOX's values."""
    lines = [
        "",
        "        # ---------------- loss kit config ---------------- #",
        "        # The loss of each head branch (obj, cls, box) and its parameters; the values here are",
        "        # YOLOX's own losses. Each key's allowed values: yolox/models/loss_kit.py, SETTINGS.",
    ]
    for setting in SETTINGS:
        lines.append(f"        self.{setting.name} = {setting.yolox!r}  # {setting.doc}")
    return "\n".join(lines)


EXP_METHODS = '''
    def __init_subclass__(cls, **kwargs):
        # An exp whose own get_model builds the model (yolox_nano's does) must still hand the
        # loss settings to the head, so a get_model defined in a subclass is wrapped.
        import functools
        import inspect

        super().__init_subclass__(**kwargs)
        get_model = vars(cls).get("get_model")
        if inspect.isfunction(get_model):

            @functools.wraps(get_model)
            def get_model_with_loss_kit(self, *args, **kwargs):
                return self.configure_loss_kit(get_model(self, *args, **kwargs))

            cls.get_model = get_model_with_loss_kit

    def loss_settings(self):
        """{setting: value} of every loss-kit setting of this exp."""
        from yolox.models.loss_kit import SETTINGS

        return {setting.name: getattr(self, setting.name) for setting in SETTINGS}

    def configure_loss_kit(self, model):
        """Give model.head a LossKit built from this exp's loss settings."""
        from yolox.models.loss_kit import LossKit

        kit = LossKit(**self.loss_settings())  # a bad setting raises a one-line ValueError
        head = getattr(model, "head", None)
        if hasattr(head, "set_loss_kit"):
            head.set_loss_kit(kit)
        elif kit.changed():
            raise ValueError(
                f"loss settings {sorted(kit.changed())} need a model whose head is a YOLOXHead, "
                f"got {type(head).__name__}; set them back to YOLOX's values or build a YOLOXHead"
            )
        return model'''


def exp_aliases():
    """A property per alias of a setting (focal_gamma: obj_focal_gamma), reading and writing it."""
    return "".join(f"\n    {alias} = property(lambda self: self.{name}, lambda self, value: setattr(self, {name!r}, value))"
                   for alias, name in ALIASES.items())


def _patch_exp(text):
    text = insert(text, "        self.nmsthre = 0.65", exp_settings() + "\n" + EXP_METHODS + "\n" + exp_aliases(), EXP_BASE)
    return insert(text, "        self.model.head.initialize_biases(1e-2)",
                  "        self.configure_loss_kit(self.model)", EXP_BASE)


EXAMPLE = '''#!/usr/bin/env python3
# yolox-s with focal-loss objectness. Every loss-kit setting of yolox/exp/yolox_base.py (obj_loss,
# cls_loss, box_loss, their parameters and weights; all default to YOLOX's losses) works in any exp
# and on the command line, e.g. "... -f exps/example/focal/yolox_s_focal.py focal_gamma 2.0
# box_loss ciou" or "focal_alpha None".
import os

from yolox.exp import Exp as MyExp


class Exp(MyExp):
    def __init__(self):
        super(Exp, self).__init__()
        self.depth = 0.33
        self.width = 0.50
        self.exp_name = os.path.split(os.path.realpath(__file__))[1].split(".")[0]

''' + "".join(f"        self.{s.name} = {s.default!r}\n" for s in SETTINGS if s.default != s.yolox)

SERIES = [
    ("models: add loss_kit.py, a choice of loss for each head branch",
     "Adds the loss kit: focal, quality focal and varifocal loss, BCE-blur and label\n"
     "smoothing for objectness and classification, the IoU family (IoU, GIoU, DIoU,\n"
     "CIoU, EIoU, SIoU) for boxes, the settings that choose them (each declared once,\n"
     "with its range and default), and LossKit, the three branch losses those\n"
     "settings give. Nothing uses it yet, so behaviour is unchanged.\n\n"
     "The element-wise losses compute their gradient in closed form in the forward\n"
     "pass: finite for every logit and parameter, computed in float32 for\n"
     "float16/bfloat16 input as BCE is under autocast. With no setting given,\n"
     "LossKit is YOLOX's: BCE-with-logits and IOUloss's own arithmetic.\n\n"
     "The code is yolox-focal's loss-kit modules, generated by its\n"
     "tools/make_patches.py, so both routes compute the same losses.",
     lambda files: {LOSS_KIT: loss_kit_file()}),
    ("head: compute the losses with a LossKit",
     "YOLOXHead computes loss_obj, loss_cls and loss_iou with self.loss_kit, a LossKit\n"
     "that defaults to YOLOX's own losses with the same values as before, so existing\n"
     "exps train as they did. set_loss_kit(kit) chooses other losses. Label\n"
     "assignment, the L1 loss, the normalisation, inference and the state dict are\n"
     "unchanged.",
     lambda files: {HEAD: _patch_head(files[HEAD])}),
    ("exp: loss-kit settings; example focal exp",
     "Exp gains one attribute per loss-kit setting (default: YOLOX's losses) and hands\n"
     "them to the head after get_model(), so an exp file, or the command line\n"
     "('... focal_gamma 2.0 box_loss ciou'), chooses each branch's loss. A get_model()\n"
     "that a subclass defines itself (yolox_nano's builds its own depthwise head) is\n"
     "wrapped the same way, so every exp honours the settings.\n\n"
     "exps/example/focal/yolox_s_focal.py is yolox-s with focal objectness; it runs\n"
     "with tools/train.py and tools/eval.py like any exp.",
     lambda files: {EXP_BASE: _patch_exp(files[EXP_BASE]), EXAMPLE_EXP: EXAMPLE}),
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
        files[name] = source.read_text()
    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        git(work, "init", "-q")

        def write_and_commit(message_args):
            for name, text in files.items():
                (work / name).parent.mkdir(parents=True, exist_ok=True)
                (work / name).write_text(text)
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
