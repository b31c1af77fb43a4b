#!/usr/bin/env python3
"""Export a YOLOX exp and checkpoint to ONNX, on any torch from 1.13 on.

Takes the flags of YOLOX's tools/export_onnx.py (--output-name, --input, --output, -o/--opset,
--batch-size, --dynamic, --no-onnxsim, -f, -expn, -n, -c, --decode_in_inference, trailing
``key value`` exp options) and follows its steps (Apache-2.0, Megvii Inc.): the exp's model with
the checkpoint's weights, YOLOX's export-friendly SiLU, a ``batch x 3 x test_size`` input, then
onnx-simplifier. YOLOX's own script calls ``torch.onnx._export``, which current torch removed;
this one calls ``torch.onnx.export`` with the TorchScript exporter, which takes YOLOX's opset 11.

    python tools/export_onnx.py -f exps/demo/demo_focal.py -c YOLOX_outputs/demo_focal/best_ckpt.pth \
        --output-name demo_focal.onnx
"""

import argparse
import inspect
import os

import torch
from loguru import logger
from torch import nn

from yolox_focal.runtime.checkpoint_files import load_checkpoint
from yolox_focal.runtime.cli import load_exp, main_guard
from yolox_focal.runtime.errors import UsageError


def make_parser():
    parser = argparse.ArgumentParser("Export a YOLOX exp and checkpoint to ONNX.")
    parser.add_argument("--output-name", default="yolox.onnx", help="the ONNX file to write")
    parser.add_argument("--input", default="images", help="name of the ONNX input")
    parser.add_argument("--output", default="output", help="name of the ONNX output")
    parser.add_argument("-o", "--opset", default=11, type=int, help="ONNX opset version")
    parser.add_argument("--batch-size", type=int, default=1, help="batch size of the exported input")
    parser.add_argument("--dynamic", action="store_true", help="make the batch dimension dynamic")
    parser.add_argument("--no-onnxsim", action="store_true", help="skip onnx-simplifier")
    parser.add_argument("-f", "--exp_file", default=None, help="exp file")
    parser.add_argument("-expn", "--experiment-name", default=None)
    parser.add_argument("-n", "--name", default=None, help="YOLOX exp name (yolox-s, ...)")
    parser.add_argument("-c", "--ckpt", default=None, help="checkpoint (default: the experiment's best_ckpt.pth)")
    parser.add_argument("--decode_in_inference", action="store_true",
                        help="decode boxes inside the model (else the raw head outputs, as YOLOX's default)")
    parser.add_argument("opts", help="exp options as 'key value' pairs", default=None, nargs=argparse.REMAINDER)
    return parser


def export_model(exp, checkpoint, output_name, opset=11, batch_size=1, dynamic=False, decode_in_inference=False,
                 input_name="images", output_names="output"):
    """Write the exp's model with the checkpoint's weights to ``output_name``; returns the model as exported."""
    from yolox.models.network_blocks import SiLU
    from yolox.utils import replace_module

    model = exp.get_model()
    load_checkpoint(checkpoint, model)
    model.eval()
    model = replace_module(model, nn.SiLU, SiLU)  # YOLOX's SiLU exports as Sigmoid and Mul on every opset
    model.head.decode_in_inference = decode_in_inference
    dummy_input = torch.randn(batch_size, 3, *exp.test_size)
    legacy = {"dynamo": False} if "dynamo" in inspect.signature(torch.onnx.export).parameters else {}
    torch.onnx.export(
        model, dummy_input, output_name,
        input_names=[input_name], output_names=[output_names],
        dynamic_axes={input_name: {0: "batch"}, output_names: {0: "batch"}} if dynamic else None,
        opset_version=opset, **legacy,
    )
    return model


def simplify(output_name):
    import onnx
    from onnxsim import simplify as onnxsim_simplify

    simplified, valid = onnxsim_simplify(onnx.load(output_name))
    if not valid:
        raise UsageError(f"onnx-simplifier could not validate the simplified {output_name}; "
                         f"export again with --no-onnxsim")
    onnx.save(simplified, output_name)


def main():
    args = make_parser().parse_args()
    missing = [name for name in ["onnx"] + ([] if args.no_onnxsim else ["onnxsim"]) if not _importable(name)]
    if missing:
        raise UsageError(f"ONNX export needs {' and '.join(missing)}: pip install {' '.join(missing)}"
                         + ("" if args.no_onnxsim else " (or pass --no-onnxsim)"))
    exp = load_exp(args.exp_file, args.name, args.opts)
    experiment = args.experiment_name or exp.exp_name
    checkpoint = args.ckpt or os.path.join(exp.output_dir, experiment, "best_ckpt.pth")
    export_model(exp, checkpoint, args.output_name, args.opset, args.batch_size, args.dynamic,
                 args.decode_in_inference, args.input, args.output)
    logger.info(f"generated ONNX model {args.output_name}")
    if not args.no_onnxsim:
        simplify(args.output_name)
        logger.info(f"simplified ONNX model {args.output_name}")


def _importable(module):
    import importlib.util

    return importlib.util.find_spec(module) is not None


if __name__ == "__main__":
    main_guard(main)
