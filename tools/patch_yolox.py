#!/usr/bin/env python3
"""Apply, check or revert the focal-objectness patch series on a YOLOX source tree.

    python tools/patch_yolox.py check  PATH   # applies / already applied / conflicts, and where
    python tools/patch_yolox.py apply  PATH   # all of the series or nothing; [--force]
    python tools/patch_yolox.py revert PATH   # restores the patched files byte for byte

PATH is a YOLOX checkout (GitHub main) or an unpacked source tree (the PyPI 0.3.0 release): the
folder that holds ``yolox/``. It need not be a git repository. ``apply`` refuses a checkout whose
files touched by the series have uncommitted changes, unless ``--force``.
"""

import argparse
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PATCHES = sorted((REPO / "patches").glob("*.patch"))
MARKERS = ("yolox/models/yolo_head.py", "yolox/models/losses.py", "yolox/exp/yolox_base.py")


class PatchError(Exception):
    pass


def touched_files():
    names = []
    for patch in PATCHES:
        names += re.findall(r"^diff --git a/(\S+) b/", patch.read_text(), flags=re.M)
    return sorted(set(names))


def git_top(path):
    result = subprocess.run(["git", "-C", str(path), "rev-parse", "--show-toplevel"],
                            capture_output=True, text=True)
    return Path(result.stdout.strip()).resolve() if result.returncode == 0 else None


def git_apply(path, *flags):
    """Run ``git apply`` on the whole series in ``path``; return (ok, message)."""
    top = git_top(path)
    command = ["git", "apply", *flags]
    if top is not None and top != path:  # a YOLOX tree inside some other repository
        command.append(f"--directory={path.relative_to(top).as_posix()}")
    cwd = top if top is not None else path
    result = subprocess.run(command + [str(p) for p in PATCHES], cwd=cwd, capture_output=True, text=True)
    return result.returncode == 0, (result.stderr or result.stdout).strip()


def state(path):
    """'applies', 'applied' or 'conflicts', with git's words on where for a conflict."""
    ok, _ = git_apply(path, "--check")
    if ok:
        return "applies", ""
    applied, _ = git_apply(path, "--check", "--reverse")
    if applied:
        return "applied", ""
    _, message = git_apply(path, "--check")
    where = "; ".join(line.replace("error: ", "") for line in message.splitlines() if line.startswith("error:"))
    return "conflicts", where


def dirty_touched_files(path):
    top = git_top(path)
    if top is None:
        return []
    files = [str(path.relative_to(top) / name) for name in touched_files()]
    result = subprocess.run(["git", "-C", str(top), "status", "--porcelain", "--", *files],
                            capture_output=True, text=True, check=True)
    return [line[3:] for line in result.stdout.splitlines()]


def check_tree(path):
    if not path.is_dir():
        raise PatchError(f"{path} is not a directory; give the folder that holds yolox/")
    missing = [m for m in MARKERS if not (path / m).is_file()]
    if missing:
        raise PatchError(f"{path} is not a YOLOX source tree (no {missing[0]}); give the folder that holds yolox/")


def run(action, path, force=False):
    path = path.resolve()
    check_tree(path)
    if not PATCHES:
        raise PatchError(f"no patches in {REPO / 'patches'}; run python tools/make_patches.py")
    status, where = state(path)
    if action == "check":
        return {"applies": f"the series applies cleanly to {path}",
                "applied": f"the series is already applied to {path}",
                "conflicts": f"the series conflicts with {path}: {where}"}[status]
    if action == "apply":
        if status == "applied":
            return f"already applied to {path}; nothing changed"
        if status == "conflicts":
            raise PatchError(f"the series does not apply to {path}, nothing changed: {where}")
        dirty = dirty_touched_files(path)
        if dirty and not force:
            raise PatchError(f"uncommitted changes in {', '.join(dirty)}; commit or stash them, or add --force")
        ok, message = git_apply(path)
        if not ok:
            raise PatchError(f"git apply failed, nothing changed: {message}")
        return f"applied {len(PATCHES)} patches to {path}; changed: {', '.join(touched_files())}"
    if status != "applied":
        raise PatchError(f"the series is not applied to {path}; nothing to revert")
    ok, message = git_apply(path, "--reverse")
    if not ok:
        raise PatchError(f"git apply --reverse failed, nothing changed: {message}")
    for name in touched_files():  # folders the series created, now empty
        folder = (path / name).parent
        while folder != path and folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
            folder = folder.parent
    return f"reverted {len(PATCHES)} patches in {path}; restored: {', '.join(touched_files())}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["apply", "check", "revert"])
    parser.add_argument("path", type=Path, help="YOLOX source tree: the folder that holds yolox/")
    parser.add_argument("--force", action="store_true", help="apply even over uncommitted changes")
    args = parser.parse_args()
    try:
        print(run(args.action, args.path, args.force))
    except PatchError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
