"""The documentation is true of the code: every ```python block of README.md, CONTRIBUTING.md and
docs/ runs, and the loss-kit page shows the settings table the declarations generate."""

import os
import re
import subprocess
import sys
import textwrap

import pytest

from helpers import REPO
from yolox_focal.adapter import flavour
from yolox_focal.adapter.head import FOCAL_OVERRIDES
from yolox_focal.losses.settings import settings_table

pytestmark = pytest.mark.any_yolox

DOCS = [REPO / "README.md", REPO / "CONTRIBUTING.md", *sorted((REPO / "docs").rglob("*.md"))]
# A fence opens with ```python, indented as its list item is; it closes with ``` at the same indent.
FENCE = re.compile(r"^(?P<indent>[ \t]*)```python[ \t]*\n(?P<code>.*?)^(?P=indent)```[ \t]*$", re.M | re.S)


def python_blocks():
    for path in DOCS:
        text = path.read_text(encoding="utf-8")
        for match in FENCE.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            yield pytest.param(textwrap.dedent(match["code"]), id=f"{path.relative_to(REPO)}:{line}")


BLOCKS = list(python_blocks())


def test_the_docs_have_python_examples():
    assert len(BLOCKS) >= 4, [b.id for b in BLOCKS]


@pytest.mark.parametrize("code", BLOCKS)
def test_python_block_runs(code, tmp_path):
    if "from yolox.exp" in code and flavour.flavour() == "pixeltable":
        pytest.skip("the example builds on Megvii's YOLOX exps; this environment has pixeltable-yolox")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, f"the example fails:\n{code}\n{result.stdout}{result.stderr}"


def test_loss_kit_page_shows_the_generated_settings_table():
    table = settings_table(FOCAL_OVERRIDES)
    page = (REPO / "docs" / "loss-kit.md").read_text(encoding="utf-8")
    assert table in page, "docs/loss-kit.md's settings table differs from the declaration; put this in it:\n" + table
