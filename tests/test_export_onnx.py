"""tools/export_onnx.py on the installed torch: the ONNX model's outputs, run by onnxruntime, are
the PyTorch model's."""

import numpy as np
import pytest
import torch

from cli_helpers import error_line, run_tool
from helpers import REPO

onnx = pytest.importorskip("onnx", reason="ONNX export needs onnx (pip install -e .[onnx])")
ort = pytest.importorskip("onnxruntime", reason="the comparison needs onnxruntime (pip install -e .[onnx])")
from yolox.exp import get_exp  # noqa: E402


def checkpoint_of(exp_file, path):
    """A checkpoint with random weights and batch-norm statistics, as training leaves them."""
    torch.manual_seed(0)
    model = get_exp(str(exp_file)).get_model()
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    torch.save({"model": model.state_dict(), "start_epoch": 1}, path)
    return model.eval()


@pytest.mark.parametrize("exp_name, flags", [
    ("demo/demo_focal", []),
    ("demo/demo_focal", ["--decode_in_inference", "--dynamic", "--no-onnxsim"]),
    ("yolox_s_focal", ["--decode_in_inference"]),
])
def test_onnx_outputs_equal_pytorch(tmp_path, exp_name, flags):
    exp_file = REPO / "exps" / f"{exp_name}.py"
    model = checkpoint_of(exp_file, tmp_path / "ckpt.pth")
    out = tmp_path / "model.onnx"
    run_tool("export_onnx.py", "-f", exp_file, "-c", tmp_path / "ckpt.pth", "--output-name", out, *flags)
    onnx.checker.check_model(onnx.load(str(out)))
    batch = 2 if "--dynamic" in flags else 1
    images = torch.rand(batch, 3, *get_exp(str(exp_file)).test_size) * 255
    model.head.decode_in_inference = "--decode_in_inference" in flags
    with torch.no_grad():
        expected = model(images).numpy()
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["images"]
    (got,) = session.run(["output"], {"images": images.numpy()})
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-3, atol=1e-3 * np.abs(expected).max())


def test_missing_checkpoint_is_one_line(tmp_path):
    line = error_line(run_tool("export_onnx.py", "-f", REPO / "exps" / "demo" / "demo_focal.py",
                               "-c", tmp_path / "none.pth", check=False))
    assert f"checkpoint not found: {tmp_path / 'none.pth'}" in line
