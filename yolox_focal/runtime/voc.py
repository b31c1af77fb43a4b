"""VOC-format data sets with one's own class names, for YOLOX exps.

YOLOX's ``VOCDetection`` reads ``VOCdevkit/VOC<year>/{ImageSets/Main, Annotations, JPEGImages}``
but scores only PASCAL VOC's 20 classes (its result writer and evaluation loop iterate the global
``VOC_CLASSES``). ``NamedVOCDetection`` takes the class names from the exp and scores them with
YOLOX's own ``voc_eval`` over IoU 0.50:0.95, per class. ``VOCExpMixin`` turns a YOLOX exp into a
VOC one, the way YOLOX's ``exps/example/yolox_voc/yolox_voc_s.py`` does (structure followed from
YOLOX, Apache-2.0), on the PyPI release and on GitHub main.
"""

import contextlib
import os
import tempfile
from collections import Counter

import cv2
import numpy as np
import torch
from yolox.data.datasets.voc import AnnotationTransform
from yolox.data.datasets.voc_classes import VOC_CLASSES
from yolox.evaluators.voc_eval import voc_eval

from ..adapter.flavour import ExpBase, VOCDetection
from .voc_files import complete_for_eval, image_files

__all__ = ["NamedVOCDetection", "VOCExpMixin", "numpy_bool_alias", "IOU_THRESHOLDS"]

IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)
# YOLOX main's base Exp builds loaders from get_dataset / get_eval_dataset; the PyPI release does not
_EXP_HAS_DATASET_HOOKS = hasattr(ExpBase, "get_dataset")


@contextlib.contextmanager
def numpy_bool_alias():
    """Give numpy a ``bool`` alias while YOLOX's ``voc_eval`` runs, if it has none.

    YOLOX 0.3.0's ``voc_eval`` calls ``np.bool``, which NumPy 1.24 to 1.26 do not have (NumPy 2
    has it again; YOLOX main calls ``bool``). Applied only around our calls, and removed after.
    """
    added = not hasattr(np, "bool")
    if added:
        np.bool = bool
    try:
        yield
    finally:
        if added:
            del np.bool


class NamedVOCDetection(VOCDetection):
    """YOLOX's ``VOCDetection`` with the exp's class names, for training and evaluation."""

    def __init__(self, data_dir, image_sets, class_names, img_size, preproc=None, cache=False, **kwargs):
        class_to_index = {name: i for i, name in enumerate(class_names)}
        super().__init__(data_dir, image_sets=image_sets, img_size=img_size, preproc=preproc,
                         target_transform=AnnotationTransform(class_to_index),
                         dataset_name="_".join(f"{y}{n}" for y, n in image_sets), cache=cache, **kwargs)
        self._classes = tuple(class_names)
        self.class_ids = list(range(len(class_names)))  # YOLOX main reads these
        self.cats = [{"id": i, "name": name} for i, name in enumerate(class_names)]
        self.last_per_class = {}

    def pull_item(self, index):
        # YOLOX hands back the index it was given as the image id: the sampler's 0-d tensor, while
        # MosaicDetection's mosaic samples give a plain int (the last index it drew), and a batch
        # holding both cannot be collated. Every sample's id is a plain int here.
        img, target, img_info, _ = super().pull_item(int(index))
        return img, target, img_info, int(index)

    def load_image(self, index):
        # YOLOX opens JPEGImages/<id>.jpg only; the message is YOLOX's, which the tools recognise
        path = self.image_path(index)
        img = cv2.imread(path, cv2.IMREAD_COLOR)
        assert img is not None, f"file named {path} not found"
        return img

    def image_path(self, index):
        """The image file of the ``index``-th id: ``JPEGImages/<id>.jpg`` or ``<id>.<ext>``."""
        root, image_id = self.ids[index]
        folder = os.path.join(root, "JPEGImages")
        files = self.__dict__.setdefault("_image_files", {})  # filled on first use: YOLOX may cache
        if folder not in files:                              # images from inside its __init__
            files[folder] = image_files(folder)
        names = files[folder].get(image_id)
        return os.path.join(folder, names[0] if names else f"{image_id}.jpg")

    def evaluate_detections(self, all_boxes, output_dir=None):
        """``(AP50:95, AP50)`` over classes with ground truth, as fractions, scored by YOLOX's
        ``voc_eval``; ``all_boxes[class][image]`` holds [x1, y1, x2, y2, score] rows (YOLOX's
        VOCEvaluator builds it). Per-class figures go to ``last_per_class`` (None: no objects)."""
        keys = [f"VOC{year}/Annotations/{image_id}" for (root, image_id), year in zip(self.ids, self._years())]
        objects = Counter(int(c) for boxes, *_ in self.annotations for c in boxes[:, 4])
        use_07_metric = all(int(year) < 2010 for year, _ in self.image_set)  # VOC's rule, as YOLOX applies it
        self.last_per_class = {}
        with tempfile.TemporaryDirectory() as work, numpy_bool_alias():
            for key in keys:  # with YOLOX's defaults where a field its evaluation reads is missing
                complete_for_eval(os.path.join(self.root, key + ".xml"), os.path.join(work, key + ".xml"))
            image_set = os.path.join(work, "images.txt")
            with open(image_set, "w") as f:
                f.writelines(key + "\n" for key in keys)
            for index, name in enumerate(self._classes):
                detections = os.path.join(work, f"detections_{index}.txt")
                with open(detections, "w") as f:
                    for key, boxes in zip(keys, all_boxes[index]):
                        for x1, y1, x2, y2, score in np.asarray(boxes).reshape(-1, 5):
                            # VOC's 1-based pixel coordinates, as YOLOX writes them
                            f.write(f"{key} {score:.3f} {x1 + 1:.1f} {y1 + 1:.1f} {x2 + 1:.1f} {y2 + 1:.1f}\n")
                if not objects[index]:
                    self.last_per_class[name] = None
                    continue
                aps = [float(voc_eval(detections, os.path.join(work, "{:s}.xml"), image_set,
                                                     name, work, ovthresh=iou, use_07_metric=use_07_metric)[2])
                       for iou in IOU_THRESHOLDS]
                self.last_per_class[name] = (float(np.mean(aps)), aps[0])
        scored = [v for v in self.last_per_class.values() if v is not None]
        if not scored:
            return 0.0, 0.0
        return float(np.mean([v[0] for v in scored])), float(np.mean([v[1] for v in scored]))

    def _years(self):
        return [os.path.basename(root)[3:] for root, _ in self.ids]


class VOCExpMixin:
    """Put it before the YOLOX exp in an exp's bases (after ``FocalExpMixin``) to train and
    evaluate on VOC-format data. Settings: ``data_dir`` (the folder holding ``VOC<year>``),
    ``train_sets`` and ``val_sets`` (``(year, image set)`` pairs), ``class_names`` (and
    ``num_classes``, its length)."""

    data_format = "voc"  # read by the data check

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        from yolox.data import get_yolox_datadir

        self.data_dir = os.path.join(get_yolox_datadir(), "VOCdevkit")
        self.train_sets = [("2007", "trainval"), ("2012", "trainval")]
        self.val_sets = [("2007", "test")]
        self.class_names = tuple(VOC_CLASSES)
        self.num_classes = len(self.class_names)

    def get_dataset(self, cache=False, cache_type="ram"):
        from yolox.data import TrainTransform

        extra = {"cache_type": cache_type} if _EXP_HAS_DATASET_HOOKS else {}
        return NamedVOCDetection(self.data_dir, [tuple(s) for s in self.train_sets], self.class_names,
                                 self.input_size, preproc=TrainTransform(max_labels=50, flip_prob=self.flip_prob,
                                                                         hsv_prob=self.hsv_prob),
                                 cache=cache, **extra)

    def get_eval_dataset(self, legacy=False, **kwargs):
        from yolox.data import ValTransform

        return NamedVOCDetection(self.data_dir, [tuple(s) for s in self.val_sets], self.class_names,
                                 self.test_size, preproc=ValTransform(legacy=legacy))

    def get_data_loader(self, batch_size, is_distributed, no_aug=False, cache_img=None):
        if _EXP_HAS_DATASET_HOOKS:
            return super().get_data_loader(batch_size, is_distributed, no_aug, cache_img)
        return self._voc_train_loader(batch_size, is_distributed, no_aug, cache_img)

    def _voc_train_loader(self, batch_size, is_distributed, no_aug, cache_img):
        """The PyPI release's base Exp builds COCO inline; this is its loader around our dataset."""
        from yolox.data import (DataLoader, InfiniteSampler, MosaicDetection, TrainTransform, YoloBatchSampler,
                                worker_init_reset_seed)
        from yolox.utils import get_local_rank, wait_for_the_master

        with wait_for_the_master(get_local_rank()):
            dataset = self.get_dataset(cache=cache_img)
        self.dataset = MosaicDetection(
            dataset, mosaic=not no_aug, img_size=self.input_size,
            preproc=TrainTransform(max_labels=120, flip_prob=self.flip_prob, hsv_prob=self.hsv_prob),
            degrees=self.degrees, translate=self.translate, mosaic_scale=self.mosaic_scale,
            mixup_scale=self.mixup_scale, shear=self.shear, enable_mixup=self.enable_mixup,
            mosaic_prob=self.mosaic_prob, mixup_prob=self.mixup_prob)
        if is_distributed:
            batch_size //= torch.distributed.get_world_size()
        sampler = InfiniteSampler(len(self.dataset), seed=self.seed if self.seed else 0)
        batch_sampler = YoloBatchSampler(sampler=sampler, batch_size=batch_size, drop_last=False, mosaic=not no_aug)
        return DataLoader(self.dataset, num_workers=self.data_num_workers, pin_memory=True,
                          batch_sampler=batch_sampler, worker_init_fn=worker_init_reset_seed)

    def get_eval_loader(self, batch_size, is_distributed, testdev=False, legacy=False, **kwargs):
        if _EXP_HAS_DATASET_HOOKS:
            return super().get_eval_loader(batch_size, is_distributed, testdev=testdev, legacy=legacy, **kwargs)
        dataset = self.get_eval_dataset(legacy=legacy)
        if is_distributed:
            batch_size //= torch.distributed.get_world_size()
            sampler = torch.utils.data.distributed.DistributedSampler(dataset, shuffle=False)
        else:
            sampler = torch.utils.data.SequentialSampler(dataset)
        return torch.utils.data.DataLoader(dataset, batch_size=batch_size, sampler=sampler,
                                           num_workers=self.data_num_workers, pin_memory=True)

    def get_evaluator(self, batch_size, is_distributed, testdev=False, legacy=False):
        from ..adapter.flavour import VOCEvaluator

        return VOCEvaluator(dataloader=self.get_eval_loader(batch_size, is_distributed, testdev=testdev, legacy=legacy),
                            img_size=self.test_size, confthre=self.test_conf, nmsthre=self.nmsthre,
                            num_classes=self.num_classes)
