"""Test modules that work with any YOLOX carry ``pytestmark = pytest.mark.any_yolox``; the others
use Megvii's YOLOX and, where pixeltable-yolox is installed instead, are skipped with that reason
without being imported (their imports would fail)."""

import pytest

from yolox_focal.adapter import flavour

MARK = "pytest.mark.any_yolox"


class _NeedsMegvii(pytest.Module):
    def collect(self):
        pytest.skip(f"needs Megvii's YOLOX; this environment has pixeltable-yolox ({self.path.name} "
                    f"has no {MARK})")


def pytest_pycollect_makemodule(module_path, parent):
    if flavour.flavour() == "pixeltable" and MARK not in module_path.read_text(encoding="utf-8"):
        return _NeedsMegvii.from_parent(parent, path=module_path)
    return None
