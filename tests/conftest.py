"""Test modules that work with any YOLOX carry ``pytestmark = pytest.mark.any_yolox``; the others
use Megvii's YOLOX and, where pixeltable-yolox is installed instead, are skipped with that reason
without being imported (their imports would fail)."""

import pytest

from yolox_focal.adapter import flavour
from yolox_focal.runtime.demo_data import make_demo_data

MARK = "pytest.mark.any_yolox"


class _NeedsMegvii(pytest.Module):
    def collect(self):
        pytest.skip(f"needs Megvii's YOLOX; this environment has pixeltable-yolox ({self.path.name} "
                    f"has no {MARK})")


def pytest_pycollect_makemodule(module_path, parent):
    if flavour.flavour() == "pixeltable" and MARK not in module_path.read_text(encoding="utf-8"):
        return _NeedsMegvii.from_parent(parent, path=module_path)
    return None


@pytest.fixture(scope="session")
def tiny_demo_data(tmp_path_factory):
    """The demo data set at its smallest that still trains and scores: 8 training and 4 validation
    images of 128 px, in COCO's layout; made once, read by every test that asks (none writes to it).
    Made at its first use, so before any Ray cluster a test starts: its process pool must not fork a
    process that holds Ray's connections."""
    root = tmp_path_factory.mktemp("tiny_demo_data")
    make_demo_data(str(root), train_images=8, val_images=4, size=128, progress=False, workers=1)
    return root
