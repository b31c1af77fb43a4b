"""On CUDA, tools/train.py and tools/eval.py run the installed YOLOX's own entry point: tested on
the CPU by what that entry hands to ``yolox.core.launch`` (tests/launch_capture.py replaces only
``launch``). ``CUDA_VISIBLE_DEVICES=0,1`` makes YOLOX's ``get_num_devices`` count two GPUs.

Runs for the installed YOLOX and, with YOLOX_SRC=/path/to/YOLOX, for that source tree as well.
"""

import json
import os
import subprocess
import sys
import textwrap

import pytest

from cli_helpers import error_line
from helpers import REPO
from yolox_focal.runtime.demo_data import make_demo_data

pytestmark = pytest.mark.any_yolox

SOURCES = ["installed", "YOLOX_SRC"]
EXP = REPO / "exps" / "demo" / "demo_focal.py"
# pixeltable-yolox takes a config class; this one reads the demo data.
PIXELTABLE_CONFIG = """
    from yolox.config import YoloxConfig

    class Demo(YoloxConfig):
        def __init__(self):
            super().__init__("demo")
            self.depth, self.width, self.depthwise, self.num_classes = 0.33, 0.25, True, 4
            self.input_size = self.test_size = (128, 128)
"""


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("entry")
    make_demo_data(str(root / "data"), train_images=8, val_images=2, size=128, progress=False, workers=1)
    (root / "demo_cfg.py").write_text(textwrap.dedent(PIXELTABLE_CONFIG))
    return root


def source_env(source):
    if source == "YOLOX_SRC" and not os.environ.get("YOLOX_SRC"):
        pytest.skip("set YOLOX_SRC to a YOLOX source tree (such as GitHub main) to run")
    paths = [str(REPO), str(REPO / "tests")]
    if source == "YOLOX_SRC":
        paths.insert(0, os.environ["YOLOX_SRC"])
    return dict(os.environ, PYTHONPATH=os.pathsep.join(paths), CUDA_VISIBLE_DEVICES="0,1")


def python(env, code, *args):
    result = subprocess.run([sys.executable, "-c", code, *map(str, args)], env=env, capture_output=True,
                            text=True, check=True)
    return result.stdout.strip()


def flavour_of(env):
    return python(env, "from yolox_focal.adapter import flavour; print(flavour.flavour())")


def with_path(env, folder):
    """pixeltable-yolox imports -c module:Class from the path, as its own `yolox train` does."""
    return dict(env, PYTHONPATH=os.pathsep.join([env["PYTHONPATH"], str(folder)]))


def capture(env, tmp_path, tool, *argv, cwd=REPO):
    out = tmp_path / "launch.json"
    env = with_path(env, cwd)
    result = subprocess.run([sys.executable, str(REPO / "tests" / "launch_capture.py"), str(out), tool,
                             *map(str, argv)], cwd=cwd, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(out.read_text())


def megvii_only(env):
    if flavour_of(env) == "pixeltable":
        pytest.skip("Megvii's tools/train.py flags (-f exp.py); this YOLOX is pixeltable-yolox")


@pytest.mark.parametrize("source", SOURCES)
def test_train_hands_yolox_main_the_exp_and_gpus(source, data, tmp_path):
    env = source_env(source)
    megvii_only(env)
    record = capture(env, tmp_path, "train", "-f", EXP, "-b", "8", "-d", "2", "--device", "cuda",
                     "data_dir", data / "data", "focal_gamma", "2.0")
    assert record["main_file"] == record["entry_file"]
    assert record["main_name"] == "main"
    assert (record["num_gpus"], record["num_machines"], record["machine_rank"]) == (2, 1, 0)
    assert (record["backend"], record["dist_url"]) == ("nccl", "auto")
    assert "FocalExpMixin" in record["exp_class"]
    assert record["exp"]["obj_focal_gamma"] == "2.0"  # focal_gamma is its alias
    assert record["tool_args"]["experiment_name"] == "'demo_focal'"
    assert record["tool_args"]["batch_size"] == "8"
    assert "device" not in record["tool_args"]  # ours, not YOLOX's


@pytest.mark.parametrize("source", SOURCES)
def test_eval_hands_yolox_main_the_gpu_count(source, data, tmp_path):
    env = source_env(source)
    megvii_only(env)
    record = capture(env, tmp_path, "eval", "-f", EXP, "-c", tmp_path / "ckpt.pth", "-b", "4", "--conf", "0.01",
                     "--device=cuda", "data_dir", data / "data")
    assert record["main_file"] == record["entry_file"]
    assert record["main_name"] == "main"
    assert record["extra_args"] == ["0"]  # torch.cuda.device_count() on this CPU machine
    assert record["tool_args"]["ckpt"] == repr(str(tmp_path / "ckpt.pth"))
    assert record["tool_args"]["conf"] == "0.01"


@pytest.mark.parametrize("source", SOURCES)
def test_cache_is_built_before_launch_where_yolox_does(source, data, tmp_path):
    """GitHub main and pixeltable build the cached training set before launch (their trainers
    assert it); the PyPI release caches inside its trainer."""
    env = source_env(source)
    kind = flavour_of(env)
    if kind == "pixeltable":
        record = capture(env, tmp_path, "train", "-c", "demo_cfg:Demo", "-D", f"data_dir={data / 'data'}",
                         "--cache", "--device", "cuda", cwd=data)
    else:
        record = capture(env, tmp_path, "train", "-f", EXP, "--cache", "--device", "cuda", "data_dir", data / "data")
    if kind == "megvii-pypi":
        assert record["dataset"] is None and record["tool_args"]["cache"] == "True"
    else:
        assert record["dataset"] == {"type": "COCODataset" if kind == "megvii-main" else "CocoDataset",
                                     "len": 8, "cache": True}
        assert record["tool_args"]["cache"] == "'ram'"


@pytest.mark.parametrize("source", SOURCES)
def test_pixeltable_train_hands_its_own_train_the_config(source, data, tmp_path):
    env = source_env(source)
    if flavour_of(env) != "pixeltable":
        pytest.skip("pixeltable-yolox's CLI flags (-c module:Class -D key=value); this YOLOX is Megvii's")
    record = capture(env, tmp_path, "train", "-c", "demo_cfg:Demo", "-D", "max_epoch=3", "-d", "2", "-b", "8",
                     "--device", "cuda", cwd=data)
    assert record["main_file"] == record["entry_file"]
    assert record["main_name"] == "train"
    assert record["num_gpus"] == 2 and record["dist_url"] == "auto"
    assert "Demo" in record["exp_class"] and record["exp"]["max_epoch"] == "3"
    assert record["tool_args"]["name"] == "'demo'"


@pytest.mark.parametrize("source", SOURCES)
def test_yolox_checks_exp_values_before_launch(source, data, tmp_path):
    env = source_env(source)
    kind = flavour_of(env)
    if kind == "megvii-pypi":
        pytest.skip("the PyPI release of YOLOX has no check_exp_value")
    if kind == "pixeltable":
        argv, cwd = ["-c", "demo_cfg:Demo", "-D", "input_size=100,100"], data
    else:
        argv, cwd = ["-f", EXP, "input_size", "(100, 100)"], REPO
    out, env = tmp_path / "launch.json", with_path(env, cwd)
    entry = subprocess.run([sys.executable, str(REPO / "tests" / "launch_capture.py"), str(out), "train",
                            *map(str, argv)], cwd=cwd, env=env, capture_output=True, text=True)
    assert entry.returncode != 0 and not out.exists()
    assert "input size must be multiples of 32" in entry.stderr
    # The tool says the same in one line, before any work, on any device.
    tool = subprocess.run([sys.executable, str(REPO / "tools" / "train.py"), "--device", "cpu", *map(str, argv)],
                          cwd=cwd, env=env, capture_output=True, text=True)
    assert error_line(tool) == "error: bad exp value: input size must be multiples of 32"



@pytest.mark.parametrize("argv, cache, expected", [
    (["-f", "e.py", "--device", "cuda", "-b", "8"], None, ["-f", "e.py", "-b", "8"]),
    (["-f", "e.py", "--device=cuda", "k", "v"], None, ["-f", "e.py", "k", "v"]),
    # Without --device between them, YOLOX's optional --cache [ram|disk] would take "data_dir".
    (["-f", "e.py", "--cache", "--device", "cuda", "data_dir", "d"], "ram",
     ["-f", "e.py", "--cache=ram", "data_dir", "d"]),
    (["-f", "e.py", "--cache", "disk", "--device", "cuda"], "disk", ["-f", "e.py", "--cache", "disk"]),
    (["-f", "e.py", "--cache", "--device", "cuda"], "ram", ["-f", "e.py", "--cache=ram"]),
    (["-f", "e.py", "--cache", "--device", "cuda"], True, ["-f", "e.py", "--cache"]),  # PyPI's store_true
])
def test_entry_argv_is_the_line_less_device(argv, cache, expected):
    from argparse import Namespace

    from yolox_focal.runtime.cli import entry_argv

    assert entry_argv(argv, Namespace(cache=cache)) == expected
