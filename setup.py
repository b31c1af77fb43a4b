# The project is declared in pyproject.toml; this file keeps YOLOX's install habit working:
#     python setup.py develop        (what pip install -v -e . does too)
import sys

import setuptools

# pyproject.toml's SPDX license field needs setuptools 77 (pip's build isolation fetches it; a
# direct `python setup.py` uses the installed one and would fail with a long schema error)
if int(setuptools.__version__.split(".")[0]) < 77:
    sys.exit(f"error: setuptools {setuptools.__version__} is too old to read pyproject.toml; "
             f"run: {sys.executable} -m pip install -U 'setuptools>=77' (or use: pip install -v -e .)")

setuptools.setup()
