import pytest
import torch
from yolox.exp import get_exp
from yolox.models import YOLOXHead

from helpers import REPO, Recorder, head_inputs
from test_losses import reference_focal
from yolox_focal import FocalYOLOXHead

WIDTH = 0.25
CHANNELS = [256, 512, 1024]


def make_heads(num_classes, depthwise=False, **focal_settings):
    torch.manual_seed(0)
    stock = YOLOXHead(num_classes, WIDTH, in_channels=CHANNELS, depthwise=depthwise)
    stock.initialize_biases(1e-2)
    focal = FocalYOLOXHead(num_classes, WIDTH, in_channels=CHANNELS, depthwise=depthwise,
                           **focal_settings)
    focal.load_state_dict(stock.state_dict(), strict=True)
    return stock.train(), focal.train()


def losses_of(head, feats, labels, imgs, use_l1=False):
    head.use_l1 = use_l1
    return head(feats, labels, imgs)


CASES = [
    dict(num_classes=1, gts=(3, 0, 7, 1)),
    dict(num_classes=3, gts=(2, 5)),
    dict(num_classes=80, gts=(4, 0, 0, 9)),
    dict(num_classes=3, gts=(0,)),  # a batch without any ground truth
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c['num_classes']}cls-gts{c['gts']}")
@pytest.mark.parametrize("use_l1", [False, True])
def test_bce_setting_equals_yolox_exactly(case, use_l1):
    stock, ours = make_heads(case["num_classes"], obj_loss="bce")
    feats, labels, imgs = head_inputs(case["num_classes"], gts_per_image=case["gts"])
    expected = losses_of(stock, feats, labels, imgs, use_l1)
    got = losses_of(ours, feats, labels, imgs, use_l1)
    assert len(got) == len(expected) == 6
    for e, g in zip(expected, got):
        if torch.is_tensor(e):
            assert torch.equal(e, g)
        else:
            assert e == g


def test_bce_setting_has_identical_gradients():
    stock, ours = make_heads(3, obj_loss="bce")
    feats, labels, imgs = head_inputs(3)
    losses_of(stock, feats, labels, imgs)[0].backward()
    losses_of(ours, feats, labels, imgs)[0].backward()
    for (name, a), (_, b) in zip(stock.named_parameters(), ours.named_parameters()):
        assert torch.equal(a.grad, b.grad), name


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c['num_classes']}cls-gts{c['gts']}")
@pytest.mark.parametrize("gamma,alpha,weight", [(1.5, 0.25, 1.0), (2.0, None, 3.0)])
def test_focal_changes_only_objectness(case, gamma, alpha, weight):
    stock, ours = make_heads(case["num_classes"], obj_loss="focal", focal_gamma=gamma,
                             focal_alpha=alpha, obj_loss_weight=weight)
    recorder = Recorder(stock.bcewithlog_loss)
    stock.bcewithlog_loss = recorder
    feats, labels, imgs = head_inputs(case["num_classes"], gts_per_image=case["gts"])
    total_s, iou_s, obj_s, cls_s, l1_s, fg_s = losses_of(stock, feats, labels, imgs)
    total_f, iou_f, obj_f, cls_f, l1_f, fg_f = losses_of(ours, feats, labels, imgs)

    assert torch.equal(iou_s, iou_f) and torch.equal(cls_s, cls_f)
    assert l1_s == l1_f and fg_s == fg_f
    # YOLOX's own objectness call: one row per anchor of the batch, hard 0/1 targets.
    obj_pred, obj_target = recorder.calls[0]
    assert obj_pred.shape == (feats[0].shape[0] * sum(f.shape[2] * f.shape[3] for f in feats), 1)
    num_fg = max(obj_target.sum().item(), 1)
    expected = weight * reference_focal(obj_pred, obj_target, gamma, alpha).sum() / num_fg
    torch.testing.assert_close(obj_f.double(), expected, atol=1e-6, rtol=1e-6)
    assert not torch.isclose(obj_f, obj_s)
    torch.testing.assert_close(total_f - obj_f, total_s - obj_s, atol=1e-5, rtol=1e-6)


def test_focal_backward_reaches_every_branch():
    _, ours = make_heads(3)
    feats, labels, imgs = head_inputs(3)
    losses_of(ours, feats, labels, imgs)[0].backward()
    for name, p in ours.named_parameters():
        if "obj_preds" in name or "cls_preds" in name or "reg_preds" in name:
            assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name


def test_state_dict_and_inference_equal_yolox():
    stock, ours = make_heads(5, depthwise=True)
    a, b = stock.state_dict(), ours.state_dict()
    assert list(a) == list(b)
    assert all(a[k].shape == b[k].shape for k in a)
    feats, _, _ = head_inputs(5)
    stock.eval(), ours.eval()
    with torch.no_grad():
        assert torch.equal(stock(feats), ours(feats))


def test_checkpoints_move_both_ways_between_full_models():
    official = get_exp(exp_name="yolox-nano").get_model()
    focal = get_exp(str(REPO / "exps" / "yolox_nano_focal.py")).get_model()
    assert isinstance(focal.head, FocalYOLOXHead) and not isinstance(official.head, FocalYOLOXHead)
    focal.load_state_dict(official.state_dict(), strict=True)  # fine-tune from COCO weights
    official.load_state_dict(focal.state_dict(), strict=True)  # deploy a focal-trained model
    official.eval(), focal.eval()
    x = torch.rand(1, 3, 96, 96)
    with torch.no_grad():
        assert torch.equal(official(x), focal(x))


def test_convert_keeps_weights_and_switches_loss():
    stock, _ = make_heads(3)
    before = {k: v.clone() for k, v in stock.state_dict().items()}
    head = FocalYOLOXHead.convert(stock, obj_loss="focal", focal_gamma=2.0)
    assert head is stock and isinstance(head, FocalYOLOXHead)
    assert head.objectness_loss.focal_gamma == 2.0
    assert all(torch.equal(before[k], v) for k, v in head.state_dict().items())
    FocalYOLOXHead.convert(head, obj_loss="bce")
    assert head.objectness_loss.obj_loss == "bce"


@pytest.mark.parametrize("settings,words", [
    (dict(obj_loss="fcal"), "obj_loss must be one of"),
    (dict(focal_gamma=-1), "gamma"),
    (dict(focal_alpha=2), "alpha"),
    (dict(obj_loss_weight=0), "obj_loss_weight"),
])
def test_invalid_settings_fail_when_built(settings, words):
    with pytest.raises(ValueError, match=words):
        FocalYOLOXHead(3, WIDTH, in_channels=CHANNELS, **settings)
    with pytest.raises(ValueError, match=words):
        FocalYOLOXHead.convert(YOLOXHead(3, WIDTH, in_channels=CHANNELS), **settings)
