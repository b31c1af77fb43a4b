#!/usr/bin/env python3
"""Apply, check or revert the focal-objectness patch series (patches/) on a YOLOX source tree.

    python tools/patch_yolox.py check  PATH   # applies / already applied / conflicts, and where
    python tools/patch_yolox.py apply  PATH   # all of the series or nothing  [--force]
    python tools/patch_yolox.py revert PATH   # restores the patched files byte for byte

PATH is the folder that holds ``yolox/``: a checkout of YOLOX's GitHub main or the yolox 0.3.0
source from PyPI. It need not be a git repository. ``apply`` refuses a checkout whose files that
the series touches have uncommitted changes, unless ``--force``.

Exit status: 0 done (for check: the series applies or is applied), 1 the series conflicts with
the tree, 2 a usage error (not a YOLOX tree, no git, ...).
"""

import argparse
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PATCH_DIR = REPO / "patches"
MARKERS = ("yolox/models/yolo_head.py", "yolox/models/losses.py", "yolox/exp/yolox_base.py")


class PatchError(Exception):
    """A one-line message for the user; ``code`` is the exit status."""

    def __init__(self, message, code=2):
        super().__init__(message)
        self.code = code


class Patch:
    """One file of the series, split into per-file sections and hunks."""

    def __init__(self, path):
        self.path = path
        self.name = path.name
        self.text = path.read_text()
        self.sections = []  # (file, header text, [hunk text], new file?)
        for block in re.split(r"^(?=diff --git )", self.text, flags=re.M)[1:]:
            header, *hunks = re.split(r"^(?=@@ )", block, flags=re.M)
            name = re.match(r"diff --git a/(\S+) b/", header).group(1)
            self.sections.append((name, header, hunks, "\nnew file mode" in header))

    @property
    def files(self):
        return [name for name, *_ in self.sections]

    @property
    def new_files(self):
        return [name for name, _, _, new in self.sections if new]


def load_series():
    patches = [Patch(p) for p in sorted(PATCH_DIR.glob("*.patch"))]
    if not patches:
        raise PatchError(f"no patches in {PATCH_DIR}; run python tools/make_patches.py")
    return patches


class Tree:
    """A YOLOX source tree and how to run ``git apply`` on it."""

    def __init__(self, path):
        self.path = Path(path).resolve()
        if not self.path.is_dir():
            raise PatchError(f"{path} is not a directory; give the folder that holds yolox/")
        missing = [m for m in MARKERS if not (self.path / m).is_file()]
        if missing:
            hint = " (it looks like the yolox package itself: give its parent)" if (
                self.path / "models" / "yolo_head.py").is_file() else ""
            raise PatchError(f"{path} is not a YOLOX source tree: no {missing[0]}{hint}; give the "
                             "folder that holds yolox/")
        top = self.git("rev-parse", "--show-toplevel", cwd=self.path, check=False)
        self.top = Path(top.stdout.strip()).resolve() if top.returncode == 0 else None

    def git(self, *args, cwd=None, check=True, stdin=None):
        try:
            result = subprocess.run(["git", *args], cwd=cwd or self.top or self.path, input=stdin,
                                    capture_output=True, text=True)
        except FileNotFoundError:
            raise PatchError("git not found; install git, which applies the patches") from None
        if check and result.returncode:
            raise PatchError(f"git {args[0]} failed: {' '.join(result.stderr.split())}")
        return result

    def apply(self, texts, *flags):
        """``git apply`` the patch texts, in order, as one all-or-nothing step; (ok, stderr)."""
        command = ["apply", *flags]
        if self.top is not None and self.top != self.path:  # a YOLOX tree inside another repository
            command.append(f"--directory={self.path.relative_to(self.top).as_posix()}")
        result = self.git(*command, check=False, stdin="".join(texts))
        return result.returncode == 0, result.stderr

    def dirty(self, files):
        """The files, of those named, that a git checkout has uncommitted changes in."""
        if self.top is None:
            return []
        names = [(self.path / f).relative_to(self.top).as_posix() for f in files]
        status = self.git("status", "--porcelain", "--untracked-files=all", "--", *names)
        return [line[3:] for line in status.stdout.splitlines()]

    def read(self, files):
        return {f: (self.path / f).read_bytes() if (self.path / f).is_file() else None for f in files}

    def restore(self, saved):
        for name, data in saved.items():
            path = self.path / name
            if data is None:
                path.unlink(missing_ok=True)
            else:
                path.write_bytes(data)


def series_texts(patches, reverse=False):
    return [p.text for p in (reversed(patches) if reverse else patches)]


def applied_prefix(tree, patches):
    """(k, rest_applies): the tree has the first k patches (they revert cleanly), and whether the
    others then apply. k is the largest count whose rest applies, else the largest that reverts."""
    n = len(patches)
    prefixes = [k for k in range(n, 0, -1)
                if tree.apply(series_texts(patches[:k], reverse=True), "--check", "-R")[0]] + [0]
    for k in prefixes:
        if k == n or tree.apply(series_texts(patches[k:]), "--check")[0]:
            return k, True
    return prefixes[0], False


def count(n):
    return f"{n} patch" + ("" if n == 1 else "es")


def hunk_report(tree, patches, reverse=False):
    """Where the patches do not apply (or, with ``reverse``, do not revert): file and hunk."""
    flags = ["--check"] + (["-R"] if reverse else [])
    problems = []
    for patch in patches:
        for name, header, hunks, new in patch.sections:
            if new and not reverse and (tree.path / name).exists():
                problems.append(f"{name} already exists ({patch.name})")
                continue
            for number, hunk in enumerate(hunks, 1):
                if tree.apply([header + hunk], *flags)[0]:
                    continue
                undone = tree.apply([header + hunk], "--check", *([] if reverse else ["-R"]))[0]
                old_line = re.match(r"@@ -(\d+)", hunk).group(1)
                body = [line for line in hunk.splitlines()[1:] if line[1:].strip()]
                changed = "+" if reverse else "-"  # the lines the hunk replaces, else its context
                expected = next((line[1:].strip() for line in body if line[0] == changed),
                                next((line[1:].strip() for line in body if line[0] == " "), ""))
                state = ("is already applied" if not reverse else "was never applied") if undone \
                    else f"does not match the tree near line {old_line} (expects {expected!r})"
                problems.append(f"{name} hunk {number}/{len(hunks)} of {patch.name} {state}")
    return "; ".join(problems) or "git apply refuses the series as a whole"


def numstat(patches, reverse=False):
    """'file +added -removed' for each file the patches change."""
    counts = {}
    for patch in patches:
        for name, _, hunks, _ in patch.sections:
            lines = [line for hunk in hunks for line in hunk.splitlines()[1:]]
            added, removed = (sum(line.startswith(sign) for line in lines) for sign in "+-")
            old = counts.get(name, (0, 0))
            counts[name] = (old[0] + added, old[1] + removed)
    return ", ".join(f"{name} +{r if reverse else a} -{a if reverse else r}"
                     for name, (a, r) in counts.items())


def touched(patches):
    return sorted({f for p in patches for f in p.files})


def do_check(tree, patches):
    k, rest_applies = applied_prefix(tree, patches)
    n = len(patches)
    if k == n:
        return f"already applied: {tree.path} has all {count(n)} of the series"
    if k == 0 and rest_applies:
        return f"applies: the {count(n)} apply cleanly to {tree.path} ({', '.join(touched(patches))})"
    if rest_applies:
        return (f"partly applied: {tree.path} has {', '.join(p.name for p in patches[:k])}; "
                f"the other {count(n - k)} apply cleanly")
    raise PatchError(f"conflicts: the series does not apply to {tree.path}: "
                     f"{hunk_report(tree, patches[k:])}", code=1)


def do_apply(tree, patches, force):
    k, rest_applies = applied_prefix(tree, patches)
    if k == len(patches):
        return f"already applied to {tree.path}; nothing changed"
    if not rest_applies:
        raise PatchError(f"conflicts: the series does not apply to {tree.path}, nothing changed: "
                         f"{hunk_report(tree, patches[k:])}", code=1)
    todo = patches[k:]
    dirty = tree.dirty(touched(todo))
    if dirty and not force:
        raise PatchError(f"uncommitted changes in {', '.join(dirty)}, which the series changes; "
                         "commit or stash them, or add --force; nothing changed")
    _run_all_or_nothing(tree, todo)
    done = f"applied {count(len(todo))}" + (f" ({k} already applied)" if k else "")
    return f"{done} to {tree.path}; changed: {numstat(todo)}"


def do_revert(tree, patches):
    k, rest_applies = applied_prefix(tree, patches)
    if k == 0 and rest_applies:
        return f"the series is not applied to {tree.path}; nothing changed"
    if not rest_applies:  # not a clean "first k applied" state: reverting part would mislead
        raise PatchError(f"conflicts: the series cannot be reverted from {tree.path}, nothing "
                         f"changed: {hunk_report(tree, patches, reverse=True)}", code=1)
    undo = patches[:k]
    _run_all_or_nothing(tree, undo, reverse=True)
    removed = [tree.path / f for p in undo for f in p.new_files]
    for module in removed:  # Python's caches of the removed modules (yolox/models/loss_kit's)
        cache = module.parent / "__pycache__"
        for compiled in cache.glob(f"{module.stem}.*.pyc") if module.suffix == ".py" else ():
            compiled.unlink()
        if cache.is_dir() and not any(cache.iterdir()):
            cache.rmdir()
    for module in removed:  # folders the series created, now empty
        folder = module.parent
        while folder != tree.path and folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
            folder = folder.parent
    return f"reverted {count(k)} in {tree.path}; restored: {numstat(undo, reverse=True)}"


def _run_all_or_nothing(tree, patches, reverse=False):
    """``git apply`` checks every hunk before it writes; the backup covers a failed write."""
    saved = tree.read(touched(patches))
    ok, message = tree.apply(series_texts(patches, reverse), *(["-R"] if reverse else []))
    if not ok:
        tree.restore(saved)
        raise PatchError(f"git apply failed, nothing changed: {' '.join(message.split())}", code=1)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["apply", "check", "revert"])
    parser.add_argument("path", help="YOLOX source tree: the folder that holds yolox/")
    parser.add_argument("--force", action="store_true",
                        help="apply even where the files it changes have uncommitted changes")
    args = parser.parse_args(argv)
    try:
        tree, patches = Tree(args.path), load_series()
        if args.action == "check":
            print(do_check(tree, patches))
        elif args.action == "apply":
            print(do_apply(tree, patches, args.force))
        else:
            print(do_revert(tree, patches))
    except PatchError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(error.code)
    except OSError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
