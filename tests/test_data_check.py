"""The data check: each mistake in one's own data gives one line naming the file, the entry and the
fix, on generated broken COCO- and VOC-format data sets read the way YOLOX's datasets read them."""

import json
import re
import shutil

import pytest

from cli_helpers import run_tool
from helpers import REPO
from yolox_focal.runtime.cli import load_exp
from yolox_focal.runtime.data_check import SHOWN_PER_KIND, check_exp_data
from yolox_focal.runtime.demo_data import make_demo_data, make_demo_voc_data
from yolox_focal.runtime.errors import DataError

COCO_EXP = REPO / "exps" / "demo" / "demo_focal.py"
VOC_EXP = REPO / "exps" / "demo" / "demo_voc.py"


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    make_demo_data(str(root / "coco"), train_images=3, val_images=2, size=64, progress=False, workers=1)
    make_demo_voc_data(str(root / "voc"), train_images=3, val_images=2, size=64, progress=False, workers=1)
    return root


@pytest.fixture
def coco(clean, tmp_path):
    shutil.copytree(clean / "coco", tmp_path / "coco")
    return tmp_path / "coco"


@pytest.fixture
def voc(clean, tmp_path):
    shutil.copytree(clean / "voc", tmp_path / "voc")
    return tmp_path / "voc"


def train_json(coco):
    return coco / "annotations" / "instances_train2017.json"


def edit_train(coco, change):
    data = json.loads(train_json(coco).read_text())
    change(data)
    train_json(coco).write_text(json.dumps(data))


def errors(exp_file, data_dir, *opts, open_images=False):
    exp = load_exp(str(exp_file), None, ["data_dir", str(data_dir), *opts])
    with pytest.raises(DataError) as raised:
        check_exp_data(exp, ("train", "val"), open_images=open_images)
    return str(raised.value).splitlines()


def the_error(exp_file, data_dir, *opts, **kwargs):
    (line,) = errors(exp_file, data_dir, *opts, **kwargs)
    return line


def test_clean_data_passes_with_counts_and_class_names(clean):
    for exp_file, data in ((COCO_EXP, clean / "coco"), (VOC_EXP, clean / "voc")):
        report = check_exp_data(load_exp(str(exp_file), None, ["data_dir", str(data)]), ("train", "val"))
        assert report.counts["train"]["images"] == 3 and report.counts["val"]["images"] == 2
        assert report.counts["train"]["objects"] > 0
        assert report.class_names == ["disc", "square", "triangle", "cross"]


def test_annotation_file_that_is_not_json(coco):
    train_json(coco).write_text('{"images": [}')
    line = the_error(COCO_EXP, coco)
    assert line.startswith(f"{train_json(coco)}: line 1, column 13: not valid JSON")


def test_annotation_file_without_coco_keys(coco):
    edit_train(coco, lambda d: d.pop("categories"))
    assert the_error(COCO_EXP, coco) == (f"{train_json(coco)}: top level: no 'categories' list; COCO's format needs "
                                         "'images', 'annotations' and 'categories', each a list")


def test_missing_image_file(coco):
    (coco / "train2017" / "000000000002.jpg").unlink()
    line = the_error(COCO_EXP, coco)
    assert f"images[1] (id 2): image file {coco / 'train2017' / '000000000002.jpg'} not found" in line
    assert "fix 'file_name'" in line


def test_unreadable_image_only_with_images_flag(coco):
    (coco / "val2017" / "000000000001.jpg").write_bytes(b"not a jpeg")
    check_exp_data(load_exp(str(COCO_EXP), None, ["data_dir", str(coco)]), ("train", "val"))  # annotations only
    line = the_error(COCO_EXP, coco, open_images=True)
    assert f"image id 1: {coco / 'val2017' / '000000000001.jpg'} does not decode as an image" in line


def test_category_not_among_the_categories(coco):
    edit_train(coco, lambda d: d["annotations"][0].update(category_id=9))
    line = the_error(COCO_EXP, coco)
    assert "annotation id 1: category_id 9 is not among the categories (1, 2, 3, 4)" in line


def test_more_categories_than_num_classes_names_the_value(coco):
    lines = errors(COCO_EXP, coco, "num_classes", "3")
    assert len(lines) == 2  # train and val
    assert "4 categories but the exp's num_classes is 3; set num_classes = 4" in lines[0]


@pytest.mark.parametrize("bbox, expected", [
    ([10, 10, 0, 5], "has non-positive width or height: YOLOX would train on a box of zero size"),
    ([70, 10, 5, 5], "lies outside its 64x64 image: YOLOX would drop it silently"),
])
def test_bad_boxes(coco, bbox, expected):
    edit_train(coco, lambda d: d["annotations"][0].update(bbox=bbox))
    line = the_error(COCO_EXP, coco)
    assert f"annotation id 1: bbox {bbox} {expected}" in line


def test_duplicate_ids(coco):
    def duplicate(d):
        d["annotations"][1]["id"] = d["annotations"][0]["id"]
        d["images"][1]["id"] = d["images"][0]["id"]
    edit_train(coco, duplicate)
    lines = errors(COCO_EXP, coco)
    assert any("images[1] (id 1): image id used twice" in line for line in lines)
    assert any("annotation id 1: used more than once" in line for line in lines)


@pytest.mark.parametrize("emptied, expected", [("images", "the split has no images"),
                                               ("annotations", "the split has no annotations")])
def test_empty_split(coco, emptied, expected):
    edit_train(coco, lambda d: d.update({emptied: []}))
    assert expected in " ".join(errors(COCO_EXP, coco))


def test_survivable_problems_are_counted_warnings(coco):
    def change(d):
        first_image = d["annotations"][0]["image_id"]
        d["annotations"] = [a for a in d["annotations"] if a["image_id"] != first_image]
        d["annotations"][0]["bbox"][2] += 64  # reaches past the right edge: YOLOX clips it
    edit_train(coco, change)
    report = check_exp_data(load_exp(str(COCO_EXP), None, ["data_dir", str(coco)]), ("train", "val"))
    assert f"{train_json(coco)}: 1 images without objects (used as background)" in report.warnings
    assert f"{train_json(coco)}: 1 boxes reach past their image's edge (YOLOX clips them to it)" in report.warnings


def test_many_errors_of_one_kind_are_counted(coco):
    edit_train(coco, lambda d: [a.update(category_id=9) for a in d["annotations"]])
    total = len(json.loads(train_json(coco).read_text())["annotations"])
    lines = errors(COCO_EXP, coco)
    assert len(lines) == SHOWN_PER_KIND + 1
    assert lines[-1] == f"{coco / 'annotations'}: {total - SHOWN_PER_KIND} more like the above (category)"


def voc_xml(voc, image_id):
    return voc / "VOC2007" / "Annotations" / f"{image_id}.xml"


def test_voc_xml_that_does_not_parse(voc):
    voc_xml(voc, "train_000002").write_text("<annotation><size>")
    assert the_error(VOC_EXP, voc).startswith(f"{voc_xml(voc, 'train_000002')}: file: XML does not parse")


def test_voc_missing_image(voc):
    (voc / "VOC2007" / "JPEGImages" / "val_000001.jpg").unlink()
    line = the_error(VOC_EXP, voc)
    assert f"test.txt: id val_000001: no image file {voc / 'VOC2007' / 'JPEGImages' / 'val_000001.jpg'} (nor .png " \
           "or another image type) found; add the image or remove the id" in line


def test_voc_images_of_other_types_pass_and_two_files_for_one_id_do_not(voc):
    images = voc / "VOC2007" / "JPEGImages"
    jpg = images / "val_000001.jpg"
    shutil.copy(jpg, images / "val_000001.PNG")  # the same picture, saved twice
    line = the_error(VOC_EXP, voc, open_images=True)
    assert line.endswith("test.txt: id val_000001: 2 image files in " + str(images) + " (val_000001.jpg, "
                         "val_000001.PNG): which one is labelled is unclear; keep one of them")
    jpg.unlink()  # now the .PNG alone: found, and decoded
    report = check_exp_data(load_exp(str(VOC_EXP), None, ["data_dir", str(voc)]), ("train", "val"), open_images=True)
    assert report.counts["val"]["images"] == 2


def strip_tags(xml, *tags):
    text = xml.read_text()
    for tag in tags:
        text = re.sub(f"<{tag}>.*?</{tag}>", "", text)
    xml.write_text(text)


def test_voc_objects_without_eval_fields_pass_with_one_counted_warning(voc):
    for image_id in ("train_000001", "val_000001", "val_000002"):
        strip_tags(voc_xml(voc, image_id), "pose", "truncated", "difficult")
    report = check_exp_data(load_exp(str(VOC_EXP), None, ["data_dir", str(voc)]), ("train", "val"))
    objects = sum(voc_xml(voc, i).read_text().count("<object>") for i in ("train_000001", "val_000001", "val_000002"))
    (line,) = [w for w in report.warnings if "<pose>" in w]
    assert line == (f"{voc / 'VOC2007' / 'Annotations'}: {objects} objects without <pose>, <truncated> or <difficult> "
                    "(read as YOLOX's training reads them: not truncated, not difficult)")


@pytest.mark.parametrize("change, expected", [
    (lambda t: re.sub(r"<bndbox>.*?</bndbox>", "", t, count=1), "no numeric <bndbox> xmin, ymin, xmax, ymax"),
    (lambda t: re.sub(r"<xmin>\d+</xmin>", "<xmin>left</xmin>", t, count=1), "no numeric <bndbox>"),
    (lambda t: re.sub(r"<xmin>(\d+)</xmin>(.*?)<xmax>(\d+)</xmax>", r"<xmin>\3</xmin>\2<xmax>\1</xmax>", t, count=1,
                      flags=re.S), "has non-positive size"),
    (lambda t: re.sub(r"<difficult>0</difficult>", "<difficult>maybe</difficult>", t, count=1),
     "<difficult> is 'maybe'"),
])
def test_voc_what_changes_training_or_ap_is_still_refused(voc, change, expected):
    xml = voc_xml(voc, "train_000001")
    xml.write_text(change(xml.read_text()))
    line = the_error(VOC_EXP, voc)
    assert line.startswith(f"{xml}: object 1 (") and expected in line


def test_voc_class_not_in_class_list(voc):
    xml = voc_xml(voc, "train_000001")
    text = xml.read_text()
    first = text.split("<name>")[1].split("</name>")[0]
    xml.write_text(text.replace(f"<name>{first}</name>", "<name>dog</name>", 1))
    line = the_error(VOC_EXP, voc)
    assert f"{xml}: object 1 (dog): class name 'dog' is not in the exp's class_names (cross, disc, square, triangle)" \
        in line


def test_check_data_tool_and_train_refuse_broken_data_before_writing_anything(coco, tmp_path):
    edit_train(coco, lambda d: d["annotations"][0].update(category_id=9))
    checked = run_tool("check_data.py", "-f", COCO_EXP, "data_dir", coco, check=False)
    assert checked.returncode == 2 and "Traceback" not in checked.stderr
    assert "error: " + str(train_json(coco)) + ": annotation id 1: category_id 9" in checked.stderr
    trained = run_tool("train.py", "-f", COCO_EXP, "--device", "cpu", "data_dir", coco,
                       "output_dir", tmp_path / "out", check=False)
    assert trained.returncode == 2 and "category_id 9 is not among the categories" in trained.stderr
    assert not (tmp_path / "out").exists()


def test_check_data_tool_reports_ok(clean):
    result = run_tool("check_data.py", "-f", VOC_EXP, "data_dir", clean / "voc")
    assert "data OK: train 3 images" in result.stdout and "4 classes: disc, square, triangle, cross" in result.stdout
