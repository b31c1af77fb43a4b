"""Which YOLOX is installed, and the names yolox_focal uses from it.

Three YOLOXes install as the ``yolox`` package:

- ``megvii-pypi``: Megvii's release on PyPI (0.3.0);
- ``megvii-main``: Megvii's GitHub main (also calls itself 0.3.0; its ``tools/train.py`` checks the
  exp with ``check_exp_value`` and builds a cached dataset before launching);
- ``pixeltable``: ``pixeltable-yolox`` (0.4.x), a fork of Megvii's main with renamed classes
  (``YoloxHead``, ``YoloxModule``, ``YoloxConfig``) and a ``yolox train`` / ``yolox eval`` CLI.

The flavour is told by what the package has (all three may report the same version), read from
its files so that asking costs no torch import. The names are imported only when first used::

    from yolox_focal.adapter.flavour import HeadBase, Trainer, COCOEvaluator
"""

import importlib
import importlib.util
import os
import runpy
import sys

__all__ = ["FLAVOURS", "flavour", "yolox_dir", "entry_module", "entry_file", "make_parser", "run_entry", "named_exp",
           "check_exp_value", "INSTALL_HINT"]

FLAVOURS = ("megvii-pypi", "megvii-main", "pixeltable")

INSTALL_HINT = ("install YOLOX first: 'bash tools/setup.sh' from the yolox-focal repository, "
                "'pip install pixeltable-yolox', or 'pip install --no-deps --no-build-isolation yolox==0.3.0' "
                "after torch")

# name -> (module, attribute) per family; "megvii" covers PyPI 0.3.0 and GitHub main.
_NAMES = {
    "HeadBase": {"megvii": ("yolox.models", "YOLOXHead"), "pixeltable": ("yolox.models", "YoloxHead")},
    "ModelBase": {"megvii": ("yolox.models", "YOLOX"), "pixeltable": ("yolox.models", "YoloxModule")},
    "ExpBase": {"megvii": ("yolox.exp", "Exp"), "pixeltable": ("yolox.config", "YoloxConfig")},
    "Trainer": {"megvii": ("yolox.core", "Trainer"), "pixeltable": ("yolox.core", "Trainer")},
    "COCOEvaluator": {"megvii": ("yolox.evaluators", "COCOEvaluator"),
                      "pixeltable": ("yolox.evaluators", "CocoEvaluator")},
    "VOCEvaluator": {"megvii": ("yolox.evaluators", "VOCEvaluator"),
                     "pixeltable": ("yolox.evaluators", "VocEvaluator")},
    "COCODataset": {"megvii": ("yolox.data", "COCODataset"), "pixeltable": ("yolox.data", "CocoDataset")},
    "VOCDetection": {"megvii": ("yolox.data", "VOCDetection"), "pixeltable": ("yolox.data", "VocDetection")},
    "launch": {"megvii": ("yolox.core", "launch"), "pixeltable": ("yolox.core", "launch")},
    "get_yolox_datadir": {"megvii": ("yolox.data", "get_yolox_datadir"),
                          "pixeltable": ("yolox.data", "get_yolox_datadir")},
}
__all__ += list(_NAMES)

# The module whose code is each tool's own entry point.
_ENTRIES = {
    "megvii": {"train": "yolox.tools.train", "eval": "yolox.tools.eval"},
    "pixeltable": {"train": "yolox.cli.train", "eval": "yolox.cli.eval"},
}

_detected = {}


def yolox_dir():
    """The folder of the importable ``yolox`` package, or None when there is none."""
    try:
        spec = importlib.util.find_spec("yolox")
    except (ImportError, ValueError):  # a broken or blocked yolox counts as none
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return list(spec.submodule_search_locations)[0]


def flavour():
    """'megvii-pypi', 'megvii-main' or 'pixeltable'; raises ImportError (one line) without YOLOX."""
    if "flavour" not in _detected:
        _detected["flavour"] = _detect(yolox_dir())
    return _detected["flavour"]


def _detect(folder):
    if folder is None:
        raise ImportError(f"yolox_focal needs YOLOX, which is not installed: {INSTALL_HINT}")
    if os.path.isfile(os.path.join(folder, "config.py")) and os.path.isdir(os.path.join(folder, "cli")):
        return "pixeltable"
    base = os.path.join(folder, "exp", "yolox_base.py")
    if not os.path.isfile(base):
        raise ImportError(f"the yolox package at {folder} is no YOLOX that yolox_focal knows "
                          f"(neither Megvii's nor pixeltable-yolox); {INSTALL_HINT}")
    with open(base, encoding="utf-8") as f:
        return "megvii-main" if "def check_exp_value" in f.read() else "megvii-pypi"


def _family():
    return "pixeltable" if flavour() == "pixeltable" else "megvii"


def __getattr__(name):
    if name not in _NAMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module, attribute = _NAMES[name][_family()]
    return getattr(importlib.import_module(module), attribute)


def entry_module(tool):
    """The imported module of YOLOX's own ``tool`` ('train' or 'eval') entry point."""
    return importlib.import_module(_ENTRIES[_family()][tool])


def entry_file(tool):
    """The source file of YOLOX's own ``tool`` entry point (found, not run)."""
    return importlib.util.find_spec(_ENTRIES[_family()][tool]).origin


def make_parser(tool):
    """YOLOX's own argument parser for ``tool``: Megvii's flags (-f, -c CKPT, trailing opts) or
    pixeltable's (-c module:Class, --ckpt, -D key=value)."""
    return entry_module(tool).make_parser()


def run_entry(tool, argv):
    """Run YOLOX's own ``tool`` entry point with the command line ``argv``, as if started from a shell.

    Megvii's tools do their work in ``if __name__ == "__main__"`` (parse, load and check the exp,
    build a cached dataset on main, count GPUs, ``launch``): run that module as ``__main__``, with
    ``sys`` pointing at it so that ``launch``'s spawned workers find its ``main`` as YOLOX's own
    ``python -m yolox.tools.train`` does. pixeltable's CLI is a ``main(argv)`` function.
    """
    if _family() == "pixeltable":
        entry_module(tool).main(list(argv))
        return
    saved_argv = sys.argv
    sys.argv = [entry_file(tool), *argv]
    try:
        runpy.run_module(_ENTRIES["megvii"][tool], run_name="__main__", alter_sys=True)
    finally:
        sys.argv = saved_argv


def named_exp(name):
    """A YOLOX built-in exp/config by name ('yolox-s', 'yolox_nano', ...), or None if unknown."""
    if _family() == "pixeltable":
        return importlib.import_module("yolox.config").YoloxConfig.get_named_config(name)
    from yolox.exp import get_exp

    try:
        return get_exp(None, name.replace("_", "-"))
    except ModuleNotFoundError:
        return None


def check_exp_value(exp):
    """YOLOX's own check of an exp's values before training (main's ``check_exp_value``,
    pixeltable's ``YoloxConfig.validate``); the PyPI release has none. Raises AssertionError."""
    family = _family()
    if family == "pixeltable":
        exp.validate()
    elif flavour() == "megvii-main":
        from yolox.exp import check_exp_value as yolox_check

        yolox_check(exp)
