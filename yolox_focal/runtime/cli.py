"""What the tools share: loading the exp, picking the device, and checking the inputs up front so
that a mistake costs one clear line instead of a traceback mid-run (``main_guard``)."""

import importlib
import inspect
import os
import sys

import torch

from . import interrupt
from .data_check import check_exp_data, unreadable_image_in
from .distributed import check_launch
from .errors import FixableError, UsageError, print_errors
from .fit_settings import fit_loader_workers, fit_training_settings

__all__ = ["main_guard", "start_tool", "run_yolox_entry", "entry_argv", "load_exp", "load_config", "pick_device",
           "check_data", "DEMO_DATA_HINT", "REPO"]

DEMO_DATA_HINT = "make the demo data with: python tools/make_demo_data.py"
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the checkout


def main_guard(main):
    """Run ``main()``; show a :class:`FixableError` (a ``UsageError``, a ``DataError``) as one
    ``error: ...`` line per problem and exit with status 2. After a Ctrl-C, any failure is the
    Ctrl-C's (a data-loader worker it stopped first): the run stops with its one line."""
    try:
        _show_errors(main)
    except BaseException:
        interrupt.stop_if_requested()
        raise


def _show_errors(main):
    try:
        main()
    except FixableError as error:
        print_errors(error)
        sys.exit(2)
    except Exception as error:
        image = unreadable_image_in(error)
        if image is None:
            sys.stdout, sys.stderr = sys.__stdout__, sys.__stderr__
            raise
        # an image that fails to load mid-run (YOLOX asserts cv2.imread worked), GPU path included
        print_errors(f"cannot read image {image} (missing, or not a decodable image); replace or remove it: "
                     f"python tools/check_data.py -f EXP --images lists every such file")
        sys.exit(2)
    except BaseException:
        # Any other failure is a bug worth a traceback: print it where the user sees it, not into
        # YOLOX's rerouted (and, at exit, closed) stream.
        sys.stdout, sys.stderr = sys.__stdout__, sys.__stderr__
        raise


def start_tool(tool, description, splits):
    """What train.py and eval.py do first, before any work: parse the installed YOLOX's flags for
    ``tool`` ('train' or 'eval') plus --device, load the exp, check its values, pick the device,
    check the data splits they read (tools/check_data.py's check) and fit the exp's settings to
    the data.

    Returns ``(args, exp, device)``; a mistake raises :class:`UsageError` or ``DataError``.
    """
    from yolox.utils import configure_module

    from ..adapter import flavour

    configure_module()  # as YOLOX's tools start: cv2 single-threaded in data workers, file limit
    parser = flavour.make_parser(tool)
    parser.description = description
    parser.add_argument("--device", default="auto", choices=["auto", "cuda", "cpu"],
                        help="cuda: YOLOX's own code; cpu: float32, -d processes over gloo; auto: cuda if present")
    args = parser.parse_args()
    if args.batch_size is not None and args.batch_size < 1:
        raise UsageError(f"-b {args.batch_size}: the batch size must be 1 or more")
    if flavour.flavour() == "pixeltable":  # -c module:Class -D key=value; the run is named by -n
        exp = load_config(args.config, args.D)
        args.name = args.experiment_name = args.name or exp.name
    else:
        exp = load_exp(args.exp_file, args.name, args.opts)
        if not args.experiment_name:
            args.experiment_name = exp.exp_name
    try:
        flavour.check_exp_value(exp)
    except AssertionError as error:
        raise UsageError(f"bad exp value: {error}") from None
    device = pick_device(args.device, args.fp16)
    check_launch(args, device, _gpus_available())  # -d, --num_machines, --machine_rank, --dist-url
    report = check_data(exp, splits)
    processes = args.devices or 1  # on this machine
    notices = fit_loader_workers(exp, processes) if "train" not in splits else fit_training_settings(
        exp, args.batch_size, report.counts["train"]["images"], processes)
    for line in report.warnings + notices:
        print(f"warning: {line}", file=sys.stderr)
    return args, exp, device


def run_yolox_entry(tool, args, argv=None):
    """Hand the command line (less --device) to the installed YOLOX's own ``tool`` entry point,
    which does everything its own command does before and after ``launch``."""
    from ..adapter import flavour

    flavour.run_entry(tool, entry_argv(sys.argv[1:] if argv is None else argv, args))


def entry_argv(argv, args):
    """``argv`` without ``--device X`` / ``--device=X``, the one flag YOLOX's parsers lack, and with
    a bare ``--cache`` written as ``--cache=<value>``: once ``--device`` is gone, YOLOX's optional
    ``--cache [ram|disk]`` would otherwise take the next word as its value."""
    kept, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--device":
            skip = True
        elif not arg.startswith("--device="):
            kept.append(arg)
    cache = getattr(args, "cache", None)
    if isinstance(cache, str) and "--cache" in kept:
        at = kept.index("--cache")
        if kept[at + 1:at + 2] != [cache]:  # bare: its value came from the flag's default
            kept[at] = f"--cache={cache}"
    return kept


def load_exp(exp_file, exp_name, opts):
    """The exp from a file (imported the way YOLOX does, but showing the real import error) or a
    YOLOX name, with the command line's ``key value`` options merged in."""
    if exp_file:
        path = os.path.abspath(exp_file)
        if not os.path.isfile(path):
            raise UsageError(f"exp file not found: {exp_file}")
        sys.path.append(os.path.dirname(path))
        module_name = os.path.splitext(os.path.basename(path))[0]
        try:
            module = importlib.import_module(module_name)
            exp = module.Exp()
        except Exception as error:  # any failure inside the user's file
            raise UsageError(f"cannot load exp file {exp_file}: {type(error).__name__}: {error}") from None
    elif exp_name:
        from ..adapter.flavour import named_exp

        exp = named_exp(exp_name)
        if exp is None:
            raise UsageError(f"unknown exp name {exp_name!r}: use yolox-nano/tiny/s/m/l/x or -f FILE")
    else:
        raise UsageError("give an exp file with -f FILE (or a YOLOX exp name with -n)")
    try:
        exp.merge(list(opts or []))
    except (ValueError, AssertionError) as error:
        raise UsageError(str(error) or f"exp options come in 'key value' pairs, got {opts}") from None
    return exp


def load_config(config, opts):
    """pixeltable-yolox's config: a built-in name (yolox_s) or ``module:Class``, imported with the
    current directory on the path and showing the real import error; ``-D key=value`` merged in."""
    from ..adapter.flavour import ExpBase, named_exp

    if not config:
        raise UsageError("give a config with -c NAME or -c module:Class (pixeltable-yolox)")
    exp = named_exp(config)
    if exp is None:
        module_name, _, class_name = config.partition(":")
        if not class_name:
            raise UsageError(f"unknown config {config!r}: use yolox_nano/tiny/s/m/l/x or module:Class")
        if os.getcwd() not in sys.path:
            sys.path.append(os.getcwd())
        try:
            exp = getattr(importlib.import_module(module_name), class_name)()
        except Exception as error:  # any failure inside the user's module
            raise UsageError(f"cannot load config {config}: {type(error).__name__}: {error}") from None
        if not isinstance(exp, ExpBase):
            raise UsageError(f"config {config} is a {type(exp).__name__}, not a yolox.config.YoloxConfig")
    pairs = [item.partition("=") for item in opts or []]
    bad = [key for key, eq, _ in pairs if not eq]
    if bad:
        raise UsageError(f"-D takes key=value, got {bad[0]!r}")
    try:
        exp.update({key: value for key, _, value in pairs})
    except (ValueError, AttributeError) as error:
        raise UsageError(str(error)) from None
    return exp


def pick_device(requested, fp16):
    """'cuda' or 'cpu' for --device auto/cuda/cpu; refuses CUDA where torch sees none."""
    if requested == "auto":
        requested = "cuda" if _gpus_available() else "cpu"
    if requested == "cuda":
        if not _gpus_available():
            raise UsageError("--device cuda asked for, but torch sees no CUDA GPU; use --device cpu")
        return "cuda"
    if fp16:
        print("warning: --fp16 is ignored on the CPU; running in float32", file=sys.stderr)
    return "cpu"


def _gpus_available():
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def is_demo_exp(exp):
    """True for the exps in exps/demo, which read the generated demo data set."""
    try:
        path = os.path.abspath(inspect.getfile(type(exp)))
    except TypeError:
        return False
    return path.startswith(os.path.join(REPO, "exps", "demo") + os.sep)


def check_data(exp, splits, open_images=False):
    """The data check (yolox_focal.runtime.data_check) on the exp's splits ('train', 'val'); raises
    ``DataError`` with one line per mistake, else returns its report. A missing data directory
    suggests the demo data only for the demo exps."""
    return check_exp_data(exp, splits, open_images, demo_hint=DEMO_DATA_HINT if is_demo_exp(exp) else None)
