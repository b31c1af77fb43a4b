"""tools/make_forest_data.py: aerial scenes with VOC crown boxes, tiled into a VOC set that the VOC route trains.

The input is built here, laid out as the deepforest wheel lays out its ``data/`` folder (a package
``deepforest`` whose ``data/`` holds ``<stem>.xml`` VOC annotations beside ``<stem>.png`` or, where the
XML names one, ``.tif`` images, plus files that are not annotated scenes: a photo without an XML and
CSV files), with the fields deepforest's XML files hold (``<folder>``, ``<segmented>``,
``<occluded>``...) and one scene labelling crowns ``Alive`` and ``Dead``. The tool finds it through
Python's import path as it finds the installed wheel; nothing here needs deepforest installed.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from cli_helpers import TINY, error_line
from helpers import REPO
from yolox_focal.runtime.forest_data import FOREST_CLASS, VOC_SETS, clip_box, make_forest_data, tile_windows
from yolox_focal.runtime.voc import NamedVOCDetection

TOOL = REPO / "tools" / "make_forest_data.py"
EXP = REPO / "exps" / "forest_nano.py"

# Scene A, 600 x 520 px, tiles of 256 px without overlap: columns start at 0, 256 and 344 (the
# last one moved back to end at the edge), rows at 0, 256 and 264. Boxes in VOC's 1-based corners.
SCENE_A = [
    ("Tree", 11, 21, 50, 60),      # inside tile (0, 0)
    ("Tree", 227, 101, 266, 130),  # x: 30 px left of the 256 border, 10 px right: 3/4 in tile (0, 0)
    ("Tree", 101, 237, 140, 276),  # y: 20 px above the 256 border, 20 below: half in tile (0, 0) and (0, 256)
    ("Tree", 245, 245, 268, 268),  # a corner of four tiles, about a quarter in each: in no tile
]
SCENE_B = [("Alive", 31, 41, 70, 80), ("Dead", 151, 161, 200, 210), ("Dead", 281, 5, 300, 30)]  # 300 x 300 px


def crown_scene(size, boxes, seed):
    """Forest floor with crowns: brown-green noise, and a shaded green disc in each box."""
    width, height = size
    rng = np.random.default_rng(seed)
    floor = rng.integers(40, 110, size=(height // 8 + 1, width // 8 + 1, 3)).astype(np.uint8)
    image = cv2.resize(floor, (width, height), interpolation=cv2.INTER_CUBIC)
    image = np.clip(image + rng.normal(0, 8, image.shape), 0, 255).astype(np.uint8)
    for name, x1, y1, x2, y2 in boxes:
        colour = (40, 150, 60) if name != "Dead" else (120, 130, 140)
        centre = ((x1 + x2) // 2 - 1, (y1 + y2) // 2 - 1)
        cv2.ellipse(image, centre, ((x2 - x1) // 2, (y2 - y1) // 2), 0, 0, 360, colour, -1, cv2.LINE_AA)
    return image


def deepforest_xml(image_name, width, height, boxes):
    """A VOC annotation as deepforest's data files have it, field for field."""
    objects = "".join(
        f"""    <object>
        <name>{name}</name>
        <pose>Unspecified</pose>
        <truncated>0</truncated>
        <occluded>0</occluded>
        <difficult>0</difficult>
        <bndbox>
            <xmin>{x1}</xmin>
            <ymin>{y1}</ymin>
            <xmax>{x2}</xmax>
            <ymax>{y2}</ymax>
        </bndbox>
    </object>
""" for name, x1, y1, x2, y2 in boxes)
    return f"""<annotation>
    <folder>data</folder>
    <filename>{image_name}</filename>
    <size>
        <width>{width}</width>
        <height>{height}</height>
        <depth>3</depth>
    </size>
    <segmented>0</segmented>
{objects}</annotation>
"""


def write_package(root):
    """A package ``deepforest`` under ``root`` with its data folder as the wheel has it; returns the
    data folder."""
    data = root / "deepforest" / "data"
    data.mkdir(parents=True)
    (root / "deepforest" / "__init__.py").write_text("raise ImportError('deepforest is never imported')\n")
    (data / "__init__.py").write_text("")
    cv2.imwrite(str(data / "SITE_A.png"), crown_scene((600, 520), SCENE_A, 0))
    (data / "SITE_A.xml").write_text(deepforest_xml("SITE_A.png", 600, 520, SCENE_A))
    scene_b = crown_scene((300, 300), SCENE_B, 1)
    cv2.imwrite(str(data / "SITE_B.tif"), scene_b)  # the XML names the .tif, as OSBS_029.xml does
    cv2.imwrite(str(data / "SITE_B.png"), scene_b)
    (data / "SITE_B.xml").write_text(deepforest_xml("SITE_B.tif", 300, 300, SCENE_B))
    cv2.imwrite(str(data / "Drone photo 0005.JPG"), crown_scene((320, 240), [], 2))  # no annotation
    (data / "classes.csv").write_text("Dead,0\nAlive,1\n")
    (data / "SITE_A.csv").write_text("image_path,xmin,ymin,xmax,ymax,label\n")
    return data


@pytest.fixture(scope="module")
def package(tmp_path_factory):
    root = tmp_path_factory.mktemp("site")
    write_package(root)
    return root


def run_tool(package_root, *args):
    """tools/make_forest_data.py with ``package_root`` first on the import path (where the wheel
    would be installed)."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(package_root), str(REPO)]))
    return subprocess.run([sys.executable, str(TOOL), *map(str, args)], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=300)


def voc_folder(out):
    return Path(out) / ("VOC" + VOC_SETS["train"][0])


def tile_objects(out, tile_id):
    import xml.etree.ElementTree as ET

    root = ET.parse(voc_folder(out) / "Annotations" / f"{tile_id}.xml").getroot()
    return [(o.findtext("name"), *(int(o.findtext(f"bndbox/{k}")) for k in ("xmin", "ymin", "xmax", "ymax")))
            for o in root.iter("object")]


@pytest.fixture(scope="module")
def made(package, tmp_path_factory):
    """The tool's output from the package's data folder, default settings."""
    out = tmp_path_factory.mktemp("made") / "forest"
    result = run_tool(package, "--out", out)
    assert result.returncode == 0, result.stderr[-3000:]
    return out, result.stdout, json.loads((out / "forest_data.json").read_text())


def test_windows_cover_the_scene_and_the_last_ends_at_the_edge():
    assert tile_windows(600, 520, 256, 0) == [(x, y, 256, 256) for y in (0, 256, 264) for x in (0, 256, 344)]
    assert tile_windows(600, 300, 256, 64) == [(x, y, 256, 256) for y in (0, 44) for x in (0, 192, 344)]
    assert tile_windows(200, 512, 256, 0) == [(0, 0, 200, 256), (0, 256, 200, 256)]  # narrower than a tile


def test_a_box_is_clipped_to_its_tile_and_kept_when_enough_of_it_is_inside():
    tile = (256, 0, 256, 256)
    assert clip_box((257, 11, 300, 40), tile, 0.5) == (1, 11, 44, 40)       # inside: shifted only
    assert clip_box((247, 11, 266, 40), tile, 0.5) == (1, 11, 10, 40)       # 10 of 20 px inside: kept
    assert clip_box((248, 11, 266, 40), tile, 0.5) == (1, 11, 10, 40)       # 10 of 19 px
    assert clip_box((246, 11, 266, 40), tile, 0.5) is None                  # 10 of 21 px: dropped
    assert clip_box((246, 11, 266, 40), tile, 0.4) == (1, 11, 10, 40)
    assert clip_box((200, 11, 257, 40), tile, 0.01) is None                 # 1 px inside: too thin
    assert clip_box((11, 11, 40, 40), tile, 0.01) is None                   # elsewhere


def test_the_tool_tiles_the_package_data_and_says_what_it_made(made):
    out, stdout, summary = made
    assert summary["source"]["folder"] == "deepforest/data (installed wheel)"
    assert [s["name"] for s in summary["source"]["scenes"]] == ["SITE_A", "SITE_B"]  # the photo has no XML
    assert [s["image"] for s in summary["source"]["scenes"]] == ["SITE_A.png", "SITE_B.tif"]
    assert summary["classes"] == [FOREST_CLASS]
    assert summary["class_mapping"] == {"Alive": "Tree", "Dead": "Tree", "Tree": "Tree"}
    ids = {split: (voc_folder(out) / "ImageSets" / "Main" / f"{VOC_SETS[split][1]}.txt").read_text().split()
           for split in ("train", "val")}
    for split in ("train", "val"):
        figures = summary["splits"][split]
        assert figures["tiles"] == len(ids[split]) >= 1
        assert figures["boxes"] == sum(len(tile_objects(out, i)) for i in ids[split])
        assert f"{split}: {figures['tiles']} tiles, {figures['boxes']} boxes" in stdout
    assert not set(ids["train"]) & set(ids["val"])
    assert "Alive -> Tree, Dead -> Tree" in stdout
    assert "validation tiles come from the same scenes as the training tiles" in stdout
    assert "same scenes as the training tiles" in summary["caveat"]
    assert "same scenes as the training tiles" in (out / "README.md").read_text()
    assert summary["boxes_in_no_tile"] == 1  # SCENE_A's corner box
    # every tile with a box is kept, the empty ones are not; ids name the scene and the position
    tiles = {t["id"]: t for t in summary["tiles"]}
    assert set(tiles) == set(ids["train"]) | set(ids["val"])
    assert all(t["objects"] >= 1 for t in tiles.values())
    assert "SITE_A_x00344_y00264" not in tiles  # bottom-right of scene A: no crown there


def test_boxes_and_pixels_after_tiling(made, package):
    out, _, summary = made
    assert tile_objects(out, "SITE_A_x00000_y00000") == [
        ("Tree", 11, 21, 50, 60),
        ("Tree", 227, 101, 256, 130),  # clipped at the tile's right edge
        ("Tree", 101, 237, 140, 256),  # half inside: kept, clipped
    ]
    assert tile_objects(out, "SITE_A_x00000_y00256") == [("Tree", 101, 1, 140, 20)]  # the other half, kept too
    assert "SITE_A_x00256_y00000" not in {t["id"] for t in summary["tiles"]}  # only a quarter of one crown
    assert tile_objects(out, "SITE_B_x00000_y00000") == [("Tree", 31, 41, 70, 80), ("Tree", 151, 161, 200, 210)]
    assert tile_objects(out, "SITE_B_x00044_y00000") == [  # the last column, moved back to end at x 300
        ("Tree", 1, 41, 26, 80), ("Tree", 107, 161, 156, 210), ("Tree", 237, 5, 256, 30)]
    scenes = {name: cv2.imread(str(package / "deepforest" / "data" / f"{name}.png")) for name in ("SITE_A", "SITE_B")}
    for tile in summary["tiles"]:
        pixels = cv2.imread(str(voc_folder(out) / "JPEGImages" / f"{tile['id']}.png"))
        crop = scenes[tile["scene"]][tile["top"]:tile["top"] + 256, tile["left"]:tile["left"] + 256]
        assert np.array_equal(pixels, crop), tile["id"]  # lossless, at the recorded position


def test_tiles_load_through_the_projects_voc_dataset(made):
    out, _, summary = made
    for split in ("train", "val"):
        dataset = NamedVOCDetection(str(out), [VOC_SETS[split]], (FOREST_CLASS,), (256, 256))
        assert len(dataset) == summary["splits"][split]["tiles"]
        for index, (_, tile_id) in enumerate(dataset.ids):
            boxes, (height, width), _ = dataset.annotations[index]
            assert (height, width) == (256, 256)
            # YOLOX's reader: 0-based corners, VOC's minus 1, class index 0
            expected = [[x1 - 1, y1 - 1, x2 - 1, y2 - 1, 0] for _, x1, y1, x2, y2 in tile_objects(out, tile_id)]
            assert boxes.tolist() == expected
            image = dataset.load_image(index)
            assert image.shape == (256, 256, 3)
    scored = NamedVOCDetection(str(out), [VOC_SETS["val"]], (FOREST_CLASS,), (256, 256))
    all_boxes = [[np.concatenate([b[:, :4], np.ones((len(b), 1))], axis=1) for b, _, _ in scored.annotations]]
    assert scored.evaluate_detections(all_boxes) == pytest.approx((1.0, 1.0))  # YOLOX's VOC scoring reads them


def test_keep_classes_keeps_alive_and_dead(package, tmp_path):
    summary = make_forest_data(tmp_path / "kept", str(package / "deepforest" / "data"), keep_classes=True)
    assert summary["classes"] == ["Alive", "Dead", "Tree"]
    assert summary["class_mapping"] == {"Alive": "Alive", "Dead": "Dead", "Tree": "Tree"}
    assert tile_objects(tmp_path / "kept", "SITE_B_x00000_y00000") == [("Alive", 31, 41, 70, 80),
                                                                       ("Dead", 151, 161, 200, 210)]


def test_same_arguments_same_bytes_and_the_seed_moves_the_split(package, tmp_path):
    source = str(package / "deepforest" / "data")
    for name in ("one", "two"):
        make_forest_data(tmp_path / name, source, size=128, overlap=32, seed=3)
    files = sorted(p.relative_to(tmp_path / "one") for p in (tmp_path / "one").rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(tmp_path / "two") for p in (tmp_path / "two").rglob("*") if p.is_file())
    assert all((tmp_path / "one" / f).read_bytes() == (tmp_path / "two" / f).read_bytes() for f in files)
    other = make_forest_data(tmp_path / "other", source, size=128, overlap=32, seed=4)
    same = json.loads((tmp_path / "one" / "forest_data.json").read_text())
    assert [t["id"] for t in other["tiles"]] == [t["id"] for t in same["tiles"]]
    assert [t["split"] for t in other["tiles"]] != [t["split"] for t in same["tiles"]]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no work folder left behind


def test_without_deepforest_one_line_with_the_pip_command(tmp_path):
    # Python's own way to make a module unimportable: None in sys.modules
    code = ("import runpy, sys; sys.modules['deepforest'] = None; "
            f"sys.argv = ['make_forest_data.py', '--out', {str(tmp_path / 'out')!r}]; "
            f"runpy.run_path({str(TOOL)!r}, run_name='__main__')")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert error_line(result) == ("error: the deepforest package is not installed; install its data with: "
                                  "pip install --no-deps deepforest")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("change, args, words", [
    (None, ["--tile-size", "100"], "tile size must be a multiple of 32"),
    (None, ["--overlap", "256"], "overlap must be"),
    (None, ["--val-fraction", "1"], "validation fraction must be"),
    ("box", [], "SITE_A.xml: object 2: box (227, 101, 666, 130) is empty or outside the 600 x 520 px image"),
    ("size", [], "SITE_A.xml: <size> says 640 x 520 px but"),
    ("image", [], "SITE_A.xml: its image SITE_A.png is not in"),
    ("xml", [], "SITE_A.xml: not readable XML"),
])
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, change, args, words):
    data = write_package(tmp_path / "site")
    xml = data / "SITE_A.xml"
    if change == "box":
        xml.write_text(xml.read_text().replace("<xmax>266</xmax>", "<xmax>666</xmax>"))
    elif change == "size":
        xml.write_text(xml.read_text().replace("<width>600</width>", "<width>640</width>"))
    elif change == "image":
        (data / "SITE_A.png").unlink()
    elif change == "xml":
        xml.write_text(xml.read_text()[:-20])
    result = run_tool(tmp_path / "site", "--out", tmp_path / "out", *args)
    assert words in error_line(result)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["site"]  # no output, no work folder


def test_an_existing_set_is_replaced_only_with_force_and_other_folders_never(package, tmp_path):
    out = tmp_path / "forest"
    assert run_tool(package, "--out", out, "--tile-size", "128").returncode == 0
    assert "add --force to replace it" in error_line(run_tool(package, "--out", out))
    result = run_tool(package, "--out", out, "--force")
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads((out / "forest_data.json").read_text())["settings"]["tile_size"] == 256
    assert sorted(p.name for p in tmp_path.iterdir()) == ["forest"]
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    assert "is not a tree-crown data set" in error_line(run_tool(package, "--out", tmp_path / "mine", "--force"))
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep"


def test_the_exp_trains_and_evaluates_on_the_tiles(made, tmp_path):
    out, _, _ = made
    result = subprocess.run(
        [sys.executable, str(REPO / "tools" / "train.py"), "-f", str(EXP), "-b", "4", "--device", "cpu", "-expn", "run",
         "data_dir", str(out), "output_dir", str(tmp_path), "max_epoch", "1", *map(str, TINY)],
        cwd=REPO, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    (record,) = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert list(record["per_class"]) == [FOREST_CLASS]
    assert 0 <= record["ap50_95"] <= record["ap50"] <= 1
