"""Run one of yolox_focal's tools' GPU route up to ``yolox.core.launch`` and write, as JSON, what
YOLOX's own entry point hands to it; nothing is launched. ``launch`` is the only thing replaced.

    python tests/launch_capture.py OUT.json train|eval [tool arguments...]
"""

import inspect
import json
import sys

import yolox.core


def capture(out):
    def launch(main_func, num_gpus_per_machine, num_machines=1, machine_rank=0, backend="nccl",
               dist_url=None, args=(), **kwargs):
        exp, tool_args = args[0], args[1]
        main_func = inspect.unwrap(main_func)  # YOLOX wraps its mains in loguru's logger.catch
        dataset = getattr(exp, "dataset", None)
        record = {
            "main_file": main_func.__code__.co_filename,
            "entry_file": entry_file,
            "main_name": main_func.__name__,
            "num_gpus": num_gpus_per_machine,
            "num_machines": num_machines,
            "machine_rank": machine_rank,
            "backend": backend,
            "dist_url": dist_url,
            "extra_args": [repr(a) for a in args[2:]],
            "exp_class": [c.__name__ for c in type(exp).__mro__],
            "exp": {k: repr(v) for k, v in vars(exp).items() if k not in ("dataset", "model")},
            "tool_args": {k: repr(v) for k, v in vars(tool_args).items()},
            "dataset": None if dataset is None else {"type": type(dataset).__name__, "len": len(dataset),
                                                     "cache": getattr(dataset, "cache", None)},
        }
        with open(out, "w") as f:
            json.dump(record, f)

    return launch


if __name__ == "__main__":
    out, tool, argv = sys.argv[1], sys.argv[2], sys.argv[3:]
    yolox.core.launch = capture(out)  # before YOLOX's entry modules import it

    from yolox_focal.adapter import flavour
    from yolox_focal.runtime.cli import run_yolox_entry

    entry_file = flavour.entry_file(tool)
    # The tool's own parser (YOLOX's plus --device) reads the line first, as tools/*.py do.
    parser = flavour.make_parser(tool)
    parser.add_argument("--device")
    run_yolox_entry(tool, parser.parse_args(argv), argv)
