#!/usr/bin/env python3
"""Regenerate patches/ from this package, so the patch series cannot drift from yolox_focal.

    python tools/make_patches.py [--yolox-src DIR] [--out DIR] [--check]

The code the series adds to YOLOX's ``yolox/models/losses.py`` is ``yolox_focal/losses.py`` and
``yolox_focal/objectness.py`` without their docstring/import headers, copied verbatim; the imports
they need are added unless YOLOX's file already binds the same names. The head and exp edits are
small insertions at lines that read the same in the PyPI 0.3.0 release and GitHub main.

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
PACKAGE = REPO / "yolox_focal"
LOSS_MODULES = ("losses.py", "objectness.py")  # copied in this order: objectness uses losses
NAME, EMAIL = "yolox-focal", "yolox-focal@users.noreply.github.com"
DATE = "2026-01-01T00:00:00+00:00"  # fixed, so the same inputs give the same bytes

LOSSES = "yolox/models/losses.py"
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


def loss_block(yolox_losses_source):
    """The text inserted into YOLOX's losses.py: needed imports, then the package's code."""
    tree = ast.parse(yolox_losses_source)
    bound = {}  # name -> what YOLOX's file binds it to
    defined = set()
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)) and not getattr(node, "level", 0):
            bound.update((name, target) for _, name, target in _bindings(node))
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            defined.add(node.name)
    imports, codes, copied = [], [], set()
    for module in LOSS_MODULES:
        nodes, names, code = split_module(PACKAGE / module)
        for node in nodes:
            if getattr(node, "level", 0):  # from .losses import ...: defined by the copied code
                missing = [a.name for a in node.names if a.name not in copied]
                if missing:
                    raise GenerateError(f"{module} imports {missing[0]} from .{node.module}, which "
                                        f"is not among the copied modules {LOSS_MODULES}")
                continue
            keep = []
            for alias, name, target in _bindings(node):
                if bound.get(name, target) != target:
                    raise GenerateError(f"{module} imports {name} as {target}; YOLOX's losses.py "
                                        f"binds {name} to {bound[name]}")
                if name not in bound:
                    keep.append(alias)
                    bound[name] = target
            if keep:
                statement = ast.ImportFrom(node.module, keep, 0) if isinstance(node, ast.ImportFrom) \
                    else ast.Import(keep)
                imports.append(ast.unparse(statement))
        clash = sorted(names & (defined | set(bound) | copied))
        if clash:
            raise GenerateError(f"{module} defines {clash[0]}, a name the patched losses.py already has")
        copied |= names
        codes.append(code)
    sources = " and ".join(f"yolox_focal/{m}" for m in LOSS_MODULES)
    return (
        f"# Focal-loss objectness from yolox-focal ({sources}),\n"
        "# generated by its tools/make_patches.py: change it there and regenerate the patches.\n"
        + "".join(line + "\n" for line in imports) + "\n\n" + "\n\n".join(codes) + "\n\n"
    )


def _patch_losses(text):
    """Insert the loss block before the first top-level definition (YOLOX's IOUloss)."""
    first = next(n for n in ast.parse(text).body if not _is_header(n))
    start = min([first.lineno] + [d.lineno for d in getattr(first, "decorator_list", [])]) - 1
    lines = text.splitlines(keepends=True)
    return "".join(lines[:start]) + loss_block(text) + "".join(lines[start:])


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
                   "from .losses import IOUloss, ObjectnessLoss\n", HEAD)
    text = insert(text, '        self.bcewithlog_loss = nn.BCEWithLogitsLoss(reduction="none")',
                  "        # objectness loss: BCE, as before, unless set_objectness_loss() says otherwise\n"
                  '        self.objectness_loss = ObjectnessLoss(obj_loss="bce")', HEAD)
    text = insert(text, "    def initialize_biases(self, prior_prob):",
                  '    def set_objectness_loss(\n'
                  '        self, obj_loss="bce", focal_gamma=1.5, focal_alpha=0.25, obj_loss_weight=1.0\n'
                  "    ):\n"
                  '        """Choose loss_obj: "bce" (YOLOX\'s) or "focal", times obj_loss_weight."""\n'
                  "        self.objectness_loss = ObjectnessLoss(\n"
                  "            obj_loss, focal_gamma, focal_alpha, obj_loss_weight\n"
                  "        )\n", HEAD, before=True)
    return replace(text, "            self.bcewithlog_loss(obj_preds.view(-1, 1), obj_targets)",
                   "            self.objectness_loss(obj_preds.view(-1, 1), obj_targets)", HEAD)


EXP_SETTINGS = '''
        # ---------------- objectness loss config ---------------- #
        # "bce" (YOLOX's default) or "focal"; focal_gamma >= 0; focal_alpha in [0, 1], or None
        # for no balancing; obj_loss_weight multiplies the objectness loss
        self.obj_loss = "bce"
        self.focal_gamma = 1.5
        self.focal_alpha = 0.25
        self.obj_loss_weight = 1.0

    def __init_subclass__(cls, **kwargs):
        # An exp whose own get_model builds the model (yolox_nano's does) must still hand the
        # objectness settings to the head, so a get_model defined in a subclass is wrapped.
        import functools
        import inspect

        super().__init_subclass__(**kwargs)
        get_model = vars(cls).get("get_model")
        if inspect.isfunction(get_model):

            @functools.wraps(get_model)
            def get_model_with_objectness_loss(self, *args, **kwargs):
                return self.configure_objectness_loss(get_model(self, *args, **kwargs))

            cls.get_model = get_model_with_objectness_loss

    def configure_objectness_loss(self, model):
        """Give model.head this exp's obj_loss, focal_gamma, focal_alpha, obj_loss_weight."""
        settings = (self.obj_loss, self.focal_gamma, self.focal_alpha, self.obj_loss_weight)
        head = getattr(model, "head", None)
        if hasattr(head, "set_objectness_loss"):
            head.set_objectness_loss(*settings)
        elif (self.obj_loss, self.obj_loss_weight) != ("bce", 1.0):
            raise ValueError(
                f"obj_loss {self.obj_loss!r} needs a model whose head is a YOLOXHead, "
                f"got {type(head).__name__}; set obj_loss 'bce' or build a YOLOXHead"
            )
        return model'''


def _patch_exp(text):
    text = insert(text, "        self.nmsthre = 0.65", EXP_SETTINGS, EXP_BASE)
    return insert(text, "        self.model.head.initialize_biases(1e-2)",
                  "        self.configure_objectness_loss(self.model)", EXP_BASE)


EXAMPLE = '''#!/usr/bin/env python3
# yolox-s with focal-loss objectness. The four settings below work in any exp (all default to
# YOLOX's BCE) and on the command line, e.g. "... -f exps/example/focal/yolox_s_focal.py
# focal_gamma 2.0" or "focal_alpha None".
import os

from yolox.exp import Exp as MyExp


class Exp(MyExp):
    def __init__(self):
        super(Exp, self).__init__()
        self.depth = 0.33
        self.width = 0.50
        self.exp_name = os.path.split(os.path.realpath(__file__))[1].split(".")[0]

        self.obj_loss = "focal"  # "focal" or "bce"
        self.focal_gamma = 1.5  # focusing parameter, >= 0
        self.focal_alpha = 0.25  # weight of positives in [0, 1]; None: no balancing
        self.obj_loss_weight = 1.0  # multiplies the objectness loss
'''

SERIES = [
    ("losses: add sigmoid focal loss and ObjectnessLoss",
     "Adds focal_loss/FocalLoss (Lin et al. 2017, in the form YOLOv5 wraps around\n"
     "BCE-with-logits) and ObjectnessLoss, the element-wise objectness loss a head\n"
     "uses: focal or BCE, times a weight, with the arguments checked up front.\n"
     "Nothing uses them yet, so behaviour is unchanged.\n\n"
     "Most of YOLOX's ~8400 anchors per image are easy negatives; focal loss\n"
     "down-weights them. The loss computes its gradient in the forward pass in one\n"
     "fused step: finite for every logit and every gamma >= 0, computed in float32\n"
     "for float16/bfloat16 input as BCE is under autocast.\n\n"
     "The code is yolox-focal's yolox_focal/losses.py and objectness.py, generated by\n"
     "its tools/make_patches.py, so both routes compute the same loss.",
     lambda files: {LOSSES: _patch_losses(files[LOSSES])}),
    ("head: compute loss_obj with a configurable ObjectnessLoss",
     "YOLOXHead computes loss_obj with self.objectness_loss, an ObjectnessLoss that\n"
     "defaults to BCE with the same values as before, so existing exps train as they\n"
     "did. set_objectness_loss(obj_loss, focal_gamma, focal_alpha, obj_loss_weight)\n"
     "switches it to focal loss. Classification keeps bcewithlog_loss; label\n"
     "assignment, the other losses, inference and the state dict are unchanged.",
     lambda files: {HEAD: _patch_head(files[HEAD])}),
    ("exp: obj_loss, focal_gamma, focal_alpha, obj_loss_weight; example focal exp",
     "Exp gains the four objectness settings (default: YOLOX's BCE) and hands them\n"
     "to the head after get_model(), so an exp file, or the command line\n"
     "('... focal_gamma 2.0'), chooses the objectness loss. A get_model() that a\n"
     "subclass defines itself (yolox_nano's builds its own depthwise head) is wrapped\n"
     "the same way, so every exp honours the settings.\n\n"
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
    for name in (LOSSES, HEAD, EXP_BASE):
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
