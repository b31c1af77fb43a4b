#!/usr/bin/env python3
"""Tile the deepforest wheel's aerial tree-crown scenes into a VOC set for exps/forest_nano.py.

    pip install --no-deps deepforest                # only its data/ folder is read
    python tools/make_forest_data.py                # datasets/forest: 256 px tiles, one class Tree
    python tools/make_forest_data.py --out /work/forest-data --tile-size 320 --overlap 32 --seed 1
    python tools/make_forest_data.py --source DIR   # any folder of <stem>.xml VOC files and their images

Crowns labelled Alive or Dead (scene SOAP_061) become Tree like the others unless --keep-classes.
Validation tiles come from the same scenes as the training tiles (a split by tile, not by scene).
"""

import argparse
import inspect
import os

from yolox_focal.runtime.cli import REPO, main_guard
from yolox_focal.runtime.forest_data import make_forest_data

DEFAULTS = {name: p.default for name, p in inspect.signature(make_forest_data).parameters.items()}  # one source


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.path.join(REPO, "datasets", "forest"),
                        help="data directory (default: datasets/forest, where exps/forest_nano.py looks)")
    parser.add_argument("--source", help="folder of VOC scenes (default: the installed deepforest package's data/)")
    parser.add_argument("--tile-size", type=int, default=DEFAULTS["size"], help="tile side in px, a multiple of 32")
    parser.add_argument("--overlap", type=int, default=DEFAULTS["overlap"], help="px shared by neighbouring tiles")
    parser.add_argument("--min-visible", type=float, default=DEFAULTS["min_visible"],
                        help="keep a box in a tile when at least this share of its area is inside")
    parser.add_argument("--val-fraction", type=float, default=DEFAULTS["val_fraction"],
                        help="share of the tiles for validation, drawn at random with --seed")
    parser.add_argument("--seed", type=int, default=DEFAULTS["seed"])
    parser.add_argument("--keep-classes", action="store_true",
                        help="keep the annotations' names (Tree, Alive, Dead) instead of one class Tree")
    parser.add_argument("--keep-empty", action="store_true", help="keep tiles without boxes")
    parser.add_argument("--force", action="store_true", help="replace an existing tree-crown data set")
    args = parser.parse_args()
    summary = make_forest_data(args.out, args.source, args.tile_size, args.overlap, args.min_visible,
                               args.val_fraction, args.seed, args.keep_classes, args.keep_empty, args.force)
    scenes = summary["source"]["scenes"]
    mapping = ", ".join(f"{k} -> {v}" for k, v in summary["class_mapping"].items())
    print(f"read {len(scenes)} scenes, {sum(s['boxes'] for s in scenes)} boxes; classes: {mapping}")
    for split in ("train", "val"):
        figures = summary["splits"][split]
        print(f"{split}: {figures['tiles']} tiles, {figures['boxes']} boxes ({figures['image_set']})")
    print(f"dropped {summary['boxes_dropped']} box pieces under {summary['settings']['min_visible']:g} of a box "
          f"in their tile; {summary['boxes_in_no_tile']} boxes in no tile; {summary['empty_tiles_dropped']} empty "
          f"tiles dropped")
    print("note: validation tiles come from the same scenes as the training tiles")
    print(f"wrote {os.path.abspath(args.out)} (VOC2007/, forest_data.json, README.md)")


if __name__ == "__main__":
    main_guard(main)
