"""pixeltable-yolox's configs with the loss kit: each matches pixeltable's own config of its size but
for the loss settings, builds pixeltable's model with the kit on its head, and trains a step."""

import pytest
import torch

from yolox_focal import FOCAL_OVERRIDES, FocalYOLOXHead, yolox_settings
from yolox_focal.adapter import flavour

pytestmark = [pytest.mark.any_yolox,
              pytest.mark.skipif(flavour.flavour() != "pixeltable", reason="needs pixeltable-yolox installed")]

SIZES = ["Nano", "Tiny", "S", "M", "L", "X"]


@pytest.mark.parametrize("size", SIZES)
def test_config_matches_pixeltables_but_for_the_loss_settings(size):
    import yolox.config

    from yolox_focal import pixeltable_configs

    ours = getattr(pixeltable_configs, f"Yolox{size}Focal")()
    official = getattr(yolox.config, f"Yolox{size}")()
    ours_vars = {k: v for k, v in vars(ours).items() if k not in yolox_settings()}
    official_vars = dict(vars(official))
    assert ours_vars.pop("name") == official_vars.pop("name") + "_focal"
    assert ours_vars == official_vars
    assert ours.loss_settings() == dict(yolox_settings(), **FOCAL_OVERRIDES)


def test_demo_config_builds_the_kit_and_trains_a_step():
    from yolox_focal.pixeltable_configs import DemoBce, DemoFocal

    config = DemoFocal()
    config.update({"box_loss": "ciou", "focal_gamma": "2", "max_epoch": "3"})
    assert (config.box_loss, config.focal_gamma, config.max_epoch) == ("ciou", 2.0, 3)
    model = config.get_model()
    assert isinstance(model.head, FocalYOLOXHead) and model.head.loss_kit.box.name == "ciou"
    assert DemoBce().obj_loss == "bce" and DemoBce().name == "demo_bce"
    images = torch.rand(2, 3, 64, 64)
    labels = torch.zeros(2, 5, 5)
    labels[0, 0] = torch.tensor([3.0, 20, 24, 12, 16])
    labels[1, :2] = torch.tensor([[0.0, 40, 40, 20, 10], [1.0, 10, 50, 6, 8]])
    outputs = model(images, labels)
    outputs["total_loss"].backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    with pytest.raises(ValueError, match="box_loss must be one of"):
        config.update({"box_loss": "ciuo"})
