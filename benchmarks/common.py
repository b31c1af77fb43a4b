"""Timing and reporting shared by the benchmark scripts.

Variants are timed interleaved (each round runs every variant once, in a shuffled order) after a
warm-up, so that drift in machine load hits every variant alike; each ratio is the median of
per-round ratios against the baseline.
"""

import argparse
import gc
import json
import math
import os
import random
import statistics
import sys
import time
import warnings
from pathlib import Path

import torch

from yolox_focal.runtime.machine import cpu_model, machine  # noqa: F401  (the benchmarks' record)

# The reference formulas and random inputs are written once, in tests/references.py: the benchmarks
# time them as "the formula written plainly" and draw their inputs from them.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

# YOLOX 0.3.0 calls the deprecated torch.cuda.amp.autocast in label assignment.
warnings.filterwarnings("ignore", message=".*torch.cuda.amp.autocast", category=FutureWarning)


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_interleaved(variants, device, rounds=30, warmup=5):
    """Time each zero-argument callable in ``variants`` (name -> fn) round by round.

    Each round runs every variant once, in a fresh random order (seeded, so runs repeat), so no
    variant always follows the same one; the garbage collector is off while timing, as in
    ``timeit``, so its pauses land on no variant. Returns {name: {"median_ms", "ratio"}} with
    ratios against the first variant.
    """
    names = list(variants)
    for _ in range(warmup):
        for name in names:
            variants[name]()
    times = {name: [] for name in names}
    order = random.Random(0)
    collecting = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        for _ in range(rounds):
            for name in order.sample(names, len(names)):
                sync(device)
                start = time.perf_counter()
                variants[name]()
                sync(device)
                times[name].append(time.perf_counter() - start)
    finally:
        if collecting:
            gc.enable()
    base = times[names[0]]
    results = {}
    for name in names:
        ratios = [t / b for t, b in zip(times[name], base)]
        results[name] = {"median_ms": 1e3 * statistics.median(times[name]), "ratio": statistics.median(ratios),
                         "ratio_ci95": median_ci95(ratios)}
    return results


def median_ci95(values):
    """A distribution-free 95 % confidence interval of the median of ``values``: the order
    statistics n/2 -+ 1.96 sqrt(n)/2 (normal approximation to the binomial)."""
    ordered, n = sorted(values), len(values)
    half_width = 1.96 * math.sqrt(n) / 2
    return ordered[max(0, math.floor(n / 2 - half_width))], ordered[min(n - 1, math.ceil(n / 2 + half_width))]


def saved_bytes(fn):
    """Bytes of the tensors autograd keeps for the backward pass of ``fn()``'s graph."""
    seen = {}

    def pack(tensor):
        storage = tensor.untyped_storage()
        seen[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        out = fn()
    del out
    return sum(seen.values())


def benchmark_parser(doc, rounds, json_name):
    """The flags every benchmark takes: --device, --rounds and where to write its JSON."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--rounds", type=int, default=rounds)
    parser.add_argument("--json", default=f"benchmarks/results/{json_name}")
    return parser


def pick_device(name):
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise SystemExit("error: --device cuda asked for, but torch sees no CUDA device; use --device cpu")
    return torch.device(name)


def print_table(title, rows, columns):
    """Print ``rows`` (dicts) as a fixed-width table with the given column keys."""
    print(f"\n{title}")
    widths = [max(len(c), *(len(_fmt(r.get(c))) for r in rows)) for c in columns]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths)))
    for r in rows:
        print("  ".join(_fmt(r.get(c)).ljust(w) for c, w in zip(columns, widths)))


def _fmt(value):
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1e-2 else f"{value:.3f}"
    return "" if value is None else str(value)


def write_json(path, payload):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        json.dump(payload, f, indent=2)
    print(f"\nwrote {path}")
